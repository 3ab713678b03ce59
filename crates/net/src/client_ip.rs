//! The caller's IP: the direct peer's, or taken from `Forwarded` /
//! `X-Forwarded-For` only through proxies the operator trusts.
//!
//! The chain is read from the right (the entry the nearest proxy appended)
//! and every trusted proxy is skipped; the first address that is not a
//! trusted proxy is the client. The leftmost entry, which the client itself
//! may have forged, is never believed unless every hop after it is trusted.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The networks whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trust the given networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Trust nobody: the peer address is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether no network is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` (IPv4-mapped IPv6 included) is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying the given
    /// header values (`Forwarded` wins over `X-Forwarded-For` when both are
    /// present). An unparsable entry stops the walk at the last trusted hop
    /// (the proxy that forwarded it), never at a forged address.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl IntoIterator<Item = &'a str>,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<&str> = forwarded.into_iter().collect();
        let chain: Vec<Option<IpAddr>> = if forwarded.is_empty() {
            x_forwarded_for
                .into_iter()
                .flat_map(|value| value.split(','))
                .map(|entry| parse_address(entry.trim()))
                .collect()
        } else {
            forwarded
                .into_iter()
                .flat_map(|value| value.split(','))
                .map(forwarded_for)
                .collect()
        };
        let mut client = peer;
        for entry in chain.into_iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match entry {
                Some(address) => client = address.to_canonical(),
                None => break,
            }
        }
        client
    }
}

/// The `for=` parameter of one `Forwarded` element (RFC 7239).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_address(value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[::1]`,
/// `[::1]:5678` or a bare IPv6 address.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(text) {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return IpAddr::from_str(inside).ok();
    }
    let (host, _port) = text.rsplit_once(':')?;
    IpAddr::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ])
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let client = proxies().client_ip(ip("203.0.113.5"), [], ["198.51.100.1"]);
        assert_eq!(client, ip("203.0.113.5"));
        let none = TrustedProxies::none().client_ip(ip("10.0.0.1"), ["for=1.2.3.4"], ["1.2.3.4"]);
        assert_eq!(none, ip("10.0.0.1"));
    }

    #[test]
    fn a_trusted_proxy_passes_on_the_address_it_saw() {
        let client = proxies().client_ip(ip("10.0.0.1"), [], ["198.51.100.7"]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn a_forged_leftmost_entry_is_not_believed() {
        // The client sent "X-Forwarded-For: 1.1.1.1"; the proxy appended the
        // real peer 198.51.100.7.
        let client = proxies().client_ip(ip("10.0.0.1"), [], ["1.1.1.1, 198.51.100.7"]);
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn several_trusted_hops_are_walked() {
        let client = proxies().client_ip(
            ip("10.0.0.1"),
            [],
            ["1.1.1.1, 198.51.100.7, 10.2.2.2", "10.3.3.3"],
        );
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_header_wins_and_is_parsed_with_ports_and_brackets() {
        let client = proxies().client_ip(
            ip("::1"),
            [r#"for=1.1.1.1, for="[2001:db8::7]:4711";proto=https"#],
            ["9.9.9.9"],
        );
        assert_eq!(client, ip("2001:db8::7"));
        let with_port = proxies().client_ip(ip("10.0.0.1"), ["for=192.0.2.60:8080"], []);
        assert_eq!(with_port, ip("192.0.2.60"));
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop() {
        let client = proxies().client_ip(ip("10.0.0.1"), [], ["198.51.100.7, unknown"]);
        assert_eq!(client, ip("10.0.0.1"));
        let obfuscated = proxies().client_ip(ip("10.0.0.1"), ["for=_hidden"], []);
        assert_eq!(obfuscated, ip("10.0.0.1"));
    }

    #[test]
    fn mapped_addresses_are_canonical() {
        let client = proxies().client_ip(ip("::ffff:10.0.0.1"), [], ["::ffff:198.51.100.7"]);
        assert_eq!(client, ip("198.51.100.7"));
    }
}
