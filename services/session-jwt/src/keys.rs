//! The signing keys: Ed25519 seeds in a directory that replicas share. The newest key
//! signs; older ones stay published (so their tokens still verify) for a configured time
//! after they were replaced, then their files are removed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tessera_clock::UnixMillis;
use tessera_verify::{Jwks, SessionSigner};

use crate::SessionError;

#[derive(Debug)]
struct StoredKey {
    created: UnixMillis,
    signer: Arc<SessionSigner>,
}

/// The active signing key and the retired keys still published.
#[derive(Debug)]
pub struct KeyRing {
    dir: PathBuf,
    publish_retired_for: Duration,
    /// Oldest first. The lock is held only to read or push, never across I/O.
    keys: RwLock<Vec<StoredKey>>,
}

impl KeyRing {
    /// Loads every key in `dir`, generating the first one if there is none.
    pub fn open(
        dir: &Path,
        publish_retired_for: Duration,
        now: UnixMillis,
    ) -> Result<Self, SessionError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SessionError::Keys(format!("cannot create {}: {e}", dir.display())))?;
        let ring = KeyRing {
            dir: dir.to_owned(),
            publish_retired_for,
            keys: RwLock::new(Vec::new()),
        };
        ring.reload()?;
        if ring.read().is_empty() {
            ring.rotate(now)?;
            tracing::warn!(dir = %dir.display(), "generated the first session signing key");
        }
        Ok(ring)
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<StoredKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the key files again (another replica may have rotated).
    pub fn reload(&self) -> Result<(), SessionError> {
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| SessionError::Keys(format!("cannot read {}: {e}", self.dir.display())))?;
        let mut keys = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(created) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let seed = tessera_config::secret::read_secret(&path)
                .map_err(SessionError::Keys)?
                .ok_or_else(|| {
                    SessionError::Keys(format!("{} vanished while being read", path.display()))
                })?;
            keys.push(StoredKey {
                created: UnixMillis(created),
                signer: Arc::new(SessionSigner::from_seed(&seed)),
            });
        }
        keys.sort_by_key(|k| k.created);
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> Result<Arc<SessionSigner>, SessionError> {
        self.read()
            .last()
            .map(|k| k.signer.clone())
            .ok_or_else(|| SessionError::Keys("no signing key".into()))
    }

    /// The keys to publish at `now`: the active one and every retired one replaced less
    /// than the publishing time ago.
    pub fn jwks(&self, now: UnixMillis) -> Jwks {
        let keys = self.read();
        let mut published = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let replaced_at = keys.get(i + 1).map(|next| next.created);
            let still_published =
                replaced_at.is_none_or(|at| at.saturating_add(self.publish_retired_for) > now);
            if still_published {
                published.push(key.signer.jwk());
            }
        }
        Jwks { keys: published }
    }

    /// Makes a new key active; removes files of keys no longer published.
    pub fn rotate(&self, now: UnixMillis) -> Result<Arc<SessionSigner>, SessionError> {
        let seed = tessera_config::secret::random_secret().map_err(SessionError::Keys)?;
        // Keys are ordered by creation time; never reuse a time already taken.
        let created = self
            .read()
            .last()
            .map_or(now, |last| UnixMillis(now.0.max(last.created.0 + 1)));
        let path = self.dir.join(format!("{}.key", created.0));
        tessera_config::secret::write_secret(&path, &seed).map_err(SessionError::Keys)?;
        let signer = Arc::new(SessionSigner::from_seed(&seed));
        {
            let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
            keys.push(StoredKey {
                created,
                signer: signer.clone(),
            });
        }
        self.remove_unpublished(now);
        tracing::info!(kid = signer.kid(), "session signing key rotated");
        Ok(signer)
    }

    fn remove_unpublished(&self, now: UnixMillis) {
        let published: Vec<String> = self.jwks(now).keys.into_iter().map(|k| k.kid).collect();
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.retain(|key| {
            let keep = published.iter().any(|kid| kid == key.signer.kid());
            if !keep {
                let _ = std::fs::remove_file(self.dir.join(format!("{}.key", key.created.0)));
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_retired_key_published_for_the_window_only() {
        let dir = tempfile::tempdir().expect("dir");
        let window = Duration::from_secs(600);
        let ring = KeyRing::open(dir.path(), window, UnixMillis(1_000_000)).expect("open");
        let first = ring.active().expect("active").kid().to_owned();
        let second = ring
            .rotate(UnixMillis(2_000_000))
            .expect("rotate")
            .kid()
            .to_owned();
        assert_ne!(first, second);
        let kids = |now| {
            ring.jwks(UnixMillis(now))
                .keys
                .into_iter()
                .map(|k| k.kid)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kids(2_000_000 + 599_000),
            vec![first.clone(), second.clone()]
        );
        assert_eq!(kids(2_000_000 + 600_000), vec![second.clone()]);

        let reopened = KeyRing::open(dir.path(), window, UnixMillis(2_000_001)).expect("reopen");
        assert_eq!(
            reopened.active().expect("active").kid(),
            second,
            "replicas share the directory"
        );
    }
}
