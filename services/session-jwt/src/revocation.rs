//! The revocations in force: their state (epochs, revoked sessions, what was already
//! taken in), the stream subscribers follow, and the follower that keeps this replica in
//! step with revocations other replicas stored. A peer follower (another datacenter's
//! stream) belongs here too.

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
    events: broadcast::Sender<RevocationEvent>,
    /// Revocations still in force, replayed to new subscribers. Short lock, no awaits.
    in_force: Mutex<Vec<RevocationEvent>>,
    /// Revoked-before times per user; `""` is everyone.
    epochs: Mutex<HashMap<String, UnixMillis>>,
    /// Stash tokens of revocations already taken in, by namespace.
    seen: Mutex<HashMap<&'static str, HashSet<String>>>,
}

impl RevocationFeed {
    /// The feed over `stash`, with every revocation stored there taken in.
    pub async fn load(
        stash: Stash,
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
            events,
            in_force: Mutex::new(Vec::new()),
            epochs: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
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
            let listed = self.stash.list(namespace, "all").await?;
            let unseen: Vec<String> = {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                // Forget what has expired from the stash, so the set stays bounded.
                let known = seen.entry(namespace).or_default();
                known.retain(|token| listed.contains(token));
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
                let event = if namespace == "epoch" {
                    let epoch: pb::EpochRecord = decode(&bytes, "epoch")?;
                    epoch_event(
                        &epoch.user_id,
                        UnixMillis(epoch.before_unix_ms.max(0) as u64),
                    )
                } else {
                    let revoked: pb::SessionsRevoked = decode(&bytes, "revocation")?;
                    RevocationEvent::Sessions {
                        sids: revoked.session_ids,
                        until: UnixMillis(revoked.until_unix_ms.max(0) as u64),
                    }
                };
                self.mark_seen(namespace, token);
                if announce {
                    self.announce(event);
                } else {
                    self.remember(event);
                }
                new += 1;
            }
        }
        Ok(new)
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

    fn remember(&self, event: RevocationEvent) {
        if let RevocationEvent::User { sub, before } = &event {
            let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
            let kept = epochs.entry(sub.clone()).or_insert(*before);
            *kept = (*kept).max(*before);
        }
        if let RevocationEvent::Global { before } = &event {
            let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
            let kept = epochs.entry(String::new()).or_insert(*before);
            *kept = (*kept).max(*before);
        }
        self.verifier.apply(event.clone());
        self.in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    pub(crate) fn announce(&self, event: RevocationEvent) {
        self.remember(event.clone());
        // No subscribers is fine: they replay what is in force when they connect.
        let _ = self.events.send(event);
    }

    /// A subscription to new revocations, and every revocation in force now. Subscribe
    /// first, then read the snapshot: an event in between is seen twice, never missed.
    pub fn subscribe(&self) -> (Vec<RevocationEvent>, broadcast::Receiver<RevocationEvent>) {
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
            .retain(|event| match event {
                RevocationEvent::Sessions { until, .. } => *until > now,
                RevocationEvent::User { before, .. } | RevocationEvent::Global { before } => {
                    live(before)
                }
            });
        self.epochs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, before| live(before));
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
