//! Comparisons measured in interleaved rounds (A, B, A, B, …): the median
//! of the per-round ratios, their spread, and a verdict that refuses to say
//! "yes" when the baseline itself moved between rounds.

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::{Sample, percent, short_count, thousands};

/// How far a baseline's rate may move between a comparison's rounds
/// (max / min) before its verdict is withheld.
pub(crate) const MAX_BASELINE_MOVE: f64 = 1.10;

/// A goal a comparison is held to: `rate / baseline rate` at least
/// `min_ratio` and, when given, the subject's p99 below `max_p99_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Target {
    /// Minimum median ratio (0.25 = 25% of a floor, 3.0 = three times a peer).
    pub(crate) min_ratio: f64,
    /// Maximum median p99, milliseconds.
    pub(crate) max_p99_ms: Option<f64>,
}

impl Target {
    /// A share of the floor (or multiple of the peer), no latency bound.
    pub(crate) const fn ratio(min_ratio: f64) -> Self {
        Self {
            min_ratio,
            max_p99_ms: None,
        }
    }

    fn describe(&self) -> String {
        let ratio = if self.min_ratio >= 1.0 {
            format!(">={}x", self.min_ratio)
        } else {
            format!(">={:.0}%", self.min_ratio * 100.0)
        };
        match self.max_p99_ms {
            Some(max) => format!("{ratio} p99<{max}ms"),
            None => ratio,
        }
    }
}

/// What a comparison concluded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "moved")]
pub(crate) enum Verdict {
    /// No target.
    NoTarget,
    /// The target is met.
    Met,
    /// The target is not met.
    NotMet,
    /// The baseline's rate moved by this fraction between rounds (0.15 =
    /// 15%): too unsteady to judge.
    BaselineMoved(f64),
}

impl Verdict {
    fn describe(&self) -> String {
        match self {
            Self::NoTarget => "-".to_owned(),
            Self::Met => "yes".to_owned(),
            Self::NotMet => "NO".to_owned(),
            Self::BaselineMoved(moved) => format!("floor moved {:.0}%", moved * 100.0),
        }
    }
}

/// The median (mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    })
}

/// `max / min - 1` of `rates` (0 for one round; `None` if any is zero).
pub(crate) fn moved(rates: &[f64]) -> Option<f64> {
    let min = rates.iter().copied().reduce(f64::min)?;
    let max = rates.iter().copied().reduce(f64::max)?;
    (min > 0.0).then(|| max / min - 1.0)
}

/// The verdict on a median `ratio` and `p99_ms` against `target`, withheld
/// when the baseline moved more than [`MAX_BASELINE_MOVE`].
pub(crate) fn verdict(
    target: Option<Target>,
    ratio: Option<f64>,
    p99_ms: f64,
    baseline_moved: Option<f64>,
) -> Verdict {
    if let Some(moved) = baseline_moved
        && 1.0 + moved > MAX_BASELINE_MOVE
    {
        return Verdict::BaselineMoved(moved);
    }
    let Some(target) = target else {
        return Verdict::NoTarget;
    };
    match ratio {
        Some(ratio)
            if ratio >= target.min_ratio && target.max_p99_ms.is_none_or(|max| p99_ms < max) =>
        {
            Verdict::Met
        }
        // No ratio (a zero baseline) cannot meet anything.
        Some(_) | None => Verdict::NotMet,
    }
}

/// What is compared with what.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    /// The stack (`production`, `embedded`).
    pub(crate) stack: String,
    /// What was driven.
    pub(crate) scenario: String,
    /// Live tokens while it ran, when it matters.
    pub(crate) live_tokens: Option<usize>,
    /// `builtin`, `wrk` or `h2load`.
    pub(crate) loader: &'static str,
    /// What it is divided by (a floor, or the peer).
    pub(crate) baseline: String,
    /// The goal, if any.
    pub(crate) target: Option<Target>,
}

