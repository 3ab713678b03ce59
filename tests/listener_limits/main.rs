//! Listener limits with real sockets (DESIGN rule 12): slow, silent, idle
//! and greedy clients against `serve_http` and a tonic server built from
//! `ListenerLimits`. Every deadline is a second or two, so each test takes
//! seconds; each asserts the cut-off came neither early nor late.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod grpc;
mod h2c;
mod http;
mod support;
mod tls;
