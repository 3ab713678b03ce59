//! Sustained mixed load: wrk drives `POST /oauth2/token` (and, beside it,
//! `POST /oauth2/introspect`) on the production stack for N minutes while
//! management calls churn credentials and the bench samples, every
//! interval, what must stay flat: the registry's and the issuer's resident
//! memory, the bench schema's and the whole database's size in PostgreSQL,
//! Redis `used_memory`. Flat means the last sample within 10% of the start
//! (the first sample after the first minute, once caches and pools have
//! filled).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::process::Command;
use tokio::time::Instant;

use crate::external::{PostLoad, WrkShape, parse_wrk, wrk_script};
use crate::report::Sample;
use crate::stack::{Stack, redis_used_memory, resident_bytes};

/// The metrics of a soak, in the order they are printed.
pub(crate) const METRICS: [&str; 5] = [
    "registry RSS",
    "issuer RSS",
    "PostgreSQL schema",
    "PostgreSQL database",
    "Redis used_memory",
];

/// One sampling instant: seconds since the start, and each of [`METRICS`]
/// in bytes (`None` when it could not be read).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Point {
    /// Seconds since issuance started.
    pub(crate) seconds: f64,
    /// Bytes, in the order of [`METRICS`].
    pub(crate) bytes: [Option<u64>; 5],
}

/// How much a metric may grow from the start to the end and still be flat.
pub(crate) const FLAT_GROWTH: f64 = 0.10;

/// Seconds of warm-up before the sample a soak's growth is measured from.
const WARM_UP_SECONDS: f64 = 60.0;

/// First, last and largest value of one metric, and its least-squares
/// slope.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Trend {
    /// The metric.
    pub(crate) metric: &'static str,
    /// Bytes at the first sample.
    pub(crate) first: u64,
    /// Bytes at the start: the first sample after [`WARM_UP_SECONDS`] (the
    /// first sample in a shorter soak).
    pub(crate) start: u64,
    /// Whether the last sample is within [`FLAT_GROWTH`] of `start`.
    pub(crate) flat: bool,
    /// Bytes at the last sample.
    pub(crate) last: u64,
    /// The most bytes seen.
    pub(crate) max: u64,
    /// Least-squares slope, bytes per minute.
    pub(crate) bytes_per_minute: f64,
}

/// What a soak measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SoakReport {
    /// Minutes of issuance.
    pub(crate) minutes: f64,
    /// Every sample.
    pub(crate) points: Vec<Point>,
    /// One trend per metric.
    pub(crate) trends: Vec<Trend>,
    /// wrk's figures over the whole soak.
    pub(crate) issuance: Sample,
    /// wrk's introspection figures, when it ran beside issuance.
    pub(crate) introspection: Option<Sample>,
    /// Management cycles done and calls failed, when they ran.
    pub(crate) management: Option<(u64, u64)>,
}

/// Least-squares slope of `(x, y)` points (`None` under two distinct xs).
pub(crate) fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n;
    let covariance: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let variance: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    (variance > 0.0).then(|| covariance / variance)
}

/// The trend of each metric over `points`.
pub(crate) fn trends(points: &[Point]) -> Vec<Trend> {
    METRICS
        .into_iter()
        .enumerate()
        .filter_map(|(index, metric)| {
            let series: Vec<(f64, u64)> = points
                .iter()
                .filter_map(|point| Some((point.seconds, point.bytes[index]?)))
                .collect();
            let (_, first) = *series.first()?;
            let (_, last) = *series.last()?;
            let start = series
                .iter()
                .find(|(seconds, _)| *seconds >= WARM_UP_SECONDS)
                .filter(|(seconds, _)| *seconds < series.last().map_or(0.0, |(at, _)| *at))
                .map_or(first, |(_, bytes)| *bytes);
            let as_minutes: Vec<(f64, f64)> = series
                .iter()
                .map(|(seconds, bytes)| (seconds / 60.0, *bytes as f64))
                .collect();
            Some(Trend {
                metric,
                first,
                start,
                flat: last as f64 <= start as f64 * (1.0 + FLAT_GROWTH),
                last,
                max: series.iter().map(|(_, bytes)| *bytes).max()?,
                bytes_per_minute: slope(&as_minutes).unwrap_or(0.0),
            })
        })
        .collect()
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".to_owned(),
        |b| format!("{:.1}", b as f64 / 1_048_576.0),
    )
}

