//! IP allowlists: addresses and CIDR blocks a credential may be used from.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

/// A normalised list of networks. Empty means "any address".
///
/// Normalisation makes equal lists compare and display equal: host bits are
/// cleared (`10.1.2.3/8` → `10.0.0.0/8`), IPv4-mapped IPv6 is written as IPv4
/// (`::ffff:10.0.0.1` → `10.0.0.1`), single hosts are written without a
/// prefix length, and duplicates are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist(Vec<IpNet>);

/// Why an allowlist entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidEntry {
    /// Position of the entry in the input.
    pub index: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl IpAllowlist {
    /// Parses and normalises `entries`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, InvalidEntry> {
        let mut networks: Vec<IpNet> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let network = parse_entry(entry.as_ref()).map_err(|reason| InvalidEntry {
                index,
                reason: reason.to_owned(),
            })?;
            if !networks.contains(&network) {
                networks.push(network);
            }
        }
        Ok(Self(networks))
    }

    /// Whether `ip` may use the credential.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.is_empty() || self.0.iter().any(|network| network.contains(&ip))
    }

    /// True when any address is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entries in normalised text form.
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|network| {
                if network.prefix_len() == network.max_prefix_len() {
                    network.addr().to_string()
                } else {
                    network.to_string()
                }
            })
            .collect()
    }
}

fn parse_entry(text: &str) -> Result<IpNet, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty entry");
    }
    let network = if text.contains('/') {
        IpNet::from_str(text).map_err(|_| "not an IP address or CIDR block")?
    } else {
        IpAddr::from_str(text)
            .map(IpNet::from)
            .map_err(|_| "not an IP address or CIDR block")?
    };
    Ok(canonical(network).trunc())
}

/// Writes IPv4-mapped IPv6 networks (`::ffff:0:0/96` and narrower) as IPv4,
/// so they match IPv4 peers, which are canonicalised the same way.
fn canonical(network: IpNet) -> IpNet {
    if let IpNet::V6(v6) = network
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
        && let Ok(mapped) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(mapped);
    }
    network
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn normalises_hosts_blocks_and_mapped_addresses() {
        let list = IpAllowlist::parse(&[
            "10.1.2.3/8",
            " 192.168.0.7 ",
            "::ffff:172.16.0.1",
            "::ffff:172.16.0.0/108",
            "2001:db8::1/32",
            "10.0.0.0/8",
        ])
        .unwrap();
        assert_eq!(
            list.to_strings(),
            [
                "10.0.0.0/8",
                "192.168.0.7",
                "172.16.0.1",
                "172.16.0.0/12",
                "2001:db8::/32"
            ]
        );
    }

    #[test]
    fn allows_members_and_refuses_others() {
        let list = IpAllowlist::parse(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]).unwrap();
        assert!(list.allows(ip("10.200.1.1")));
        assert!(list.allows(ip("::ffff:10.0.0.1")), "mapped peer address");
        assert!(list.allows(ip("2001:db8:1::5")));
        assert!(list.allows(ip("192.0.2.1")));
        assert!(!list.allows(ip("192.0.2.2")));
        assert!(!list.allows(ip("11.0.0.1")));
        assert!(!list.allows(ip("2001:db9::1")));
    }

    #[test]
    fn empty_list_allows_any_address() {
        let list = IpAllowlist::parse::<&str>(&[]).unwrap();
        assert!(list.allows(ip("203.0.113.9")));
        assert!(list.allows(ip("::1")));
    }

    #[test]
    fn bad_entries_name_their_position() {
        for bad in [
            "",
            "10.0.0.0/33",
            "300.1.1.1",
            "example.com",
            "10.0.0.1/",
            "::1/129",
        ] {
            let error = IpAllowlist::parse(&["10.0.0.1", bad]).unwrap_err();
            assert_eq!(error.index, 1, "entry {bad:?}");
        }
    }
}
