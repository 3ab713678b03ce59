//! Addresses as Latchkey's rules see them: the IP allowlist of a credential,
//! and which address a request really comes from when it passed through
//! trusted proxies.

mod allowlist;
mod client_ip;

pub use allowlist::{InvalidEntry, IpAllowlist};
pub use client_ip::TrustedProxies;
