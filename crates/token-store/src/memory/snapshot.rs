//! Saving the in-process store at a clean shutdown and taking it back at
//! the next start, so the embedded default keeps live tokens across a
//! restart (DESIGN: "restarting it keeps credentials and live tokens").
//!
//! Why a snapshot at shutdown, read once, and not a log written as tokens
//! are issued: a revocation must never be lost, and a snapshot only ever
//! holds a state that was exact. The store is closed under every shard's
//! lock before it is written, so any later write (a revocation the
//! registry asks for while the process stops) is refused and the registry
//! does not commit it; and the file is removed as soon as it is read, so a
//! later crash can never bring back a state older than what was revoked
//! meanwhile. A crash therefore loses the live tokens (clients fetch new
//! ones), which is the safe side.
//!
//! The file is JSON lines: a header, then one line per credential with its
//! policy (the Redis store's compact encoding), its live tokens and its
//! tombstones, keyed by the tokens' keyed hashes (never a token).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use latchkey_token::{CredentialKey, TokenHash};
use serde::{Deserialize, Serialize};

use super::{ByExpiry, MemoryTokenStore, Stored, lock};
use crate::redis::codec::{decode_policy, decode_token, encode_policy, encode_token};

/// The header's format number; another number is not read.
const FORMAT: u32 = 1;

/// Why a snapshot could not be written or taken back.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading, writing or removing the file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The store was already closed by an earlier save.
    #[error("the in-process token store was already saved and closed")]
    AlreadyClosed,
}

/// What [`MemoryTokenStore::close_and_save`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saved {
    /// Credentials (policies) saved.
    pub credentials: usize,
    /// Live tokens saved.
    pub tokens: usize,
}

/// What [`MemoryTokenStore::restore`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// No snapshot: the last stop was not clean (or this is the first start).
    Nothing,
    /// Taken back.
    Loaded {
        /// Credentials (policies) still needed.
        credentials: usize,
        /// Tokens still live.
        tokens: usize,
    },
    /// A snapshot that could not be read (another format, or corrupt); the
    /// store starts empty and the file is gone all the same.
    Discarded {
        /// Why.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    latchkey_token_snapshot: u32,
    saved_at: i64,
}

#[derive(Serialize, Deserialize)]
struct CredentialLine {
    /// The credential's ID.
    c: String,
    /// When its policy was last written (Unix seconds).
    w: i64,
    /// The policy, in the Redis store's encoding.
    p: String,
    /// Live tokens: hex hash, record in the Redis store's encoding.
    t: Vec<(String, String)>,
    /// Tombstones: hex hash, until (Unix seconds).
    r: Vec<(String, i64)>,
}

