//! The reference loaders: `wrk` for HTTP/1.1 and `h2load` for gRPC, run as
//! child processes; their outputs parsed into a [`Sample`]. Their own client
//! cost is lower than the built-in loader's, and they are what the design's
//! targets are quoted with.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::driver::cpu_seconds;
use crate::report::{Sample, new_histogram, record};

/// Most request bodies a wrk script cycles through: each wrk thread formats
/// all of them at start, so a million-token pool is sampled down.
pub(crate) const MAX_SCRIPT_REQUESTS: usize = 10_000;

/// How wrk is run: `wrk -t<threads> -c<connections>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WrkShape {
    /// Threads (`-t`).
    pub(crate) threads: usize,
    /// Connections (`-c`).
    pub(crate) connections: usize,
}

/// How h2load is run: `h2load -c<clients> -m<streams>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct H2loadShape {
    /// Clients, one HTTP/2 connection each (`-c`).
    pub(crate) clients: usize,
    /// Concurrent streams per client (`-m`).
    pub(crate) streams: usize,
}

/// What every external run shares: its warm-up and measured window, and
/// the server processes whose CPU time per request is reported.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    /// Seconds of an unmeasured run before the measured one.
    pub(crate) warmup: Duration,
    /// Seconds measured.
    pub(crate) measure: Duration,
    /// Server processes (name, pid).
    pub(crate) processes: Vec<(&'static str, u32)>,
}

/// POST requests a wrk script cycles through, and the text every 200 answer
/// must contain (a 200 without it counts as an error: "wrong answer").
#[derive(Debug, Clone)]
pub(crate) struct PostLoad {
    /// Full URL.
    pub(crate) url: String,
    /// `Authorization` values, request `i` uses `i % len`.
    pub(crate) authorizations: Vec<String>,
    /// Form bodies, request `i` uses `i % len`.
    pub(crate) bodies: Vec<String>,
    /// Substring of a correct answer.
    pub(crate) expect: String,
}

