//! The keys every service reads at start: the hash key its BLAKE3 hashes
//! are keyed with, and the internal key its internal calls are signed with.

use std::path::{Path, PathBuf};

use latchkey_secrets::{HashKey, HashKeyId, HashKeys, random_string};
use serde::Deserialize;

use crate::internal_auth::InternalKey;

use crate::config::ConfigError;

/// Where a service's hash keys come from. The current key (`hash_key_id`,
/// 1 unless set), in order: the configured value, the configured file, or
/// (embedded default only) `data_dir/hash.key`, created on first start with
/// mode 0600. Older keys (`previous_hash_keys`) still verify what was
/// hashed with them: see "Rotating the hash key" in `docs/operations.md`.
#[derive(Debug, Clone, Copy)]
pub struct HashKeySource<'a> {
    /// `hash_key` from configuration: 64 hex digits.
    pub value: Option<&'a str>,
    /// `hash_key_file` from configuration.
    pub file: Option<&'a Path>,
    /// `hash_key_id`: the current key's ID.
    pub id: HashKeyId,
    /// `previous_hash_keys`: older keys by ID.
    pub previous: &'a [PreviousHashKey],
    /// The data directory of the embedded default.
    pub data_dir: &'a Path,
}

/// An older hash key in configuration (`[[previous_hash_keys]]`): what was
/// hashed with it still verifies; nothing new is hashed with it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PreviousHashKey {
    /// The ID it had while it was current.
    pub id: HashKeyId,
    /// The key, 64 hex digits.
    pub key: Option<String>,
    /// A file holding the key, as an alternative to `key`.
    pub key_file: Option<PathBuf>,
}

impl std::fmt::Debug for PreviousHashKey {
    // Never print a key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousHashKey")
            .field("id", &self.id)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_file", &self.key_file)
            .finish()
    }
}

impl HashKeySource<'_> {
    /// Checks what can be checked before start-up; `shared_store` says
    /// whether replicas share a store (then a generated key would differ
    /// between them, so a key must be configured).
    pub fn validate(&self, shared_store: bool) -> Result<(), ConfigError> {
        self.key().validate(
            shared_store
                .then_some("with a shared store: every replica must hash with the same key"),
        )?;
        if self.id == 0 {
            return Err(ConfigError::new(
                "hash_key_id: must be 1 or more (the key configured before rotation is 1)",
            ));
        }
        if !self.previous.is_empty() && self.value.is_none() && self.file.is_none() {
            return Err(ConfigError::new(
                "previous_hash_keys needs hash_key (or hash_key_file): a generated key cannot rotate",
            ));
        }
        let mut ids = vec![self.id];
        for (index, previous) in self.previous.iter().enumerate() {
            let name = format!("previous_hash_keys[{index}]");
            if previous.id == 0 {
                return Err(ConfigError::new(format!("{name}.id: must be 1 or more")));
            }
            if ids.contains(&previous.id) {
                return Err(ConfigError::new(format!(
                    "{name}.id: hash key ID {} is given twice",
                    previous.id
                )));
            }
            ids.push(previous.id);
            previous_key(&name, previous).validate(Some("for every previous hash key"))?;
        }
        Ok(())
    }

    /// Reads (or creates) the current key and reads the older ones.
    pub fn resolve(&self) -> Result<HashKeys, ConfigError> {
        let current = self.key().resolve()?;
        let mut older = Vec::with_capacity(self.previous.len());
        for (index, previous) in self.previous.iter().enumerate() {
            let name = format!("previous_hash_keys[{index}]");
            older.push((previous.id, previous_key(&name, previous).resolve()?));
        }
        HashKeys::new(self.id, current, older)
            .map_err(|error| ConfigError::new(format!("hash keys: {error}")))
    }

    fn key(&self) -> ConfiguredKey<'_> {
        ConfiguredKey {
            name: "hash_key".to_owned(),
            value: self.value,
            file: self.file,
            generated: Some(self.data_dir.join("hash.key")),
        }
    }
}

