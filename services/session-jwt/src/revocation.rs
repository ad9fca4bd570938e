//! The revocations in force: their state (epochs, revoked sessions, what was already
//! taken in), the stream subscribers follow, and the follower that keeps this replica in
//! step with revocations other replicas stored. Peer datacenters' revocations arrive
//! through [`crate::peers`] and are taken in here like any other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tessera_clock::{SharedClock, UnixMillis};
use tessera_proto::session::v1 as pb;
use tessera_service::StopSignal;
use tessera_verify::{RevocationEvent, Verifier};
use tokio::sync::broadcast;

use crate::sessions::decode_record as decode;
use crate::stash::Stash;
use crate::SessionError;

/// A revocation and the datacenter it was made in.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    /// What is revoked.
    pub event: RevocationEvent,
    /// The datacenter it was made in.
    pub origin: String,
}

impl Revocation {
    /// The streamed form.
    pub fn to_proto(&self) -> pb::Revocation {
        let mut message = tessera_verify::grpc::to_proto(&self.event);
        message.origin_datacenter = self.origin.clone();
        message
    }
}

const EVENT_BUFFER: usize = 4096;

/// How often revocations stored by other replicas are read, so a logout anywhere reaches
/// every subscriber within about a second.
pub const REPLICA_SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// Revocations in force, the verifier they apply to, and their subscribers.
#[derive(Debug)]
pub struct RevocationFeed {
    stash: Stash,
    verifier: Verifier,
    clock: SharedClock,
    /// How long an epoch can still end a live session (the longest session plus its last
    /// token's soft expiry).
    epoch_matters_for: Duration,
    /// The datacenter this feed belongs to: the origin of what it stored without one.
    datacenter: String,
    events: broadcast::Sender<Revocation>,
    /// Revocations still in force, replayed to new subscribers. Short lock, no awaits.
    in_force: Mutex<Vec<Revocation>>,
    /// Revoked-before times per user; `""` is everyone.
    epochs: Mutex<HashMap<String, UnixMillis>>,
    /// Revoked session ids and until when their revocation matters.
    revoked_sessions: Mutex<HashMap<String, UnixMillis>>,
    /// Stash tokens of revocations already taken in, by namespace.
    seen: Mutex<HashMap<&'static str, HashSet<String>>>,
    /// Where the next read of each namespace follows on from (the stash's clock), so a
    /// poll reads what was stored since the last one, not every revocation in force.
    follow_from: Mutex<HashMap<&'static str, i64>>,
}

impl RevocationFeed {
    /// The feed over `stash`, with every revocation stored there taken in.
    pub async fn load(
        stash: Stash,
        datacenter: &str,
        verifier: Verifier,
        clock: SharedClock,
        epoch_matters_for: Duration,
    ) -> Result<Self, SessionError> {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let feed = RevocationFeed {
            stash,
            verifier,
            clock,
            epoch_matters_for,
            datacenter: datacenter.to_owned(),
            events,
            in_force: Mutex::new(Vec::new()),
            epochs: Mutex::new(HashMap::new()),
            revoked_sessions: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            follow_from: Mutex::new(HashMap::new()),
        };
        feed.sync_revocations_announcing(false).await?;
        Ok(feed)
    }

    /// The verifier the revocations apply to.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Takes in revocations other replicas stored since the last look, announcing them to
    /// this replica's subscribers; how many were new.
    pub async fn sync_revocations(&self) -> Result<usize, SessionError> {
        self.sync_revocations_announcing(true).await
    }

