//! `GET /auth/check` for NGINX `auth_request` and Traefik `forwardAuth`
//! (being written).

use axum::http::StatusCode;

pub(crate) async fn check() -> StatusCode {
    StatusCode::NOT_IMPLEMENTED
}
