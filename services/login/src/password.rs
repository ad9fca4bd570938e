//! Password hashing: argon2id with the OWASP-recommended parameters (19 MiB, 2 passes,
//! 1 lane). Hashing runs on the blocking pool, so a burst of sign-ins never stalls the
//! request threads, and at most one hash per core runs at a time: argon2id is
//! memory-hard, so a flood of sign-ins queues for a core instead of allocating 19 MiB
//! per waiting hash without bound.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::LoginError;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted (bytes): argon2 would take more, but nobody types this.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes and checks passwords. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    argon: Arc<Argon2<'static>>,
    /// One permit per core.
    hashing: Arc<tokio::sync::Semaphore>,
    /// Checked when the user does not exist, so that an unknown name costs one hash, like
    /// a known one.
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords").finish_non_exhaustive()
    }
}

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or_else(|_| unreachable!("valid constants"))
}

impl Passwords {
    /// A hasher with the OWASP parameters.
    pub fn new() -> Result<Self, LoginError> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params());
        let dummy_hash = hash_with(&argon, &crate::random_text(24)?)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Passwords {
            argon: Arc::new(argon),
            hashing: Arc::new(tokio::sync::Semaphore::new(cores)),
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    /// The PHC string for a new password, after checking it is acceptable.
    pub async fn hash(&self, password: String) -> Result<String, LoginError> {
        check_policy(&password)?;
        let argon = self.argon.clone();
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| LoginError::Crypto(e.to_string()))?;
        tokio::task::spawn_blocking(move || hash_with(&argon, &password))
            .await
            .map_err(|e| LoginError::Crypto(format!("hashing task: {e}")))?
    }

    /// Whether `password` matches `stored`; with no stored hash (unknown user), checks a
    /// dummy hash and answers false, taking the same time.
    pub async fn verify(&self, stored: Option<String>, password: String) -> bool {
        let argon = self.argon.clone();
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let Ok(_permit) = self.hashing.acquire().await else {
            return false;
        };
        let matched = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && matched
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String, LoginError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| LoginError::Crypto(format!("randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| LoginError::Crypto(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| LoginError::Crypto(format!("argon2id: {e}")))
}

/// Length rules only (NIST SP 800-63B): at least 8 characters, at most 1 KiB.
pub fn check_policy(password: &str) -> Result<(), LoginError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(LoginError::invalid(
            "password",
            format!("is too short: use at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(LoginError::invalid(
            "password",
            format!("is too long: at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}
