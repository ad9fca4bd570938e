//! The Redis backend, for production.
//!
//! Every operation is one Lua script, so each is atomic on the server: `take` reads and
//! deletes in one step (exactly one winner), and the owner index and counters change in
//! the same step as the entry. Entries carry a server-side expiry (`PEXPIREAT`), so Redis
//! drops them even while no stash is running; reads still judge expiry by the stash's own
//! clock. Tombstones are keys with their own expiry, written when an entry is stored (as
//! `expired`) and overwritten when it is taken or deleted.
//!
//! The stash refuses to start unless `maxmemory-policy` is `noeviction`: under any other
//! policy Redis may drop an unexpired token to make room, which is the failure this
//! service exists to prevent. With `noeviction` a full Redis refuses the write instead.
//!
//! Scripts that only free memory or read (take, delete, purge, list, get, stats) are
//! flagged to run even when Redis is at `maxmemory`, so a full Redis still lets codes be
//! redeemed and sessions be ended; only puts are refused, as `RESOURCE_EXHAUSTED`.
//!
//! Keys are built inside scripts from the configured prefix, so this backend needs a
//! standalone (optionally replicated) Redis 7.0 or later, not Redis Cluster.
//!
//! Redis replicates asynchronously: a primary lost right after answering can leave a
//! promoted replica without the last writes, a taken code among them. With
//! `wait_replicas` set, every put, take and delete that changed something is followed by
//! `WAIT` on the same connection and answered only once that many replicas hold it; a
//! write they did not confirm in time is answered as unavailable, never as done.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::Script;
use tessera_clock::UnixMillis;

use super::{GoneReason, NewEntry, Store, StoreOp, StoreStats, StoredEntry, DEFAULT_REMEMBER_FOR};
use crate::token::{Namespace, Owner, TokenKey};
use crate::StashError;

/// Expired entries removed per purge script run.
const PURGE_STEP: u64 = 2048;
/// How long a reply from Redis may take, beyond any wait for replicas.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Settings of the Redis backend.
#[derive(Clone, Debug)]
pub struct RedisStoreOptions {
    /// e.g. `redis://127.0.0.1:6379` or `redis+unix:///run/redis.sock`.
    pub url: String,
    /// Prefix of every key this stash writes.
    pub key_prefix: String,
    /// The most live entries accepted.
    pub capacity: u64,
    /// How long consumed and expired tokens are remembered.
    pub remember_for: Duration,
    /// Replicas that must confirm each write before it is answered (0: the primary's
    /// word is enough).
    pub wait_replicas: u32,
    /// How long a write waits for them.
    pub wait_timeout: Duration,
}

impl RedisStoreOptions {
    /// Defaults for a Redis URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreOptions {
            url: url.into(),
            key_prefix: "tessera:stash:".into(),
            capacity: 1_000_000,
            remember_for: DEFAULT_REMEMBER_FOR,
            wait_replicas: 0,
            wait_timeout: Duration::from_secs(1),
        }
    }
}

/// The Redis backend. See the module documentation for its guarantees.
pub struct RedisStore {
    connection: MultiplexedConnection,
    options: RedisStoreOptions,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.options.key_prefix)
            .finish_non_exhaustive()
    }
}

struct Scripts {
    put: Script,
    take: Script,
    get: Script,
    delete: Script,
    list: Script,
    list_since: Script,
    purge: Script,
    stats: Script,
    apply: Script,
    get_many: Script,
}