fn lua_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for character in value.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// The wrk Lua script for `load`: requests formatted once per thread at
/// start, cycled from a random offset; answers checked for `expect`; the
/// wrong answers of every thread summed and printed when done.
pub(crate) fn wrk_script(load: &PostLoad) -> String {
    let count = load
        .authorizations
        .len()
        .max(load.bodies.len())
        .clamp(1, MAX_SCRIPT_REQUESTS);
    let mut out = String::from("local items = {\n");
    for index in 0..count {
        let authorization = &load.authorizations[index % load.authorizations.len().max(1)];
        let body = &load.bodies[index % load.bodies.len().max(1)];
        let _ = writeln!(
            out,
            "  {{{}, {}}},",
            lua_string(authorization),
            lua_string(body)
        );
    }
    let _ = write!(
        out,
        r#"}}
local expect = {}
local threads = {{}}
local requests = {{}}
local next_index = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrong = 0
  for index, item in ipairs(items) do
    requests[index] = wrk.format("POST", nil, {{
      ["Authorization"] = item[1],
      ["Content-Type"] = "application/x-www-form-urlencoded",
    }}, item[2])
  end
  next_index = math.random(#requests) - 1
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function response(status, headers, body)
  if status == 200 and not string.find(body, expect, 1, true) then
    wrong = wrong + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("wrong")
  end
  io.write(string.format("wrong answers: %d\n", total))
end
"#,
        lua_string(&load.expect)
    );
    out
}

/// Runs `command` to completion, its output in `dir/name.out` and
/// `dir/name.err`, sampling its CPU time every 100 ms (the last sample
/// before it exits is its cost; at most 100 ms of it is missed). Returns
/// its standard output and CPU seconds.
async fn run_sampled(
    mut command: Command,
    dir: &Path,
    name: &str,
) -> anyhow::Result<(String, Option<f64>)> {
    let out_path = dir.join(format!("{name}.out"));
    let err_path = dir.join(format!("{name}.err"));
    let what = command
        .as_std()
        .get_program()
        .to_string_lossy()
        .into_owned();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {what} (is it installed? scripts/bench installs it)"))?;
    let pid = child.id();
    let mut cpu = None;
    let status = loop {
        if let Some(used) = pid.and_then(cpu_seconds) {
            cpu = Some(used);
        }
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        bail!("{what} failed ({status}): {} {}", err.trim(), out.trim());
    }
    Ok((out, cpu))
}

/// CPU seconds of each process so far.
fn cpu_now(processes: &[(&'static str, u32)]) -> Vec<Option<f64>> {
    processes.iter().map(|(_, pid)| cpu_seconds(*pid)).collect()
}

fn cpu_per_request(
    processes: &[(&'static str, u32)],
    before: &[Option<f64>],
    loader: Option<f64>,
    requests: u64,
) -> Vec<(String, f64)> {
    if requests == 0 {
        return Vec::new();
    }
    let mut out: Vec<(String, f64)> = loader
        .map(|seconds| ("loader".to_owned(), seconds * 1e6 / requests as f64))
        .into_iter()
        .collect();
    for ((name, pid), before) in processes.iter().zip(before) {
        if let (Some(after), Some(before)) = (cpu_seconds(*pid), before) {
            out.push(((*name).to_owned(), (after - before) * 1e6 / requests as f64));
        }
    }
    out
}

fn wrk_command(shape: WrkShape, seconds: f64, script: &Path, url: &str) -> Command {
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{}", shape.threads))
        .arg(format!("-c{}", shape.connections))
        .arg(format!("-d{}s", seconds.ceil().max(1.0)))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(url);
    command
}

/// Runs wrk over `load` (script written to `dir/name.lua`): an unmeasured
/// warm-up run, then the measured one.
pub(crate) async fn wrk(
    shape: WrkShape,
    window: &Window,
    dir: &Path,
    name: &str,
    load: &PostLoad,
) -> anyhow::Result<Sample> {
    let script: PathBuf = dir.join(format!("{name}.lua"));
    std::fs::write(&script, wrk_script(load))
        .with_context(|| format!("write {}", script.display()))?;
    if !window.warmup.is_zero() {
        run_sampled(
            wrk_command(shape, window.warmup.as_secs_f64(), &script, &load.url),
            dir,
            name,
        )
        .await?;
    }
    let before = cpu_now(&window.processes);
    let (out, loader_cpu) = run_sampled(
        wrk_command(shape, window.measure.as_secs_f64(), &script, &load.url),
        dir,
        name,
    )
    .await?;
    let mut sample = parse_wrk(&out)?;
    sample.cpu_us_per_request =
        cpu_per_request(&window.processes, &before, loader_cpu, sample.requests);
    Ok(sample)
}

/// A wrk duration (`812.00us`, `2.94ms`, `1.28s`, `2.00m`) in milliseconds.
fn wrk_duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(value * factor)
}

/// A wrk report (`--latency`, with the script's "wrong answers" line).
pub(crate) fn parse_wrk(text: &str) -> anyhow::Result<Sample> {
    let mut sample = Sample::default();
    let mut seconds = None;
    let mut errors = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("50%"), Some(value)) => sample.p50_ms = wrk_duration_ms(value).unwrap_or(0.0),
            (Some("99%"), Some(value)) => sample.p99_ms = wrk_duration_ms(value).unwrap_or(0.0),
            (Some("Requests/sec:"), Some(value)) => sample.rate = value.parse().unwrap_or(0.0),
            _ => {}
        }
        if let Some((requests, rest)) = line.split_once(" requests in ") {
            sample.requests = requests.trim().parse().unwrap_or(0);
            seconds = rest.split(',').next().and_then(wrk_duration_ms);
        } else if let Some(count) = line.strip_prefix("Non-2xx or 3xx responses:") {
            errors.insert("http not 2xx".to_owned(), count.trim().parse().unwrap_or(0));
        } else if let Some(count) = line.strip_prefix("wrong answers:") {
            errors.insert("wrong answer".to_owned(), count.trim().parse().unwrap_or(0));
        } else if let Some(kinds) = line.strip_prefix("Socket errors:") {
            for kind in kinds.split(',') {
                if let Some((name, count)) = kind.trim().split_once(' ') {
                    errors.insert(format!("socket {name}"), count.parse().unwrap_or(0));
                }
            }
        }
    }
    if seconds.is_none() {
        bail!("wrk printed no request count: {}", text.trim());
    }
    errors.retain(|_, count| *count > 0);
    sample.errors = errors;
    Ok(sample)
}

/// A gRPC request body as h2load sends it: the 5-byte frame header (no
/// compression, big-endian length) and the encoded message.
pub(crate) fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// A gRPC call h2load repeats: the same framed message on every request.
#[derive(Debug, Clone)]
pub(crate) struct GrpcLoad {
    /// `http://HOST:PORT/package.Service/Method`.
    pub(crate) url: String,
    /// The `authorization` metadata.
    pub(crate) authorization: String,
    /// The framed request ([`grpc_frame`]).
    pub(crate) frame: Vec<u8>,
}

fn h2load_command(
    shape: H2loadShape,
    seconds: f64,
    body: &Path,
    log: Option<&Path>,
    load: &GrpcLoad,
) -> Command {
    let mut command = Command::new("h2load");
    command
        .arg(format!("-c{}", shape.clients))
        .arg(format!("-m{}", shape.streams))
        .arg(format!("-t{}", shape.clients.min(2)))
        .arg("-D")
        .arg(format!("{}", seconds.ceil().max(1.0)))
        .arg("-d")
        .arg(body)
        .arg("-H")
        .arg("content-type: application/grpc")
        .arg("-H")
        .arg("te: trailers")
        .arg("-H")
        .arg(format!("authorization: {}", load.authorization));
    if let Some(log) = log {
        command.arg(format!("--log-file={}", log.display()));
    }
    command.arg(&load.url);
    command
}

/// Runs h2load over `load` (body and per-request log in `dir`): a warm-up
/// run, then the measured one; p50/p99 from its per-request log (h2load
/// itself prints only min/max/mean/sd). h2load sees HTTP statuses, not
/// gRPC ones: the caller checks the call once over tonic first.
pub(crate) async fn h2load(
    shape: H2loadShape,
    window: &Window,
    dir: &Path,
    name: &str,
    load: &GrpcLoad,
) -> anyhow::Result<Sample> {
    let body = dir.join(format!("{name}.grpc"));
    let log = dir.join(format!("{name}.h2load.log"));
    std::fs::write(&body, &load.frame).with_context(|| format!("write {}", body.display()))?;
    if !window.warmup.is_zero() {
        run_sampled(
            h2load_command(shape, window.warmup.as_secs_f64(), &body, None, load),
            dir,
            name,
        )
        .await?;
    }
    let before = cpu_now(&window.processes);
    let (out, loader_cpu) = run_sampled(
        h2load_command(shape, window.measure.as_secs_f64(), &body, Some(&log), load),
        dir,
        name,
    )
    .await?;
    let mut sample = parse_h2load(&out)?;
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let (p50, p99) = h2load_percentiles(&log_text);
    sample.p50_ms = p50;
    sample.p99_ms = p99;
    sample.cpu_us_per_request =
        cpu_per_request(&window.processes, &before, loader_cpu, sample.requests);
    Ok(sample)
}

/// h2load's summary: rate, requests done, failures and HTTP statuses.
pub(crate) fn parse_h2load(text: &str) -> anyhow::Result<Sample> {
    let mut sample = Sample::default();
    let mut found = false;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            found = true;
            sample.rate = rest
                .split(", ")
                .nth(1)
                .and_then(|rate| rate.strip_suffix(" req/s"))
                .and_then(|rate| rate.parse().ok())
                .unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            for part in rest.split(", ") {
                let Some((count, kind)) = part.split_once(' ') else {
                    continue;
                };
                let count: u64 = count.parse().unwrap_or(0);
                match kind {
                    "done" => sample.requests = count,
                    "failed" | "errored" | "timeout" if count > 0 => {
                        sample.errors.insert(format!("h2load {kind}"), count);
                    }
                    _ => {}
                }
            }
        } else if let Some(rest) = line.strip_prefix("status codes: ") {
            for part in rest.split(", ") {
                if let Some((count, class)) = part.split_once(' ')
                    && class != "2xx"
                    && let Ok(count) = count.parse::<u64>()
                    && count > 0
                {
                    sample.errors.insert(format!("http {class}"), count);
                }
            }
        }
    }
    if !found {
        bail!("h2load printed no summary: {}", text.trim());
    }
    Ok(sample)
}

