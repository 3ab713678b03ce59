//! The Lua scripts that make each writing operation atomic in one round
//! trip. `Script` sends EVALSHA and falls back to EVAL when the server does
//! not know the script yet (after a restart or a failover).
//!
//! Every key a script touches is one of the credential's four (policy,
//! index, tokens, revoked; see [`super::codec`]), all under its hash tag, so
//! each script runs on one Cluster slot.
//!
//! Numbers cross into Lua as doubles; the caller keeps versions within 2^53
//! and times are far below it. `unpack` is given at most [`BATCH`] values at
//! a time, well inside Lua's stack limit (about 8,000), since a credential
//! may hold 10,000 tokens.

use redis::Script;

/// Fields removed per `HDEL` call by the scripts (see the module comment).
const BATCH: &str = "1000";

/// The Lua helpers shared by the scripts.
///
/// `hdel_all` `HDEL`s `fields` from `key` in batches.
///
/// `bury` turns tokens into tombstones: `entries` is a flat list of token
/// hashes and expiries (as `ZRANGE … WITHSCORES` answers); each field of
/// the tokens hash gets `r:<expiry>` and the hash goes into the revoked set
/// under that score. The caller has removed them from the index. The tokens
/// hash already expires no earlier than any of them (it expires with its
/// newest token, and only ever later).
///
/// `settle_tombstones` drops the tombstones that ended by `now` and, past
/// `max`, those closest to their end; sets the revoked set to expire with
/// its last one; returns how many remain.
const HELPERS: &str = r#"
local function hdel_all(key, fields)
  for first = 1, #fields, BATCH do
    redis.call('HDEL', key, unpack(fields, first, math.min(first + BATCH - 1, #fields)))
  end
end

local function bury(tokens_key, revoked_key, entries)
  for i = 1, #entries, 2 do
    local ends = string.format('%d', tonumber(entries[i + 1]))
    redis.call('HSET', tokens_key, entries[i], 'r:' .. ends)
    redis.call('ZADD', revoked_key, ends, entries[i])
  end
end

local function settle_tombstones(tokens_key, revoked_key, now, max)
  local ended = redis.call('ZRANGEBYSCORE', revoked_key, '-inf', now)
  if #ended > 0 then
    hdel_all(tokens_key, ended)
    redis.call('ZREMRANGEBYSCORE', revoked_key, '-inf', now)
  end
  local count = redis.call('ZCARD', revoked_key)
  local excess = count - max
  if excess > 0 then
    hdel_all(tokens_key, redis.call('ZRANGE', revoked_key, 0, excess - 1))
    redis.call('ZREMRANGEBYRANK', revoked_key, 0, excess - 1)
    count = max
  end
  local last = redis.call('ZRANGE', revoked_key, -1, -1, 'WITHSCORES')[2]
  if last then
    redis.call('EXPIREAT', revoked_key, last)
  end
  return count
end
"#;

/// `issue`: refuses a stale policy, removes expired tokens, enforces the
/// limit (evicting the tokens closest to expiry, which leave tombstones, or
/// refusing), stores the token and the policy.
///
/// KEYS: policy, index, tokens, revoked. ARGV: now, token hash, expires_at,
/// token value, policy version, policy JSON, max tokens, evict (`1`/`0`),
/// policy retention seconds, remembered (`1`: the verification is a
/// remembered one, which the stored policy must confirm; `0`: the
/// registry's answer), most tombstones.
///
/// Returns `{0, evicted}`, `{1, live}` (limit reached, nothing written but
/// the removal of expired tokens), `{2, held version}` (stale policy,
/// nothing written) or `{4, 0}` (a remembered verification and no policy
/// stored, nothing written).
///
/// A remembered verification is honoured only while the store holds
/// exactly the version it was made under, active: a Redis that restarted
/// empty, was flushed, evicted the policy, or failed over to a replica that
/// holds another version sends the issuance back to the registry. The
/// policy key shares the credential's hash tag, so this check rides in the
/// issuance's one round trip on a Redis Cluster too.
///
/// Issuance is the hot write, so the common case is kept light: a stored
/// policy byte-equal to the presented one is neither decoded nor rewritten
/// (only its expiry is raised), and the keys' expiries are raised with `GT`
/// instead of looking up the newest token. `EXPIREAT … GT` that changes
/// nothing is no write, so it sends no tracking invalidation either.
const ISSUE: &str = r#"
local policy_key, index_key, tokens_key, revoked_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local expires_at = tonumber(ARGV[3])
local max_tokens = tonumber(ARGV[7])
local remembered = ARGV[10] == '1'

local stored = redis.call('GET', policy_key)
local unchanged = stored == ARGV[6]
if not unchanged then
  if not stored then
    if remembered then
      return {4, 0}
    end
  else
    local policy = cjson.decode(stored)
    local version = tonumber(ARGV[5])
    if policy.v > version or (policy.v == version and policy.s == 'deleted')
        or (remembered and (policy.v ~= version or policy.s ~= 'active')) then
      return {2, policy.v}
    end
  end
end

local expired = redis.call('ZRANGEBYSCORE', index_key, '-inf', now)
if #expired > 0 then
  hdel_all(tokens_key, expired)
  redis.call('ZREMRANGEBYSCORE', index_key, '-inf', now)
end
local live = redis.call('ZCARD', index_key)
local evicted = 0
if live >= max_tokens then
  if ARGV[8] ~= '1' or max_tokens < 1 then
    return {1, live}
  end
  local excess = live - max_tokens + 1
  local oldest = redis.call('ZRANGE', index_key, 0, excess - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', index_key, 0, excess - 1)
  bury(tokens_key, revoked_key, oldest)
  evicted = #oldest / 2
  live = live - evicted
end
-- Tombstones are rare: the common issuance pays one EXISTS for them.
local buried = 0
if redis.call('EXISTS', revoked_key) == 1 then
  buried = settle_tombstones(tokens_key, revoked_key, now, tonumber(ARGV[11]))
end

redis.call('HSET', tokens_key, ARGV[2], ARGV[4])
redis.call('ZADD', index_key, expires_at, ARGV[2])
-- Both keys expire with their newest token: raised, never lowered, once
-- they have an expiry (a key that held no live token and no tombstone
-- starts with none).
if live == 0 then
  redis.call('EXPIREAT', index_key, expires_at)
else
  redis.call('EXPIREAT', index_key, expires_at, 'GT')
end
if live == 0 and buried == 0 then
  redis.call('EXPIREAT', tokens_key, expires_at)
else
  redis.call('EXPIREAT', tokens_key, expires_at, 'GT')
end
-- Not refused above, so the presented policy is at least as new as the
-- stored one. It must outlive every token it governs.
local keep_until = math.max(now + tonumber(ARGV[9]), expires_at)
if unchanged then
  redis.call('EXPIREAT', policy_key, keep_until, 'GT')
else
  keep_until = math.max(keep_until, redis.call('EXPIRETIME', tokens_key))
  redis.call('SET', policy_key, ARGV[6], 'EXAT', keep_until)
end
return {0, evicted}
"#;

/// `revoke`: revokes one token, which leaves a tombstone until it would
/// have expired. KEYS: index, tokens, revoked. ARGV: token hash, now, most
/// tombstones. Returns 1 if the token was live (present and not expired),
/// else 0 (an expired token's field is removed; a tombstone stays).
const REVOKE: &str = r#"
local index_key, tokens_key, revoked_key = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[2])
local expires_at = redis.call('ZSCORE', index_key, ARGV[1])
if not expires_at then
  return 0
end
redis.call('ZREM', index_key, ARGV[1])
if tonumber(expires_at) <= now then
  redis.call('HDEL', tokens_key, ARGV[1])
  return 0
end
bury(tokens_key, revoked_key, {ARGV[1], expires_at})
settle_tombstones(tokens_key, revoked_key, now, tonumber(ARGV[3]))
return 1
"#;

/// `apply_policy`: optionally revokes every token of the credential, then
/// stores the policy unless a newer version is stored or the same
/// version's tombstone (a deletion is never undone under its own version).
///
/// KEYS: policy, index, tokens, revoked. ARGV: now, policy version, policy
/// JSON, revoke (`0`: no; `1`: yes, a deletion, whose policy tombstone
/// answers for every token; `2`: yes, each live token leaving a tombstone),
/// policy retention seconds, most tombstones.
///
/// Returns how many live tokens were revoked.
const APPLY_POLICY: &str = r#"
local policy_key, index_key, tokens_key, revoked_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = tonumber(ARGV[1])
local revoked = 0
if ARGV[4] == '1' then
  revoked = redis.call('ZCOUNT', index_key, '(' .. now, '+inf')
  redis.call('DEL', index_key, tokens_key, revoked_key)
elseif ARGV[4] == '2' then
  hdel_all(tokens_key, redis.call('ZRANGEBYSCORE', index_key, '-inf', now))
  local live = redis.call('ZRANGEBYSCORE', index_key, '(' .. now, '+inf', 'WITHSCORES')
  redis.call('DEL', index_key)
  bury(tokens_key, revoked_key, live)
  settle_tombstones(tokens_key, revoked_key, now, tonumber(ARGV[6]))
  revoked = #live / 2
end

local stored = redis.call('GET', policy_key)
if stored then
  local policy = cjson.decode(stored)
  local version = tonumber(ARGV[2])
  if policy.v > version
      or (policy.v == version and policy.s == 'deleted'
          and cjson.decode(ARGV[3]).s ~= 'deleted') then
    return revoked
  end
end
local keep_until = now + tonumber(ARGV[5])
local newest = redis.call('ZRANGE', index_key, -1, -1, 'WITHSCORES')[2]
if newest then
  keep_until = math.max(keep_until, tonumber(newest))
end
redis.call('SET', policy_key, ARGV[3], 'EXAT', keep_until)
return revoked
"#;

/// `record_failure`: counts one failure in a fixed window that starts with
/// the first. KEYS: the counter. ARGV: window seconds. Returns
/// `{count, seconds left}`.
const RECORD_FAILURE: &str = r#"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('TTL', KEYS[1])}
"#;

/// The scripts, hashed once.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) issue: Script,
    pub(super) revoke: Script,
    pub(super) apply_policy: Script,
    pub(super) record_failure: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            issue: Script::new(&with_helpers(ISSUE)),
            revoke: Script::new(&with_helpers(REVOKE)),
            apply_policy: Script::new(&with_helpers(APPLY_POLICY)),
            record_failure: Script::new(RECORD_FAILURE),
        }
    }
}

/// `script` preceded by the helpers it calls.
fn with_helpers(script: &str) -> String {
    format!("local BATCH = {BATCH}\n{HELPERS}{script}")
}

/// What the issue script answers in its first element.
pub(super) mod issue_status {
    /// Stored; the second element is how many tokens were evicted.
    pub(in crate::redis) const STORED: i64 = 0;
    /// The limit is reached; nothing was written.
    pub(in crate::redis) const LIMIT_REACHED: i64 = 1;
    /// The stored policy refuses the issuance (newer, the same version's
    /// tombstone, or not the remembered version); the second element is
    /// its version. Nothing written.
    pub(in crate::redis) const STALE_POLICY: i64 = 2;
    /// A remembered verification, and no policy stored. Nothing written.
    /// (3 was the failure counters' refusal, no longer checked here.)
    pub(in crate::redis) const NO_POLICY: i64 = 4;
}
