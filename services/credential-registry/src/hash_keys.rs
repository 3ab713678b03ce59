//! The hash keys against the database: the start-up check (each configured
//! key is the one recorded under its ID; no live secret names a key that
//! is not configured) and `credential-registry hash-keys status`.

use std::collections::BTreeMap;

use latchkey_registry::{HashKeyCheck, HashKeyFingerprint, now};
use latchkey_registry_store::SqlCredentialStore;
use latchkey_runtime::{ConfigError, HashKeyId, HashKeys};

use crate::{RegistryConfig, ServeError};

/// How many live secrets each hash key verifies: what
/// `credential-registry hash-keys status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKeyStatus {
    /// The key new secrets are hashed with.
    pub current: HashKeyId,
    /// Every key ID that is configured or named by a live secret, with its
    /// live secrets (0 for a configured key nothing uses any more).
    pub keys: Vec<HashKeyUse>,
}

/// One hash key's share of the live secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKeyUse {
    /// The key's ID.
    pub id: HashKeyId,
    /// Whether the key is configured (current or previous).
    pub configured: bool,
    /// Secrets hashed with it that still work.
    pub live_secrets: u64,
}

impl HashKeyStatus {
    /// Live secrets hashed with a key other than the current one: what
    /// must be rotated before the older keys can be removed.
    pub fn secrets_on_older_keys(&self) -> u64 {
        self.keys
            .iter()
            .filter(|key| key.id != self.current)
            .map(|key| key.live_secrets)
            .sum()
    }
}

/// Checks the database against the configured hash keys, recording the
/// fingerprints of keys it has not seen (never the keys), and reports how
/// many live secrets each key verifies.
pub async fn hash_key_status(config: &RegistryConfig) -> Result<HashKeyStatus, ServeError> {
    let keys = config.hash_key_source().resolve()?;
    let store = latchkey_registry_store::connect(&config.database, config.policy_defaults)
        .await
        .map_err(ServeError::Store)?;
    let status = check_fingerprints(&store, &keys).await;
    let status = match status {
        Ok(()) => status_of(&store, &keys).await,
        Err(error) => Err(error),
    };
    store.close().await;
    status
}

/// What a start refuses: a configured key that is not the one the database
/// recorded under its ID (every secret of that key would be refused), or
/// live secrets under a key that is not configured (they would be refused).
pub(crate) async fn check_hash_keys(
    store: &SqlCredentialStore,
    keys: &HashKeys,
) -> Result<(), ServeError> {
    check_fingerprints(store, keys).await?;
    let status = status_of(store, keys).await?;
    let missing: Vec<String> = status
        .keys
        .iter()
        .filter(|key| !key.configured)
        .map(|key| format!("key {} ({} secrets)", key.id, key.live_secrets))
        .collect();
    if !missing.is_empty() {
        return Err(ServeError::Config(ConfigError::new(format!(
            "previous_hash_keys: live secrets are hashed with hash keys that are not \
             configured: {}; they would be refused. Configure those keys under \
             previous_hash_keys until their secrets are rotated \
             (see `credential-registry hash-keys status`)",
            missing.join(", ")
        ))));
    }
    let older = status.secrets_on_older_keys();
    if older > 0 {
        tracing::info!(
            current = status.current,
            secrets_on_older_keys = older,
            "secrets hashed with an older hash key verify with it until rotated"
        );
    }
    Ok(())
}

async fn check_fingerprints(store: &SqlCredentialStore, keys: &HashKeys) -> Result<(), ServeError> {
    for (id, key) in keys.iter() {
        let check = store
            .check_hash_key(id, &HashKeyFingerprint::of(key))
            .await
            .map_err(ServeError::Store)?;
        match check {
            HashKeyCheck::Matches => {}
            HashKeyCheck::Recorded => {
                tracing::info!(
                    hash_key_id = id,
                    "hash key fingerprint recorded in the database"
                );
            }
            HashKeyCheck::Differs => {
                let setting = if id == keys.current_id() {
                    "hash_key (or hash_key_file)".to_owned()
                } else {
                    format!("previous_hash_keys (id {id})")
                };
                return Err(ServeError::Config(ConfigError::new(format!(
                    "{setting}: not the key this database recorded as hash key {id} (its \
                     fingerprint differs from the one recorded when key {id} was first used); \
                     every secret hashed with key {id} would be refused. Configure the \
                     original key under ID {id}, or give a new key a new ID \
                     (hash_key_id)"
                ))));
            }
        }
    }
    Ok(())
}

async fn status_of(
    store: &SqlCredentialStore,
    keys: &HashKeys,
) -> Result<HashKeyStatus, ServeError> {
    let counts = store
        .live_secrets_by_hash_key(now())
        .await
        .map_err(ServeError::Store)?;
    let mut all: BTreeMap<HashKeyId, HashKeyUse> = keys
        .iter()
        .map(|(id, _)| {
            (
                id,
                HashKeyUse {
                    id,
                    configured: true,
                    live_secrets: 0,
                },
            )
        })
        .collect();
    for (id, live_secrets) in counts {
        all.entry(id)
            .or_insert(HashKeyUse {
                id,
                configured: false,
                live_secrets: 0,
            })
            .live_secrets = live_secrets;
    }
    Ok(HashKeyStatus {
        current: keys.current_id(),
        keys: all.into_values().collect(),
    })
}
