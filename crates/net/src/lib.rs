//! Addresses as Latchkey's rules see them: the IP allowlist of a credential,
//! and which address a request really comes from when it passed through
//! trusted proxies.

mod allowlist;
mod auth_proxy;
mod client_ip;

pub use allowlist::{InvalidEntry, IpAllowlist};
pub use auth_proxy::AuthProxy;
pub use client_ip::TrustedProxies;
