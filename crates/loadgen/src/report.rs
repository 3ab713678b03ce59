//! Measurements and their report: latency histograms, request rates, ratios
//! to the floors, targets, and the readable table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Longest latency a histogram records (longer ones are clamped): 60 s.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A new latency histogram in nanoseconds, 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    #[allow(clippy::unwrap_used)] // Constant, valid bounds.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).unwrap()
}

/// Records one latency, clamped into the histogram's range.
pub(crate) fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let nanos = u64::try_from(latency.as_nanos()).unwrap_or(MAX_LATENCY_NS);
    histogram.saturating_record(nanos.clamp(1, MAX_LATENCY_NS));
}

/// What one closed-loop run measured.
#[derive(Debug, Clone)]
pub(crate) struct Measurement {
    /// Requests started in the measured window.
    pub(crate) requests: u64,
    /// The measured window.
    pub(crate) elapsed: Duration,
    /// Latency of every request started in the window (successes and errors).
    pub(crate) latency: Histogram<u64>,
    /// Failed requests by kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// CPU seconds each process used in the window.
    pub(crate) cpu_seconds: Vec<(String, f64)>,
}

impl Measurement {
    /// Requests per second over the measured window.
    pub(crate) fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds <= 0.0 {
            0.0
        } else {
            self.requests as f64 / seconds
        }
    }

    /// Latency at `quantile` (0–1) in milliseconds.
    pub(crate) fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(quantile) as f64 / 1e6
    }
}

/// One measured run of one side of a comparison, whichever loader drove it.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Sample {
    /// Requests per second.
    pub(crate) rate: f64,
    /// Median latency, milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub(crate) p99_ms: f64,
    /// Requests measured.
    pub(crate) requests: u64,
    /// Failed requests by kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// CPU microseconds per request, by process (`loader` is the client).
    pub(crate) cpu_us_per_request: Vec<(String, f64)>,
}

impl Sample {
    /// Failed requests.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl From<&Measurement> for Sample {
    fn from(measurement: &Measurement) -> Self {
        Self {
            rate: measurement.rate(),
            p50_ms: measurement.quantile_ms(0.50),
            p99_ms: measurement.quantile_ms(0.99),
            requests: measurement.requests,
            errors: measurement.errors.clone(),
            cpu_us_per_request: measurement
                .cpu_seconds
                .iter()
                .filter(|_| measurement.requests > 0)
                .map(|(name, seconds)| (name.clone(), seconds * 1e6 / measurement.requests as f64))
                .collect(),
        }
    }
}

/// Memory the store needed per live token.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MemoryRow {
    /// The stack.
    pub(crate) stack: String,
    /// Live tokens loaded.
    pub(crate) live_tokens: usize,
    /// How long loading the last batch took, seconds.
    pub(crate) load_seconds: f64,
    /// Tokens issued per second while loading.
    pub(crate) load_rate: f64,
    /// Tokens that could not be loaded.
    pub(crate) load_errors: u64,
    /// Redis `used_memory` growth per token (production).
    pub(crate) redis_bytes_per_token: Option<f64>,
    /// Token issuer resident memory growth per token.
    pub(crate) issuer_rss_bytes_per_token: Option<f64>,
    /// Whether Redis stays under 250 bytes per token.
    pub(crate) met: Option<bool>,
}

/// Redis bytes per token the design allows.
pub(crate) const MAX_REDIS_BYTES_PER_TOKEN: f64 = 250.0;

/// `(after - before) / tokens`.
pub(crate) fn bytes_per_token(before: u64, after: u64, tokens: usize) -> Option<f64> {
    if tokens == 0 {
        return None;
    }
    Some((after as f64 - before as f64) / tokens as f64)
}

pub(crate) fn thousands(value: f64) -> String {
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

pub(crate) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0))
}

pub(crate) fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The memory table.
pub(crate) fn render_memory(rows: &[MemoryRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>10} {:>9} {:>9} {:>7} {:>13} {:>15} {:>4}",
        "live tokens",
        "load s",
        "load/s",
        "load err",
        "",
        "redis B/token",
        "issuer RSS B/tk",
        "met"
    );
    for row in rows {
        let bytes =
            |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "{:<12} {:>10.1} {:>9} {:>9} {:>7} {:>13} {:>15} {:>4}",
            thousands(row.live_tokens as f64),
            row.load_seconds,
            thousands(row.load_rate),
            row.load_errors,
            "",
            bytes(row.redis_bytes_per_token),
            bytes(row.issuer_rss_bytes_per_token),
            yes_no(row.met),
        );
    }
    out
}

