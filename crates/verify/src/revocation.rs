//! What a verifier knows of revocations: single sessions, all sessions of a user issued
//! before a moment (the user's epoch), and all sessions issued before a moment (the global
//! epoch). The epochs make "log out everywhere" and "invalidate everyone" O(1).

use std::collections::HashMap;
use std::fmt;

use tessera_clock::UnixMillis;

use crate::Claims;

/// One revocation, as the session service announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationEvent {
    /// These sessions are revoked; remember them until `until` (their last soft expiry).
    Sessions {
        /// Session ids, e.g. a central session and every site session derived from it.
        sids: Vec<String>,
        /// After this no token of these sessions can verify anyway.
        until: UnixMillis,
    },
    /// Every session of `sub` issued before `before` is revoked.
    User {
        /// The user id.
        sub: String,
        /// Tokens issued earlier than this are revoked.
        before: UnixMillis,
    },
    /// Every session issued before `before` is revoked.
    Global {
        /// Tokens issued earlier than this are revoked.
        before: UnixMillis,
    },
}

/// Which revocation caught a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokedScope {
    /// The session itself (or the session it was derived from).
    Session,
    /// All of the user's sessions.
    User,
    /// Everyone's sessions.
    Global,
}

impl fmt::Display for RevokedScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevokedScope::Session => "this session was logged out",
            RevokedScope::User => "all of this user's sessions were logged out",
            RevokedScope::Global => "all sessions were invalidated",
        })
    }
}

/// The revocations a verifier holds. Memory is bounded by the number of revoked sessions
/// still inside their soft expiry and by the number of users with an epoch.
#[derive(Debug, Clone, Default)]
pub struct RevocationState {
    sessions: HashMap<String, UnixMillis>,
    users: HashMap<String, UnixMillis>,
    global_before: UnixMillis,
}

impl RevocationState {
    /// Takes in one event.
    pub fn apply(&mut self, event: RevocationEvent) {
        match event {
            RevocationEvent::Sessions { sids, until } => {
                for sid in sids {
                    let kept = self.sessions.entry(sid).or_insert(until);
                    *kept = (*kept).max(until);
                }
            }
            RevocationEvent::User { sub, before } => {
                let kept = self.users.entry(sub).or_insert(before);
                *kept = (*kept).max(before);
            }
            RevocationEvent::Global { before } => {
                self.global_before = self.global_before.max(before);
            }
        }
    }

    /// Whether a token with these claims is revoked, and by what.
    pub fn check(&self, claims: &Claims) -> Option<RevokedScope> {
        let issued = UnixMillis(claims.iat.saturating_mul(1000));
        if issued < self.global_before {
            return Some(RevokedScope::Global);
        }
        if self
            .users
            .get(&claims.sub)
            .is_some_and(|before| issued < *before)
        {
            return Some(RevokedScope::User);
        }
        if self.sessions.contains_key(&claims.sid) {
            return Some(RevokedScope::Session);
        }
        None
    }

    /// Forgets session revocations past their `until`, and user epochs older than the
    /// global one (which covers them).
    pub fn prune(&mut self, now: UnixMillis) {
        self.sessions.retain(|_, until| *until > now);
        let global = self.global_before;
        self.users.retain(|_, before| *before > global);
    }

    /// How many session revocations are held.
    pub fn revoked_sessions(&self) -> usize {
        self.sessions.len()
    }
}
