//! The credential registry's management API over HTTP/JSON.
//!
//! Every `CredentialRegistry` RPC is served generically, Connect-style:
//! `POST /latchkey.registry.v1.CredentialRegistry/<Method>` with the request
//! message in the proto3 JSON mapping answers the response message in the
//! same mapping. Nothing here knows one RPC from another: the JSON is
//! turned into protobuf through the descriptors the protos were compiled to
//! ([`latchkey_proto::FILE_DESCRIPTOR_SET`]) and handed, as an in-process
//! gRPC request, to the **same** tower service the gRPC listener serves.
//! Authentication, acting on behalf of a member, authorization, validation
//! and audit are therefore exactly the gRPC ones, and a new RPC is on HTTP
//! (and in the OpenAPI document) as soon as it is in the proto.
//!
//! Also served: `GET /openapi.json` ([`openapi::document`]). Every answer
//! carries the security headers of [`headers`]; CORS is off unless origins
//! are configured.

mod call;
mod descriptors;
mod error;
mod headers;
pub mod openapi;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tower::util::BoxCloneSyncService;

pub use error::{ApiError, connect_code, http_status};

/// Where the API's methods live: `/<SERVICE_NAME>/<Method>`.
pub const SERVICE_NAME: &str = "latchkey.registry.v1.CredentialRegistry";

/// Largest JSON request body accepted. The largest request (a credential
/// with its allowed APIs and IPs) is a few KiB; the gRPC listener's own
/// message limit is larger, so this one speaks first, with a clear 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The gRPC service the API calls in-process: the `CredentialRegistry`
/// server behind its authentication layer, as the gRPC listener serves it.
pub type GrpcService = BoxCloneSyncService<
    tonic::codegen::http::Request<tonic::body::Body>,
    tonic::codegen::http::Response<tonic::body::Body>,
    Infallible,
>;

/// What the HTTP/JSON API is built from.
#[derive(Debug, Clone)]
pub struct HttpApi {
    /// The `CredentialRegistry` service, authentication included.
    pub service: GrpcService,
    /// The OAuth token endpoint management clients get their tokens from
    /// (the console needs it to sign in).
    pub token_endpoint: String,
    /// Origins allowed to call the API from a browser; none turns CORS off.
    pub cors: Option<tower_http::cors::CorsLayer>,
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct ApiState {
    pub(crate) service: GrpcService,
}

/// The API's routes, with `console` (if any) merged in: its routes are
/// served beside the API's and its fallback answers every other path.
/// Serve with `latchkey_runtime::serve_http`, which gives handlers the
/// peer address (management tokens are bound to addresses).
///
/// Every API answer is marked `Cache-Control: no-store` and carries a
/// `default-src 'none'` Content-Security-Policy; the console's pages set
/// their own policy, which is kept.
pub fn router(api: HttpApi, console: Option<Router>) -> Router {
    let state = Arc::new(ApiState {
        service: api.service,
    });
    let api_routes = Router::new()
        .route(&format!("/{SERVICE_NAME}/{{method}}"), post(call::call))
        .route("/openapi.json", get(openapi::serve))
        .with_state(state)
        .layer(axum::middleware::map_response(headers::api_headers));
    // Paths neither serves are the API's JSON 404, console or not.
    let mut app = match console {
        Some(console) => api_routes.merge(console),
        None => api_routes,
    }
    .fallback(error::no_such_path);
    app = app.layer(axum::middleware::map_response(headers::security_headers));
    match api.cors {
        Some(cors) => app.layer(cors),
        None => app,
    }
}
