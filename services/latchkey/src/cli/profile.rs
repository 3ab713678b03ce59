//! Profiles: where the CLI finds Latchkey and the credential it manages
//! Latchkey with. A profile file (`config.toml`, mode 0600) written by
//! `latchkey login`, each field overridden by a `LATCHKEY_*` variable.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::CliError;

/// The profile used without `--profile`.
pub(crate) const DEFAULT_PROFILE: &str = "default";

/// One profile: the endpoints and the management credential.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// The registry's gRPC URL, e.g. `http://127.0.0.1:50051`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) registry_url: Option<String>,
    /// The issuer's OAuth token endpoint, e.g. `http://127.0.0.1:8080/oauth2/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_url: Option<String>,
    /// The management credential's client ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_id: Option<String>,
    /// The management credential's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) client_secret: Option<String>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Profile")
            .field("registry_url", &self.registry_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A profile with every field present.
#[derive(Clone)]
pub(crate) struct Resolved {
    pub(crate) registry_url: String,
    pub(crate) token_url: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// The whole file: profiles by name.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// `$LATCHKEY_CONFIG_DIR/config.toml`, else
/// `$XDG_CONFIG_HOME/latchkey/config.toml`, else
/// `~/.config/latchkey/config.toml`.
pub(crate) fn config_path() -> Result<PathBuf, CliError> {
    let non_empty = |key: &str| std::env::var_os(key).filter(|value| !value.is_empty());
    let directory = if let Some(directory) = non_empty("LATCHKEY_CONFIG_DIR") {
        PathBuf::from(directory)
    } else if let Some(config_home) = non_empty("XDG_CONFIG_HOME") {
        PathBuf::from(config_home).join("latchkey")
    } else if let Some(home) = non_empty("HOME") {
        PathBuf::from(home).join(".config").join("latchkey")
    } else {
        return Err(CliError::Config(
            "no configuration directory: set LATCHKEY_CONFIG_DIR or HOME".to_owned(),
        ));
    };
    Ok(directory.join("config.toml"))
}

fn read_file() -> Result<ConfigFile, CliError> {
    let path = config_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|error| CliError::Config(format!("{}: {error}", path.display()))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(error) => Err(CliError::Config(format!(
            "cannot read {}: {error}",
            path.display()
        ))),
    }
}

/// The profile `name` from the file (empty when absent), without the
/// environment.
pub(crate) fn stored(name: &str) -> Result<Profile, CliError> {
    Ok(read_file()?.profiles.remove(name).unwrap_or_default())
}

/// The profile `name`: the file's fields, each overridden by its
/// `LATCHKEY_*` variable; every field must end up set.
pub(crate) fn resolve(name: &str) -> Result<Resolved, CliError> {
    let stored = stored(name)?;
    let field = |key: &str, stored: Option<String>| -> Result<String, CliError> {
        std::env::var(key)
            .ok()
            .filter(|value| !value.is_empty())
            .or(stored)
            .ok_or_else(|| {
                CliError::Config(format!(
                    "profile {name:?} has no {}: run `latchkey login` or set {key}",
                    key.trim_start_matches("LATCHKEY_").to_lowercase()
                ))
            })
    };
    Ok(Resolved {
        registry_url: field("LATCHKEY_REGISTRY_URL", stored.registry_url)?,
        token_url: field("LATCHKEY_TOKEN_URL", stored.token_url)?,
        client_id: field("LATCHKEY_CLIENT_ID", stored.client_id)?,
        client_secret: field("LATCHKEY_CLIENT_SECRET", stored.client_secret)?,
    })
}

/// Writes `profile` as `name` into the file, keeping the other profiles;
/// the file is created (or reset to) mode 0600 before the secret is
/// written, since it holds secrets. Returns the file's path.
pub(crate) fn save(name: &str, profile: Profile) -> Result<PathBuf, CliError> {
    let path = config_path()?;
    let mut file = read_file()?;
    file.profiles.insert(name.to_owned(), profile);
    let text = toml::to_string(&file)
        .map_err(|error| CliError::Config(format!("cannot write the profile: {error}")))?;
    if let Some(directory) = path.parent() {
        create_private_dir(directory)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let write_error = |error: std::io::Error| {
        CliError::Config(format!("cannot write {}: {error}", path.display()))
    };
    let mut handle = options.open(&path).map_err(write_error)?;
    // An existing file keeps its mode on open: tighten it before writing.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        handle
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(write_error)?;
    }
    std::io::Write::write_all(&mut handle, text.as_bytes()).map_err(write_error)?;
    handle.sync_all().map_err(write_error)?;
    Ok(path)
}

fn create_private_dir(directory: &std::path::Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(directory).map_err(|error| {
        CliError::Config(format!("cannot create {}: {error}", directory.display()))
    })
}
