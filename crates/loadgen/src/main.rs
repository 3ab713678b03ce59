//! `latchkey-bench`: Latchkey's load generator.
//!
//! Starts the release `credential-registry` and `token-issuer` binaries as
//! separate processes (PostgreSQL + Redis, or the embedded SQLite +
//! in-process tokens), loads live tokens through the real issuance path and
//! compares each scenario with its baseline in interleaved rounds (A, B, A,
//! B, …): a bare echo server (the floors) or node-oidc-provider (the peer,
//! `--peer`), driven by the built-in loader, `wrk` or `h2load`. `--soak`
//! sustains issuance and samples memory and database size instead. See
//! `docs/performance.md`.

// Printing the report is what this binary is for.
#![allow(clippy::print_stdout)]

mod compare;
mod driver;
mod echo;
mod external;
mod peer;
mod report;
mod scenarios;
mod session;
mod soak;
mod stack;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::external::WrkShape;
use crate::peer::Peer;
use crate::session::{Fixture, StackReport};
use crate::stack::{Stack, StackKind, StackOptions};

/// Latchkey's load generator: the real services against their floors and a
/// peer, in interleaved rounds.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the floors: a bare tonic `Introspection/Introspect`, and a bare
    /// HTTP `POST /oauth2/introspect` and `POST /oauth2/token`, all with
    /// constant answers (started by the bench itself).
    EchoServer {
        /// gRPC address.
        #[arg(long)]
        grpc: SocketAddr,
        /// HTTP address.
        #[arg(long)]
        http: SocketAddr,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StackChoice {
    Production,
    Embedded,
    Both,
}

/// Who drives a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Loader {
    /// This binary's own closed loop (every scenario).
    Builtin,
    /// `wrk` for the HTTP scenarios.
    Wrk,
    /// `h2load` for gRPC introspection (added beside the built-in rows).
    H2load,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RunArgs {
    /// Which deployment(s) to drive.
    #[arg(long, value_enum, default_value = "both")]
    stack: StackChoice,
    /// Rounds per comparison, alternating subject and baseline.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Loaders: `builtin`, `wrk` (HTTP scenarios), `h2load` (gRPC
    /// introspection); comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "builtin")]
    pub(crate) loader: Vec<Loader>,
    /// Also measure node-oidc-provider (installed from npm) beside
    /// Latchkey's HTTP issuance and introspection, with wrk.
    #[arg(long)]
    pub(crate) peer: bool,
    /// Instead of the comparisons: sustained mixed load on the production
    /// stack for this many minutes (HTTP issuance, evicting, and HTTP
    /// introspection with wrk; management calls churning credentials),
    /// sampling memory and database size (`scripts/soak`).
    #[arg(long, value_name = "MINUTES")]
    soak: Option<f64>,
    /// Seconds between soak samples.
    #[arg(long, default_value_t = 30.0)]
    soak_interval: f64,
    /// Built-in loader: concurrent requests in flight (closed-loop streams).
    #[arg(long, default_value_t = 64)]
    pub(crate) streams: usize,
    /// Built-in loader: HTTP/2 connections the gRPC streams share.
    #[arg(long, default_value_t = 4)]
    pub(crate) connections: usize,
    /// wrk threads (`-t`).
    #[arg(long, default_value_t = 2)]
    pub(crate) wrk_threads: usize,
    /// wrk connections (`-c`).
    #[arg(long, default_value_t = 50)]
    pub(crate) wrk_connections: usize,
    /// h2load clients, one connection each (`-c`).
    #[arg(long, default_value_t = 4)]
    pub(crate) h2load_clients: usize,
    /// h2load streams per client (`-m`).
    #[arg(long, default_value_t = 16)]
    pub(crate) h2load_streams: usize,
    /// Warm-up seconds before each measured run (driven, not measured).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) warmup: f64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Most seconds to wait for the machine to quieten after loading tokens.
    #[arg(long, default_value_t = 60.0)]
    pub(crate) settle: f64,
    /// Live token counts to introspect at, loaded in turn (e.g.
    /// 1000,100000,1000000).
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    pub(crate) tokens: Vec<usize>,
    /// Live tokens per credential while loading (1–10000, the policy limit).
    #[arg(long, default_value_t = 1000)]
    pub(crate) tokens_per_credential: usize,
    /// Credentials the issuance scenarios cycle through.
    #[arg(long, default_value_t = 64)]
    pub(crate) issue_credentials: usize,
    /// `max_tokens_per_credential` of the evicting issuance project: every
    /// measured issuance there evicts the credential's oldest token.
    #[arg(long, default_value_t = 10)]
    pub(crate) evict_limit: usize,
    /// Concurrent IssueToken calls while loading.
    #[arg(long, default_value_t = 64)]
    pub(crate) load_concurrency: usize,
    /// PostgreSQL for the production stack (a fresh schema is created in it
    /// and dropped afterwards).
    #[arg(
        long,
        env = "LATCHKEY_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// The `credential-registry` binary (default: next to this one).
    #[arg(long)]
    registry_bin: Option<PathBuf>,
    /// The `token-issuer` binary (default: next to this one).
    #[arg(long)]
    issuer_bin: Option<PathBuf>,
    /// The `redis-server` binary.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the temporary directory (configurations, service logs, scripts).
    #[arg(long)]
    keep: bool,
    /// The production issuer's introspection cache capacity
    /// (`redis.cache_capacity`; 0 disables it). Default: the issuer's own.
    #[arg(long)]
    cache_capacity: Option<usize>,
}

impl RunArgs {
    /// Whether `loader` was asked for.
    pub(crate) fn uses(&self, loader: Loader) -> bool {
        self.loader.contains(&loader)
    }

    /// How wrk runs.
    pub(crate) fn wrk_shape(&self) -> WrkShape {
        WrkShape {
            threads: self.wrk_threads,
            connections: self.wrk_connections,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("latchkey-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Some(Command::EchoServer { grpc, http }) => runtime.block_on(echo::serve(grpc, http)),
        None => runtime.block_on(run(cli.run)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("latchkey-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    cpus: usize,
    rounds: usize,
    loaders: Vec<String>,
    warmup_seconds: f64,
    measure_seconds: f64,
    peer: Option<&'static str>,
    stacks: &'a [StackReport],
    soak: Option<soak::SoakReport>,
}

fn check_args(args: &RunArgs, options: &StackOptions) -> anyhow::Result<Vec<usize>> {
    for binary in [&options.registry_bin, &options.issuer_bin] {
        anyhow::ensure!(
            binary.exists(),
            "{} not found: build it (cargo build --release -p credential-registry -p token-issuer) or pass --registry-bin/--issuer-bin",
            binary.display()
        );
    }
    anyhow::ensure!(
        (1..=10_000).contains(&args.tokens_per_credential),
        "--tokens-per-credential must be 1–10000 (the policy limit)"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&args.evict_limit),
        "--evict-limit must be 1–10000 (the policy limit)"
    );
    anyhow::ensure!(
        args.streams > 0 && args.connections > 0,
        "--streams and --connections must be positive"
    );
    anyhow::ensure!(
        args.wrk_threads > 0
            && args.wrk_connections >= args.wrk_threads
            && args.h2load_clients > 0
            && args.h2load_streams > 0,
        "--wrk-threads, --wrk-connections (at least one per thread), --h2load-clients and --h2load-streams must be positive"
    );
    anyhow::ensure!(args.rounds > 0, "--rounds must be positive");
    anyhow::ensure!(
        args.duration >= 1.0 && args.warmup >= 0.0,
        "--duration must be at least 1 s and --warmup not negative"
    );
    anyhow::ensure!(
        args.soak.is_none_or(|minutes| minutes > 0.0) && args.soak_interval >= 1.0,
        "--soak must be positive and --soak-interval at least 1 s"
    );
    let mut token_counts = args.tokens.clone();
    token_counts.sort_unstable();
    token_counts.dedup();
    token_counts.retain(|count| *count > 0);
    anyhow::ensure!(
        !token_counts.is_empty(),
        "--tokens needs at least one count"
    );
    Ok(token_counts)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let here = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_default();
    let options = StackOptions {
        registry_bin: args
            .registry_bin
            .clone()
            .unwrap_or_else(|| here.join("credential-registry")),
        issuer_bin: args
            .issuer_bin
            .clone()
            .unwrap_or_else(|| here.join("token-issuer")),
        redis_server: args.redis_server.clone(),
        postgres_url: args.postgres_url.clone(),
        keep_dir: args.keep,
        cache_capacity: args.cache_capacity,
    };
    let token_counts = check_args(&args, &options)?;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let loaders: Vec<String> = args
        .loader
        .iter()
        .map(|loader| format!("{loader:?}").to_lowercase())
        .collect();
    println!(
        "latchkey-bench: {} interleaved rounds per comparison, {} s warm-up + {} s measured per run; loaders: {}; built-in: {} streams on {} HTTP/2 connections; wrk -t{} -c{}; h2load -c{} -m{}; {cpus} CPUs, load average {}",
        args.rounds,
        args.warmup,
        args.duration,
        loaders.join(", "),
        args.streams,
        args.connections,
        args.wrk_threads,
        args.wrk_connections,
        args.h2load_clients,
        args.h2load_streams,
        load_average()
    );
    if let Some(capacity) = args.cache_capacity {
        println!("production issuer: redis.cache_capacity = {capacity}");
    }
    let mut reports = Vec::new();
    let mut soak_report = None;
    if let Some(minutes) = args.soak {
        soak_report = Some(run_soak(&args, &options, minutes).await?);
    } else {
        let kinds: Vec<StackKind> = match args.stack {
            StackChoice::Production => vec![StackKind::Production],
            StackChoice::Embedded => vec![StackKind::Embedded],
            StackChoice::Both => vec![StackKind::Production, StackKind::Embedded],
        };
        let peer_dir = tempfile::Builder::new()
            .prefix("latchkey-bench-peer-")
            .tempdir()?;
        let peer = if args.peer {
            let peer = Peer::start(
                peer_dir.path(),
                scenarios::http_client(args.wrk_connections)?,
            )
            .await
            .context("start the peer (node-oidc-provider)")?;
            println!(
                "peer: node-oidc-provider {} (NODE_ENV=production, in-memory adapter: stores nothing durable) at {}",
                peer::VERSION,
                peer.url
            );
            Some(peer)
        } else {
            None
        };
        for kind in kinds {
            println!();
            println!("== {} stack ({}) ==", kind.name(), kind.describe());
            let mut stack = Stack::start(kind, &options)
                .await
                .with_context(|| format!("start the {} stack", kind.name()))?;
            if args.keep {
                println!(
                    "configuration, logs and loader scripts: {}",
                    stack.dir().display()
                );
            }
            let outcome = session::bench_stack(&stack, &args, peer.as_ref(), &token_counts).await;
            stack.stop().await;
            let report = outcome.with_context(|| {
                format!(
                    "{} stack (service logs were in {}; --keep keeps them)",
                    kind.name(),
                    stack.dir().display()
                )
            })?;
            session::print_report(&report);
            reports.push(report);
        }
    }
    if let Some(path) = &args.json {
        let json = JsonReport {
            cpus,
            rounds: args.rounds,
            loaders,
            warmup_seconds: args.warmup,
            measure_seconds: args.duration,
            peer: args.peer.then_some(peer::VERSION),
            stacks: &reports,
            soak: soak_report,
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("write {}", path.display()))?;
        println!("\nJSON written to {}", path.display());
    }
    Ok(())
}

/// `--soak`: the production stack under sustained mixed load: evicting
/// HTTP issuance and HTTP introspection (wrk each), and management calls
/// churning credentials.
async fn run_soak(
    args: &RunArgs,
    options: &StackOptions,
    minutes: f64,
) -> anyhow::Result<soak::SoakReport> {
    println!();
    println!(
        "== soak: {minutes} min on the production stack: HTTP issuance (wrk -t{} -c{}, {} credentials at max_tokens_per_credential = {}, EVICT_OLDEST), HTTP introspection of {SOAK_TOKENS} live tokens (wrk -t{} -c{}), and a credential created, disabled, enabled, rotated and deleted every second ==",
        args.wrk_threads,
        args.wrk_connections,
        args.issue_credentials,
        args.evict_limit,
        args.wrk_threads,
        args.wrk_connections
    );
    let mut stack = Stack::start(StackKind::Production, options)
        .await
        .context("start the production stack")?;
    let outcome = async {
        let fixture = Fixture::new(&stack, args).await?;
        let load = fixture.issue_load(&stack.issuer_http_url, true);
        let tokens = fixture.live_tokens(SOAK_TOKENS).await?;
        let introspection =
            fixture.introspect_load(&stack.issuer_http_url, &tokens, scenarios::Expect::Active);
        fixture
            .admin()
            .create_project(
                SOAK_MANAGEMENT_PROJECT,
                latchkey_proto::registry::v1::ProjectPolicy {
                    max_credentials: Some(0),
                    ..Default::default()
                },
            )
            .await?;
        let stop = Arc::new(AtomicBool::new(false));
        let churn = tokio::spawn(scenarios::management_churn(
            fixture.admin(),
            SOAK_MANAGEMENT_PROJECT,
            SOAK_MANAGEMENT_PACE,
            stop.clone(),
        ));
        let report = soak::run(
            &stack,
            args.wrk_shape(),
            &load,
            Some(&introspection),
            minutes,
            Duration::from_secs_f64(args.soak_interval),
            stack.dir(),
        )
        .await;
        stop.store(true, Ordering::Relaxed);
        let management = churn.await?;
        report.map(|report| soak::SoakReport {
            management: Some(management),
            ..report
        })
    }
    .await;
    stack.stop().await;
    let report = outcome?;
    println!();
    print!("{}", soak::render(&report));
    println!(
        "issuance over the soak: {:.0} req/s, p99 {:.2} ms, {} errors",
        report.issuance.rate,
        report.issuance.p99_ms,
        report.issuance.error_count()
    );
    if let Some(introspection) = &report.introspection {
        println!(
            "introspection over the soak: {:.0} req/s, p99 {:.2} ms, {} errors",
            introspection.rate,
            introspection.p99_ms,
            introspection.error_count()
        );
    }
    if let Some((cycles, failures)) = report.management {
        println!(
            "management over the soak: {cycles} credentials created, disabled, enabled, rotated and deleted; {failures} calls failed"
        );
    }
    Ok(report)
}

/// Live tokens the soak introspects.
const SOAK_TOKENS: usize = 1000;

/// One management cycle (five calls) a second: a busy platform's rate, far
/// above people at consoles; each call is an audit event the database keeps
/// for `audit_retention_days`, so a hot loop would measure the audit trail's
/// growth rather than whether anything leaks.
const SOAK_MANAGEMENT_PACE: Duration = Duration::from_secs(1);

/// The project the soak's management calls churn credentials in.
const SOAK_MANAGEMENT_PROJECT: &str = "bench-manage";

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
