//! Credential etags (AIP-154): an opaque, quoted (RFC 7232) encoding of the
//! credential's policy version, which increases with every change a
//! management call makes (update, disable, enable, rotation). Reported uses
//! (`last_used_*`) do not change it: a console editor must not be refused
//! because the key was used meanwhile.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::RegistryError;

/// Longest etag looked at.
const MAX_ETAG_LEN: usize = 64;

/// The etag of a credential at `version`.
pub(crate) fn of(version: i64) -> String {
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(version.to_be_bytes()))
}

/// The version an etag names; `INVALID_ARGUMENT` naming `field` when it is
/// not an etag this service hands out. The quotes may be left out.
pub(crate) fn parse(field: &str, etag: &str) -> Result<i64, RegistryError> {
    let invalid = || {
        RegistryError::invalid(
            field,
            "not an etag of this service: send back the etag a read returned",
        )
    };
    if etag.len() > MAX_ETAG_LEN {
        return Err(invalid());
    }
    let inner = etag
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(etag);
    let bytes = URL_SAFE_NO_PAD.decode(inner).map_err(|_| invalid())?;
    let bytes: [u8; 8] = bytes.try_into().map_err(|_| invalid())?;
    Ok(i64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_quoted_or_not_and_garbage_is_refused() {
        let etag = of(42);
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert_eq!(parse("etag", &etag).unwrap(), 42);
        assert_eq!(parse("etag", etag.trim_matches('"')).unwrap(), 42);
        assert_ne!(of(42), of(43));
        for bad in ["\"\"", "\"v1\"", "!!", &"A".repeat(100)] {
            let error = parse("credential.etag", bad).unwrap_err();
            assert!(error.to_string().starts_with("credential.etag:"), "{error}");
        }
    }
}
