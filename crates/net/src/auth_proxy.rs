//! Sign-in through a trusted authentication proxy: a proxy the operator
//! trusts (by its address) names the signed-in user in a header, and the
//! registry acts for that member of one project.
//!
//! The one trust check lives here so that the JSON API and the console's
//! `config.json` can never disagree on who is signed in.

use std::net::IpAddr;

use crate::TrustedProxies;

/// The configured proxy: where it calls from, the header naming the user,
/// and the project whose members it signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthProxy {
    proxies: TrustedProxies,
    user_header: String,
    project: String,
}

/// Longest user ID taken from the header; a longer value is ignored (the
/// registry's own validation of member IDs is stricter still).
const MAX_USER_LEN: usize = 256;

impl AuthProxy {
    /// A proxy calling from `proxies`, naming the user in `user_header`
    /// (lowercase, as HTTP/2 sends it) and signing in members of `project`.
    pub fn new(proxies: TrustedProxies, user_header: &str, project: &str) -> Self {
        Self {
            proxies,
            user_header: user_header.to_ascii_lowercase(),
            project: project.to_owned(),
        }
    }

    /// The header naming the user (lowercase).
    pub fn user_header(&self) -> &str {
        &self.user_header
    }

    /// The project whose members the proxy signs in.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The user the proxy signed in, for a request from `peer` carrying
    /// `user_values` (every value of [`AuthProxy::user_header`]) and, when
    /// `has_authorization`, an `authorization` header.
    ///
    /// `None` unless the peer is a trusted proxy, the header is sent exactly
    /// once with a non-empty printable ASCII value, and the request carries
    /// no credentials of its own (a bearer token always wins: the header is
    /// then ignored, never combined with it).
    pub fn signed_in_user<'a>(
        &self,
        peer: Option<IpAddr>,
        user_values: impl IntoIterator<Item = &'a [u8]>,
        has_authorization: bool,
    ) -> Option<String> {
        if has_authorization || !self.proxies.trusts(peer?) {
            return None;
        }
        let mut values = user_values.into_iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let value = std::str::from_utf8(value).ok()?.trim();
        let printable = value.bytes().all(|byte| byte.is_ascii_graphic());
        (printable && !value.is_empty() && value.len() <= MAX_USER_LEN).then(|| value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> AuthProxy {
        AuthProxy::new(
            TrustedProxies::new(vec!["127.0.0.1/32".parse().expect("network")]),
            "X-Forwarded-User",
            "acme",
        )
    }

    fn local() -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, 1]))
    }

    #[test]
    fn only_a_trusted_peer_without_credentials_signs_in() {
        let proxy = proxy();
        assert_eq!(proxy.user_header(), "x-forwarded-user");
        let alice: &[u8] = b"alice";
        assert_eq!(
            proxy.signed_in_user(local(), [alice], false).as_deref(),
            Some("alice")
        );
        // IPv4-mapped IPv6 is the same peer.
        let mapped = "::ffff:127.0.0.1".parse().ok();
        assert!(proxy.signed_in_user(mapped, [alice], false).is_some());
        assert_eq!(
            proxy.signed_in_user(Some(IpAddr::from([10, 0, 0, 1])), [alice], false),
            None
        );
        assert_eq!(proxy.signed_in_user(None, [alice], false), None);
        assert_eq!(proxy.signed_in_user(local(), [alice], true), None);
        assert_eq!(proxy.signed_in_user(local(), [alice, alice], false), None);
        assert_eq!(proxy.signed_in_user(local(), [], false), None);
        let bad: [&[u8]; 3] = [b"", b"a b", b"\xff"];
        for value in bad {
            assert_eq!(proxy.signed_in_user(local(), [value], false), None);
        }
    }

    #[test]
    fn trusting_nobody_signs_in_nobody() {
        let proxy = AuthProxy::new(TrustedProxies::none(), "x-forwarded-user", "acme");
        let alice: &[u8] = b"alice";
        assert_eq!(proxy.signed_in_user(local(), [alice], false), None);
    }
}
