//! The stash's operations on top of a [`Store`]: validation, token minting and sealing,
//! time and metrics. The gRPC layer only authorizes, routes and translates.

use std::sync::Arc;
use std::time::Duration;

use tessera_clock::{SharedClock, UnixMillis};

use crate::metrics::StashMetrics;
use crate::store::{NewEntry, Store, StoreOp, StoreStats, StoredEntry};
use crate::token::{check_value, Namespace, Owner, Ttl};
use crate::{DatacenterId, StashError, Token, TokenSealer};

/// What a caller asks to store, validated.
#[derive(Debug, Clone)]
pub struct PutInput {
    /// The kind of value.
    pub namespace: Namespace,
    /// The value (at most 64 KiB).
    pub value: Vec<u8>,
    /// How long it stays readable.
    pub ttl: Ttl,
    /// Read once with take, or many times with get.
    pub single_use: bool,
    /// Who it belongs to, if anyone.
    pub owner: Option<Owner>,
    /// Store under this token, only if it is not and was not recently in use.
    pub chosen_token: Option<Token>,
}

impl PutInput {
    /// Validates raw request fields.
    pub fn parse(
        namespace: &str,
        value: Vec<u8>,
        ttl_seconds: u32,
        single_use: bool,
        owner: &str,
    ) -> Result<Self, StashError> {
        check_value(&value)?;
        Ok(PutInput {
            namespace: Namespace::try_from(namespace)?,
            value,
            ttl: Ttl::try_from(ttl_seconds)?,
            single_use,
            owner: Owner::optional(owner)?,
            chosen_token: None,
        })
    }

    /// Stores under `token` (put-if-absent) instead of a freshly minted token.
    pub fn with_token(mut self, token: Token) -> Self {
        self.chosen_token = Some(token);
        self
    }
}

/// The most operations one Apply or GetMany carries: enough for a session's records,
/// small enough that one call never holds the writer long.
pub const MAX_BATCH: usize = 16;

/// How far a list that follows an owner reaches back before the previous read: an entry
/// is stamped with its creation time before its write commits (a group commit, a Redis
/// round trip, the clock of another stash replica), so it may land after a read that
/// began later than its stamp. Followers skip what they have already seen.
pub const LIST_OVERLAP: Duration = Duration::from_secs(30);

/// One operation of an Apply, validated.
#[derive(Debug, Clone)]
pub enum ApplyInput {
    /// Put-if-absent under the chosen token the input carries.
    Put(PutInput),
    /// A live reusable entry that must still be there.
    Require(Token),
}

impl ApplyInput {
    fn token(&self) -> Option<&Token> {
        match self {
            ApplyInput::Put(input) => input.chosen_token.as_ref(),
            ApplyInput::Require(token) => Some(token),
        }
    }
}

/// Counts reported by Stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StashStats {
    /// Entries not yet expired.
    pub live_entries: u64,
    /// Bytes of values in them.
    pub live_bytes: u64,
    /// The most live entries accepted.
    pub capacity_entries: u64,
}

/// The token stash of one datacenter over the store `S`.
#[derive(Debug)]
pub struct Stash<S> {
    store: S,
    datacenter: DatacenterId,
    sealer: TokenSealer,
    clock: SharedClock,
    metrics: Arc<StashMetrics>,
}

impl<S: Store> Stash<S> {
    /// A stash minting tokens for `datacenter`.
    pub fn new(
        store: S,
        datacenter: DatacenterId,
        sealer: TokenSealer,
        clock: SharedClock,
        metrics: Arc<StashMetrics>,
    ) -> Self {
        Stash {
            store,
            datacenter,
            sealer,
            clock,
            metrics,
        }
    }

    /// The datacenter this stash mints tokens for.
    pub fn datacenter(&self) -> &DatacenterId {
        &self.datacenter
    }