impl RedisStore {
    /// Connects, checks that Redis cannot evict keys and is recent enough, and purges
    /// what expired while no stash was running.
    pub async fn open(options: RedisStoreOptions, now: UnixMillis) -> Result<Self, StashError> {
        let client = redis::Client::open(options.url.as_str()).map_err(|e| {
            StashError::Config(format!(
                "storage.url {:?} is not a Redis URL: {e}",
                options.url
            ))
        })?;
        // A write waiting for replicas holds up the connection's later replies, so no
        // reply may be given up on before the wait itself would end.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(
            RESPONSE_TIMEOUT.max(options.wait_timeout + RESPONSE_TIMEOUT),
        ));
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| {
                StashError::Storage(format!("cannot connect to Redis at {}: {e}", options.url))
            })?;
        check_eviction_policy(&mut connection).await?;
        check_version(&mut connection).await?;
        if options.wait_replicas > 0 {
            check_replicas(&mut connection, options.wait_replicas).await?;
        }
        let store = RedisStore {
            connection,
            options,
            scripts: Scripts {
                put: Script::new(PUT),
                take: Script::new(TAKE),
                get: Script::new(GET),
                delete: Script::new(DELETE),
                list: Script::new(LIST),
                list_since: Script::new(LIST_SINCE),
                purge: Script::new(PURGE),
                stats: Script::new(STATS),
                apply: Script::new(APPLY),
                get_many: Script::new(GET_MANY),
            },
        };
        while store.purge_expired(now).await? > 0 {}
        Ok(store)
    }

    fn key(&self, kind: &str, token_key: &TokenKey) -> String {
        format!("{}{kind}:{}", self.options.key_prefix, token_key.to_text())
    }

    fn shared_key(&self, name: &str) -> String {
        format!("{}{name}", self.options.key_prefix)
    }

    fn owner_key(&self, namespace: &str, owner: &str) -> String {
        self.owner_index("o", namespace, owner)
    }

    /// The owner's entries scored by creation time, which a list since a time reads.
    fn owner_time_key(&self, namespace: &str, owner: &str) -> String {
        self.owner_index("s", namespace, owner)
    }

    fn owner_index(&self, kind: &str, namespace: &str, owner: &str) -> String {
        // Must match the keys the scripts build: prefix, kind, ':', namespace length, ':',
        // namespace, ':', owner. The length keeps `a:b`+`c` apart from `a`+`b:c`.
        format!(
            "{}{kind}:{}:{namespace}:{owner}",
            self.options.key_prefix,
            namespace.len()
        )
    }

    /// A call of a script that removes one entry (take, delete): both take the same keys
    /// and arguments.
    fn removal<'a>(
        &self,
        script: &'a Script,
        key: &TokenKey,
        now: UnixMillis,
    ) -> redis::ScriptInvocation<'a> {
        let mut call = script.prepare_invoke();
        call.key(self.key("e", key))
            .key(self.key("t", key))
            .key(self.shared_key("x"))
            .key(self.shared_key("bytes"))
            .arg(key.to_text())
            .arg(now.0)
            .arg(&self.options.key_prefix)
            .arg(self.remember_ms());
        call
    }

    /// Returns once `wait_replicas` replicas hold every write this connection sent so far
    /// (the caller's included: Redis answers `WAIT` in order on the connection), or
    /// refuses to call the write done.
    async fn confirm_replicated(&self) -> Result<(), StashError> {
        let wanted = self.options.wait_replicas;
        if wanted == 0 {
            return Ok(());
        }
        let timeout_ms = self.options.wait_timeout.as_millis();
        let acknowledged: i64 = redis::cmd("WAIT")
            .arg(wanted)
            .arg(u64::try_from(timeout_ms).unwrap_or(u64::MAX))
            .query_async(&mut self.connection.clone())
            .await?;
        if acknowledged < i64::from(wanted) {
            return Err(StashError::NotReplicated {
                wanted,
                acknowledged,
                timeout_ms,
            });
        }
        Ok(())
    }

    fn remember_ms(&self) -> u64 {
        u64::try_from(self.options.remember_for.as_millis()).unwrap_or(u64::MAX)
    }
}

async fn check_eviction_policy(connection: &mut MultiplexedConnection) -> Result<(), StashError> {
    let reply: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(connection)
        .await
        .map_err(|e| {
            StashError::Storage(format!(
                "cannot read Redis maxmemory-policy ({e}); the stash must confirm it is noeviction before use: allow CONFIG GET for its user"
            ))
        })?;
    let policy = reply.get(1).cloned().unwrap_or_default();
    if policy != "noeviction" {
        return Err(StashError::RedisMayEvict { policy });
    }
    Ok(())
}

