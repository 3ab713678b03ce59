//! The issuer's own metrics, fed by the token service's events.

use std::time::Duration;

use latchkey_runtime::{Metrics, latency_histogram};
use latchkey_token::{Introspection, IssueError, TokenEvents, introspection_label, refusal_label};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// Counters and histograms of issuance, revocation and introspection.
#[derive(Debug, Clone)]
pub(crate) struct IssuerMetrics {
    issued: Counter,
    refused: Family<Reason, Counter>,
    revoked: Counter,
    evicted: Counter,
    issuance_seconds: Histogram,
    introspections: Family<Outcome, Counter>,
    introspection_seconds: Histogram,
    store_errors: Counter,
    usage_flush_lag: Gauge,
    usage_rollups_dropped: Counter,
    usage_rollups_pending: Gauge,
}

impl IssuerMetrics {
    /// Registers the issuer's metrics in `metrics`.
    pub(crate) fn register(metrics: &mut Metrics) -> Self {
        let this = Self {
            issued: Counter::default(),
            refused: Family::default(),
            revoked: Counter::default(),
            evicted: Counter::default(),
            issuance_seconds: latency_histogram(),
            introspections: Family::default(),
            introspection_seconds: latency_histogram(),
            store_errors: Counter::default(),
            usage_flush_lag: Gauge::default(),
            usage_rollups_dropped: Counter::default(),
            usage_rollups_pending: Gauge::default(),
        };
        let registry = metrics.registry_mut();
        registry.register("tokens_issued", "Access tokens issued", this.issued.clone());
        registry.register(
            "tokens_refused",
            "Token requests refused, by reason",
            this.refused.clone(),
        );
        registry.register(
            "tokens_revoked",
            "Access tokens revoked by their client",
            this.revoked.clone(),
        );
        registry.register(
            "tokens_evicted",
            "Live access tokens revoked to make room for a new one (EVICT_OLDEST)",
            this.evicted.clone(),
        );
        registry.register(
            "issuance_seconds",
            "Latency of token issuance",
            this.issuance_seconds.clone(),
        );
        registry.register(
            "introspections",
            "Introspections (all gateways), by outcome",
            this.introspections.clone(),
        );
        registry.register(
            "introspection_seconds",
            "Latency of introspection",
            this.introspection_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Token store operations that failed",
            this.store_errors.clone(),
        );
        registry.register(
            "usage_flush_lag_seconds",
            "Seconds since last uses last reached the registry",
            this.usage_flush_lag.clone(),
        );
        registry.register(
            "usage_rollups_dropped",
            "Token issues and revocations no usage rollup counts: dropped at the cap on pending rollups, or in a batch the registry refused as invalid",
            this.usage_rollups_dropped.clone(),
        );
        registry.register(
            "usage_rollups_pending",
            "Usage rollups held by the issuer: being counted or waiting for the registry",
            this.usage_rollups_pending.clone(),
        );
        this
    }

    /// Follows the usage rollups: `dropped` since start, `pending` now.
    pub(crate) fn set_usage_rollups(&self, dropped: u64, pending: usize) {
        // The counter only moves forward; the rollups' count never falls.
        let counted = self.usage_rollups_dropped.get();
        if dropped > counted {
            self.usage_rollups_dropped.inc_by(dropped - counted);
        }
        self.usage_rollups_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Sets how long ago last uses last reached the registry.
    pub(crate) fn set_usage_flush_lag(&self, lag: Duration) {
        self.usage_flush_lag
            .set(i64::try_from(lag.as_secs()).unwrap_or(i64::MAX));
    }
}

impl TokenEvents for IssuerMetrics {
    fn issuance(&self, outcome: Result<(), &IssueError>, took: Duration) {
        match outcome {
            Ok(()) => {
                self.issued.inc();
            }
            Err(error) => {
                self.refused
                    .get_or_create(&Reason {
                        reason: refusal_label(error),
                    })
                    .inc();
            }
        }
        self.issuance_seconds.observe(took.as_secs_f64());
    }

    fn revoked(&self) {
        self.revoked.inc();
    }

    fn evicted(&self, count: u32) {
        self.evicted.inc_by(u64::from(count));
    }

    fn introspection(&self, answer: Option<&Introspection>, took: Duration) {
        let outcome = answer.map_or("store_error", introspection_label);
        self.introspections
            .get_or_create(&Outcome { outcome })
            .inc();
        self.introspection_seconds.observe(took.as_secs_f64());
    }

    fn store_error(&self) {
        self.store_errors.inc();
    }
}