    /// Follows the other replicas until `stop`: their revocations are read every
    /// [`REPLICA_SYNC_INTERVAL`], and what can no longer matter is forgotten.
    pub async fn follow_replicas(self: Arc<Self>, mut stop: StopSignal) {
        let mut tick = tokio::time::interval(REPLICA_SYNC_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(err) = self.sync_revocations().await {
                        tracing::warn!(%err, "reading other replicas' revocations failed; will retry");
                    }
                    self.prune();
                }
                _ = stop.stopped() => return,
            }
        }
    }

    async fn sync_revocations_announcing(&self, announce: bool) -> Result<usize, SessionError> {
        let mut new = 0;
        for namespace in ["epoch", "revoked"] {
            let since = self
                .follow_from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(namespace)
                .copied()
                .unwrap_or(0);
            let (listed, next_since) = self.stash.list_since(namespace, "all", since).await?;
            let unseen: Vec<String> = {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                // Forget what can no longer be listed (expired, or older than the time
                // this list follows on from), so the set stays as small as a poll's list.
                let still_listed: HashSet<&String> = listed.iter().collect();
                let known = seen.entry(namespace).or_default();
                known.retain(|token| still_listed.contains(token));
                listed
                    .iter()
                    .filter(|t| !known.contains(*t))
                    .cloned()
                    .collect()
            };
            for token in unseen {
                let Some(bytes) = self.stash.get(&token).await? else {
                    continue;
                };
                let (event, origin) = if namespace == "epoch" {
                    let epoch: pb::EpochRecord = decode(&bytes, "epoch")?;
                    let event = epoch_event(
                        &epoch.user_id,
                        UnixMillis(epoch.before_unix_ms.max(0) as u64),
                    );
                    (event, epoch.origin_datacenter)
                } else {
                    let revoked: pb::SessionsRevoked = decode(&bytes, "revocation")?;
                    let event = RevocationEvent::Sessions {
                        sids: revoked.session_ids,
                        until: UnixMillis(revoked.until_unix_ms.max(0) as u64),
                    };
                    (event, revoked.origin_datacenter)
                };
                let revocation = Revocation {
                    event,
                    origin: if origin.is_empty() {
                        self.datacenter.clone()
                    } else {
                        origin
                    },
                };
                self.mark_seen(namespace, token);
                let taken_in = if announce {
                    self.announce(revocation)
                } else {
                    self.remember(revocation)
                };
                new += usize::from(taken_in);
            }
            // Only once everything listed was taken in: a failed read is listed again.
            self.follow_from
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(namespace, next_since);
        }
        Ok(new)
    }

    /// Whether the stash entry `token` of `namespace` was already taken in.
    pub(crate) fn has_seen(&self, namespace: &'static str, token: &str) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(namespace)
            .is_some_and(|tokens| tokens.contains(token))
    }

    pub(crate) fn mark_seen(&self, namespace: &'static str, token: String) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(namespace)
            .or_default()
            .insert(token);
    }

    /// Whether an epoch of `user_id` (or everyone's) ended sessions created at
    /// `created_unix_ms`.
    pub fn revoked_by_epoch(&self, user_id: &str, created_unix_ms: i64) -> bool {
        let created = UnixMillis(u64::try_from(created_unix_ms).unwrap_or(0));
        let epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        let revoked = [epochs.get(user_id), epochs.get("")]
            .into_iter()
            .flatten()
            .any(|before| created < *before);
        revoked
    }

    /// The latest epoch that concerns `user_id` (theirs or everyone's).
    pub fn latest_epoch(&self, user_id: &str) -> UnixMillis {
        let epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        [epochs.get(user_id), epochs.get("")]
            .into_iter()
            .flatten()
            .max()
            .copied()
            .unwrap_or_default()
    }

    /// Whether `event` would revoke anything not revoked already.
    pub fn is_new(&self, event: &RevocationEvent) -> bool {
        match event {
            RevocationEvent::Sessions { sids, until } => {
                let revoked = self
                    .revoked_sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                sids.iter()
                    .any(|sid| revoked.get(sid).is_none_or(|known| known < until))
            }
            RevocationEvent::User { sub, before } => self.epoch_is_new(sub, *before),
            RevocationEvent::Global { before } => self.epoch_is_new("", *before),
        }
    }

    fn epoch_is_new(&self, user_id: &str, before: UnixMillis) -> bool {
        let epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        epochs.get(user_id).is_none_or(|known| *known < before)
    }

    /// Whether session `session_id` was revoked (by id, not by an epoch).
    pub fn session_revoked(&self, session_id: &str) -> bool {
        self.revoked_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(session_id)
    }

    /// Takes `revocation` in; false (and nothing changes) if it revokes nothing new, so
    /// a revocation heard twice (from a replica, a replay, a peer) is announced once.
    fn remember(&self, revocation: Revocation) -> bool {
        if !self.is_new(&revocation.event) {
            return false;
        }
        match &revocation.event {
            RevocationEvent::Sessions { sids, until } => {
                let mut revoked = self
                    .revoked_sessions
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                for sid in sids {
                    let kept = revoked.entry(sid.clone()).or_insert(*until);
                    *kept = (*kept).max(*until);
                }
            }
            RevocationEvent::User { sub, before } => self.raise_epoch(sub, *before),
            RevocationEvent::Global { before } => self.raise_epoch("", *before),
        }
        self.verifier.apply(revocation.event.clone());
        self.in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(revocation);
        true
    }

    fn raise_epoch(&self, user_id: &str, before: UnixMillis) {
        let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        let kept = epochs.entry(user_id.to_owned()).or_insert(before);
        *kept = (*kept).max(before);
    }

    /// Takes in a revocation made in this datacenter and tells the subscribers.
    pub(crate) fn announce_local(&self, event: RevocationEvent) -> bool {
        self.announce(Revocation {
            event,
            origin: self.datacenter.clone(),
        })
    }

    /// Takes `revocation` in and, if it was new, tells the subscribers.
    pub(crate) fn announce(&self, revocation: Revocation) -> bool {
        if !self.remember(revocation.clone()) {
            return false;
        }
        // No subscribers is fine: they replay what is in force when they connect.
        let _ = self.events.send(revocation);
        true
    }

    /// A subscription to new revocations, and every revocation in force now. Subscribe
    /// first, then read the snapshot: an event in between is seen twice, never missed.
    pub fn subscribe(&self) -> (Vec<Revocation>, broadcast::Receiver<Revocation>) {
        let receiver = self.events.subscribe();
        self.prune();
        let in_force = self
            .in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (in_force, receiver)
    }

    /// Forgets revocations that can no longer matter: session revocations past the soft
    /// expiry of their last token, and epochs older than the longest session (every
    /// session they ended has reached its hard limit by then). Keeps memory bounded.
    pub fn prune(&self) {
        let now = self.clock.now();
        let epoch_matters_for = self.epoch_matters_for;
        let live = |before: &UnixMillis| before.saturating_add(epoch_matters_for) > now;
        self.in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|revocation| match &revocation.event {
                RevocationEvent::Sessions { until, .. } => *until > now,
                RevocationEvent::User { before, .. } | RevocationEvent::Global { before } => {
                    live(before)
                }
            });
        self.epochs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, before| live(before));
        self.revoked_sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
        self.verifier.prune(now);
    }
}

/// The event of an epoch of `user_id` (everyone's when empty).
pub fn epoch_event(user_id: &str, before: UnixMillis) -> RevocationEvent {
    if user_id.is_empty() {
        RevocationEvent::Global { before }
    } else {
        RevocationEvent::User {
            sub: user_id.to_owned(),
            before,
        }
    }
}
