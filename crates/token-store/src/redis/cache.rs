//! The exact in-process cache of introspection reads: tokens and policies
//! as last read from Redis, kept exact by Redis's server-assisted
//! invalidation (see [`super::tracking`]).
//!
//! Exactness rests on four rules:
//!
//! - **Tickets.** A miss puts a `Pending(ticket)` slot in the map *before*
//!   the read is sent; the reply fills the slot only if it still holds that
//!   ticket and the cache's generation has not changed. A policy's
//!   invalidation removes its slot whatever it holds, so a reply that
//!   crossed an invalidation of its key (read before the write, delivered
//!   after the invalidation) is never stored, and nothing is served after
//!   its invalidation arrived.
//! - **Stamps.** A credential's tokens share one Redis key (its token hash),
//!   so one invalidation covers all of them. Rather than scan the cache for
//!   them, it raises the credential's stamp to a new ticket number; a token
//!   is served only if the ticket it was read under is newer than its
//!   credential's stamp. Stamps live in a fixed array indexed by a hash of
//!   the credential: two credentials sharing a stamp only cost each other
//!   extra reads.
//! - **Generations.** Every break of the invalidation channel (and every
//!   new tracking connection) increases the generation and empties the
//!   cache; a read fills only under the generation it started in, on the
//!   connection of that generation.
//! - **Fail closed.** While no tracking connection is established the cache
//!   is bypassed entirely: reads go to Redis and nothing is stored.
//!
//! Memory is bounded: each of [`SHARDS`] shards holds at most its share of
//! the capacity, for tokens and for policies alike; a full shard drops an
//! arbitrary entry (token hashes are uniformly random, so this is random
//! eviction). Unknown tokens are not kept, so random well-formed tokens
//! cannot push live ones out. A cached token past its expiry is never
//! served: it is read again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use latchkey_secrets::BASE62_ALPHABET;
use latchkey_token::{CredentialKey, CredentialPolicy, TokenHash, TokenRecord};

/// Shards of each map: enough that 64 concurrent introspections rarely
/// meet on one lock.
pub(super) const SHARDS: usize = 64;

/// Credential stamps (128 KiB): enough that busy credentials rarely share
/// one.
const STAMPS: usize = 1 << 14;

/// What one slot holds: a read in flight, or its answer.
#[derive(Debug)]
enum Slot<V> {
    Pending(u64),
    Ready(V),
}

/// A policy as read (`None`: Redis has none), or its read in flight.
type PolicySlot = Slot<Option<Arc<CredentialPolicy>>>;

#[derive(Debug)]
struct TokenEntry {
    credential: CredentialKey,
    /// The ticket the entry was (or is being) read under.
    ticket: u64,
    slot: Slot<Option<Arc<TokenRecord>>>,
}

#[derive(Debug)]
struct Shard<K, V> {
    map: HashMap<K, V>,
    hits: u64,
    misses: u64,
}

impl<K: Hash + Eq + Copy, V> Shard<K, V> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// Inserts, dropping an arbitrary other entry first when full.
    fn insert_bounded(&mut self, key: K, value: V, capacity: usize) {
        if self.map.len() >= capacity
            && !self.map.contains_key(&key)
            && let Some(victim) = self.map.keys().next().copied()
        {
            self.map.remove(&victim);
        }
        self.map.insert(key, value);
    }
}

/// A claim on a slot, taken before a read: the read's answer is stored only
/// if the claim still holds when it arrives.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    id: u64,
    generation: u64,
}

/// What a lookup found in the cache.
#[derive(Debug)]
pub(super) enum Cached<V> {
    /// Served from the cache.
    Hit(V),
    /// Not cached: read it, then [`Cache::fill_token`] / [`Cache::fill_policy`]
    /// with this ticket.
    Miss(Ticket),
}