/// Refuses a Redis that is not a primary with enough replicas attached: every write would
/// be refused or go unconfirmed.
async fn check_replicas(
    connection: &mut MultiplexedConnection,
    wanted: u32,
) -> Result<(), StashError> {
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(connection)
        .await?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    let role = field("role");
    if role != "master" {
        return Err(StashError::Config(format!(
            "storage.redis_url reaches a Redis whose role is {role:?}; point it at the primary"
        )));
    }
    let connected: u32 = field("connected_slaves").parse().unwrap_or(0);
    if connected < wanted {
        return Err(StashError::Config(format!(
            "storage.redis_wait_replicas is {wanted} but the Redis primary has {connected} replicas connected; start the replicas (or lower the setting) and start again"
        )));
    }
    Ok(())
}

async fn check_version(connection: &mut MultiplexedConnection) -> Result<(), StashError> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(connection)
        .await?;
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .unwrap_or("0")
        .trim()
        .to_owned();
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 7 {
        return Err(StashError::Config(format!(
            "Redis {version} is too old: the stash needs Redis 7.0 or later"
        )));
    }
    Ok(())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn millis(bytes: &[u8]) -> UnixMillis {
    UnixMillis(
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    )
}

/// Turns a script's `{'gone', 'reason:at:until'}` / `{'missing'}` reply into the error to
/// give. The tombstone's own Redis expiry follows Redis's clock; `until` is checked against
/// the stash's, so both backends forget at the same moment.
fn gone_error(reply: &[Vec<u8>], now: UnixMillis) -> StashError {
    let remembered = reply.get(1).and_then(|t| {
        let mut parts = std::str::from_utf8(t).ok()?.split(':');
        let reason = GoneReason::parse(parts.next()?)?;
        let at = UnixMillis(parts.next()?.parse().ok()?);
        let until = UnixMillis(parts.next()?.parse().ok()?);
        Some((reason, at, until))
    });
    match remembered {
        Some((reason, at, until)) if until > now => reason.into_error(at),
        _ => StashError::NotFound,
    }
}

/// Reads a take or get script's reply: the entry, or why there is none.
fn read_reply(reply: Vec<Vec<u8>>, now: UnixMillis) -> Result<StoredEntry, StashError> {
    match reply.first().map(Vec::as_slice) {
        Some(b"ok") => stored_entry(reply),
        Some(b"reusable") => Err(StashError::WrongKind {
            actual: "reusable",
            use_instead: "Get",
        }),
        Some(b"single") => Err(StashError::WrongKind {
            actual: "single-use",
            use_instead: "Take",
        }),
        Some(b"expired") => Err(StashError::Expired {
            at: reply.get(1).map(|b| millis(b)).unwrap_or_default(),
        }),
        _ => Err(gone_error(&reply, now)),
    }
}

/// Reads `{'ok', value, namespace, owner, created_at, expires_at}`.
fn stored_entry(mut reply: Vec<Vec<u8>>) -> Result<StoredEntry, StashError> {
    if reply.len() != 6 {
        return Err(StashError::Storage("unexpected reply from Redis".into()));
    }
    let expires_at = millis(&reply[5]);
    let created_at = millis(&reply[4]);
    let owner = text(&reply[3]);
    let namespace = text(&reply[2]);
    let value = std::mem::take(&mut reply[1]);
    Ok(StoredEntry {
        namespace,
        owner,
        value,
        created_at,
        expires_at,
    })
}

impl Store for RedisStore {
    async fn put(&self, key: TokenKey, entry: NewEntry, now: UnixMillis) -> Result<(), StashError> {
        let owner = entry.owner.as_ref().map(|o| o.as_str()).unwrap_or("");
        let owner_key = self.owner_key(entry.namespace.as_str(), owner);
        let owner_time_key = self.owner_time_key(entry.namespace.as_str(), owner);
        let remembered_until = entry.expires_at.saturating_add(self.options.remember_for);
        let stored: i64 = self
            .scripts
            .put
            .key(self.key("e", &key))
            .key(self.key("t", &key))
            .key(self.shared_key("x"))
            .key(owner_key)
            .key(self.shared_key("bytes"))
            .key(owner_time_key)
            .arg(key.to_text())
            .arg(entry.value.as_slice())
            .arg(entry.namespace.as_str())
            .arg(owner)
            .arg(if entry.single_use { "1" } else { "0" })
            .arg(entry.created_at.0)
            .arg(entry.expires_at.0)
            .arg(entry.sealed_token.as_slice())
            .arg(now.0)
            .arg(self.options.capacity)
            .arg(remembered_until.0)
            .invoke_async(&mut self.connection.clone())
            .await?;
        match stored {
            1 => self.confirm_replicated().await,
            -1 => Err(StashError::AlreadyExists),
            _ => Err(StashError::CapacityExhausted {
                capacity: self.options.capacity,
            }),
        }
    }

