//! Latchkey's web console: dependency-free HTML, CSS and JavaScript modules
//! embedded in the binary and served by the credential registry's HTTP
//! listener beside the JSON API, on the same origin.
//!
//! The page signs in at the token issuer (cross-origin, the one origin its
//! Content-Security-Policy lets it connect to besides its own), keeps the
//! token in memory only and calls the JSON API with it. Nothing here holds
//! state: every answer is a file compiled into the binary or the
//! configuration the page needs ([`ConsoleSettings`]).

mod assets;
mod headers;
mod settings;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use settings::{ConsoleSettings, InvalidTokenEndpoint};

#[cfg(test)]
use {http_body_util as _, tokio as _, tower as _};

/// The console's routes: `GET /` (the page), `GET /console/<file>` (its
/// scripts and style sheet) and `GET /console/config.json` (what the page
/// needs to know of the server). Every answer carries the console's
/// security headers; merge it into the registry's HTTP router.
pub fn router(settings: ConsoleSettings) -> Router {
    let policy = headers::SecurityHeaders::new(&settings);
    let config = settings.config_json();
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route(
            "/console/config.json",
            get(move || {
                let config = config.clone();
                async move { headers::config_response(config) }
            }),
        )
        .route("/console/{file}", get(asset))
        .layer(axum::middleware::map_response(move |response: Response| {
            let policy = policy.clone();
            async move { policy.apply(response) }
        }))
}

async fn index(request_headers: HeaderMap) -> Response {
    assets::INDEX.respond(&request_headers)
}

async fn asset(Path(file): Path<String>, request_headers: HeaderMap) -> Response {
    match assets::find(&file) {
        Some(asset) => asset.respond(&request_headers),
        None => (StatusCode::NOT_FOUND, "no such console file\n").into_response(),
    }
}

#[cfg(test)]
mod tests;
