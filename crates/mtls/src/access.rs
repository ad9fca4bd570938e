use std::collections::{BTreeMap, BTreeSet};

use crate::{peer_identity, ServiceIdentity};

/// Which identities may call which RPCs of one service.
///
/// An RPC listed in `per_rpc` is open to exactly the identities listed there; any other RPC
/// is open to the `default` set. Nothing is open to a caller without a Tessera identity.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    /// Identities allowed to call every RPC not named in `per_rpc`.
    #[serde(default)]
    pub default: BTreeSet<ServiceIdentity>,
    /// Overrides for single RPCs, keyed by RPC name (e.g. `Stats`).
    #[serde(default)]
    pub per_rpc: BTreeMap<String, BTreeSet<ServiceIdentity>>,
}

impl AccessPolicy {
    /// A policy letting `callers` call every RPC.
    pub fn allow_all_rpcs<I: IntoIterator<Item = ServiceIdentity>>(callers: I) -> Self {
        AccessPolicy {
            default: callers.into_iter().collect(),
            per_rpc: BTreeMap::new(),
        }
    }

    /// Whether `caller` may call `rpc`.
    pub fn permits(&self, rpc: &str, caller: &ServiceIdentity) -> bool {
        self.per_rpc
            .get(rpc)
            .unwrap_or(&self.default)
            .contains(caller)
    }

    /// Checks the caller of `request` may call `rpc`, answering with the status to return
    /// if not. Returns the caller's identity for logging.
    #[allow(clippy::result_large_err)] // tonic's Status is what handlers return anyway
    pub fn authorize<T>(
        &self,
        rpc: &str,
        request: &tonic::Request<T>,
    ) -> Result<ServiceIdentity, tonic::Status> {
        let caller = peer_identity(request)
            .map_err(|err| tonic::Status::unauthenticated(err.to_string()))?;
        if self.permits(rpc, &caller) {
            Ok(caller)
        } else {
            Err(tonic::Status::permission_denied(format!(
                "{caller} may not call {rpc}; ask an operator to add it to this service's access policy"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ServiceIdentity {
        ServiceIdentity::parse(name).expect("valid name")
    }

    #[test]
    fn per_rpc_lists_override_the_default() {
        let mut policy = AccessPolicy::allow_all_rpcs([id("login")]);
        policy
            .per_rpc
            .insert("Stats".into(), BTreeSet::from([id("admin")]));
        assert!(policy.permits("Take", &id("login")));
        assert!(!policy.permits("Stats", &id("login")));
        assert!(policy.permits("Stats", &id("admin")));
        assert!(!policy.permits("Take", &id("admin")));
    }
}
