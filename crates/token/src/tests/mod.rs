//! Scenario tests of the token service over a fake registry and store.

mod audit;
mod callers;
mod hash_keys;
mod lockout;
mod reconcile;
mod rollups;
mod store_binding;
mod widening;

use std::net::IpAddr;

use crate::issuer::IssueRequest;
use crate::testing::{CLIENT_ID, SECRET};

/// A token request for [`CLIENT_ID`] with `secret` from `ip`.
fn request(secret: &str, ip: &str) -> IssueRequest {
    IssueRequest {
        client_id: CLIENT_ID.to_owned(),
        client_secret: secret.to_owned(),
        scopes: vec![],
        client_ip: ip.parse::<IpAddr>().unwrap(),
    }
}

/// The right secret from 10.0.0.1.
fn right() -> IssueRequest {
    request(SECRET, "10.0.0.1")
}