/// One comparison: the subject's and the baseline's rounds, and what they
/// add up to.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Comparison {
    /// The stack.
    pub(crate) stack: String,
    /// What was driven.
    pub(crate) scenario: String,
    /// Live tokens while it ran.
    pub(crate) live_tokens: Option<usize>,
    /// The loader.
    pub(crate) loader: &'static str,
    /// The baseline's name.
    pub(crate) baseline: String,
    /// Median of the subject's rates.
    pub(crate) rate: f64,
    /// Median of the subject's p99s, milliseconds.
    pub(crate) p99_ms: f64,
    /// Median of the baseline's rates.
    pub(crate) baseline_rate: f64,
    /// Median of the baseline's p99s, milliseconds.
    pub(crate) baseline_p99_ms: f64,
    /// Median of the per-round ratios `subject rate / baseline rate`.
    pub(crate) ratio: Option<f64>,
    /// Smallest per-round ratio.
    pub(crate) ratio_min: Option<f64>,
    /// Largest per-round ratio.
    pub(crate) ratio_max: Option<f64>,
    /// How much the baseline's rate moved between rounds (max / min - 1).
    pub(crate) baseline_moved: Option<f64>,
    /// The goal.
    pub(crate) target: Option<Target>,
    /// The conclusion.
    pub(crate) verdict: Verdict,
    /// Failed requests, subject and baseline.
    pub(crate) errors: u64,
    /// Every round of the subject.
    pub(crate) rounds: Vec<Sample>,
    /// Every round of the baseline.
    pub(crate) baseline_rounds: Vec<Sample>,
}

impl Comparison {
    /// Adds up rounds measured pairwise (round `i` of the subject next to
    /// round `i` of the baseline).
    pub(crate) fn new(setup: Setup, rounds: Vec<Sample>, baseline_rounds: Vec<Sample>) -> Self {
        let rates: Vec<f64> = rounds.iter().map(|s| s.rate).collect();
        let baseline_rates: Vec<f64> = baseline_rounds.iter().map(|s| s.rate).collect();
        let ratios: Vec<f64> = rates
            .iter()
            .zip(&baseline_rates)
            .filter(|(_, baseline)| **baseline > 0.0)
            .map(|(rate, baseline)| rate / baseline)
            .collect();
        let p99s: Vec<f64> = rounds.iter().map(|s| s.p99_ms).collect();
        let baseline_p99s: Vec<f64> = baseline_rounds.iter().map(|s| s.p99_ms).collect();
        let ratio = median(&ratios);
        let p99_ms = median(&p99s).unwrap_or(0.0);
        let baseline_moved = moved(&baseline_rates);
        Self {
            verdict: verdict(setup.target, ratio, p99_ms, baseline_moved),
            stack: setup.stack,
            scenario: setup.scenario,
            live_tokens: setup.live_tokens,
            loader: setup.loader,
            baseline: setup.baseline,
            rate: median(&rates).unwrap_or(0.0),
            p99_ms,
            baseline_rate: median(&baseline_rates).unwrap_or(0.0),
            baseline_p99_ms: median(&baseline_p99s).unwrap_or(0.0),
            ratio,
            ratio_min: ratios.iter().copied().reduce(f64::min),
            ratio_max: ratios.iter().copied().reduce(f64::max),
            baseline_moved,
            target: setup.target,
            errors: rounds
                .iter()
                .chain(&baseline_rounds)
                .map(Sample::error_count)
                .sum(),
            rounds,
            baseline_rounds,
        }
    }

    fn name(&self) -> String {
        match self.live_tokens {
            Some(tokens) => format!("{} @{}", self.scenario, short_count(tokens)),
            None => self.scenario.clone(),
        }
    }
}

/// A ratio as a share (`85%`) below 2, as a multiple (`3.1x`) above.
fn ratio_text(ratio: Option<f64>) -> String {
    match ratio {
        Some(ratio) if ratio >= 2.0 => format!("{ratio:.2}x"),
        other => percent(other),
    }
}

/// The comparisons table, then the error kinds of those that had errors.
pub(crate) fn render(comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:<7} {:>9} {:>7}   {:<20} {:>9} {:>7}   {:>6}  {:<12} {:<16} met",
        "scenario",
        "loader",
        "req/s",
        "p99 ms",
        "vs",
        "req/s",
        "p99 ms",
        "ratio",
        "spread",
        "target",
    );
    for c in comparisons {
        let spread = match (c.ratio_min, c.ratio_max) {
            // Both ends in the unit of the larger one.
            (Some(min), Some(max)) if max >= 2.0 => format!("{min:.2}x–{max:.2}x"),
            (Some(min), Some(max)) => format!("{}–{}", percent(Some(min)), percent(Some(max))),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<40} {:<7} {:>9} {:>7.2}   {:<20} {:>9} {:>7.2}   {:>6}  {:<12} {:<16} {}",
            c.name(),
            c.loader,
            thousands(c.rate),
            c.p99_ms,
            c.baseline,
            thousands(c.baseline_rate),
            c.baseline_p99_ms,
            ratio_text(c.ratio),
            spread,
            c.target.map_or_else(|| "-".to_owned(), |t| t.describe()),
            c.verdict.describe(),
        );
    }
    for c in comparisons.iter().filter(|c| c.errors > 0) {
        let mut kinds = std::collections::BTreeMap::<String, u64>::new();
        for sample in c.rounds.iter().chain(&c.baseline_rounds) {
            for (kind, count) in &sample.errors {
                *kinds.entry(kind.clone()).or_default() += count;
            }
        }
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        let _ = writeln!(out, "  errors in {}: {}", c.name(), kinds.join(", "));
    }
    out
}