/// The samples and the trends, in MiB.
pub(crate) fn render(report: &SoakReport) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:>8}", "seconds");
    for metric in METRICS {
        let _ = write!(out, " {:>20}", format!("{metric} MiB"));
    }
    out.push('\n');
    for point in &report.points {
        let _ = write!(out, "{:>8.0}", point.seconds);
        for bytes in point.bytes {
            let _ = write!(out, " {:>20}", mib(bytes));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:>10} {:>10} {:>10} {:>10} {:>14} {:>6}",
        "", "first MiB", "start MiB", "last MiB", "max MiB", "slope MiB/min", "flat"
    );
    for trend in &report.trends {
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>10} {:>10} {:>14.2} {:>6}",
            trend.metric,
            mib(Some(trend.first)),
            mib(Some(trend.start)),
            mib(Some(trend.last)),
            mib(Some(trend.max)),
            trend.bytes_per_minute / 1_048_576.0,
            if trend.flat { "yes" } else { "NO" }
        );
    }
    let _ = writeln!(
        out,
        "(start: the first sample after {WARM_UP_SECONDS:.0} s; flat: last ≤ start + {:.0}%)",
        FLAT_GROWTH * 100.0
    );
    out
}

async fn sample_now(
    stack: &Stack,
    redis: Option<&mut redis::aio::ConnectionManager>,
    seconds: f64,
) -> Point {
    let postgres = stack.postgres_sizes().await.ok().flatten();
    let redis_bytes = match redis {
        Some(connection) => redis_used_memory(connection).await.ok(),
        None => None,
    };
    Point {
        seconds,
        bytes: [
            stack.registry_pid().and_then(resident_bytes),
            stack.issuer_pid().and_then(resident_bytes),
            postgres.map(|(_, schema)| schema),
            postgres.map(|(database, _)| database),
            redis_bytes,
        ],
    }
}

/// Drives `load` with wrk for `minutes`, sampling every `interval`; prints
/// each sample as it comes.
pub(crate) async fn run(
    stack: &Stack,
    shape: WrkShape,
    load: &PostLoad,
    introspection: Option<&PostLoad>,
    minutes: f64,
    interval: Duration,
    dir: &Path,
) -> anyhow::Result<SoakReport> {
    let script = dir.join("soak.lua");
    std::fs::write(&script, wrk_script(load))?;
    let mut redis = match &stack.redis {
        Some(server) => Some(
            redis::aio::ConnectionManager::new(redis::Client::open(server.url.as_str())?).await?,
        ),
        None => None,
    };
    let seconds = (minutes * 60.0).ceil().max(1.0);
    let mut wrk = start_wrk(shape, seconds, &script, &load.url)?;
    let introspecting = match introspection {
        Some(introspection) => {
            let script = dir.join("soak-introspect.lua");
            std::fs::write(&script, wrk_script(introspection))?;
            Some(start_wrk(shape, seconds, &script, &introspection.url)?)
        }
        None => None,
    };
    let started = Instant::now();
    let mut points = vec![sample_now(stack, redis.as_mut(), 0.0).await];
    eprintln!("  .. soak: {minutes} min of issuance, a sample every {interval:?}");
    let mut next = started + interval;
    loop {
        tokio::select! {
            _ = wrk.wait() => break,
            () = tokio::time::sleep_until(next) => {
                let point = sample_now(stack, redis.as_mut(), started.elapsed().as_secs_f64()).await;
                eprintln!(
                    "  .. soak {:>5.0} s: registry {} MiB, issuer {} MiB, schema {} MiB, Redis {} MiB",
                    point.seconds,
                    mib(point.bytes[0]),
                    mib(point.bytes[1]),
                    mib(point.bytes[2]),
                    mib(point.bytes[4])
                );
                points.push(point);
                next += interval;
            }
        }
    }
    // The last sample, unless one was just taken.
    let elapsed = started.elapsed().as_secs_f64();
    if points
        .last()
        .is_none_or(|last| elapsed - last.seconds > 1.0)
    {
        points.push(sample_now(stack, redis.as_mut(), elapsed).await);
    }
    let output = wrk.wait_with_output().await?;
    let issuance = parse_wrk(&String::from_utf8_lossy(&output.stdout))?;
    let introspection = match introspecting {
        Some(wrk) => {
            let output = wrk.wait_with_output().await?;
            Some(parse_wrk(&String::from_utf8_lossy(&output.stdout))?)
        }
        None => None,
    };
    Ok(SoakReport {
        minutes,
        trends: trends(&points),
        points,
        issuance,
        introspection,
        management: None,
    })
}

