//! The caller's address on a gRPC request.

use std::net::{IpAddr, Ipv4Addr};

use latchkey_net::TrustedProxies;
use tonic::Request;

/// The caller's IP: the peer address, or what trusted proxies forwarded in
/// the `forwarded` / `x-forwarded-for` metadata.
pub fn client_ip<T>(request: &Request<T>, proxies: &TrustedProxies) -> IpAddr {
    // Without a peer address (an in-memory transport) nothing can be
    // vouched for; the unspecified address matches no allowlist entry but
    // 0.0.0.0/0.
    let peer = request
        .remote_addr()
        .map(|address| address.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let metadata = request.metadata();
    let values = |name: &str| {
        metadata
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
    };
    proxies.client_ip(peer, values("forwarded"), values("x-forwarded-for"))
}