/// Counters for tests and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups of a token or policy answered from the cache.
    pub hits: u64,
    /// Lookups of a token or policy that had to read Redis.
    pub misses: u64,
    /// Times the whole cache was dropped (broken channel, flush, new
    /// tracking connection).
    pub drops: u64,
    /// Whether a tracking connection is established (the cache serves).
    pub live: bool,
    /// Entries (tokens and policies, read or in flight) held now.
    pub entries: usize,
    /// The Redis `CLIENT ID` of the current tracking connection, if any.
    pub tracking_client_id: Option<i64>,
}

/// The cache, shared by the store and the tracking connection's push
/// handler.
#[derive(Debug)]
pub(super) struct Cache {
    tokens: Vec<Mutex<Shard<TokenHash, TokenEntry>>>,
    policies: Vec<Mutex<Shard<CredentialKey, PolicySlot>>>,
    /// Per credential (hashed), the ticket number of the last invalidation
    /// of its tokens.
    stamps: Box<[AtomicU64]>,
    shard_capacity: usize,
    live: AtomicBool,
    generation: AtomicU64,
    next_ticket: AtomicU64,
    drops: AtomicU64,
    tracking_client_id: Mutex<Option<i64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a shard leaves a consistent map: recover it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn token_shard(hash: &TokenHash) -> usize {
    // The hash is uniformly random.
    usize::from(hash.0[0]) % SHARDS
}

fn credential_hash(credential: CredentialKey) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    credential.hash(&mut hasher);
    std::hash::Hasher::finish(&hasher) as usize
}

fn policy_shard(credential: CredentialKey) -> usize {
    credential_hash(credential) % SHARDS
}

