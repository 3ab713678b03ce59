//! The admin listener every service serves apart from its public and
//! internal ones (linkerd's shape): `GET /metrics` for Prometheus, `GET
//! /livez` for a liveness probe and `GET /readyz` for a readiness probe.
//!
//! Readiness is the gRPC health service's own answer for the whole server
//! (""), which [`crate::follow_readiness`] keeps in step with the store: one
//! rule for a gRPC probe, an HTTP probe and the `…_ready` gauge, so they
//! never disagree.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::Health;
use tonic_health::server::{HealthReporter, HealthService};

use crate::metrics::Metrics;

/// Whether the service is ready to serve, as its gRPC health says.
#[derive(Debug, Clone)]
pub struct Readiness {
    health: Arc<HealthService>,
}

impl Readiness {
    /// Reads the statuses `reporter` sets (the service's health reporter).
    pub fn new(reporter: HealthReporter) -> Self {
        Self {
            health: Arc::new(HealthService::from_health_reporter(reporter)),
        }
    }

    /// `true` while the whole server ("") reports SERVING: its store answers
    /// and it is not shutting down.
    pub async fn is_ready(&self) -> bool {
        let request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        // An unknown service (never reported) is not ready either.
        self.health
            .check(request)
            .await
            .is_ok_and(|answer| answer.get_ref().status == ServingStatus::Serving as i32)
    }
}

/// The admin listener's routes: `/metrics`, `/livez` and `/readyz`. Nothing
/// here is secret (counts and two words), but none of it is for clients
/// either: keep the listener on loopback or a network only the monitoring
/// reaches.
pub fn admin_router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    let for_metrics = readiness.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                let readiness = for_metrics.clone();
                async move {
                    // Read at scrape time, so the gauge is never stale.
                    metrics.set_ready(readiness.is_ready().await);
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                        .into_response()
                }
            }),
        )
        // Answering at all is the proof of life: a wedged runtime answers
        // nothing and the probe times out. The store is deliberately not
        // asked: restarting a replica during a database outage cannot help.
        .route("/livez", get(|| async { plain(StatusCode::OK, "live\n") }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    if readiness.is_ready().await {
                        plain(StatusCode::OK, "ready\n")
                    } else {
                        plain(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: the store does not answer, or the service is stopping\n",
                        )
                    }
                }
            }),
        )
}

/// A short plain-text answer that no proxy caches.
fn plain(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