    /// The metrics this stash records.
    pub fn metrics(&self) -> &Arc<StashMetrics> {
        &self.metrics
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives up the stash, handing back its store (to close it).
    pub fn into_store(self) -> S {
        self.store
    }

    /// Stores a value; the token and when it expires. Durable before it returns.
    pub async fn put(&self, input: PutInput) -> Result<(Token, UnixMillis), StashError> {
        let result = self.try_put(input).await;
        match &result {
            Ok(_) => self.metrics.puts.inc(),
            Err(err) => self.metrics.failure("put", err),
        }
        result
    }

    async fn try_put(&self, mut input: PutInput) -> Result<(Token, UnixMillis), StashError> {
        let token = match input.chosen_token.take() {
            Some(token) if token.home() == self.datacenter.as_str() => token,
            Some(token) => {
                return Err(StashError::invalid(
                    "token",
                    format!(
                    "names datacenter {:?}; a chosen token must name this stash's datacenter {:?}",
                    token.home(),
                    self.datacenter.as_str()
                ),
                ))
            }
            None => Token::mint(&self.datacenter)?,
        };
        let now = self.clock.now();
        let entry = self.new_entry(input, &token, now)?;
        let expires_at = entry.expires_at;
        self.store.put(token.key(), entry, now).await?;
        Ok((token, expires_at))
    }

    /// What the store keeps for `input` under `token`, stored at `now`.
    fn new_entry(
        &self,
        input: PutInput,
        token: &Token,
        now: UnixMillis,
    ) -> Result<NewEntry, StashError> {
        let sealed_token = match input.owner {
            Some(_) => self.sealer.seal(token)?,
            None => Vec::new(),
        };
        Ok(NewEntry {
            namespace: input.namespace,
            owner: input.owner,
            value: input.value,
            single_use: input.single_use,
            created_at: now,
            expires_at: now.saturating_add(input.ttl.duration()),
            sealed_token,
        })
    }

    /// Reads and removes a single-use entry; exactly one caller of many wins.
    pub async fn take(&self, token: &Token) -> Result<StoredEntry, StashError> {
        let now = self.clock.now();
        let result = self.store.take(token.key(), now).await;
        match &result {
            Ok(entry) => {
                self.metrics.takes.inc();
                self.metrics
                    .put_to_take
                    .observe(now.saturating_since(entry.created_at));
            }
            Err(err) => self.metrics.failure("take", err),
        }
        result
    }

    /// Reads a reusable entry.
    pub async fn get(&self, token: &Token) -> Result<StoredEntry, StashError> {
        let result = self.store.get(token.key(), self.clock.now()).await;
        match &result {
            Ok(_) => self.metrics.gets.inc(),
            Err(err) => self.metrics.failure("get", err),
        }
        result
    }

    /// Applies `ops` in one durable commit, all or none (see `Apply` in `stash.proto`);
    /// when each put's entry expires, in order.
    pub async fn apply(&self, ops: Vec<ApplyInput>) -> Result<Vec<UnixMillis>, StashError> {
        let requires: Vec<bool> = ops
            .iter()
            .map(|op| matches!(op, ApplyInput::Require(_)))
            .collect();
        let result = self.try_apply(ops).await;
        match &result {
            Ok(expiries) => {
                self.metrics.applies.inc();
                self.metrics.puts.inc_by(expiries.len() as u64);
            }
            // A missing required entry is a read's answer (the session ended), not a
            // write the stash had to refuse.
            Err(err @ StashError::InOperation { index, .. })
                if requires.get(*index) == Some(&true) =>
            {
                self.metrics.failure("require", err)
            }
            Err(err) => self.metrics.failure("apply", err),
        }
        result
    }

    async fn try_apply(&self, ops: Vec<ApplyInput>) -> Result<Vec<UnixMillis>, StashError> {
        self.check_batch("operations", ops.iter().map(ApplyInput::token))?;
        let now = self.clock.now();
        let mut expiries = Vec::new();
        let mut store_ops = Vec::with_capacity(ops.len());
        for op in ops {
            store_ops.push(match op {
                ApplyInput::Require(token) => StoreOp::Require { key: token.key() },
                ApplyInput::Put(mut input) => {
                    let Some(token) = input.chosen_token.take() else {
                        return Err(StashError::invalid(
                            "operations",
                            "hold a put without a token; every put of an Apply chooses its token",
                        ));
                    };
                    let entry = self.new_entry(input, &token, now)?;
                    expiries.push(entry.expires_at);
                    StoreOp::Put {
                        key: token.key(),
                        entry,
                    }
                }
            });
        }
        self.store.apply(store_ops, now).await?;
        Ok(expiries)
    }

    /// Reads several reusable entries at once, each as [`Stash::get`] would.
    pub async fn get_many(
        &self,
        tokens: &[Token],
    ) -> Result<Vec<Result<StoredEntry, StashError>>, StashError> {
        self.check_batch("tokens", tokens.iter().map(Some))?;
        let keys = tokens.iter().map(Token::key).collect();
        let result = self.store.get_many(keys, self.clock.now()).await;
        match &result {
            Ok(found) => self.metrics.gets.inc_by(found.len() as u64),
            Err(err) => self.metrics.failure("get", err),
        }
        result
    }

    /// Refuses a batch that is empty, too long, names a token twice or names another
    /// datacenter's token.
    fn check_batch<'t>(
        &self,
        field: &'static str,
        tokens: impl ExactSizeIterator<Item = Option<&'t Token>>,
    ) -> Result<(), StashError> {
        let count = tokens.len();
        if count == 0 || count > MAX_BATCH {
            return Err(StashError::invalid(
                field,
                format!("holds {count}; send 1 to {MAX_BATCH} per call"),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(count);
        for token in tokens.flatten() {
            if token.home() != self.datacenter.as_str() {
                return Err(StashError::invalid(
                    field,
                    format!(
                        "name datacenter {:?} as well as {:?}; send one call per datacenter",
                        token.home(),
                        self.datacenter.as_str()
                    ),
                ));
            }
            if !seen.insert(token.key()) {
                return Err(StashError::invalid(
                    field,
                    "name one token twice; each token may appear once per call",
                ));
            }
        }
        Ok(())
    }

    /// Deletes an entry; whether a live one was there.
    pub async fn delete(&self, token: &Token) -> Result<bool, StashError> {
        let result = self.store.delete(token.key(), self.clock.now()).await;
        match &result {
            Ok(_) => self.metrics.deletes.inc(),
            Err(err) => self.metrics.failure("delete", err),
        }
        result
    }

    /// The live tokens of `owner` in `namespace`.
    pub async fn list_by_owner(
        &self,
        namespace: &Namespace,
        owner: &Owner,
    ) -> Result<Vec<Token>, StashError> {
        Ok(self.list_since(namespace, owner, None).await?.0)
    }

    /// The live tokens of `owner` in `namespace` created at or after `since` (all of them
    /// without it), and the `since` of the next call that follows the list:
    /// [`LIST_OVERLAP`] before now.
    pub async fn list_since(
        &self,
        namespace: &Namespace,
        owner: &Owner,
        since: Option<UnixMillis>,
    ) -> Result<(Vec<Token>, UnixMillis), StashError> {
        let now = self.clock.now();
        let listed = self
            .store
            .list_by_owner(namespace, owner, since, now)
            .await?;
        let next_since = UnixMillis(now.0.saturating_sub(LIST_OVERLAP.as_millis() as u64));
        let tokens = listed
            .into_iter()
            .filter_map(|(key, sealed)| {
                let token = self.sealer.open(&key, &sealed);
                if token.is_none() {
                    tracing::warn!(?key, "an owner-index entry does not open with this stash's seal key; check that every replica uses the same seal_key_file");
                }
                token
            })
            .collect();
        Ok((tokens, next_since))
    }

    /// Counts what the stash holds.
    pub async fn stats(&self) -> Result<StashStats, StashError> {
        let StoreStats {
            live_entries,
            live_bytes,
        } = self.store.stats(self.clock.now()).await?;
        self.metrics.live_entries.set(live_entries);
        self.metrics.live_bytes.set(live_bytes);
        Ok(StashStats {
            live_entries,
            live_bytes,
            capacity_entries: self.store.capacity(),
        })
    }

    /// Removes what has expired by now; how many entries went.
    pub async fn purge_expired(&self) -> Result<u64, StashError> {
        let mut total = 0;
        loop {
            let purged = self.store.purge_expired(self.clock.now()).await?;
            total += purged;
            if purged == 0 {
                break;
            }
        }
        if total > 0 {
            self.metrics.purged.inc_by(total);
        }
        Ok(total)
    }
}