/// Mean of one latency histogram of a service's Prometheus metrics.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct LatencyMean {
    /// `service metric{labels}`.
    pub(crate) name: String,
    /// Observations.
    pub(crate) count: u64,
    /// Mean, milliseconds.
    pub(crate) mean_ms: f64,
}

/// The means (`_sum / _count`) of every `*_seconds` histogram in a
/// Prometheus text exposition, series with no observation left out.
pub(crate) fn latency_means(service: &str, text: &str) -> Vec<LatencyMean> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = series.split_once('{').map_or((series, ""), |(m, l)| (m, l));
        let labels = labels.trim_end_matches('}');
        if let Some(base) = metric.strip_suffix("_seconds_sum") {
            if let Ok(value) = value.parse::<f64>() {
                sums.insert(format!("{base}{{{labels}}}"), value);
            }
        } else if let Some(base) = metric.strip_suffix("_seconds_count")
            && let Ok(value) = value.parse::<f64>()
        {
            counts.insert(format!("{base}{{{labels}}}"), value as u64);
        }
    }
    counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .filter_map(|(key, count)| {
            let sum = sums.get(&key)?;
            Some(LatencyMean {
                name: format!("{service} {}", key.replace("{}", "")),
                count,
                mean_ms: sum * 1000.0 / count as f64,
            })
        })
        .collect()
}

/// `1000` → `1k`, `1000000` → `1M`.
pub(crate) fn short_count(count: usize) -> String {
    if count >= 1_000_000 && count.is_multiple_of(1_000_000) {
        format!("{}M", count / 1_000_000)
    } else if count >= 1_000 && count.is_multiple_of(1_000) {
        format!("{}k", count / 1_000)
    } else {
        count.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(latencies_us: &[u64], seconds: u64) -> Measurement {
        let mut latency = new_histogram();
        for &us in latencies_us {
            record(&mut latency, Duration::from_micros(us));
        }
        Measurement {
            requests: latencies_us.len() as u64,
            elapsed: Duration::from_secs(seconds),
            latency,
            errors: BTreeMap::new(),
            cpu_seconds: vec![("issuer".to_owned(), 0.5)],
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        // 1..=1000 µs: p50 ≈ 500 µs, p99 ≈ 990 µs, p99.9 ≈ 999 µs.
        let latencies: Vec<u64> = (1..=1000).collect();
        let m = measurement(&latencies, 2);
        assert!((m.rate() - 500.0).abs() < 1e-9);
        assert!(
            (m.quantile_ms(0.5) - 0.5).abs() < 0.001,
            "{}",
            m.quantile_ms(0.5)
        );
        assert!((m.quantile_ms(0.99) - 0.99).abs() < 0.001);
        assert!((m.quantile_ms(0.999) - 0.999).abs() < 0.001);
    }

    #[test]
    fn an_empty_measurement_reports_zeros() {
        let m = measurement(&[], 0);
        assert_eq!(m.rate(), 0.0);
        assert_eq!(m.quantile_ms(0.99), 0.0);
    }

    #[test]
    fn latency_means_from_prometheus_text() {
        let text = "# HELP x\n\
            latchkey_issuer_grpc_request_seconds_sum{rpc=\"Introspect\"} 2.0\n\
            latchkey_issuer_grpc_request_seconds_count{rpc=\"Introspect\"} 1000\n\
            latchkey_issuer_grpc_request_seconds_bucket{rpc=\"Introspect\",le=\"0.005\"} 1000\n\
            latchkey_issuer_issuance_seconds_sum 0.0\n\
            latchkey_issuer_issuance_seconds_count 0\n";
        assert_eq!(
            latency_means("issuer", text),
            vec![LatencyMean {
                name: "issuer latchkey_issuer_grpc_request{rpc=\"Introspect\"}".to_owned(),
                count: 1000,
                mean_ms: 2.0,
            }]
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(short_count(1_000_000), "1M");
        assert_eq!(short_count(100_000), "100k");
        assert_eq!(short_count(1_500), "1500");
    }
}
