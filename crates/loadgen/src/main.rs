//! `latchkey-bench`: Latchkey's load generator.
//!
//! Starts the release `credential-registry` and `token-issuer` binaries as
//! separate processes (PostgreSQL + Redis, or the embedded SQLite +
//! in-process tokens), loads live tokens through the real issuance path,
//! drives them over gRPC and HTTP with N concurrent streams on a
//! configurable number of HTTP/2 connections, and reports each figure as a
//! ratio to its floor measured in the same run: a bare tonic echo service
//! (the gRPC floor) and a plain Redis `GET` loop (the store floor). See
//! `docs/performance.md`.

// Printing the report is what this binary is for.
#![allow(clippy::print_stdout)]

mod driver;
mod echo;
mod report;
mod scenarios;
mod stack;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey_proto::registry::v1 as reg;
use serde::Serialize;
use tonic::transport::Channel;

use crate::driver::{LoadShape, drive};
use crate::report::{Measurement, MemoryRow, Row, Target};
use crate::scenarios::{
    Admin, Client, Expect, GrpcIntrospect, GrpcIssue, HttpIntrospect, HttpIssue, RedisGet,
    TokenPool,
};
use crate::stack::{Stack, StackKind, StackOptions};

/// Latchkey's load generator: the real services against their floors.
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
    /// Serves the floors: a bare tonic `Introspection/Introspect` and a bare
    /// HTTP `POST /oauth2/introspect`, both with a constant answer (started
    /// by the bench itself).
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

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Which deployment(s) to drive.
    #[arg(long, value_enum, default_value = "both")]
    stack: StackChoice,
    /// Concurrent requests in flight (closed-loop streams).
    #[arg(long, default_value_t = 64)]
    streams: usize,
    /// HTTP/2 connections the gRPC streams share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Warm-up seconds per scenario (driven, not measured).
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Live token counts to introspect at, loaded in turn (e.g.
    /// 1000,100000,1000000).
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    tokens: Vec<usize>,
    /// Live tokens per credential while loading (1–10000, the policy limit).
    #[arg(long, default_value_t = 1000)]
    tokens_per_credential: usize,
    /// Credentials the issuance scenarios cycle through.
    #[arg(long, default_value_t = 64)]
    issue_credentials: usize,
    /// Concurrent IssueToken calls while loading tokens.
    #[arg(long, default_value_t = 64)]
    load_concurrency: usize,
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
    /// Keep the temporary directory (configurations, service logs).
    #[arg(long)]
    keep: bool,
    /// The production issuer's introspection cache capacity
    /// (`redis.cache_capacity`; 0 disables it). Default: the issuer's own.
    #[arg(long)]
    cache_capacity: Option<usize>,
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

/// Everything one stack measured.
#[derive(Debug, Serialize)]
struct StackReport {
    stack: String,
    rows: Vec<Row>,
    memory: Vec<MemoryRow>,
    /// Introspection rate at each token count relative to the smallest.
    flatness: Vec<(usize, f64)>,
    /// Mean server-side latencies from the services' own metrics, over the
    /// whole run (set-up and loading included).
    server_side: Vec<report::LatencyMean>,
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    cpus: usize,
    streams: usize,
    connections: usize,
    warmup_seconds: f64,
    measure_seconds: f64,
    stacks: &'a [StackReport],
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
        args.streams > 0 && args.connections > 0,
        "--streams and --connections must be positive"
    );
    let mut token_counts = args.tokens.clone();
    token_counts.sort_unstable();
    token_counts.dedup();
    token_counts.retain(|count| *count > 0);
    anyhow::ensure!(
        !token_counts.is_empty(),
        "--tokens needs at least one count"
    );

    let shape = LoadShape {
        processes: &[],
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.duration),
    };
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "latchkey-bench: {} streams on {} HTTP/2 connections (HTTP: a keep-alive pool), {} s warm-up + {} s measured per scenario; {cpus} CPUs, load average {}",
        args.streams,
        args.connections,
        args.warmup,
        args.duration,
        load_average()
    );
    if let Some(capacity) = args.cache_capacity {
        println!("production issuer: redis.cache_capacity = {capacity}");
    }
    let kinds: Vec<StackKind> = match args.stack {
        StackChoice::Production => vec![StackKind::Production],
        StackChoice::Embedded => vec![StackKind::Embedded],
        StackChoice::Both => vec![StackKind::Production, StackKind::Embedded],
    };
    let mut reports = Vec::new();
    for kind in kinds {
        println!();
        println!("== {} stack ({}) ==", kind.name(), kind.describe());
        let mut stack = Stack::start(kind, &options)
            .await
            .with_context(|| format!("start the {} stack", kind.name()))?;
        if args.keep {
            println!("configuration and logs: {}", stack.dir().display());
        }
        let outcome = bench_stack(&stack, &args, shape, &token_counts).await;
        stack.stop().await;
        let report = outcome.with_context(|| {
            format!(
                "{} stack (service logs were in {}; --keep keeps them)",
                kind.name(),
                stack.dir().display()
            )
        })?;
        print_report(&report);
        reports.push(report);
    }
    if let Some(path) = &args.json {
        let json = JsonReport {
            cpus,
            streams: args.streams,
            connections: args.connections,
            warmup_seconds: args.warmup,
            measure_seconds: args.duration,
            stacks: &reports,
        };
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("write {}", path.display()))?;
        println!("\nJSON written to {}", path.display());
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn print_report(report: &StackReport) {
    println!();
    println!("-- {}: throughput and latency --", report.stack);
    print!("{}", report::render_table(&report.rows));
    println!();
    println!("-- {}: where the time goes --", report.stack);
    print!("{}", report::render_cpu(&report.rows));
    if !report.server_side.is_empty() {
        println!("server-side means over the whole run (the services' own histograms):");
        for mean in &report.server_side {
            println!(
                "  {:<60} {:>10} calls {:>9.3} ms",
                mean.name, mean.count, mean.mean_ms
            );
        }
    }
    println!();
    println!("-- {}: loading and memory per live token --", report.stack);
    print!("{}", report::render_memory(&report.memory));
    if report.flatness.len() > 1 {
        let points: Vec<String> = report
            .flatness
            .iter()
            .map(|(tokens, share)| {
                format!("{}: {:.0}%", report::short_count(*tokens), share * 100.0)
            })
            .collect();
        let flat = report.flatness.iter().all(|(_, share)| *share >= 0.9);
        println!(
            "flatness (valid gRPC introspection's ratio to the echo floor at each count, vs the smallest count; target >= 90%): {} -> {}",
            points.join(", "),
            if flat { "yes" } else { "NO" }
        );
    }
}

