//! The user directory and the site registry, in SQLite (a file, the default) or
//! PostgreSQL, through one portable schema and one set of queries (`sqlx::Any`).

mod names;
mod sites;
mod users;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

pub use names::{ClientId, UserName};
pub use sites::{IdTokenAlg, NewSite, Site};
pub use users::User;

use crate::LoginError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The directory: users and sites. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Directory {
    pool: AnyPool,
}

impl Directory {
    /// Opens the database at `url` (creating an SQLite file and its folder if missing) and
    /// brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, LoginError> {
        sqlx::any::install_default_drivers();
        let url = sqlite_url(url)?;
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| LoginError::Config(format!("database_url: {e}")))?;
        let pool = AnyPoolOptions::new()
            .max_connections(if url.starts_with("sqlite:") { 4 } else { 16 })
            .connect_with(options)
            .await
            .map_err(|e| {
                LoginError::Directory(format!("cannot open the directory database: {e}"))
            })?;
        if url.starts_with("sqlite:") {
            // Readers never wait for the writer; one fsync per commit.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| LoginError::Directory(format!("schema migration failed: {e}")))?;
        Ok(Directory { pool })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// An SQLite URL with `mode=rwc` (create if missing), its folder created; other URLs as
/// they are.
fn sqlite_url(url: &str) -> Result<String, LoginError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(url.to_owned());
    };
    let path = rest.trim_start_matches("//");
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if file.is_empty() || file == ":memory:" {
        return Err(LoginError::Config(
            "database_url: give SQLite a file path (sqlite://path/to/directory.db); an in-memory directory would lose every user on restart".into(),
        ));
    }
    // Password hashes and second-factor secrets: owner-only, whatever the umask (SQLite
    // gives its journal files the database file's mode).
    tessera_config::private::precreate(std::path::Path::new(file))
        .map_err(|e| LoginError::Config(format!("database_url: cannot create {file}: {e}")))?;
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{file}?{query}"))
}

/// Whether a database error is a uniqueness violation (a duplicate name).
fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}
