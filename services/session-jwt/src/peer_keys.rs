//! Peer datacenters' session keys, published beside this datacenter's own so that a site
//! anywhere verifies a session minted anywhere with no call per request. Kept on disk, so
//! a restart during a partition still verifies the peer's sessions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tessera_verify::{Jwk, Jwks};

use crate::SessionError;

/// The last keys each peer datacenter published.
#[derive(Debug)]
pub struct PeerKeys {
    dir: PathBuf,
    by_datacenter: Mutex<BTreeMap<String, Jwks>>,
}

impl PeerKeys {
    /// The keys last saved in `dir` for each of `datacenters`.
    pub fn load(dir: &Path, datacenters: &[String]) -> Self {
        let mut by_datacenter = BTreeMap::new();
        for dc in datacenters {
            let path = file_of(dir, dc);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            match serde_json::from_str::<Jwks>(&text) {
                Ok(jwks) => {
                    by_datacenter.insert(dc.clone(), jwks);
                }
                Err(err) => tracing::warn!(path = %path.display(), %err,
                    "saved peer keys are unreadable; waiting for the peer to publish them again"),
            }
        }
        PeerKeys {
            dir: dir.to_owned(),
            by_datacenter: Mutex::new(by_datacenter),
        }
    }

    /// Records what `datacenter` publishes now; whether anything changed.
    pub fn set(&self, datacenter: &str, jwks: Jwks) -> Result<bool, SessionError> {
        let mut by_datacenter = self.by_datacenter.lock().unwrap_or_else(|e| e.into_inner());
        if by_datacenter.get(datacenter) == Some(&jwks) {
            return Ok(false);
        }
        let text = serde_json::to_string_pretty(&jwks)
            .map_err(|e| SessionError::Keys(format!("encoding {datacenter}'s keys: {e}")))?;
        let path = file_of(&self.dir, datacenter);
        let temporary = path.with_extension("json.new");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| SessionError::Keys(format!("saving {}: {e}", path.display())))?;
        by_datacenter.insert(datacenter.to_owned(), jwks);
        Ok(true)
    }

    /// Every peer key, in datacenter order.
    pub fn keys(&self) -> Vec<Jwk> {
        self.by_datacenter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|jwks| jwks.keys.iter().cloned())
            .collect()
    }
}

fn file_of(dir: &Path, datacenter: &str) -> PathBuf {
    dir.join(format!("peer-{datacenter}.jwks.json"))
}