    async fn take(&self, key: TokenKey, now: UnixMillis) -> Result<StoredEntry, StashError> {
        let reply: Vec<Vec<u8>> = self
            .removal(&self.scripts.take, &key, now)
            .invoke_async(&mut self.connection.clone())
            .await?;
        let entry = read_reply(reply, now)?;
        // Only a take that consumed something must outlive a failover.
        self.confirm_replicated().await?;
        Ok(entry)
    }

    async fn get(&self, key: TokenKey, now: UnixMillis) -> Result<StoredEntry, StashError> {
        let reply: Vec<Vec<u8>> = self
            .scripts
            .get
            .key(self.key("e", &key))
            .key(self.key("t", &key))
            .arg(now.0)
            .invoke_async(&mut self.connection.clone())
            .await?;
        read_reply(reply, now)
    }

    async fn apply(&self, ops: Vec<StoreOp>, now: UnixMillis) -> Result<(), StashError> {
        let mut call = self.scripts.apply.prepare_invoke();
        call.arg(&self.options.key_prefix)
            .arg(now.0)
            .arg(self.options.capacity);
        for op in &ops {
            match op {
                StoreOp::Put { key, entry } => {
                    let remembered_until =
                        entry.expires_at.saturating_add(self.options.remember_for);
                    call.arg("p")
                        .arg(key.to_text())
                        .arg(entry.value.as_slice())
                        .arg(entry.namespace.as_str())
                        .arg(entry.owner.as_ref().map(|o| o.as_str()).unwrap_or(""))
                        .arg(if entry.single_use { "1" } else { "0" })
                        .arg(entry.created_at.0)
                        .arg(entry.expires_at.0)
                        .arg(entry.sealed_token.as_slice())
                        .arg(remembered_until.0);
                }
                StoreOp::Require { key } => {
                    call.arg("r").arg(key.to_text());
                    for _ in 0..8 {
                        call.arg("");
                    }
                }
            }
        }
        let reply: Vec<Vec<u8>> = call.invoke_async(&mut self.connection.clone()).await?;
        let index = reply
            .get(1)
            .and_then(|i| std::str::from_utf8(i).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        let refusal = match reply.first().map(Vec::as_slice) {
            Some(b"ok") => return self.confirm_replicated().await,
            Some(b"exists") => StashError::AlreadyExists,
            Some(b"full") => StashError::CapacityExhausted {
                capacity: self.options.capacity,
            },
            // The rest is a get's reply after the index: the required entry's absence.
            _ => match read_reply(reply.into_iter().skip(2).collect(), now) {
                Err(absent) => absent,
                Ok(_) => StashError::Storage("unexpected reply from Redis".into()),
            },
        };
        Err(refusal.in_operation(index))
    }

    async fn get_many(
        &self,
        keys: Vec<TokenKey>,
        now: UnixMillis,
    ) -> Result<Vec<Result<StoredEntry, StashError>>, StashError> {
        let mut call = self.scripts.get_many.prepare_invoke();
        call.arg(&self.options.key_prefix).arg(now.0);
        for key in &keys {
            call.arg(key.to_text());
        }
        let replies: Vec<Vec<Vec<u8>>> = call.invoke_async(&mut self.connection.clone()).await?;
        if replies.len() != keys.len() {
            return Err(StashError::Storage("unexpected reply from Redis".into()));
        }
        Ok(replies
            .into_iter()
            .map(|reply| read_reply(reply, now))
            .collect())
    }

    async fn delete(&self, key: TokenKey, now: UnixMillis) -> Result<bool, StashError> {
        let existed: i64 = self
            .removal(&self.scripts.delete, &key, now)
            .invoke_async(&mut self.connection.clone())
            .await?;
        if existed == 1 {
            self.confirm_replicated().await?;
        }
        Ok(existed == 1)
    }

    async fn list_by_owner(
        &self,
        namespace: &Namespace,
        owner: &Owner,
        since: Option<UnixMillis>,
        now: UnixMillis,
    ) -> Result<Vec<(TokenKey, Vec<u8>)>, StashError> {
        let script = match since {
            None => &self.scripts.list,
            Some(_) => &self.scripts.list_since,
        };
        let reply: Vec<Vec<u8>> = script
            .key(self.owner_key(namespace.as_str(), owner.as_str()))
            .key(self.owner_time_key(namespace.as_str(), owner.as_str()))
            .arg(now.0)
            .arg(&self.options.key_prefix)
            .arg(since.unwrap_or(UnixMillis(0)).0)
            .invoke_async(&mut self.connection.clone())
            .await?;
        let mut listed = Vec::with_capacity(reply.len() / 2);
        for pair in reply.chunks_exact(2) {
            let key_bytes =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &pair[0]);
            if let Some(key) = key_bytes.ok().and_then(|b| <[u8; 32]>::try_from(b).ok()) {
                listed.push((TokenKey(key), pair[1].clone()));
            }
        }
        Ok(listed)
    }