impl Cache {
    /// A cache of at most `capacity` tokens (and as many policies).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            tokens: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            policies: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            stamps: (0..STAMPS).map(|_| AtomicU64::new(0)).collect(),
            shard_capacity: capacity.div_ceil(SHARDS).max(1),
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            next_ticket: AtomicU64::new(1),
            drops: AtomicU64::new(0),
            tracking_client_id: Mutex::new(None),
        }
    }

    /// Whether the cache may serve: its invalidation channel is established.
    pub(super) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// The current generation.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn stamp(&self, credential: CredentialKey) -> &AtomicU64 {
        &self.stamps[credential_hash(credential) % STAMPS]
    }

    fn ticket(&self, generation: u64) -> Ticket {
        Ticket {
            // Ordered with the stamps, which come from the same counter.
            id: self.next_ticket.fetch_add(1, Ordering::AcqRel),
            generation,
        }
    }

    /// The cached token, or a ticket to read it under `generation`.
    pub(super) fn token(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
        now: i64,
        generation: u64,
    ) -> Cached<Option<Arc<TokenRecord>>> {
        // Read before the entry: a stamp raised after this load belongs to
        // an invalidation that arrives after this lookup began.
        let stamp = self.stamp(credential).load(Ordering::Acquire);
        let mut shard = lock(&self.tokens[token_shard(hash)]);
        if let Some(entry) = shard.map.get(hash)
            && let Slot::Ready(record) = &entry.slot
            && entry.credential == credential
            && entry.ticket > stamp
            && record.as_ref().is_none_or(|record| record.expires_at > now)
        {
            let record = record.clone();
            shard.hits += 1;
            return Cached::Hit(record);
        }
        shard.misses += 1;
        let ticket = self.ticket(generation);
        let capacity = self.shard_capacity;
        shard.insert_bounded(
            *hash,
            TokenEntry {
                credential,
                ticket: ticket.id,
                slot: Slot::Pending(ticket.id),
            },
            capacity,
        );
        Cached::Miss(ticket)
    }

    /// The cached policy, or a ticket to read it under `generation`.
    pub(super) fn policy(
        &self,
        credential: CredentialKey,
        generation: u64,
    ) -> Cached<Option<Arc<CredentialPolicy>>> {
        let mut shard = lock(&self.policies[policy_shard(credential)]);
        if let Some(Slot::Ready(policy)) = shard.map.get(&credential) {
            let policy = policy.clone();
            shard.hits += 1;
            return Cached::Hit(policy);
        }
        shard.misses += 1;
        let ticket = self.ticket(generation);
        let capacity = self.shard_capacity;
        shard.insert_bounded(credential, Slot::Pending(ticket.id), capacity);
        Cached::Miss(ticket)
    }

    /// Stores a token read under `ticket`, unless its key was invalidated
    /// (or the cache dropped) since the ticket was taken. An unknown token
    /// is not kept: random well-formed tokens would only push live ones
    /// out.
    pub(super) fn fill_token(
        &self,
        hash: &TokenHash,
        ticket: Ticket,
        record: &Option<Arc<TokenRecord>>,
    ) {
        let mut shard = lock(&self.tokens[token_shard(hash)]);
        let Some(entry) = shard.map.get_mut(hash) else {
            return;
        };
        if !matches!(entry.slot, Slot::Pending(id) if id == ticket.id) {
            return;
        }
        if record.is_some() && self.generation() == ticket.generation {
            entry.slot = Slot::Ready(record.clone());
        } else {
            shard.map.remove(hash);
        }
    }

    /// Stores a policy read under `ticket`, unless its key was invalidated
    /// (or the cache dropped) since the ticket was taken.
    pub(super) fn fill_policy(
        &self,
        credential: CredentialKey,
        ticket: Ticket,
        policy: &Option<Arc<CredentialPolicy>>,
    ) {
        let mut shard = lock(&self.policies[policy_shard(credential)]);
        if self.generation() != ticket.generation {
            return;
        }
        if let Some(slot) = shard.map.get_mut(&credential)
            && matches!(slot, Slot::Pending(id) if *id == ticket.id)
        {
            *slot = Slot::Ready(policy.clone());
        }
    }

    /// Forgets every token of `credential`, read or in flight: each was
    /// read under a ticket older than the stamp this takes.
    pub(super) fn invalidate_tokens(&self, credential: CredentialKey) {
        let ticket = self.next_ticket.fetch_add(1, Ordering::AcqRel);
        self.stamp(credential).fetch_max(ticket, Ordering::AcqRel);
    }

    /// Forgets one policy (read or in flight).
    pub(super) fn invalidate_policy(&self, credential: CredentialKey) {
        lock(&self.policies[policy_shard(credential)])
            .map
            .remove(&credential);
    }

    /// Forgets every token of `credential` and its policy.
    pub(super) fn invalidate_credential(&self, credential: CredentialKey) {
        self.invalidate_tokens(credential);
        self.invalidate_policy(credential);
    }

    /// Forgets the key Redis named in an invalidation message, if it is
    /// one this cache holds: `<prefix>{K}:p` (the policy) or `<prefix>{K}:h`
    /// (the tokens). The index (`z`) and the tombstones (`r`) change only
    /// with the tokens.
    pub(super) fn invalidate_key(&self, prefix: &[u8], key: &[u8]) {
        let Some(rest) = key.strip_prefix(prefix) else {
            return;
        };
        let Some(rest) = rest.strip_prefix(b"{") else {
            return;
        };
        if rest.len() < KEY_LEN + 2 || &rest[KEY_LEN..KEY_LEN + 2] != b"}:" {
            return;
        }
        let Some(credential) = decode_credential(&rest[..KEY_LEN]) else {
            return;
        };
        match &rest[KEY_LEN + 2..] {
            b"p" => self.invalidate_policy(credential),
            b"h" => self.invalidate_tokens(credential),
            _ => {}
        }
    }

    /// Drops everything and stops serving until [`Cache::go_live`]: the
    /// invalidation channel broke (or Redis flushed). Returns whether the
    /// cache was live.
    pub(super) fn drop_all(&self, why: &str) -> bool {
        let was_live = self.live.swap(false, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
        *lock(&self.tracking_client_id) = None;
        self.clear();
        self.drops.fetch_add(1, Ordering::Relaxed);
        if was_live {
            tracing::warn!(
                reason = why,
                "introspection cache dropped; it serves again once tracking is re-established"
            );
        }
        was_live
    }

    /// Drops every entry after a flush (`FLUSHALL`/`FLUSHDB`): the channel
    /// still works, so the cache stays live. Reads in flight lose their
    /// pending slots with everything else, as for a single key.
    pub(super) fn flush(&self) {
        self.clear();
        self.drops.fetch_add(1, Ordering::Relaxed);
        tracing::info!("introspection cache dropped: Redis flushed its keys");
    }

    fn clear(&self) {
        for shard in &self.tokens {
            lock(shard).map.clear();
        }
        for shard in &self.policies {
            lock(shard).map.clear();
        }
    }

    /// A new tracking connection is established: start a new generation
    /// (empty) and serve. Returns the generation its reads fill under.
    pub(super) fn go_live(&self, tracking_client_id: i64) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.clear();
        *lock(&self.tracking_client_id) = Some(tracking_client_id);
        self.live.store(true, Ordering::Release);
        generation
    }

    pub(super) fn stats(&self) -> CacheStats {
        let mut stats = CacheStats {
            drops: self.drops.load(Ordering::Relaxed),
            live: self.is_live(),
            tracking_client_id: *lock(&self.tracking_client_id),
            ..CacheStats::default()
        };
        for shard in &self.tokens {
            let shard = lock(shard);
            stats.hits += shard.hits;
            stats.misses += shard.misses;
            stats.entries += shard.map.len();
        }
        for shard in &self.policies {
            let shard = lock(shard);
            stats.hits += shard.hits;
            stats.misses += shard.misses;
            stats.entries += shard.map.len();
        }
        stats
    }
}

