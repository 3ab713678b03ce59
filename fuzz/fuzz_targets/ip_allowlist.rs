//! `latchkey_net`: IP allowlists (addresses and CIDR blocks, normalised),
//! the caller's address behind trusted proxies (`Forwarded`,
//! `X-Forwarded-For`) and the auth proxy's signed-in user header.
//!
//! Input: `key=value` lines: `allow=` allowlist entries, `trust=` trusted
//! proxy networks, `peer=` the connection's address, `forwarded=` and
//! `xff=` header values, `user=` auth proxy header values, `authorization=`
//! (any value: the request carries credentials of its own).
//!
//! Holds: no panic; a list that parses prints entries that parse back to
//! the same list; a mapped IPv6 address is allowed exactly when its IPv4
//! form is; an untrusted peer is the client whatever its headers say, and
//! without headers every peer is; the client is always in canonical form;
//! a signed-in user comes only from a trusted peer, once, printable.

#![no_main]

use std::net::IpAddr;

use latchkey_net::{AuthProxy, IpAllowlist, TrustedProxies};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(fields) = latchkey_fuzz::fields(data) else {
        return;
    };
    let values = |key: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(name, _)| *name == key)
            .map(|(_, value)| *value)
            .collect()
    };
    let peer: IpAddr = values("peer")
        .first()
        .and_then(|text| text.parse().ok())
        .unwrap_or(IpAddr::from([192, 0, 2, 1]));

    let entries = values("allow");
    if let Ok(list) = IpAllowlist::parse(&entries) {
        assert!(list.len() <= entries.len());
        // Every entry parsed, so only an empty input is an empty list.
        assert_eq!(list.is_empty(), entries.is_empty());
        let printed = list.to_strings();
        let again = IpAllowlist::parse(&printed).expect("printed entries parse");
        assert_eq!(again, list, "{printed:?}");
        assert_eq!(again.to_strings(), printed);
        assert_eq!(list.allows(peer), list.allows(peer.to_canonical()));
        if let IpAddr::V4(v4) = peer {
            assert_eq!(
                list.allows(peer),
                list.allows(IpAddr::V6(v4.to_ipv6_mapped()))
            );
        }
        if list.is_empty() {
            assert!(list.allows(peer));
        }
    }

    let networks = values("trust")
        .into_iter()
        .filter_map(|text| text.parse().ok())
        .collect();
    let proxies = TrustedProxies::new(networks);
    let forwarded = values("forwarded");
    let xff = values("xff");
    let client = proxies.client_ip(peer, forwarded.iter().copied(), xff.iter().copied());
    assert_eq!(client, client.to_canonical());
    if !proxies.trusts(peer) || (forwarded.is_empty() && xff.is_empty()) {
        assert_eq!(client, peer.to_canonical());
    }
    assert_eq!(proxies.trusts(peer), proxies.trusts(peer.to_canonical()));

    let users: Vec<&[u8]> = values("user").into_iter().map(str::as_bytes).collect();
    let has_authorization = !values("authorization").is_empty();
    let proxy = AuthProxy::new(proxies.clone(), "x-forwarded-user", "fuzz");
    if let Some(user) = proxy.signed_in_user(Some(peer), users.iter().copied(), has_authorization) {
        assert!(proxies.trusts(peer) && !has_authorization && users.len() == 1);
        assert!(!user.is_empty() && user.bytes().all(|b| b.is_ascii_graphic()));
    }
    assert_eq!(
        proxy.signed_in_user(None, users.iter().copied(), false),
        None
    );
});