/// Median CPU µs per request of each process over `samples`.
fn cpu_medians(samples: &[Sample]) -> Vec<(String, f64)> {
    let mut names: Vec<String> = Vec::new();
    for sample in samples {
        for (name, _) in &sample.cpu_us_per_request {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let values: Vec<f64> = samples
                .iter()
                .filter_map(|s| s.cpu_us_per_request.iter().find(|(n, _)| *n == name))
                .map(|(_, us)| *us)
                .collect();
            Some((name, median(&values)?))
        })
        .collect()
}

/// CPU microseconds per request by process (medians over rounds), one line
/// per subject and per baseline: where the time goes.
pub(crate) fn render_cpu(comparisons: &[Comparison]) -> String {
    let mut lines: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    for c in comparisons {
        lines.push((
            format!("{} [{}]", c.name(), c.loader),
            cpu_medians(&c.rounds),
        ));
        lines.push((
            format!("  vs {} [{}]", c.baseline, c.loader),
            cpu_medians(&c.baseline_rounds),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for (_, cpu) in &lines {
        for (name, _) in cpu {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    let mut out = String::new();
    let _ = write!(out, "{:<52}", "CPU µs per request");
    for name in &names {
        let _ = write!(out, " {name:>9}");
    }
    let _ = writeln!(out, " {:>9}", "total");
    for (label, cpu) in lines {
        let _ = write!(out, "{label:<52}");
        let mut total = 0.0;
        for wanted in &names {
            match cpu.iter().find(|(name, _)| name == wanted) {
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

/// The median ratio of `scenario` at each live-token count relative to the
/// smallest count: "flat from a thousand to a million live tokens".
/// Ratios, not raw rates, so drift shared with the floor cancels out.
pub(crate) fn flatness(comparisons: &[Comparison], scenario: &str) -> Vec<(usize, f64)> {
    let mut points: Vec<(usize, f64)> = comparisons
        .iter()
        .filter(|c| c.scenario == scenario)
        .filter_map(|c| Some((c.live_tokens?, c.ratio?)))
        .collect();
    points.sort_by_key(|(tokens, _)| *tokens);
    let Some(&(_, first)) = points.first() else {
        return Vec::new();
    };
    points
        .into_iter()
        .map(|(tokens, ratio)| (tokens, if first > 0.0 { ratio / first } else { 0.0 }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64, p99_ms: f64) -> Sample {
        Sample {
            rate,
            p99_ms,
            requests: rate as u64,
            cpu_us_per_request: vec![("issuer".to_owned(), rate / 1000.0)],
            ..Sample::default()
        }
    }

    fn setup(target: Option<Target>) -> Setup {
        Setup {
            stack: "production".to_owned(),
            scenario: "issue (HTTP)".to_owned(),
            live_tokens: None,
            loader: "wrk",
            baseline: "echo HTTP".to_owned(),
            target,
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn the_ratio_is_the_median_of_per_round_ratios_not_of_medians() {
        // Rounds: 30/100, 22/91, 24/100 → ratios 0.30, 0.2418, 0.24; the
        // ratio of the medians would be 24/100.
        let c = Comparison::new(
            setup(Some(Target::ratio(0.24))),
            vec![sample(30.0, 1.0), sample(22.0, 3.0), sample(24.0, 2.0)],
            vec![sample(100.0, 1.0), sample(91.0, 1.0), sample(100.0, 1.0)],
        );
        let ratio = c.ratio.expect("ratio");
        assert!((ratio - 22.0 / 91.0).abs() < 1e-12, "{ratio}");
        assert_eq!(c.ratio_min, Some(0.24));
        assert_eq!(c.ratio_max, Some(0.30));
        assert_eq!(c.rate, 24.0);
        assert_eq!(c.p99_ms, 2.0);
        assert_eq!(c.baseline_rate, 100.0);
        let moved = c.baseline_moved.expect("moved");
        assert!((moved - (100.0 / 91.0 - 1.0)).abs() < 1e-12);
        assert_eq!(c.verdict, Verdict::Met);
    }

    #[test]
    fn a_baseline_that_moved_more_than_ten_percent_gets_no_yes() {
        // The floor fell from 72.7k to 38.2k within the comparison.
        let c = Comparison::new(
            setup(Some(Target::ratio(0.25))),
            vec![sample(18_000.0, 1.0), sample(18_000.0, 1.0)],
            vec![sample(72_700.0, 1.0), sample(38_200.0, 1.0)],
        );
        let Verdict::BaselineMoved(moved) = c.verdict else {
            panic!("expected floor moved, got {:?}", c.verdict);
        };
        assert!((moved - (72_700.0 / 38_200.0 - 1.0)).abs() < 1e-9);
        let table = render(&[c]);
        assert!(table.contains("floor moved 90%"), "{table}");
        assert!(!table.contains("yes"), "{table}");
    }

    #[test]
    fn ten_percent_is_still_steady_and_a_miss_is_a_no() {
        assert_eq!(
            verdict(Some(Target::ratio(0.9)), Some(0.95), 1.0, Some(0.10)),
            Verdict::Met
        );
        assert_eq!(
            verdict(Some(Target::ratio(0.9)), Some(0.89), 1.0, Some(0.0)),
            Verdict::NotMet
        );
        assert!(matches!(
            verdict(None, Some(0.5), 1.0, Some(0.11)),
            Verdict::BaselineMoved(_)
        ));
        assert_eq!(verdict(None, Some(0.5), 1.0, Some(0.05)), Verdict::NoTarget);
        assert_eq!(
            verdict(Some(Target::ratio(0.9)), None, 1.0, None),
            Verdict::NotMet
        );
    }

    #[test]
    fn latency_bounds_count_in_the_verdict() {
        let target = Some(Target {
            min_ratio: 0.9,
            max_p99_ms: Some(2.0),
        });
        assert_eq!(verdict(target, Some(0.95), 1.99, Some(0.0)), Verdict::Met);
        assert_eq!(verdict(target, Some(0.95), 2.0, Some(0.0)), Verdict::NotMet);
    }

    #[test]
    fn moves_and_multiples_read_well() {
        let ten = moved(&[100.0, 110.0, 105.0]).expect("moved");
        assert!((ten - 0.10).abs() < 1e-9, "{ten}");
        assert_eq!(moved(&[0.0, 1.0]), None);
        assert_eq!(moved(&[]), None);
        assert_eq!(Target::ratio(3.0).describe(), ">=3x");
        assert_eq!(
            Target {
                min_ratio: 0.9,
                max_p99_ms: Some(2.0)
            }
            .describe(),
            ">=90% p99<2ms"
        );
        let c = Comparison::new(
            setup(Some(Target::ratio(3.0))),
            vec![sample(30_000.0, 8.0), sample(31_000.0, 8.0)],
            vec![sample(10_000.0, 20.0), sample(10_200.0, 20.0)],
        );
        let table = render(std::slice::from_ref(&c));
        assert!(table.contains("3.02x"), "{table}");
        assert!(table.contains("3.00x–3.04x"), "{table}");
        assert!(table.contains("yes"), "{table}");
        let cpu = render_cpu(&[c]);
        assert!(cpu.contains("30.5"), "{cpu}");
    }

    #[test]
    fn flatness_compares_ratios_with_the_smallest_count() {
        let at = |tokens: usize, rate: f64, floor: f64| {
            let mut s = setup(None);
            s.scenario = "v".to_owned();
            s.live_tokens = Some(tokens);
            Comparison::new(s, vec![sample(rate, 1.0)], vec![sample(floor, 1.0)])
        };
        // The floor fell as much as the rate at 100k: flat.
        let points = flatness(&[at(100_000, 45.0, 50.0), at(1_000, 90.0, 100.0)], "v");
        assert_eq!(points[0], (1_000, 1.0));
        assert!((points[1].1 - 1.0).abs() < 1e-9, "{points:?}");
    }
}
