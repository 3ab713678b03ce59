//! The Redis store's introspection cache on `/metrics`.
//!
//! A collector rather than counters fed from elsewhere: the cache already
//! keeps its own counters, so reading them at scrape time is exact and
//! needs no polling task or second copy of the numbers.

use std::sync::Arc;

use latchkey_runtime::Metrics;
use latchkey_token_store::RedisTokenStore;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Registers the cache's metrics when `store` has the cache (standalone
/// Redis with `cache_capacity > 0`). Whether it has one is fixed when the
/// store is made, so a disabled cache (Redis Cluster, capacity 0) exports
/// nothing rather than a set of zeros that would look like an idle cache.
pub(crate) fn register(metrics: &mut Metrics, store: Arc<RedisTokenStore>) {
    if store.cache_stats().is_some() {
        metrics
            .registry_mut()
            .register_collector(Box::new(CacheCollector { store }));
    }
}

#[derive(Debug)]
struct CacheCollector {
    store: Arc<RedisTokenStore>,
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(stats) = self.store.cache_stats() else {
            return Ok(());
        };
        // Counters get `_total` appended by the encoder.
        encode(
            &mut encoder,
            "introspection_cache_hits",
            "Token and policy lookups answered from the introspection cache",
            &ConstCounter::new(stats.hits),
        )?;
        encode(
            &mut encoder,
            "introspection_cache_misses",
            "Token and policy lookups that had to read Redis",
            &ConstCounter::new(stats.misses),
        )?;
        encode(
            &mut encoder,
            "introspection_cache_drops",
            "Times the whole introspection cache was emptied (broken invalidation channel, flush, new tracking connection)",
            &ConstCounter::new(stats.drops),
        )?;
        encode(
            &mut encoder,
            "introspection_cache_entries",
            "Tokens and policies held in the introspection cache (read or in flight)",
            &ConstGauge::new(stats.entries),
        )?;
        encode(
            &mut encoder,
            "introspection_cache_live",
            "1 while the invalidation channel is up and the cache serves; 0 while it is bypassed",
            &ConstGauge::new(i64::from(stats.live)),
        )
    }
}

fn encode(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}