    async fn stats(&self, now: UnixMillis) -> Result<StoreStats, StashError> {
        let reply: Vec<i64> = self
            .scripts
            .stats
            .key(self.shared_key("x"))
            .key(self.shared_key("bytes"))
            .arg(now.0)
            .invoke_async(&mut self.connection.clone())
            .await?;
        let at = |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(StoreStats {
            live_entries: at(0),
            live_bytes: at(1),
        })
    }

    async fn purge_expired(&self, now: UnixMillis) -> Result<u64, StashError> {
        let purged: i64 = self
            .scripts
            .purge
            .key(self.shared_key("x"))
            .key(self.shared_key("bytes"))
            .arg(now.0)
            .arg(PURGE_STEP)
            .arg(&self.options.key_prefix)
            .arg(self.remember_ms())
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(purged.max(0) as u64)
    }

    fn capacity(&self) -> u64 {
        self.options.capacity
    }

    async fn close(self) {}
}

// KEYS: entry, tombstone, expiries, owner index, bytes, owner index by creation time.
// ARGV: key, value, namespace, owner, single_use, created_at, expires_at, sealed token,
//       now, capacity, tombstone until.
const PUT: &str = r#"
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return -1
end
if redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[9], '+inf') >= tonumber(ARGV[10]) then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'ns', ARGV[3], 'ow', ARGV[4], 'su', ARGV[5],
  'ca', ARGV[6], 'exp', ARGV[7], 'st', ARGV[8])
redis.call('PEXPIREAT', KEYS[1], ARGV[7])
redis.call('SET', KEYS[2], 'expired:' .. ARGV[7] .. ':' .. ARGV[11], 'PXAT', ARGV[11])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1] .. ':' .. #ARGV[2])
if ARGV[4] ~= '' then
  for _, k in ipairs({KEYS[4], KEYS[6]}) do
    redis.call('ZADD', k, k == KEYS[4] and ARGV[7] or ARGV[6], ARGV[1])
    if redis.call('PEXPIRETIME', k) < tonumber(ARGV[7]) then
      redis.call('PEXPIREAT', k, ARGV[7])
    end
  end