fn start_wrk(
    shape: WrkShape,
    seconds: f64,
    script: &Path,
    url: &str,
) -> anyhow::Result<tokio::process::Child> {
    Command::new("wrk")
        .arg(format!("-t{}", shape.threads))
        .arg(format!("-c{}", shape.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start wrk (scripts/bench installs it)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_are_least_squares() {
        let line: Vec<(f64, f64)> = (0..10)
            .map(|x| (f64::from(x), 3.0 * f64::from(x) + 7.0))
            .collect();
        assert!((slope(&line).expect("slope") - 3.0).abs() < 1e-9);
        assert_eq!(slope(&[(1.0, 5.0)]), None);
        assert_eq!(slope(&[(1.0, 5.0), (1.0, 6.0)]), None);
    }

    #[test]
    fn trends_report_first_last_max_and_slope_per_minute() {
        let points: Vec<Point> = [0_u64, 100, 50, 60]
            .iter()
            .enumerate()
            .map(|(index, growth)| Point {
                seconds: index as f64 * 30.0,
                bytes: [
                    Some(1_000 + growth),
                    None,
                    Some(5_000),
                    Some(9_000),
                    Some(2_000 + 2 * growth),
                ],
            })
            .collect();
        let trends = trends(&points);
        assert_eq!(trends.len(), 4, "the unreadable issuer RSS is left out");
        assert_eq!(trends[0].metric, "registry RSS");
        assert_eq!(
            (trends[0].first, trends[0].last, trends[0].max),
            (1_000, 1_060, 1_100)
        );
        assert_eq!(trends[1].bytes_per_minute, 0.0);
        let registry = trends[0].bytes_per_minute;
        assert!((trends[3].bytes_per_minute - 2.0 * registry).abs() < 1e-9);
        // Measured from the sample at 60 s: the registry 1,050 → 1,060,
        // Redis 2,100 → 2,120, both flat.
        assert_eq!(trends[0].start, 1_050);
        assert!(trends.iter().all(|trend| trend.flat), "{trends:?}");
        let text = render(&SoakReport {
            minutes: 1.5,
            points,
            trends,
            issuance: Sample::default(),
            introspection: None,
            management: None,
        });
        assert!(text.contains("slope MiB/min"), "{text}");
    }

    #[test]
    fn growth_is_measured_from_the_first_sample_after_the_warm_up() {
        let points: Vec<Point> = [
            (0.0, 100_u64),
            (30.0, 900),
            (60.0, 1_000),
            (90.0, 1_050),
            (120.0, 1_150),
        ]
        .iter()
        .map(|&(seconds, bytes)| Point {
            seconds,
            bytes: [Some(bytes), None, None, None, None],
        })
        .collect();
        let registry = &trends(&points)[0];
        assert_eq!(
            (registry.first, registry.start, registry.last),
            (100, 1_000, 1_150)
        );
        assert!(!registry.flat, "15% over the start is not flat");
        let flat = &trends(&points[..4])[0];
        assert!(flat.flat, "5% over the start is flat");
    }
}
