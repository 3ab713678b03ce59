//! The receiving side: a tower layer for tonic and axum servers that lets a
//! request through only with a bearer token Latchkey's introspection
//! accepts for this caller's address and this route's scopes.
//!
//! ```no_run
//! # use latchkey_client::server::{AccessRules, Introspector, LatchkeyAuthLayer};
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let latchkey = tonic::transport::Endpoint::from_static("http://latchkey:50051").connect_lazy();
//! // This service's own credential, holding `tokens:introspect`.
//! let introspector = Introspector::new(latchkey, "lkc_inventory", "lks_...".to_owned());
//! let rules = AccessRules::new()
//!     .route("/shop.Inventory/", ["inventory.read"])
//!     .route("/shop.Inventory/Reserve", ["inventory.write"]);
//! let server = tonic::transport::Server::builder()
//!     .layer(LatchkeyAuthLayer::new(introspector, rules));
//! // server.add_service(InventoryServer::new(..)).serve(address).await?;
//! // In a method: request.extensions().get::<latchkey_client::server::Identity>()
//! # let _ = server;
//! # Ok(()) }
//! ```
//!
//! For axum, `Router::layer(LatchkeyAuthLayer::new(..))` and serve with
//! `into_make_service_with_connect_info::<SocketAddr>()` (feature `axum`);
//! a handler takes `axum::Extension<Identity>`. `examples/inventory.rs`
//! shows it whole.
//!
//! Answers, like Latchkey's gateway endpoints: no or bad token → 401 /
//! `UNAUTHENTICATED`; a scope or a caller address the credential may not use,
//! or a path without a rule → 403 / `PERMISSION_DENIED`; Latchkey
//! unreachable or refusing this service's own credential → 503 /
//! `UNAVAILABLE` (fail closed: the request never reaches the handler).
//! HTTP refusals carry the RFC 6750 `WWW-Authenticate` challenge.

mod identity;
mod introspector;
mod layer;
mod reject;
mod rules;

pub use identity::Identity;
pub use introspector::{InactiveReason, IntrospectionUnavailable, Introspector, Verdict};
pub use layer::{LatchkeyAuth, LatchkeyAuthLayer};
pub use rules::AccessRules;
