//! The closed loop: N tasks, each sending its next request as soon as the
//! previous one answered, for a warm-up and then a measured window.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::report::{Measurement, new_histogram, record};

/// How long to drive a scenario, and whose CPU time to account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadShape {
    /// Processes (name, pid) whose CPU time over the measured window is
    /// divided by the requests measured.
    pub(crate) processes: &'static [(&'static str, u32)],
    /// Driven but not measured.
    pub(crate) warmup: Duration,
    /// Measured.
    pub(crate) measure: Duration,
}

/// One closed-loop task's request: `Err(kind)` counts as an error of that
/// kind (a gRPC code, an HTTP status, an unexpected answer).
pub(crate) trait Worker: Send + 'static {
    /// Sends one request and waits for its answer.
    fn call(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Runs `workers` (one per stream) in a closed loop and measures every
/// request started in the measured window.
pub(crate) async fn drive<W: Worker>(shape: LoadShape, workers: Vec<W>) -> Measurement {
    let start = Instant::now();
    let measure_start = start + shape.warmup;
    let end = measure_start + shape.measure;
    let processes = shape.processes;
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(measure_start).await;
        let before: Vec<Option<f64>> = processes.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();
        tokio::time::sleep_until(end).await;
        processes
            .iter()
            .zip(before)
            .filter_map(|((name, pid), before)| {
                Some(((*name).to_owned(), cpu_seconds(*pid)? - before?))
            })
            .collect::<Vec<(String, f64)>>()
    });
    let mut tasks = Vec::with_capacity(workers.len());
    for mut worker in workers {
        tasks.push(tokio::spawn(async move {
            let mut latency = new_histogram();
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let mut requests = 0_u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = worker.call().await;
                if sent >= measure_start {
                    requests += 1;
                    record(&mut latency, sent.elapsed());
                    if let Err(kind) = outcome {
                        *errors.entry(kind).or_default() += 1;
                    }
                }
            }
            (requests, latency, errors)
        }));
    }
    let mut total = Measurement {
        requests: 0,
        elapsed: shape.measure,
        latency: new_histogram(),
        errors: BTreeMap::new(),
        cpu_seconds: Vec::new(),
    };
    for task in tasks {
        match task.await {
            Ok((requests, latency, errors)) => {
                total.requests += requests;
                let _ = total.latency.add(&latency);
                for (kind, count) in errors {
                    *total.errors.entry(kind).or_default() += count;
                }
            }
            Err(error) => {
                *total
                    .errors
                    .entry(format!("task failed: {error}"))
                    .or_default() += 1;
            }
        }
    }
    total.cpu_seconds = sampler.await.unwrap_or_default();
    total
}

/// User + system CPU seconds process `pid` has used (Linux `/proc`, with
/// the usual 100 clock ticks per second).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields follow its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After `)`: state is field 3, utime 14, stime 15 (1-based overall).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Busy and total CPU ticks of the whole machine so far (`/proc/stat`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = ticks.get(3)? + ticks.get(4)?;
    let total: u64 = ticks.iter().take(8).sum();
    Some((total - idle, total))
}

/// Waits until the machine is quiet (under 10% busy over half a second),
/// at most `limit`; returns how long it waited. Loading a million tokens
/// leaves work behind it (the registry storing their audit events,
/// PostgreSQL vacuuming them) that would otherwise run during the next
/// measurement and count against it.
pub(crate) async fn settle(limit: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < limit {
        let Some((busy0, total0)) = machine_ticks() else {
            break;
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some((busy1, total1)) = machine_ticks() else {
            break;
        };
        let (busy, total) = (busy1 - busy0, total1 - total0);
        if total > 0 && busy * 10 < total {
            break;
        }
    }
    started.elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_cpu_time() {
        let mut spin = 0_u64;
        for index in 0..5_000_000_u64 {
            spin = spin.wrapping_add(index * index);
        }
        assert!(spin > 0);
        let used = cpu_seconds(std::process::id()).expect("/proc/self/stat");
        assert!(used >= 0.0);
    }
}
