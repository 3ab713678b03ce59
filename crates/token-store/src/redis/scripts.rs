//! The Lua scripts that make each writing operation atomic in one round
//! trip. `Script` sends EVALSHA and falls back to EVAL when the server does
//! not know the script yet (after a restart or a failover).
//!
//! Every key a script touches is one of the credential's three (policy,
//! index, tokens; see [`super::codec`]), all under its hash tag, so each
//! script runs on one Cluster slot.
//!
//! Numbers cross into Lua as doubles; the caller keeps versions within 2^53
//! and times are far below it. `unpack` is given at most [`BATCH`] values at
//! a time, well inside Lua's stack limit (about 8,000), since a credential
//! may hold 10,000 tokens.

use redis::Script;

/// Fields removed per `HDEL` call by the scripts (see the module comment).
const BATCH: &str = "1000";

/// The Lua helper shared by the scripts: `HDEL`s `fields` from `key` in
/// batches.
const HDEL_ALL: &str = r#"
local function hdel_all(key, fields)
  for first = 1, #fields, BATCH do
    redis.call('HDEL', key, unpack(fields, first, math.min(first + BATCH - 1, #fields)))
  end
end
"#;

/// `issue`: refuses a stale policy, removes expired tokens, enforces the
/// limit (evicting the tokens closest to expiry or refusing), stores the
/// token and the policy.
///
/// KEYS: policy, index, tokens. ARGV: now, token hash, expires_at, token
/// value, policy version, policy JSON, max tokens, evict (`1`/`0`), policy
/// retention seconds, remembered (`1`: the verification is a remembered
/// one, which the stored policy must confirm; `0`: the registry's answer).
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
local policy_key, index_key, tokens_key = KEYS[1], KEYS[2], KEYS[3]
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
  local oldest = redis.call('ZRANGE', index_key, 0, excess - 1)
  hdel_all(tokens_key, oldest)
  redis.call('ZREMRANGEBYRANK', index_key, 0, excess - 1)
  evicted = #oldest
  live = live - evicted
end

redis.call('HSET', tokens_key, ARGV[2], ARGV[4])
redis.call('ZADD', index_key, expires_at, ARGV[2])
-- Both keys expire with their newest token: raised, never lowered, once
-- they have an expiry (a key that held no live token starts with none).
if live == 0 then
  redis.call('EXPIREAT', index_key, expires_at)
  redis.call('EXPIREAT', tokens_key, expires_at)
else
  redis.call('EXPIREAT', index_key, expires_at, 'GT')
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

/// `revoke`: deletes one token. KEYS: index, tokens. ARGV: token hash, now.
/// Returns 1 if the token was live (present and not expired), else 0.
const REVOKE: &str = r#"
local expires_at = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if expires_at and tonumber(expires_at) > tonumber(ARGV[2]) then
  return 1
end
return 0
"#;

/// `apply_policy`: optionally revokes every token of the credential, then
/// stores the policy unless a newer version is stored or the same
/// version's tombstone (a deletion is never undone under its own version).
///
/// KEYS: policy, index, tokens. ARGV: now, policy version, policy JSON,
/// revoke (`1`/`0`), policy retention seconds.
///
/// Returns how many live tokens were revoked.
const APPLY_POLICY: &str = r#"
local policy_key, index_key, tokens_key = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[1])
local revoked = 0
if ARGV[4] == '1' then
  revoked = redis.call('ZCOUNT', index_key, '(' .. now, '+inf')
  redis.call('DEL', index_key, tokens_key)
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
            revoke: Script::new(REVOKE),
            apply_policy: Script::new(APPLY_POLICY),
            record_failure: Script::new(RECORD_FAILURE),
        }
    }
}

/// `script` preceded by the helpers it calls.
fn with_helpers(script: &str) -> String {
    format!("local BATCH = {BATCH}\n{HDEL_ALL}{script}")
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