/// p50 and p99 in milliseconds from an h2load `--log-file` (tab-separated:
/// start time µs, status, duration µs).
pub(crate) fn h2load_percentiles(log: &str) -> (f64, f64) {
    let mut histogram = new_histogram();
    for line in log.lines() {
        if let Some(micros) = line
            .split('\t')
            .nth(2)
            .and_then(|value| value.trim().parse::<u64>().ok())
        {
            record(&mut histogram, Duration::from_micros(micros));
        }
    }
    if histogram.is_empty() {
        return (0.0, 0.0);
    }
    (
        histogram.value_at_quantile(0.50) as f64 / 1e6,
        histogram.value_at_quantile(0.99) as f64 / 1e6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 10s test @ http://127.0.0.1:8080/oauth2/token
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.61ms    1.07ms  22.38ms   83.71%
    Req/Sec     9.76k   662.37    11.18k    70.50%
  Latency Distribution
     50%  812.00us
     75%    2.94ms
     90%    3.60ms
     99%    1.28s
  194245 requests in 10.01s, 58.92MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:  19405.31
Transfer/sec:      5.89MB
wrong answers: 7
";

    #[test]
    fn wrk_reports_are_parsed_with_their_errors() {
        let sample = parse_wrk(WRK).expect("parses");
        assert_eq!(sample.requests, 194_245);
        assert!((sample.rate - 19_405.31).abs() < 1e-6);
        assert!((sample.p50_ms - 0.812).abs() < 1e-9);
        assert!((sample.p99_ms - 1280.0).abs() < 1e-9);
        let errors: Vec<(&str, u64)> = sample
            .errors
            .iter()
            .map(|(kind, count)| (kind.as_str(), *count))
            .collect();
        assert_eq!(
            errors,
            vec![
                ("http not 2xx", 12),
                ("socket read", 2),
                ("socket timeout", 3),
                ("wrong answer", 7)
            ]
        );
    }

    #[test]
    fn a_wrk_failure_is_an_error_not_a_zero() {
        assert!(parse_wrk("unable to connect to 127.0.0.1:1 Connection refused").is_err());
    }

    #[test]
    fn h2load_reports_and_logs_are_parsed() {
        let text = "finished in 10.00s, 93837.40 req/s, 9.83MB/s
requests: 938374 total, 938380 started, 938374 done, 938370 succeeded, 4 failed, 0 errored, 0 timeout
status codes: 938370 2xx, 0 3xx, 4 4xx, 0 5xx
";
        let sample = parse_h2load(text).expect("parses");
        assert_eq!(sample.requests, 938_374);
        assert!((sample.rate - 93_837.40).abs() < 1e-6);
        assert_eq!(sample.errors.get("h2load failed"), Some(&4));
        assert_eq!(sample.errors.get("http 4xx"), Some(&4));
        assert!(parse_h2load("connect failed").is_err());
        let log: String = (1..=1000)
            .map(|micros| format!("1795949403885501\t200\t{micros}\n"))
            .collect();
        let (p50, p99) = h2load_percentiles(&log);
        assert!((p50 - 0.5).abs() < 0.001, "{p50}");
        assert!((p99 - 0.99).abs() < 0.001, "{p99}");
    }

    #[test]
    fn grpc_frames_carry_a_big_endian_length() {
        assert_eq!(grpc_frame(&[7; 3]), vec![0, 0, 0, 0, 3, 7, 7, 7]);
    }

    #[test]
    fn wrk_scripts_cycle_through_every_request_and_escape_strings() {
        let script = wrk_script(&PostLoad {
            url: "http://x/oauth2/token".to_owned(),
            authorizations: vec!["Basic a".to_owned(), "Basic b".to_owned()],
            bodies: vec!["grant_type=client_credentials".to_owned()],
            expect: "\"access_token\"".to_owned(),
        });
        assert!(script.contains(r#"{"Basic a", "grant_type=client_credentials"},"#));
        assert!(script.contains(r#"{"Basic b", "grant_type=client_credentials"},"#));
        assert!(script.contains(r#"local expect = "\"access_token\"""#));
        let big = wrk_script(&PostLoad {
            url: String::new(),
            authorizations: vec!["Basic a".to_owned()],
            bodies: (0..MAX_SCRIPT_REQUESTS + 5)
                .map(|i| i.to_string())
                .collect(),
            expect: String::new(),
        });
        assert_eq!(big.matches("{\"Basic a\"").count(), MAX_SCRIPT_REQUESTS);
    }
}
