//! Sustained issuance: wrk drives `POST /oauth2/token` on the production
//! stack for N minutes while the bench samples, every interval, what must
//! stay flat: the registry's and the issuer's resident memory, the bench
//! schema's and the whole database's size in PostgreSQL, Redis
//! `used_memory`.

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

/// First, last and largest value of one metric, and its least-squares
/// slope.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Trend {
    /// The metric.
    pub(crate) metric: &'static str,
    /// Bytes at the first sample.
    pub(crate) first: u64,
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
            let as_minutes: Vec<(f64, f64)> = series
                .iter()
                .map(|(seconds, bytes)| (seconds / 60.0, *bytes as f64))
                .collect();
            Some(Trend {
                metric,
                first,
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
        "\n{:<22} {:>10} {:>10} {:>10} {:>14}",
        "", "first MiB", "last MiB", "max MiB", "slope MiB/min"
    );
    for trend in &report.trends {
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>10} {:>14.2}",
            trend.metric,
            mib(Some(trend.first)),
            mib(Some(trend.last)),
            mib(Some(trend.max)),
            trend.bytes_per_minute / 1_048_576.0
        );
    }
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
    let mut wrk = Command::new("wrk")
        .arg(format!("-t{}", shape.threads))
        .arg(format!("-c{}", shape.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(&load.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start wrk (scripts/bench installs it)")?;
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
    Ok(SoakReport {
        minutes,
        trends: trends(&points),
        points,
        issuance,
    })
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
        let text = render(&SoakReport {
            minutes: 1.5,
            points,
            trends,
            issuance: Sample::default(),
        });
        assert!(text.contains("slope MiB/min"), "{text}");
    }
}