impl MemoryTokenStore {
    /// Closes the store to writes and saves what it holds to `path` (mode
    /// 0600, written to a temporary file first and renamed, so a crash
    /// while saving leaves no half file). Call it once the servers stopped.
    pub fn close_and_save(&self, path: &Path, now: i64) -> Result<Saved, SnapshotError> {
        let mut lines = Vec::new();
        let mut saved = Saved {
            credentials: 0,
            tokens: 0,
        };
        {
            let guards: Vec<_> = self.shards.iter().map(|shard| lock(shard)).collect();
            if self.closed.swap(true, Ordering::AcqRel) {
                return Err(SnapshotError::AlreadyClosed);
            }
            for guard in &guards {
                for (credential, stored) in guard.iter() {
                    let Some(line) = encode_line(*credential, stored, now) else {
                        continue;
                    };
                    saved.credentials += 1;
                    saved.tokens += line.t.len();
                    lines.push(line);
                }
            }
        }
        let io = |action| {
            move |source| SnapshotError::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        let mut text = serde_json::to_string(&Header {
            latchkey_token_snapshot: FORMAT,
            saved_at: now,
        })
        .map_err(|error| io("encode")(io::Error::other(error)))?;
        text.push('\n');
        for line in &lines {
            let encoded = serde_json::to_string(line)
                .map_err(|error| io("encode")(io::Error::other(error)))?;
            text.push_str(&encoded);
            text.push('\n');
        }
        let temporary = path.with_extension("tmp");
        write_private(&temporary, text.as_bytes()).map_err(io("write"))?;
        fs::rename(&temporary, path).map_err(io("rename"))?;
        sync_directory(path).map_err(io("sync the directory of"))?;
        Ok(saved)
    }

    /// A store holding what the snapshot at `path` holds, or an empty one
    /// when there is none. The file is removed before anything is taken
    /// from it: if it cannot be removed the start fails, since reading the
    /// same snapshot again after a later crash could revive tokens revoked
    /// in between.
    pub fn restore(path: &Path, now: i64) -> Result<(Self, Restored), SnapshotError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok((Self::new(), Restored::Nothing));
            }
            Err(source) => {
                return Err(SnapshotError::Io {
                    action: "read",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        fs::remove_file(path)
            .and_then(|()| sync_directory(path))
            .map_err(|source| SnapshotError::Io {
                action: "remove",
                path: path.to_owned(),
                source,
            })?;
        let store = Self::new();
        match store.load(&text, now) {
            Ok((credentials, tokens)) => Ok((
                store,
                Restored::Loaded {
                    credentials,
                    tokens,
                },
            )),
            Err(reason) => Ok((Self::new(), Restored::Discarded { reason })),
        }
    }

    /// Fills an empty store from a snapshot's text; counts what it kept.
    fn load(&self, text: &str, now: i64) -> Result<(usize, usize), String> {
        let mut lines = text.lines();
        let header: Header = lines
            .next()
            .ok_or("empty file")
            .and_then(|line| serde_json::from_str(line).map_err(|_| "no header"))?;
        if header.latchkey_token_snapshot != FORMAT {
            return Err(format!(
                "format {} (this version reads {FORMAT})",
                header.latchkey_token_snapshot
            ));
        }
        let mut decoded = Vec::new();
        for (index, line) in lines.enumerate() {
            let line: CredentialLine = serde_json::from_str(line)
                .map_err(|error| format!("line {}: {error}", index + 2))?;
            decoded
                .push(decode_line(line).map_err(|error| format!("line {}: {error}", index + 2))?);
        }
        // Everything decoded: only now does the store take any of it, so a
        // corrupt line leaves it empty rather than half filled.
        let (mut credentials, mut tokens) = (0, 0);
        for (credential, mut stored) in decoded {
            stored.drop_expired(now);
            if !stored.is_needed(now) {
                continue;
            }
            credentials += 1;
            tokens += stored.tokens.len();
            self.shard(credential).insert(credential, stored);
        }
        Ok((credentials, tokens))
    }
}

/// One credential's line, or `None` when nothing of it is worth keeping.
fn encode_line(credential: CredentialKey, stored: &Stored, now: i64) -> Option<CredentialLine> {
    if !stored.is_needed(now) {
        return None;
    }
    // The Redis encoding of a policy cannot fail for a policy the store
    // accepted; one that did would be left out (its tokens with it).
    let policy = encode_policy(&stored.policy).ok()?;
    let tokens = stored
        .tokens
        .entries
        .iter()
        .filter(|(_, (expires_at, _))| *expires_at > now)
        .map(|(hash, (_, record))| {
            (
                hex::encode(hash.0),
                String::from_utf8_lossy(&encode_token(record)).into_owned(),
            )
        })
        .collect();
    let revoked = stored
        .revoked
        .entries
        .iter()
        .filter(|(_, (until, ()))| *until > now)
        .map(|(hash, (until, ()))| (hex::encode(hash.0), *until))
        .collect();
    Some(CredentialLine {
        c: credential.credential_id(),
        w: stored.written_at,
        p: String::from_utf8_lossy(&policy).into_owned(),
        t: tokens,
        r: revoked,
    })
}

fn decode_line(line: CredentialLine) -> Result<(CredentialKey, Stored), String> {
    let credential = CredentialKey::from_credential_id(&line.c).ok_or("not a credential ID")?;
    let policy = decode_policy(line.p.as_bytes()).map_err(|_| "malformed policy")?;
    let mut tokens = ByExpiry::default();
    for (hash, record) in line.t {
        let record = decode_token(record.as_bytes()).map_err(|_| "malformed token record")?;
        tokens.insert(decode_hash(&hash)?, record.expires_at, Arc::new(record));
    }
    let mut revoked = ByExpiry::default();
    for (hash, until) in line.r {
        revoked.insert(decode_hash(&hash)?, until, ());
    }
    Ok((
        credential,
        Stored {
            policy: Arc::new(policy),
            written_at: line.w,
            tokens,
            revoked,
        },
    ))
}

fn decode_hash(text: &str) -> Result<TokenHash, String> {
    let mut hash = [0; 16];
    hex::decode_to_slice(text, &mut hash).map_err(|_| "malformed token hash")?;
    Ok(TokenHash(hash))
}

/// Writes `contents` to a new file readable only by its owner, synced.
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes a rename or removal in `path`'s directory durable.
fn sync_directory(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(directory) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::File::open(directory)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