const INTROSPECT_VALID: &str = "introspect valid (gRPC)";
const INTROSPECT_TARGET: Target = Target::FloorShare {
    min_ratio: 0.70,
    max_p99_ms: Some(2.0),
};
const ISSUE_TARGET: Target = Target::FloorShare {
    min_ratio: 0.25,
    max_p99_ms: None,
};

/// Progress on stderr, so stdout is the report.
/// The gRPC floor: `Introspect` of tokens drawn from `tokens` against the
/// echo server, by the very workers of the real scenarios.
async fn echo_floor(
    shape: LoadShape,
    echo: &[Channel],
    authorization: &str,
    tokens: &Arc<Vec<String>>,
    streams: usize,
) -> anyhow::Result<Measurement> {
    let workers = build(streams, |index| {
        GrpcIntrospect::new(
            echo[index % echo.len()].clone(),
            authorization,
            tokens.clone(),
            Expect::Active,
        )
    })?;
    Ok(drive(shape, workers).await)
}

/// Waits (up to two minutes) for the work loading left behind to finish,
/// so it does not run during the next measurement.
async fn settle_down() {
    let waited = driver::settle(Duration::from_secs(120)).await;
    progress(&format!(
        "machine quiet after {:.1} s",
        waited.as_secs_f64()
    ));
}

