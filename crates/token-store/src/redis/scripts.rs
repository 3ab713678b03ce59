//! The Lua scripts that make each writing operation atomic in one round
//! trip. `Script` sends EVALSHA and falls back to EVAL when the server does
//! not know the script yet (after a restart or a failover).
//!
//! Every key a script touches shares the credential's hash tag: the scripts
//! declare the policy, index and (when known) token keys, and reach the other
//! tokens of the credential by appending the hashes found in the index to
//! the token key prefix passed as an argument. Those keys are in the same
//! slot by construction, which Redis Cluster allows.
//!
//! Numbers cross into Lua as doubles; the caller keeps versions within 2^53
//! and times are far below it.

use redis::Script;

/// `issue`: refuses a stale policy, enforces the limit (evicting the tokens
/// closest to expiry or refusing), stores the token and the policy.
///
/// KEYS: policy, index, token. ARGV: token key prefix, now, token hash,
/// expires_at, token value, policy version, policy JSON, max tokens,
/// evict (`1`/`0`), policy retention seconds.
///
/// Returns `{0, evicted}`, `{1, live}` (limit reached, nothing written) or
/// `{2, 0}` (stale policy, nothing written).
const ISSUE: &str = r#"
local policy_key, index_key, token_key = KEYS[1], KEYS[2], KEYS[3]
local now = tonumber(ARGV[2])
local version = tonumber(ARGV[6])
local max_tokens = tonumber(ARGV[8])

local stored = redis.call('GET', policy_key)
if stored then
  local policy = cjson.decode(stored)
  if policy.v > version or (policy.v == version and policy.s == 'deleted') then
    return {2, 0}
  end
end

redis.call('ZREMRANGEBYSCORE', index_key, '-inf', now)
local live = redis.call('ZCARD', index_key)
local evicted = 0
if live >= max_tokens then
  if ARGV[9] ~= '1' or max_tokens < 1 then
    return {1, live}
  end
  local excess = live - max_tokens + 1
  local oldest = redis.call('ZRANGE', index_key, 0, excess - 1)
  for i = 1, #oldest do
    redis.call('DEL', ARGV[1] .. oldest[i])
  end
  redis.call('ZREMRANGEBYRANK', index_key, 0, excess - 1)
  evicted = #oldest
end

redis.call('SET', token_key, ARGV[5], 'EXAT', ARGV[4])
redis.call('ZADD', index_key, ARGV[4], ARGV[3])
local newest = tonumber(redis.call('ZRANGE', index_key, -1, -1, 'WITHSCORES')[2])
redis.call('EXPIREAT', index_key, newest)
-- Not refused above, so the presented policy is at least as new as the
-- stored one. It must outlive every token it governs.
local keep_until = math.max(now + tonumber(ARGV[10]), newest)
redis.call('SET', policy_key, ARGV[7], 'EXAT', keep_until)
return {0, evicted}
"#;

/// `revoke`: deletes one token. KEYS: index, token. ARGV: token hash.
/// Returns 1 if the token existed, else 0.
const REVOKE: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
"#;

/// `apply_policy`: optionally revokes every token of the credential, then
/// stores the policy unless a newer version is stored.
///
/// KEYS: policy, index. ARGV: token key prefix, now, policy version, policy
/// JSON, revoke (`1`/`0`), policy retention seconds.
///
/// Returns how many live tokens were revoked.
const APPLY_POLICY: &str = r#"
local policy_key, index_key = KEYS[1], KEYS[2]
local revoked = 0
if ARGV[5] == '1' then
  local hashes = redis.call('ZRANGE', index_key, 0, -1)
  for i = 1, #hashes do
    revoked = revoked + redis.call('DEL', ARGV[1] .. hashes[i])
  end
  redis.call('DEL', index_key)
end

local stored = redis.call('GET', policy_key)
if stored and cjson.decode(stored).v > tonumber(ARGV[3]) then
  return revoked
end
local keep_until = tonumber(ARGV[2]) + tonumber(ARGV[6])
local newest = redis.call('ZRANGE', index_key, -1, -1, 'WITHSCORES')[2]
if newest then
  keep_until = math.max(keep_until, tonumber(newest))
end
redis.call('SET', policy_key, ARGV[4], 'EXAT', keep_until)
return revoked
"#;

/// The scripts, hashed once.
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
            issue: Script::new(ISSUE),
            revoke: Script::new(REVOKE),
            apply_policy: Script::new(APPLY_POLICY),
            record_failure: Script::new(RECORD_FAILURE),
        }
    }
}

/// What the issue script answers in its first element.
pub(super) mod issue_status {
    /// Stored; the second element is how many tokens were evicted.
    pub(in crate::redis) const STORED: i64 = 0;
    /// The limit is reached; nothing was written.
    pub(in crate::redis) const LIMIT_REACHED: i64 = 1;
    /// A newer (or same-version deleted) policy is stored; nothing written.
    pub(in crate::redis) const STALE_POLICY: i64 = 2;
}
