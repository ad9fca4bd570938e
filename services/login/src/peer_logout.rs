//! Back-channel logout for sign-outs made in a peer datacenter. A person signed out in
//! DC-A may hold site sessions that DC-B's login minted (an SSO hop served by DC-B); only
//! DC-B's stash indexes them. DC-B's session service takes in DC-A's revocation, so this
//! login follows that stream and, for each session a peer revoked, tells the sites of
//! the site sessions derived here from it, as a sign-out here does.

use std::collections::HashSet;
use std::time::Duration;

use tessera_proto::session::v1 as pb;

use crate::state::Shared;

/// Reconnect backoff bounds: the session service is restarting, and hammering it helps
/// nobody.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// Sessions remembered as notified, so a resubscription (which replays every revocation
/// in force) does not notify the sites again; forgotten wholesale past this many, at
/// worst a site hears of a sign-out twice, which it ignores.
const REMEMBERED: usize = 100_000;

/// Follows the local session service's revocations for as long as the future runs.
pub async fn follow(state: Shared) {
    let local = state.config.stash.datacenter.clone();
    let mut notified = HashSet::new();
    let mut retry = FIRST_RETRY;
    loop {
        match state.backends.revocations().await {
            Ok(mut stream) => {
                retry = FIRST_RETRY;
                tracing::info!("following the session service's revocations");
                loop {
                    match stream.message().await {
                        Ok(Some(revocation)) => {
                            for sid in revoked_by_peer(&revocation, &local) {
                                if notified.len() >= REMEMBERED {
                                    notified.clear();
                                }
                                if notified.insert(sid.clone()) {
                                    let sites =
                                        crate::backchannel::notify_sites(&state, &sid).await;
                                    if sites > 0 {
                                        tracing::info!(session = %sid, sites, origin = %revocation.origin_datacenter,
                                            "signed out here of a session ended in a peer datacenter");
                                    }
                                }
                            }
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::warn!(%status, "revocation stream broke; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(refusal) => {
                tracing::warn!(code = %refusal.code, message = %refusal.message,
                    "cannot follow the session service's revocations; retrying");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// The sessions `revocation` names when a peer datacenter made it; none for revocations
/// made here (their sign-out notified the sites already) or of a user or everyone (no
/// site session is named: their tokens stop verifying by epoch).
fn revoked_by_peer(revocation: &pb::Revocation, local: &str) -> Vec<String> {
    if revocation.origin_datacenter.is_empty() || revocation.origin_datacenter == local {
        return Vec::new();
    }
    match &revocation.kind {
        Some(pb::revocation::Kind::Sessions(sessions)) => sessions.session_ids.clone(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(origin: &str, sids: &[&str]) -> pb::Revocation {
        pb::Revocation {
            kind: Some(pb::revocation::Kind::Sessions(pb::SessionsRevoked {
                session_ids: sids.iter().map(|s| (*s).to_owned()).collect(),
                until_unix_ms: 1,
                origin_datacenter: origin.to_owned(),
            })),
            origin_datacenter: origin.to_owned(),
        }
    }

    #[test]
    fn only_sessions_a_peer_revoked_are_signed_out_here() {
        assert_eq!(
            revoked_by_peer(&sessions("dc-a", &["central", "site"]), "dc-b"),
            ["central", "site"]
        );
        assert!(revoked_by_peer(&sessions("dc-b", &["central"]), "dc-b").is_empty());
        assert!(revoked_by_peer(&sessions("", &["central"]), "dc-b").is_empty());
        let user = pb::Revocation {
            kind: Some(pb::revocation::Kind::User(pb::UserRevoked {
                user_id: "u".into(),
                before_unix_ms: 1,
            })),
            origin_datacenter: "dc-a".into(),
        };
        assert!(revoked_by_peer(&user, "dc-b").is_empty());
    }
}