end
redis.call('INCRBY', KEYS[5], #ARGV[2])
return 1
"#;

// KEYS: entry, tombstone, expiries, bytes.  ARGV: key, now, prefix, remember ms.
const TAKE: &str = r#"#!lua flags=allow-oom
local e = redis.call('HMGET', KEYS[1], 'v', 'ns', 'ow', 'su', 'ca', 'exp')
if not e[1] then
  local t = redis.call('GET', KEYS[2])
  if t then return {'gone', t} end
  return {'missing'}
end
if e[4] ~= '1' then return {'reusable'} end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1] .. ':' .. #e[1])
if e[3] ~= '' then
  for _, kind in ipairs({'o:', 's:'}) do
    redis.call('ZREM', ARGV[3] .. kind .. #e[2] .. ':' .. e[2] .. ':' .. e[3], ARGV[1])
  end
end
redis.call('DECRBY', KEYS[4], #e[1])
local now = tonumber(ARGV[2])
local expires = tonumber(e[6])
if expires <= now then
  local keep_until = string.format('%d', expires + tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], 'expired:' .. e[6] .. ':' .. keep_until, 'PXAT', keep_until)
  return {'expired', e[6]}
end
local keep_until = string.format('%d', now + tonumber(ARGV[4]))
redis.call('SET', KEYS[2], 'consumed:' .. ARGV[2] .. ':' .. keep_until, 'PXAT', keep_until)
return {'ok', e[1], e[2], e[3], e[5], e[6]}
"#;

// ARGV: prefix, now, capacity, then ten fields per operation: kind (`p` put, `r`
// require), key, and for a put: value, namespace, owner, single_use, created_at,
// expires_at, sealed token, tombstone until. Every check runs before any write, so a
// refusal (`{'exists'|'full'|get's refusal..., index}`) leaves nothing written; indexes
// count from 0.
const APPLY: &str = r#"
local p, now = ARGV[1], tonumber(ARGV[2])
local n = (#ARGV - 3) / 10
local puts, first_put = 0, nil
for i = 0, n - 1 do
  local b = 3 + i * 10
  local h = ARGV[b + 2]
  local ek, tk = p .. 'e:' .. h, p .. 't:' .. h
  if ARGV[b + 1] == 'p' then
    if redis.call('EXISTS', ek, tk) > 0 then return {'exists', tostring(i)} end
    puts = puts + 1
    first_put = first_put or i
  else
    local e = redis.call('HMGET', ek, 'su', 'exp')
    if not e[2] then
      local t = redis.call('GET', tk)
      if t then return {'gone', tostring(i), 'gone', t} end
      return {'missing', tostring(i), 'missing'}
    end
    if e[1] == '1' then return {'single', tostring(i), 'single'} end
    if tonumber(e[2]) <= now then return {'expired', tostring(i), 'expired', e[2]} end
  end
end
if puts > 0 and redis.call('ZCOUNT', p .. 'x', '(' .. ARGV[2], '+inf') + puts > tonumber(ARGV[3]) then
  return {'full', tostring(first_put)}
end
for i = 0, n - 1 do
  local b = 3 + i * 10
  if ARGV[b + 1] == 'p' then
    local h, v, ns, ow, exp, keep = ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 8], ARGV[b + 10]
    local ek = p .. 'e:' .. h
    redis.call('HSET', ek, 'v', v, 'ns', ns, 'ow', ow, 'su', ARGV[b + 6],
      'ca', ARGV[b + 7], 'exp', exp, 'st', ARGV[b + 9])
    redis.call('PEXPIREAT', ek, exp)
    redis.call('SET', p .. 't:' .. h, 'expired:' .. exp .. ':' .. keep, 'PXAT', keep)
    redis.call('ZADD', p .. 'x', exp, h .. ':' .. #v)
    if ow ~= '' then
      for _, kind in ipairs({'o:', 's:'}) do
        local ok = p .. kind .. #ns .. ':' .. ns .. ':' .. ow
        redis.call('ZADD', ok, kind == 'o:' and exp or ARGV[b + 7], h)
        if redis.call('PEXPIRETIME', ok) < tonumber(exp) then
          redis.call('PEXPIREAT', ok, exp)
        end
      end
    end
    redis.call('INCRBY', p .. 'bytes', #v)
  end
end
return {'ok'}
"#;

// ARGV: prefix, now, then keys. One get reply per key, in order.
const GET_MANY: &str = r#"#!lua flags=no-writes
local p, now = ARGV[1], tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  local e = redis.call('HMGET', p .. 'e:' .. ARGV[i], 'v', 'ns', 'ow', 'su', 'ca', 'exp')
  if not e[1] then
    local t = redis.call('GET', p .. 't:' .. ARGV[i])
    if t then out[#out + 1] = {'gone', t} else out[#out + 1] = {'missing'} end
  elseif e[4] == '1' then out[#out + 1] = {'single'}
  elseif tonumber(e[6]) <= now then out[#out + 1] = {'expired', e[6]}
  else out[#out + 1] = {'ok', e[1], e[2], e[3], e[5], e[6]} end
end
return out
"#;

// KEYS: entry, tombstone.  ARGV: now.
const GET: &str = r#"#!lua flags=no-writes
local e = redis.call('HMGET', KEYS[1], 'v', 'ns', 'ow', 'su', 'ca', 'exp')
if not e[1] then
  local t = redis.call('GET', KEYS[2])
  if t then return {'gone', t} end
  return {'missing'}
end
if e[4] == '1' then return {'single'} end
if tonumber(e[6]) <= tonumber(ARGV[1]) then return {'expired', e[6]} end
return {'ok', e[1], e[2], e[3], e[5], e[6]}
"#;

// KEYS: entry, tombstone, expiries, bytes.  ARGV: key, now, prefix, remember ms.
const DELETE: &str = r#"#!lua flags=allow-oom
local e = redis.call('HMGET', KEYS[1], 'v', 'ns', 'ow', 'exp')
if not e[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1] .. ':' .. #e[1])
if e[3] ~= '' then
  for _, kind in ipairs({'o:', 's:'}) do
    redis.call('ZREM', ARGV[3] .. kind .. #e[2] .. ':' .. e[2] .. ':' .. e[3], ARGV[1])
  end
end
redis.call('DECRBY', KEYS[4], #e[1])
local now = tonumber(ARGV[2])
local expires = tonumber(e[4])
if expires <= now then
  local keep_until = string.format('%d', expires + tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], 'expired:' .. e[4] .. ':' .. keep_until, 'PXAT', keep_until)
  return 0
end
local keep_until = string.format('%d', now + tonumber(ARGV[4]))
redis.call('SET', KEYS[2], 'deleted:' .. ARGV[2] .. ':' .. keep_until, 'PXAT', keep_until)
return 1
"#;

/// The two list scripts: what expired leaves both owner indexes (KEYS[1] by expiry,
/// KEYS[2] by creation time; ARGV[1] now, ARGV[2] the key prefix), then the live entries
/// listed by `$listed` are answered as key, sealed token pairs.
macro_rules! list_script {
    ($listed:literal) => {
        concat!(
            "#!lua flags=allow-oom\n",
            r#"for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  redis.call('ZREM', KEYS[2], h)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local out = {}
for _, h in ipairs("#,
            $listed,
            r#") do
  local sealed = redis.call('HGET', ARGV[2] .. 'e:' .. h, 'st')
  if sealed then
    out[#out + 1] = h
    out[#out + 1] = sealed
  end
end
return out
"#
        )
    };
}

// KEYS: owner index, owner index by creation time.  ARGV: now, prefix.
const LIST: &str = list_script!("redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')");

// KEYS: owner index, owner index by creation time.  ARGV: now, prefix, since. Reads only
// the entries created at or after `since`.
const LIST_SINCE: &str = list_script!("redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[3], '+inf')");

// KEYS: expiries, bytes.  ARGV: now, limit, prefix, remember ms.
const PURGE: &str = r#"#!lua flags=allow-oom
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, m in ipairs(members) do
  local sep = string.find(m, ':', 1, true)
  local h = string.sub(m, 1, sep - 1)
  local entry = ARGV[3] .. 'e:' .. h
  local e = redis.call('HMGET', entry, 'ns', 'ow', 'exp')
  if e[3] then
    redis.call('DEL', entry)
    if e[2] ~= '' then
      redis.call('ZREM', ARGV[3] .. 'o:' .. #e[1] .. ':' .. e[1] .. ':' .. e[2], h)
    end
    local keep_until = string.format('%d', tonumber(e[3]) + tonumber(ARGV[4]))
    redis.call('SET', ARGV[3] .. 't:' .. h, 'expired:' .. e[3] .. ':' .. keep_until, 'PXAT', keep_until)
  end
  redis.call('ZREM', KEYS[1], m)
  redis.call('DECRBY', KEYS[2], tonumber(string.sub(m, sep + 1)))
end
return #members
"#;

// KEYS: expiries, bytes.  ARGV: now.  Returns live entries, live bytes.
const STATS: &str = r#"#!lua flags=no-writes
local live = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[1], '+inf')
local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local sep = string.find(m, ':', 1, true)
  bytes = bytes - tonumber(string.sub(m, sep + 1))
end
return {live, bytes}
"#;