/// Length of a credential key's base62 form.
const KEY_LEN: usize = 22;

/// The credential key of its 22-character base62 form (the inverse of
/// [`CredentialKey::encoded`], checked by a test).
fn decode_credential(text: &[u8]) -> Option<CredentialKey> {
    if text.len() != KEY_LEN {
        return None;
    }
    let mut value: u128 = 0;
    for &byte in text {
        let digit = BASE62_ALPHABET.iter().position(|&b| b == byte)? as u128;
        value = value.checked_mul(62)?.checked_add(digit)?;
    }
    let id = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        value >> 96,
        (value >> 80) & 0xffff,
        (value >> 64) & 0xffff,
        (value >> 48) & 0xffff,
        value & 0xffff_ffff_ffff
    );
    CredentialKey::from_credential_id(&id)
}

#[cfg(test)]
mod tests {
    use latchkey_token::TOKEN_HASH_LEN;

    use super::*;

    fn credential(n: u128) -> CredentialKey {
        let id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            n >> 96,
            (n >> 80) & 0xffff,
            (n >> 64) & 0xffff,
            (n >> 48) & 0xffff,
            n & 0xffff_ffff_ffff
        );
        CredentialKey::from_credential_id(&id).unwrap()
    }

    fn record() -> Option<Arc<TokenRecord>> {
        Some(Arc::new(TokenRecord {
            issued_at: 1,
            expires_at: i64::MAX,
            scopes: vec!["a".to_owned()],
        }))
    }

    #[test]
    fn credential_keys_decode_from_their_encoding() {
        for n in [
            0,
            1,
            61,
            62,
            u128::MAX,
            0x0123_4567_89ab_cdef_0123_4567_89ab_cdef,
        ] {
            let key = credential(n);
            assert_eq!(decode_credential(key.encoded().as_bytes()), Some(key));
        }
        assert_eq!(decode_credential(b"short"), None);
        assert_eq!(decode_credential(b"!!!!!!!!!!!!!!!!!!!!!!"), None);
    }

    #[test]
    fn a_reply_that_crossed_an_invalidation_is_not_stored() {
        let cache = Cache::new(100);
        let generation = cache.go_live(1);
        let key = credential(7);
        let hash = TokenHash([3; TOKEN_HASH_LEN]);
        let Cached::Miss(ticket) = cache.token(key, &hash, 0, generation) else {
            panic!("empty cache hit");
        };
        cache.invalidate_tokens(key);
        cache.fill_token(&hash, ticket, &record());
        assert!(matches!(
            cache.token(key, &hash, 0, generation),
            Cached::Miss(_)
        ));

        // Without an invalidation in between, the reply is stored.
        let Cached::Miss(ticket) = cache.token(key, &hash, 0, generation) else {
            panic!("hit after invalidation");
        };
        cache.fill_token(&hash, ticket, &record());
        assert!(matches!(
            cache.token(key, &hash, 0, generation),
            Cached::Hit(Some(_))
        ));
        // Unknown tokens are not kept.
        let unknown = TokenHash([4; TOKEN_HASH_LEN]);
        let Cached::Miss(ticket) = cache.token(key, &unknown, 0, generation) else {
            panic!("empty cache hit");
        };
        cache.fill_token(&unknown, ticket, &None);
        assert!(matches!(
            cache.token(key, &unknown, 0, generation),
            Cached::Miss(_)
        ));
        // Expired: not served.
        assert!(matches!(
            cache.token(key, &hash, i64::MAX, generation),
            Cached::Miss(_)
        ));
    }

    #[test]
    fn a_drop_refuses_replies_of_the_old_generation() {
        let cache = Cache::new(100);
        let generation = cache.go_live(1);
        let key = credential(9);
        let Cached::Miss(ticket) = cache.policy(key, generation) else {
            panic!("empty cache hit");
        };
        cache.drop_all("test");
        assert!(!cache.is_live());
        let generation = cache.go_live(2);
        // A new read of the same key under the new generation, then the old
        // reply arrives: it must not fill the new pending slot.
        let Cached::Miss(new_ticket) = cache.policy(key, generation) else {
            panic!("hit after drop");
        };
        cache.fill_policy(key, ticket, &None);
        assert!(matches!(cache.policy(key, generation), Cached::Miss(_)));
        let _ = new_ticket;
    }

    #[test]
    fn keys_named_by_redis_invalidate_their_entries() {
        let cache = Cache::new(100);
        let generation = cache.go_live(1);
        let key = credential(11);
        let hash = TokenHash([5; TOKEN_HASH_LEN]);
        for _ in 0..2 {
            if let Cached::Miss(ticket) = cache.token(key, &hash, 0, generation) {
                cache.fill_token(&hash, ticket, &record());
            }
            if let Cached::Miss(ticket) = cache.policy(key, generation) {
                cache.fill_policy(key, ticket, &None);
            }
        }
        // Another credential's tokens, and the index, leave these alone.
        let other = credential(12);
        cache.invalidate_key(b"lk:", format!("lk:{{{}}}:h", other.encoded()).as_bytes());
        cache.invalidate_key(b"lk:", format!("lk:{{{}}}:z", key.encoded()).as_bytes());
        assert!(matches!(
            cache.token(key, &hash, 0, generation),
            Cached::Hit(Some(_))
        ));
        cache.invalidate_key(b"lk:", format!("lk:{{{}}}:h", key.encoded()).as_bytes());
        assert!(matches!(
            cache.token(key, &hash, 0, generation),
            Cached::Miss(_)
        ));
        assert!(matches!(cache.policy(key, generation), Cached::Hit(_)));
        cache.invalidate_key(b"lk:", format!("lk:{{{}}}:p", key.encoded()).as_bytes());
        assert!(matches!(cache.policy(key, generation), Cached::Miss(_)));
    }

    #[test]
    fn capacity_bounds_every_shard() {
        let cache = Cache::new(SHARDS);
        let generation = cache.go_live(1);
        let key = credential(1);
        for n in 0..1000u32 {
            let mut bytes = [0; TOKEN_HASH_LEN];
            bytes[..4].copy_from_slice(&n.to_le_bytes());
            let hash = TokenHash(bytes);
            if let Cached::Miss(ticket) = cache.token(key, &hash, 0, generation) {
                cache.fill_token(&hash, ticket, &record());
            }
        }
        assert!(cache.stats().entries <= SHARDS);
    }
}
