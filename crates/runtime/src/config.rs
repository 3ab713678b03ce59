//! Layered configuration: defaults → TOML file → environment.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;

/// Configuration that cannot be read or does not fit the typed struct. The
/// message names the key and the source (file or variable), never a value.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    /// An error about configuration found invalid after loading.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Loads `T` from its `serde` defaults, then `file` (when given), then
/// `LATCHKEY_*` variables (`__` separates nesting levels, e.g.
/// `LATCHKEY_DATABASE__URL`), then the conventional variables named in
/// `plain_variables` (e.g. `("DATABASE_URL", "database.url")`).
pub fn load_config<T: DeserializeOwned>(
    file: Option<&Path>,
    plain_variables: &[(&str, &str)],
) -> Result<T, ConfigError> {
    let mut figment = Figment::new();
    if let Some(file) = file {
        if !file.exists() {
            return Err(ConfigError(format!("file {} not found", file.display())));
        }
        figment = figment.merge(Toml::file(file));
    }
    // LATCHKEY_CONFIG names the file; it is not a key of its own. The test
    // suite's LATCHKEY_TEST_* variables (where its databases are) are no
    // keys either: a shell that exported them must not stop a start.
    figment = figment.merge(
        Env::prefixed("LATCHKEY_")
            .ignore(&["config"])
            .filter(|key| !key.starts_with("test_"))
            .split("__"),
    );
    for (variable, key) in plain_variables {
        let key = (*key).to_owned();
        figment = figment.merge(
            Env::raw()
                .only(&[*variable])
                .map(move |_| key.clone().into()),
        );
    }
    figment.extract().map_err(|error| {
        // Name the key and where it came from (file or variable); figment's
        // own message describes the type mismatch.
        let key = error.path.join(".");
        let source = error
            .metadata
            .as_ref()
            .map(|metadata| format!(" (from {})", metadata.name))
            .unwrap_or_default();
        ConfigError(format!("{key}: {}{source}", error.kind))
    })
}
