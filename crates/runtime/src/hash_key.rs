//! The hash key every service keys its BLAKE3 hashes with.

use std::path::Path;

use latchkey_secrets::{HashKey, random_string};

use crate::config::ConfigError;

/// Where a service's hash key comes from, in order: the configured value,
/// the configured file, or (embedded default only) `data_dir/hash.key`,
/// created on first start with mode 0600.
#[derive(Debug, Clone, Copy)]
pub struct HashKeySource<'a> {
    /// `hash_key` from configuration: 64 hex digits.
    pub value: Option<&'a str>,
    /// `hash_key_file` from configuration.
    pub file: Option<&'a Path>,
    /// The data directory of the embedded default.
    pub data_dir: &'a Path,
}

impl HashKeySource<'_> {
    /// Checks what can be checked before start-up; `shared_store` says
    /// whether replicas share a store (then a generated key would differ
    /// between them, so a key must be configured).
    pub fn validate(&self, shared_store: bool) -> Result<(), ConfigError> {
        if self.value.is_some() && self.file.is_some() {
            return Err(ConfigError::new("set hash_key or hash_key_file, not both"));
        }
        if let Some(value) = self.value {
            HashKey::from_hex(value)
                .map_err(|error| ConfigError::new(format!("hash_key: {error}")))?;
        }
        if shared_store && self.value.is_none() && self.file.is_none() {
            return Err(ConfigError::new(
                "hash_key (or hash_key_file) is required with a shared store: every replica must hash with the same key",
            ));
        }
        Ok(())
    }

    /// Reads or creates the key.
    pub fn resolve(&self) -> Result<HashKey, ConfigError> {
        if let Some(value) = self.value {
            return HashKey::from_hex(value)
                .map_err(|error| ConfigError::new(format!("hash_key: {error}")));
        }
        if let Some(path) = self.file {
            return read_key_file(path);
        }
        let path = self.data_dir.join("hash.key");
        if path.exists() {
            return read_key_file(&path);
        }
        let key = HashKey::generate();
        match write_key_file(&path, &key) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "generated a new hash key");
                Ok(key)
            }
            // Another service (`latchkey dev` starts two) created it first:
            // use that one.
            Err(_) if path.exists() => read_key_file(&path),
            Err(error) => Err(error),
        }
    }
}

fn read_key_file(path: &Path) -> Result<HashKey, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(format!("hash key file {}: {error}", path.display())))?;
    HashKey::from_hex(&text)
        .map_err(|error| ConfigError::new(format!("hash key file {}: {error}", path.display())))
}

/// Writes the key to a private temporary file, then links it into place:
/// a concurrent reader sees no file or the whole key, never a partial one,
/// and of two concurrent writers exactly one wins.
fn write_key_file(path: &Path, key: &HashKey) -> Result<(), ConfigError> {
    let fail = |error: std::io::Error| {
        ConfigError::new(format!(
            "cannot write hash key file {}: {error}",
            path.display()
        ))
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
