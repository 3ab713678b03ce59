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

    /// Failed requests.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// `value / floor`, when there is a floor.
pub(crate) fn ratio(value: f64, floor: Option<f64>) -> Option<f64> {
    match floor {
        Some(floor) if floor > 0.0 => Some(value / floor),
        _ => None,
    }
}

/// A goal a figure is held to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub(crate) enum Target {
    /// At least this share of the floor's rate and, when given, a p99 below
    /// this many milliseconds.
    FloorShare {
        /// Minimum `rate / floor`.
        min_ratio: f64,
        /// Maximum p99, milliseconds.
        max_p99_ms: Option<f64>,
    },
}

impl Target {
    /// Whether `row` meets the target (`None` when it cannot tell: no floor).
    pub(crate) fn met(&self, rate_ratio: Option<f64>, p99_ms: f64) -> Option<bool> {
        match *self {
            Self::FloorShare {
                min_ratio,
                max_p99_ms,
            } => {
                let ratio = rate_ratio?;
                Some(ratio >= min_ratio && max_p99_ms.is_none_or(|max| p99_ms < max))
            }
        }
    }

    fn describe(&self) -> String {
        match *self {
            Self::FloorShare {
                min_ratio,
                max_p99_ms: None,
            } => format!(">={:.0}%", min_ratio * 100.0),
            Self::FloorShare {
                min_ratio,
                max_p99_ms: Some(max),
            } => format!(">={:.0}% p99<{max}ms", min_ratio * 100.0),
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// The stack (`production`, `embedded`).
    pub(crate) stack: String,
    /// What was driven.
    pub(crate) scenario: String,
    /// Live tokens in the store while it ran, when it matters.
    pub(crate) live_tokens: Option<usize>,
    /// Requests per second.
    pub(crate) rate: f64,
    /// Latency percentiles, milliseconds.
    pub(crate) p50_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// 99.9th percentile.
    pub(crate) p999_ms: f64,
    /// Requests measured.
    pub(crate) requests: u64,
    /// Failed requests.
    pub(crate) errors: u64,
    /// Failed requests by kind.
    pub(crate) error_kinds: BTreeMap<String, u64>,
    /// The floor it is compared with, and its rate.
    pub(crate) floor: Option<String>,
    /// `rate / floor rate`.
    pub(crate) ratio: Option<f64>,
    /// `rate / store floor rate` (the Redis GET loop), production only.
    pub(crate) store_ratio: Option<f64>,
    /// The goal, if any.
    pub(crate) target: Option<Target>,
    /// Whether the goal is met.
    pub(crate) met: Option<bool>,
    /// CPU microseconds per request, by process.
    pub(crate) cpu_us_per_request: Vec<(String, f64)>,
}

impl Row {
    /// A floor's own row: compared with nothing, no target.
    pub(crate) fn floor(
        stack: &str,
        scenario: &str,
        live_tokens: Option<usize>,
        measured: &Measurement,
    ) -> Self {
        Self::new(stack, scenario, live_tokens, measured, None, None, None)
    }

    /// A row from a measurement, compared with `floor` (name, rate).
    pub(crate) fn new(
        stack: &str,
        scenario: &str,
        live_tokens: Option<usize>,
        measurement: &Measurement,
        floor: Option<(&str, f64)>,
        store_floor: Option<f64>,
        target: Option<Target>,
    ) -> Self {
        let rate = measurement.rate();
        let p99_ms = measurement.quantile_ms(0.99);
        let floor_ratio = ratio(rate, floor.map(|(_, rate)| rate));
        Self {
            stack: stack.to_owned(),
            scenario: scenario.to_owned(),
            live_tokens,
            rate,
            p50_ms: measurement.quantile_ms(0.50),
            p99_ms,
            p999_ms: measurement.quantile_ms(0.999),
            requests: measurement.requests,
            errors: measurement.error_count(),
            error_kinds: measurement.errors.clone(),
            floor: floor.map(|(name, _)| name.to_owned()),
            ratio: floor_ratio,
            store_ratio: ratio(rate, store_floor),
            target,
            met: target.and_then(|target| target.met(floor_ratio, p99_ms)),
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

fn thousands(value: f64) -> String {
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

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |ratio| format!("{:.0}%", ratio * 100.0))
}

fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "-",
    }
}

/// The table of `rows`, one line each, then the error kinds of rows that
/// had errors.
pub(crate) fn render_table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<38} {:>10} {:>8} {:>8} {:>8} {:>7}  {:<11} {:>6} {:>6}  {:<16} {:>3}",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "floor",
        "ratio",
        "/redis",
        "target",
        "met"
    );
    for row in rows {
        let name = match row.live_tokens {
            Some(tokens) => format!("{} @{}", row.scenario, short_count(tokens)),
            None => row.scenario.clone(),
        };
        let _ = writeln!(
            out,
            "{:<38} {:>10} {:>8.3} {:>8.3} {:>8.3} {:>7}  {:<11} {:>6} {:>6}  {:<16} {:>3}",
            name,
            thousands(row.rate),
            row.p50_ms,
            row.p99_ms,
            row.p999_ms,
            row.errors,
            row.floor.as_deref().unwrap_or("-"),
            percent(row.ratio),
            percent(row.store_ratio),
            row.target.map_or_else(|| "-".to_owned(), |t| t.describe()),
            yes_no(row.met),
        );
    }
    for row in rows.iter().filter(|row| row.errors > 0) {
        let kinds: Vec<String> = row
            .error_kinds
            .iter()
            .map(|(kind, count)| format!("{kind}: {count}"))
            .collect();
        let _ = writeln!(out, "  errors in {}: {}", row.scenario, kinds.join(", "));
    }
    out
}