/// Where the internal key (service authentication between the registry
/// and the issuers, see `internal_auth`) comes from: the configured value,
/// the configured file, or (embedded default only) `data_dir/internal.key`,
/// created on first start with mode 0600 and shared by the two services of
/// `latchkey dev` through the data directory.
#[derive(Debug, Clone, Copy)]
pub struct InternalKeySource<'a> {
    /// `internal_key` from configuration: 64 hex digits.
    pub value: Option<&'a str>,
    /// `internal_key_file` from configuration.
    pub file: Option<&'a Path>,
    /// `internal_previous_key`: still accepted, never used to sign (a
    /// rotation in progress).
    pub previous: Option<&'a str>,
    /// The data directory of the embedded default.
    pub data_dir: &'a Path,
}

impl InternalKeySource<'_> {
    /// Checks what can be checked before start-up; `separate_processes` says
    /// whether the services may run apart (a production store), where a
    /// generated key could not be shared, so a key must be configured.
    pub fn validate(&self, separate_processes: bool) -> Result<(), ConfigError> {
        if let Some(previous) = self.previous {
            HashKey::from_hex(previous)
                .map_err(|error| ConfigError::new(format!("internal_previous_key: {error}")))?;
        }
        self.key().validate(separate_processes.then_some(
            "with a production store: the registry and every token issuer must share it to authenticate their internal calls",
        ))
    }

    /// Reads or creates the key.
    pub fn resolve(&self) -> Result<InternalKey, ConfigError> {
        let current = self.key().resolve()?;
        let previous = self
            .previous
            .map(HashKey::from_hex)
            .transpose()
            .map_err(|error| ConfigError::new(format!("internal_previous_key: {error}")))?;
        Ok(InternalKey::new(&current, previous.as_ref()))
    }

    fn key(&self) -> ConfiguredKey<'_> {
        ConfiguredKey {
            name: "internal_key".to_owned(),
            value: self.value,
            file: self.file,
            generated: Some(self.data_dir.join("internal.key")),
        }
    }
}

/// Longest clock skew allowed between signed internal calls (a signed call
/// is accepted for twice as long, once).
const MAX_CLOCK_SKEW_SECONDS: u64 = 300;

/// Checks `internal_clock_skew_seconds`.
pub fn validate_clock_skew(seconds: u64) -> Result<(), ConfigError> {
    if seconds == 0 || seconds > MAX_CLOCK_SKEW_SECONDS {
        return Err(ConfigError::new(format!(
            "internal_clock_skew_seconds: must be between 1 and {MAX_CLOCK_SKEW_SECONDS}"
        )));
    }
    Ok(())
}

/// A previous key as a [`ConfiguredKey`] named `name` (its fields are
/// `{name}.key` and `{name}.key_file`); never generated.
fn previous_key<'a>(name: &str, previous: &'a PreviousHashKey) -> ConfiguredKey<'a> {
    ConfiguredKey {
        name: format!("{name}.key"),
        value: previous.key.as_deref(),
        file: previous.key_file.as_deref(),
        generated: None,
    }
}

/// A 256-bit key from configuration, a file, or generated on first start.
struct ConfiguredKey<'a> {
    /// The configuration key (`hash_key`); `{name}_file` is the file's.
    name: String,
    value: Option<&'a str>,
    file: Option<&'a Path>,
    /// The file a generated key is kept in; `None`: never generated.
    generated: Option<PathBuf>,
}

