//! `latchkey-client` against the real services, in-process on ephemeral
//! ports: the token source (refresh, single flight, backoff, refusals,
//! `Retry-After`), the bearer layer and middleware, the service layer that
//! checks callers through introspection, and the `orders` → `inventory`
//! examples.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod bearer;
mod examples;
mod middleware;
mod service_layer;
mod support;
mod token_source;
