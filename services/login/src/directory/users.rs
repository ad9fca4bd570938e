//! Users: sign-in name, argon2id password hash, disabled flag, TOTP enrolment.

use sqlx::Row as _;
use tessera_clock::UnixMillis;

use super::{is_unique_violation, Directory, UserName};
use crate::LoginError;

/// A user as the directory holds them.
#[derive(Clone)]
pub struct User {
    /// Stable id (the `sub` of every token).
    pub id: String,
    /// Sign-in name.
    pub name: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// The TOTP secret (base32), when enrolled.
    pub totp_secret: Option<String>,
    /// Until when the second factor refuses every code (too many wrong ones).
    pub totp_locked_until: UnixMillis,
}

impl std::fmt::Debug for User {
    // Hashes and TOTP secrets never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("disabled", &self.disabled)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, name, password_hash, disabled, totp_secret, totp_locked_until";

fn from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        totp_secret: row.try_get("totp_secret")?,
        totp_locked_until: UnixMillis(
            u64::try_from(row.try_get::<i64, _>("totp_locked_until")?).unwrap_or(0),
        ),
    })
}

impl Directory {
    /// Adds a user; their new id.
    pub async fn add_user(
        &self,
        name: &UserName,
        password_hash: &str,
        now: UnixMillis,
    ) -> Result<String, LoginError> {
        let id = format!("u{}", crate::random_text(9)?.replace(['-', '_'], "x"));
        sqlx::query(
            "INSERT INTO users (id, name, password_hash, disabled, totp_last_step, created_at) VALUES ($1, $2, $3, 0, 0, $4)",
        )
        .bind(&id)
        .bind(name.as_str())
        .bind(password_hash)
        .bind(now.as_i64())
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                LoginError::Duplicate {
                    what: "user",
                    name: name.to_string(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(id)
    }

    /// The user signing in as `name`, if any.
    pub async fn user_by_name(&self, name: &UserName) -> Result<Option<User>, LoginError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// The user with id `id`, if any.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>, LoginError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Replaces a user's password hash.
    pub async fn set_password(&self, name: &UserName, hash: &str) -> Result<(), LoginError> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(hash)
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        found(done.rows_affected(), name)
    }

    /// Disables (or re-enables) a user.
    pub async fn set_disabled(&self, name: &UserName, disabled: bool) -> Result<(), LoginError> {
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE name = $2")
            .bind(i64::from(disabled))
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        found(done.rows_affected(), name)
    }

    /// Enrols a TOTP secret (base32), replacing any earlier one.
    pub async fn set_totp(&self, name: &UserName, secret: &str) -> Result<(), LoginError> {
        let done =
            sqlx::query("UPDATE users SET totp_secret = $1, totp_last_step = 0 WHERE name = $2")
                .bind(secret)
                .bind(name.as_str())
                .execute(&self.pool)
                .await?;
        found(done.rows_affected(), name)
    }

    /// Records that the TOTP code of time step `step` was used by `user_id`. False if that
    /// step (or a later one) was already used: one conditional update, so two concurrent
    /// sign-ins with the same code cannot both pass.
    pub async fn use_totp_step(&self, user_id: &str, step: u64) -> Result<bool, LoginError> {
        let step =
            i64::try_from(step).map_err(|_| LoginError::invalid("code", "is out of range"))?;
        let done = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl Directory {
    /// Counts a wrong second-factor code for `user_id` at `now`; past `free` of them in a
    /// row, the second factor waits (see [`crate::ratelimit::backoff`]). Kept in the
    /// directory, so every replica sees the same count.
    pub async fn totp_failed(
        &self,
        user_id: &str,
        free: u32,
        now: UnixMillis,
    ) -> Result<(), LoginError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET totp_failures = totp_failures + 1 WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let failures: i64 = sqlx::query("SELECT totp_failures FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("totp_failures")?;
        let wait = crate::ratelimit::backoff(u32::try_from(failures).unwrap_or(u32::MAX), free);
        sqlx::query("UPDATE users SET totp_locked_until = $1 WHERE id = $2")
            .bind(now.saturating_add(wait).as_i64())
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the wrong second-factor codes of `user_id` (a right one was entered).
    pub async fn totp_succeeded(&self, user_id: &str) -> Result<(), LoginError> {
        sqlx::query("UPDATE users SET totp_failures = 0, totp_locked_until = 0 WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn found(rows: u64, name: &UserName) -> Result<(), LoginError> {
    if rows == 0 {
        return Err(LoginError::NotFound {
            what: "user",
            name: name.to_string(),
        });
    }
    Ok(())
}