impl ConfiguredKey<'_> {
    /// `required`: why a configured key is required, when it is.
    fn validate(&self, required: Option<&str>) -> Result<(), ConfigError> {
        let name = &self.name;
        if self.value.is_some() && self.file.is_some() {
            return Err(ConfigError::new(format!(
                "set {name} or {name}_file, not both"
            )));
        }
        if let Some(value) = self.value {
            HashKey::from_hex(value)
                .map_err(|error| ConfigError::new(format!("{name}: {error}")))?;
        }
        if let Some(why) = required
            && self.value.is_none()
            && self.file.is_none()
        {
            return Err(ConfigError::new(format!(
                "{name} (or {name}_file) is required {why}"
            )));
        }
        Ok(())
    }

    fn resolve(&self) -> Result<HashKey, ConfigError> {
        if let Some(value) = self.value {
            return HashKey::from_hex(value)
                .map_err(|error| ConfigError::new(format!("{}: {error}", self.name)));
        }
        if let Some(path) = self.file {
            return read_key_file(path);
        }
        let Some(path) = &self.generated else {
            return Err(ConfigError::new(format!(
                "{} (or {}_file) is required",
                self.name, self.name
            )));
        };
        if path.exists() {
            return read_key_file(path);
        }
        let key = HashKey::generate();
        match write_key_file(path, &key) {
            Ok(()) => {
                tracing::info!(path = %path.display(), key = %self.name, "generated a new key");
                Ok(key)
            }
            // Another service (`latchkey dev` starts two) created it first:
            // use that one.
            Err(_) if path.exists() => read_key_file(path),
            Err(error) => Err(error),
        }
    }
}

fn read_key_file(path: &Path) -> Result<HashKey, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(format!("key file {}: {error}", path.display())))?;
    HashKey::from_hex(&text)
        .map_err(|error| ConfigError::new(format!("key file {}: {error}", path.display())))
}

/// Writes the key to a private temporary file, then links it into place:
/// a concurrent reader sees no file or the whole key, never a partial one,
/// and of two concurrent writers exactly one wins.
fn write_key_file(path: &Path, key: &HashKey) -> Result<(), ConfigError> {
    let fail = |error: std::io::Error| {
        ConfigError::new(format!("cannot write key file {}: {error}", path.display()))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    // Unique per writer: two services of one process must not share it.
    let suffix = random_string(b"abcdefghijklmnopqrstuvwxyz0123456789", 12);
    let temporary = path.with_extension(format!("tmp-{suffix}"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        std::io::Write::write_all(&mut file, format!("{}\n", key.to_hex()).as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    linked.map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn previous(id: HashKeyId, key: Option<&str>) -> PreviousHashKey {
        PreviousHashKey {
            id,
            key: key.map(str::to_owned),
            key_file: None,
        }
    }

    fn source<'a>(
        value: Option<&'a str>,
        id: HashKeyId,
        previous: &'a [PreviousHashKey],
    ) -> HashKeySource<'a> {
        HashKeySource {
            value,
            file: None,
            id,
            previous,
            data_dir: Path::new("/nonexistent"),
        }
    }

    #[test]
    fn previous_keys_resolve_by_id_beside_the_current_one() {
        let current = HashKey::generate().to_hex();
        let older = HashKey::generate();
        let previous = [previous(1, Some(&older.to_hex()))];
        let source = source(Some(&current), 2, &previous);
        source.validate(true).unwrap();
        let keys = source.resolve().unwrap();
        assert_eq!(keys.current_id(), 2);
        assert_eq!(keys.get(1).map(|key| key.hash("s")), Some(older.hash("s")));
    }

    #[test]
    fn bad_previous_keys_are_refused_naming_the_entry() {
        let current = HashKey::generate().to_hex();
        let other = HashKey::generate().to_hex();
        let cases: [(HashKeyId, Vec<PreviousHashKey>, &str); 5] = [
            (0, vec![], "hash_key_id"),
            (2, vec![previous(2, Some(&other))], "given twice"),
            (
                2,
                vec![previous(0, Some(&other))],
                "previous_hash_keys[0].id",
            ),
            (2, vec![previous(1, None)], "previous_hash_keys[0].key"),
            (
                2,
                vec![previous(1, Some("abc"))],
                "previous_hash_keys[0].key",
            ),
        ];
        for (id, previous, expected) in cases {
            let error = source(Some(&current), id, &previous)
                .validate(false)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains(&other), "{error}");
        }
        // A generated key cannot rotate: previous keys need a configured one.
        let previous = [previous(1, Some(&other))];
        let error = source(None, 2, &previous).validate(false).unwrap_err();
        assert!(error.to_string().contains("previous_hash_keys"), "{error}");
    }
}