/// CPU microseconds per request of each process, one line per row: where
/// the time goes.
pub(crate) fn render_cpu(rows: &[Row]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        for (name, _) in &row.cpu_us_per_request {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut out = String::new();
    let _ = write!(out, "{:<38}", "CPU µs per request");
    for name in &names {
        let _ = write!(out, " {name:>9}");
    }
    let _ = writeln!(out, " {:>9}", "total");
    for row in rows {
        let name = match row.live_tokens {
            Some(tokens) => format!("{} @{}", row.scenario, short_count(tokens)),
            None => row.scenario.clone(),
        };
        let _ = write!(out, "{name:<38}");
        let mut total = 0.0;
        for wanted in &names {
            match row
                .cpu_us_per_request
                .iter()
                .find(|(name, _)| name == wanted)
            {
                Some((_, us)) => {
                    total += us;
                    let _ = write!(out, " {us:>9.1}");
                }
                None => {
                    let _ = write!(out, " {:>9}", "-");
                }
            }
        }
        let _ = writeln!(out, " {total:>9.1}");
    }
    out
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

/// Introspection at each token count relative to the smallest count:
/// "flat from 1 thousand to 1 million live tokens". Compared as ratios to
/// the floor measured at the same count (falling back to raw rates), so
/// what the bench's own client pays for drawing from a larger pool, and
/// any drift of the machine during a long run, cancel out.
pub(crate) fn flatness(rows: &[Row], scenario: &str) -> Vec<(usize, f64)> {
    let mut points: Vec<(usize, f64)> = rows
        .iter()
        .filter(|row| row.scenario == scenario)
        .filter_map(|row| {
            row.live_tokens
                .map(|tokens| (tokens, row.ratio.unwrap_or(row.rate)))
        })
        .collect();
    points.sort_by_key(|(tokens, _)| *tokens);
    let Some(&(_, first)) = points.first() else {
        return Vec::new();
    };
    points
        .into_iter()
        .map(|(tokens, rate)| (tokens, if first > 0.0 { rate / first } else { 0.0 }))
        .collect()
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
    fn ratios_and_targets() {
        assert_eq!(ratio(70.0, Some(100.0)), Some(0.7));
        assert_eq!(ratio(70.0, None), None);
        assert_eq!(ratio(70.0, Some(0.0)), None);
        let target = Target::FloorShare {
            min_ratio: 0.7,
            max_p99_ms: Some(2.0),
        };
        assert_eq!(target.met(Some(0.7), 1.9), Some(true));
        assert_eq!(target.met(Some(0.69), 1.0), Some(false));
        assert_eq!(target.met(Some(0.9), 2.0), Some(false));
        assert_eq!(target.met(None, 1.0), None);
    }

    #[test]
    fn rows_compare_with_their_floor() {
        let m = measurement(&[100; 700], 1);
        let row = Row::new(
            "embedded",
            "introspect",
            Some(1000),
            &m,
            Some(("echo", 1000.0)),
            Some(350.0),
            Some(Target::FloorShare {
                min_ratio: 0.7,
                max_p99_ms: Some(2.0),
            }),
        );
        assert_eq!(row.ratio, Some(0.7));
        assert_eq!(row.store_ratio, Some(2.0));
        assert_eq!(row.met, Some(true));
        // 0.5 CPU seconds over 700 requests.
        assert!((row.cpu_us_per_request[0].1 - 714.285).abs() < 0.01);
        assert!(render_cpu(std::slice::from_ref(&row)).contains("714.3"));
        let table = render_table(&[row]);
        assert!(table.contains("introspect @1k"), "{table}");
        assert!(table.contains("70%"), "{table}");
    }

    #[test]
    fn memory_and_flatness() {
        assert_eq!(bytes_per_token(1000, 3000, 10), Some(200.0));
        assert_eq!(bytes_per_token(1000, 3000, 0), None);
        let m1 = measurement(&[100; 1000], 1);
        let m2 = measurement(&[100; 900], 1);
        let rows = vec![
            Row::new("e", "v", Some(100_000), &m2, None, None, None),
            Row::new("e", "v", Some(1_000), &m1, None, None, None),
        ];
        assert_eq!(flatness(&rows, "v"), vec![(1_000, 1.0), (100_000, 0.9)]);
        // With floors, ratios are compared: here the floor fell as much as
        // the rate, so the service itself stayed flat.
        let rows = vec![
            Row::new("e", "v", Some(1_000), &m1, Some(("f", 2000.0)), None, None),
            Row::new(
                "e",
                "v",
                Some(100_000),
                &m2,
                Some(("f", 1800.0)),
                None,
                None,
            ),
        ];
        let points = flatness(&rows, "v");
        assert_eq!(points[0], (1_000, 1.0));
        assert!((points[1].1 - 1.0).abs() < 1e-9, "{points:?}");
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