fn progress(message: &str) {
    eprintln!("  .. {message}");
}

async fn bench_stack(
    stack: &Stack,
    args: &RunArgs,
    shape: LoadShape,
    token_counts: &[usize],
) -> anyhow::Result<StackReport> {
    let name = stack.kind.name();
    // Leaked once per stack: a handful of bytes for the life of the bench.
    let shape = LoadShape {
        processes: Vec::leak(stack.processes()),
        ..shape
    };
    let issuer = scenarios::connect(&stack.issuer_grpc_url, args.connections).await?;
    let registry = scenarios::connect(&stack.registry_url, 1).await?;
    let echo = scenarios::connect(&stack.echo_grpc_url, args.connections).await?;
    let http = scenarios::http_client(args.streams)?;
    let admin_client = Client {
        client_id: stack.admin.client_id.clone(),
        client_secret: stack.admin.client_secret.clone(),
        scopes: Vec::new(),
    };
    let admin = Admin::new(registry[0].clone(), issuer[0].clone(), &admin_client).await?;

    // Projects: one holding the loaded tokens (rejecting past the limit, so
    // loading is exact), one for issuance (evicting, so it never runs dry).
    let per_credential = args.tokens_per_credential;
    let policy = |on_limit: reg::OnTokenLimit, max_tokens: usize| reg::ProjectPolicy {
        max_credentials: Some(0),
        max_credentials_per_owner: Some(0),
        max_tokens_per_credential: Some(u32::try_from(max_tokens).unwrap_or(10_000)),
        token_ttl_seconds: Some(86_400),
        on_token_limit: Some(on_limit as i32),
    };
    admin
        .create_project("bench", policy(reg::OnTokenLimit::Reject, per_credential))
        .await?;
    admin
        .create_project(
            "bench-issue",
            policy(reg::OnTokenLimit::EvictOldest, 10_000),
        )
        .await?;
    let gateway = admin
        .create_credential("bench", "gateway", &["tokens:introspect"])
        .await?;
    let gateway_auth = scenarios::basic(&gateway.client_id, &gateway.client_secret);
    progress("creating issuance credentials");
    let issue_clients = Arc::new(
        admin
            .create_credentials("bench-issue", args.issue_credentials.max(1))
            .await?,
    );

    let mut redis = match &stack.redis {
        Some(server) => {
            let client = redis::Client::open(server.url.as_str())?;
            let mut connection = redis::aio::ConnectionManager::new(client).await?;
            redis::cmd("SET")
                .arg("bench:floor")
                .arg(vec![b'x'; 64])
                .query_async::<()>(&mut connection)
                .await?;
            Some(connection)
        }
        None => None,
    };

    let mut rows = Vec::new();
    // The floors.
    let fake_tokens: Arc<Vec<String>> = Arc::new(
        (0..1000)
            .map(|_| latchkey_secrets::ACCESS_TOKEN.generate())
            .collect(),
    );
    settle_down().await;
    progress("floor: echo gRPC");
    let echo_grpc = echo_floor(shape, &echo, &gateway_auth, &fake_tokens, args.streams).await?;
    let echo_rate = echo_grpc.rate();
    rows.push(Row::floor(name, "floor: echo (gRPC)", None, &echo_grpc));
    progress("floor: echo HTTP");
    let echo_http = {
        let tokens = fake_tokens.clone();
        drive(
            shape,
            each(args.streams, |_| {
                HttpIntrospect::new(
                    http.clone(),
                    &stack.echo_http_url,
                    &gateway_auth,
                    tokens.clone(),
                    Expect::Active,
                )
            }),
        )
        .await
    };
    let echo_http_rate = echo_http.rate();
    rows.push(Row::floor(name, "floor: echo (HTTP/1.1)", None, &echo_http));
    let mut store_floor = None;
    if let Some(connection) = &redis {
        progress("floor: Redis GET");
        let floor = drive(
            shape,
            each(args.streams, |_| RedisGet {
                connection: connection.clone(),
                key: "bench:floor".to_owned(),
            }),
        )
        .await;
        store_floor = Some(floor.rate());
        rows.push(Row::new(
            name,
            "floor: Redis GET",
            None,
            &floor,
            Some(("echo gRPC", echo_rate)),
            None,
            None,
        ));
    }
    let http_floor = Some(("echo HTTP", echo_http_rate));

    // Live tokens, loaded in steps; introspection at each.
    let mut pool = TokenPool::default();
    let mut token_clients: Vec<Client> = Vec::new();
    let mut memory = Vec::new();
    let redis_before = match redis.as_mut() {
        Some(connection) => Some(stack::redis_used_memory(connection).await?),
        None => None,
    };
    let rss_before = stack.issuer_pid().and_then(stack::resident_bytes);
    for &count in token_counts {
        let credentials = count.div_ceil(per_credential);
        if token_clients.len() < credentials {
            progress(&format!(
                "creating {} credentials",
                credentials - token_clients.len()
            ));
            let more = admin
                .create_credentials("bench", credentials - token_clients.len())
                .await?;
            token_clients.extend(more);
        }
        let clients = Arc::new(token_clients.clone());
        let already = pool.valid.len();
        progress(&format!("loading {} tokens", count - already.min(count)));
        let started = Instant::now();
        let failed = scenarios::load_tokens(
            &mut pool,
            count,
            &clients,
            per_credential,
            &issuer,
            args.load_concurrency,
        )
        .await;
        let load_seconds = started.elapsed().as_secs_f64();
        let loaded = pool.valid.len();
        let redis_bytes = match (redis.as_mut(), redis_before) {
            (Some(connection), Some(before)) => {
                let after = stack::redis_used_memory(connection).await?;
                report::bytes_per_token(before, after, loaded)
            }
            _ => None,
        };
        anyhow::ensure!(!pool.valid.is_empty(), "no token could be loaded");
        pool.make_invalid(10_000);
        scenarios::wait_introspectable(issuer[0].clone(), &gateway_auth, &pool.valid[0]).await?;
        let valid = Arc::new(pool.valid.clone());
        progress(&format!(
            "priming: introspecting each of the {loaded} tokens once"
        ));
        let started = Instant::now();
        let not_active =
            scenarios::prime(&issuer, &gateway_auth, valid.clone(), args.load_concurrency).await?;
        progress(&format!(
            "primed in {:.1} s ({not_active} not active)",
            started.elapsed().as_secs_f64()
        ));
        // After priming: on the production stack this is the cache's share.
        let rss_bytes = match (
            stack.issuer_pid().and_then(stack::resident_bytes),
            rss_before,
        ) {
            (Some(after), Some(before)) => report::bytes_per_token(before, after, loaded),
            _ => None,
        };
        memory.push(MemoryRow {
            stack: name.to_owned(),
            live_tokens: loaded,
            load_seconds,
            load_rate: if load_seconds > 0.0 {
                (loaded - already) as f64 / load_seconds
            } else {
                0.0
            },
            load_errors: failed,
            redis_bytes_per_token: redis_bytes,
            issuer_rss_bytes_per_token: rss_bytes,
            met: redis_bytes.map(|bytes| bytes < report::MAX_REDIS_BYTES_PER_TOKEN),
        });
        let invalid = Arc::new(pool.invalid.clone());
        let live = Some(loaded);

        // The gRPC floor again, next to the figures it divides and drawing
        // from the same pool: the client's cost of picking among a million
        // tokens, and the machine's drift over a long run, are then in the
        // floor too.
        settle_down().await;
        progress(&format!("floor: echo gRPC at {loaded} tokens"));
        let echo_here = echo_floor(shape, &echo, &gateway_auth, &valid, args.streams).await?;
        let grpc_floor = Some(("echo gRPC", echo_here.rate()));
        rows.push(Row::floor(name, "floor: echo (gRPC)", live, &echo_here));

        for (scenario, tokens, expect) in [
            (INTROSPECT_VALID, &valid, Expect::Active),
            ("introspect invalid (gRPC)", &invalid, Expect::Inactive),
        ] {
            progress(&format!("{scenario} at {loaded} tokens"));
            let auth = gateway_auth.clone();
            let workers = build(args.streams, |index| {
                GrpcIntrospect::new(
                    issuer[index % issuer.len()].clone(),
                    &auth,
                    tokens.clone(),
                    expect,
                )
            })?;
            let measured = drive(shape, workers).await;
            rows.push(Row::new(
                name,
                scenario,
                live,
                &measured,
                grpc_floor,
                store_floor,
                Some(INTROSPECT_TARGET),
            ));
        }
        for (scenario, tokens, expect) in [
            ("introspect valid (HTTP)", &valid, Expect::Active),
            ("introspect invalid (HTTP)", &invalid, Expect::Inactive),
        ] {
            progress(&format!("{scenario} at {loaded} tokens"));
            let measured = drive(
                shape,
                each(args.streams, |_| {
                    HttpIntrospect::new(
                        http.clone(),
                        &stack.issuer_http_url,
                        &gateway_auth,
                        tokens.clone(),
                        expect,
                    )
                }),
            )
            .await;
            rows.push(Row::new(
                name,
                scenario,
                live,
                &measured,
                http_floor,
                store_floor,
                None,
            ));
        }
    }

    // Issuance last, so its tokens do not count in the memory figures; its
    // floor measured right before it.
    settle_down().await;
    progress("floor: echo gRPC before issuance");
    let echo_before_issue =
        echo_floor(shape, &echo, &gateway_auth, &fake_tokens, args.streams).await?;
    let grpc_floor = Some(("echo gRPC", echo_before_issue.rate()));
    rows.push(Row::floor(
        name,
        "floor: echo (gRPC), before issuance",
        None,
        &echo_before_issue,
    ));
    progress("issue (gRPC)");
    let measured = drive(
        shape,
        each(args.streams, |index| GrpcIssue {
            client: latchkey_proto::token::v1::token_service_client::TokenServiceClient::new(
                issuer[index % issuer.len()].clone(),
            ),
            clients: issue_clients.clone(),
            next: index,
        }),
    )
    .await;
    rows.push(Row::new(
        name,
        "issue (gRPC)",
        None,
        &measured,
        grpc_floor,
        store_floor,
        Some(ISSUE_TARGET),
    ));
    progress("issue (HTTP)");
    let authorizations: Arc<Vec<String>> = Arc::new(
        issue_clients
            .iter()
            .map(|client| scenarios::basic(&client.client_id, &client.client_secret))
            .collect(),
    );
    let measured = drive(
        shape,
        each(args.streams, |index| HttpIssue {
            http: http.clone(),
            url: format!("{}/oauth2/token", stack.issuer_http_url),
            authorizations: authorizations.clone(),
            next: index,
        }),
    )
    .await;
    rows.push(Row::new(
        name,
        "issue (HTTP)",
        None,
        &measured,
        http_floor,
        store_floor,
        None,
    ));

    let flatness = report::flatness(&rows, INTROSPECT_VALID);
    let mut server_side = Vec::new();
    for (service, url) in [
        ("issuer", format!("{}/metrics", stack.issuer_http_url)),
        ("registry", stack.registry_metrics_url.clone()),
    ] {
        if let Ok(response) = http.get(&url).send().await
            && let Ok(text) = response.text().await
        {
            server_side.extend(report::latency_means(service, &text));
        }
    }
    Ok(StackReport {
        stack: name.to_owned(),
        rows,
        memory,
        flatness,
        server_side,
    })
}

/// Builds `count` workers with a fallible constructor.
fn build<W>(count: usize, make: impl Fn(usize) -> anyhow::Result<W>) -> anyhow::Result<Vec<W>> {
    (0..count).map(make).collect()
}

/// `count` workers.
fn each<W>(count: usize, make: impl Fn(usize) -> W) -> Vec<W> {
    (0..count).map(make).collect()
}
