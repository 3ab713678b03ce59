//! One stack's run: the fixture (projects, credentials, loaded tokens) and
//! every comparison, each measured in interleaved rounds next to its
//! baseline.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as reg;
use serde::Serialize;
use tonic::transport::Channel;

use crate::compare::{self, Comparison, Setup, Target};
use crate::driver::{self, LoadShape, drive};
use crate::external::{self, GrpcLoad, H2loadShape, MAX_SCRIPT_REQUESTS, PostLoad, Window};
use crate::peer::Peer;
use crate::report::{self, MemoryRow, Sample};
use crate::scenarios::{
    self, Admin, Client, Expect, GrpcIntrospect, GrpcIssue, HttpPost, TOKEN_TEXT, TokenPool,
};
use crate::stack::{self, Stack, StackKind};
use crate::{Loader, RunArgs};

/// Everything one stack measured.
#[derive(Debug, Serialize)]
pub(crate) struct StackReport {
    stack: String,
    comparisons: Vec<Comparison>,
    memory: Vec<MemoryRow>,
    /// Valid gRPC introspection's median ratio at each token count relative
    /// to the smallest.
    flatness: Vec<(usize, f64)>,
    /// Mean server-side latencies from the services' own metrics, over the
    /// whole run (set-up and loading included).
    server_side: Vec<report::LatencyMean>,
}

const INTROSPECT_VALID: &str = "introspect valid (gRPC)";
/// gRPC introspection: 90% of the tonic echo, p99 under 2 ms.
const GRPC_INTROSPECT_TARGET: Target = Target {
    min_ratio: 0.90,
    max_p99_ms: Some(2.0),
};
/// HTTP introspection: 85% of the HTTP echo.
const HTTP_INTROSPECT_TARGET: Target = Target::ratio(0.85);
/// HTTP introspection: ten times node-oidc-provider.
const PEER_INTROSPECT_TARGET: Target = Target::ratio(10.0);
/// HTTP issuance on PostgreSQL + Redis: 25% of the HTTP echo.
const HTTP_ISSUE_TARGET: Target = Target::ratio(0.25);

fn peer_issue_target(kind: StackKind) -> Target {
    match kind {
        StackKind::Production => Target::ratio(3.0),
        StackKind::Embedded => Target::ratio(5.0),
    }
}

pub(crate) fn progress(message: &str) {
    eprintln!("  .. {message}");
}

fn loader_name(loader: Loader) -> &'static str {
    match loader {
        Loader::Builtin => "builtin",
        Loader::Wrk => "wrk",
        Loader::H2load => "h2load",
    }
}

/// Projects, credentials and the admin of one stack.
#[derive(Debug)]
pub(crate) struct Fixture {
    issuer: Vec<Channel>,
    admin: Admin,
    gateway_auth: String,
    issue_clients: Arc<Vec<Client>>,
    evict_clients: Arc<Vec<Client>>,
}

impl Fixture {
    /// Creates, through the real APIs: a project holding the loaded tokens
    /// (rejecting past its limit, so loading is exact), one for issuance
    /// (evicting at 10,000, so it never runs dry and rarely evicts), one
    /// evicting at `--evict-limit` and filled to it (every issuance
    /// evicts), a gateway credential, and the issuance credentials.
    pub(crate) async fn new(stack: &Stack, args: &RunArgs) -> anyhow::Result<Self> {
        let issuer = scenarios::connect(&stack.issuer_grpc_url, args.connections).await?;
        let registry = scenarios::connect(&stack.registry_url, 1).await?;
        let admin_client = Client {
            client_id: stack.admin.client_id.clone(),
            client_secret: stack.admin.client_secret.clone(),
            scopes: Vec::new(),
        };
        let admin = Admin::new(registry[0].clone(), issuer[0].clone(), &admin_client).await?;
        let policy = |on_limit: reg::OnTokenLimit, max_tokens: usize| reg::ProjectPolicy {
            max_credentials: Some(0),
            max_credentials_per_owner: Some(0),
            max_tokens_per_credential: Some(u32::try_from(max_tokens).unwrap_or(10_000)),
            token_ttl_seconds: Some(86_400),
            on_token_limit: Some(on_limit as i32),
        };
        admin
            .create_project(
                "bench",
                policy(reg::OnTokenLimit::Reject, args.tokens_per_credential),
            )
            .await?;
        admin
            .create_project(
                "bench-issue",
                policy(reg::OnTokenLimit::EvictOldest, 10_000),
            )
            .await?;
        admin
            .create_project(
                "bench-evict",
                policy(reg::OnTokenLimit::EvictOldest, args.evict_limit),
            )
            .await?;
        let gateway = admin
            .create_credential("bench", "gateway", &["tokens:introspect"])
            .await?;
        progress("creating issuance credentials");
        let count = args.issue_credentials.max(1);
        let issue_clients = Arc::new(admin.create_credentials("bench-issue", count).await?);
        let evict_clients = Arc::new(admin.create_credentials("bench-evict", count).await?);
        progress("filling the evicting project to its limit");
        scenarios::fill_to_limit(&issuer[0], &evict_clients, args.evict_limit).await?;
        Ok(Self {
            issuer,
            admin,
            gateway_auth: scenarios::basic(&gateway.client_id, &gateway.client_secret),
            issue_clients,
            evict_clients,
        })
    }

    /// `POST {base}/oauth2/token` cycling over the issuance credentials (or
    /// the evicting project's).
    pub(crate) fn issue_load(&self, base: &str, evicting: bool) -> PostLoad {
        let clients = if evicting {
            &self.evict_clients
        } else {
            &self.issue_clients
        };
        PostLoad {
            url: format!("{base}/oauth2/token"),
            authorizations: clients
                .iter()
                .map(|client| scenarios::basic(&client.client_id, &client.client_secret))
                .collect(),
            bodies: vec![scenarios::issue_body()],
            expect: TOKEN_TEXT.to_owned(),
        }
    }

    /// The admin, for management calls of its own.
    pub(crate) fn admin(&self) -> Admin {
        self.admin.clone()
    }

    /// `count` tokens of the issuance project (a day's lifetime, never
    /// evicted at these counts), issued through `IssueToken`.
    pub(crate) async fn live_tokens(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(count);
        for index in 0..count {
            let client = &self.issue_clients[index % self.issue_clients.len()];
            tokens.push(scenarios::issue(self.issuer[0].clone(), client).await?);
        }
        Ok(tokens)
    }

    /// `POST {base}/oauth2/introspect` of `tokens` as the gateway.
    pub(crate) fn introspect_load(
        &self,
        base: &str,
        tokens: &[String],
        expect: Expect,
    ) -> PostLoad {
        PostLoad {
            url: format!("{base}/oauth2/introspect"),
            authorizations: vec![self.gateway_auth.clone()],
            bodies: tokens
                .iter()
                .map(|token| scenarios::introspect_body(token))
                .collect(),
            expect: scenarios::active_text(expect).to_owned(),
        }
    }
}

/// At most `count` of `pool`, evenly spaced (so spread over credentials).
fn spread_sample(pool: &[String], count: usize) -> Vec<String> {
    if pool.len() <= count {
        return pool.to_vec();
    }
    (0..count)
        .map(|index| pool[index * pool.len() / count].clone())
        .collect()
}

/// How each loader is run for one stack.
struct Runner<'a> {
    args: &'a RunArgs,
    kind: StackKind,
    shape: LoadShape,
    window: Window,
    http: reqwest::Client,
    dir: &'a Path,
}

impl Runner<'_> {
    fn setup(
        &self,
        scenario: &str,
        live_tokens: Option<usize>,
        loader: Loader,
        baseline: &str,
        target: Option<Target>,
    ) -> Setup {
        Setup {
            stack: self.kind.name().to_owned(),
            scenario: scenario.to_owned(),
            live_tokens,
            loader: loader_name(loader),
            baseline: baseline.to_owned(),
            target,
        }
    }

    /// One run of `load` by `loader` (wrk, or the built-in closed loop).
    async fn http(
        &self,
        loader: Loader,
        name: &str,
        load: &Arc<PostLoad>,
    ) -> anyhow::Result<Sample> {
        match loader {
            Loader::Wrk => {
                external::wrk(self.args.wrk_shape(), &self.window, self.dir, name, load).await
            }
            Loader::Builtin | Loader::H2load => {
                let workers = (0..self.args.streams)
                    .map(|_| HttpPost::new(self.http.clone(), load.clone()))
                    .collect();
                Ok(Sample::from(&drive(self.shape, workers).await))
            }
        }
    }

    /// One h2load run of `load`.
    async fn h2load(&self, name: &str, load: &GrpcLoad) -> anyhow::Result<Sample> {
        let shape = H2loadShape {
            clients: self.args.h2load_clients,
            streams: self.args.h2load_streams,
        };
        external::h2load(shape, &self.window, self.dir, name, load).await
    }

    /// One built-in run of gRPC introspection of `tokens` over `channels`.
    async fn grpc_introspect(
        &self,
        channels: &[Channel],
        authorization: &str,
        tokens: &Arc<Vec<String>>,
        expect: Expect,
    ) -> anyhow::Result<Sample> {
        let workers = (0..self.args.streams)
            .map(|index| {
                GrpcIntrospect::new(
                    channels[index % channels.len()].clone(),
                    authorization,
                    tokens.clone(),
                    expect,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Sample::from(&drive(self.shape, workers).await))
    }

    /// Rounds of `subject` and `baseline`, alternating.
    async fn compare(
        &self,
        setup: Setup,
        mut subject: impl AsyncFnMut() -> anyhow::Result<Sample>,
        mut baseline: impl AsyncFnMut() -> anyhow::Result<Sample>,
    ) -> anyhow::Result<Comparison> {
        let mut rounds = Vec::new();
        let mut baseline_rounds = Vec::new();
        for round in 1..=self.args.rounds {
            progress(&format!(
                "{} [{}] round {round}/{}",
                setup.scenario, setup.loader, self.args.rounds
            ));
            rounds.push(subject().await?);
            progress(&format!(
                "  vs {} [{}] round {round}/{}",
                setup.baseline, setup.loader, self.args.rounds
            ));
            baseline_rounds.push(baseline().await?);
        }
        Ok(Comparison::new(setup, rounds, baseline_rounds))
    }
}

/// What memory per live token is measured against: Redis `used_memory`
/// and the issuer's resident memory before the first token.
struct MemoryProbe {
    redis: Option<redis::aio::ConnectionManager>,
    redis_before: Option<u64>,
    rss_before: Option<u64>,
}

/// The live tokens loaded so far and the credentials holding them.
#[derive(Default)]
struct Loaded {
    pool: TokenPool,
    clients: Vec<Client>,
}

/// Loads the pool to `count` live tokens and primes the issuer's cache;
/// the memory row of that step.
async fn load_step(
    stack: &Stack,
    args: &RunArgs,
    fixture: &Fixture,
    loaded: &mut Loaded,
    count: usize,
    probe: &mut MemoryProbe,
) -> anyhow::Result<MemoryRow> {
    let Loaded {
        pool,
        clients: token_clients,
    } = loaded;
    let per_credential = args.tokens_per_credential;
    let credentials = count.div_ceil(per_credential);
    if token_clients.len() < credentials {
        progress(&format!(
            "creating {} credentials",
            credentials - token_clients.len()
        ));
        let more = fixture
            .admin
            .create_credentials("bench", credentials - token_clients.len())
            .await?;
        token_clients.extend(more);
    }
    let clients = Arc::new(token_clients.clone());
    let already = pool.valid.len();
    progress(&format!("loading {} tokens", count - already.min(count)));
    let started = Instant::now();
    let failed = scenarios::load_tokens(
        pool,
        count,
        &clients,
        per_credential,
        &fixture.issuer,
        args.load_concurrency,
    )
    .await;
    let load_seconds = started.elapsed().as_secs_f64();
    let loaded = pool.valid.len();
    let rss_before = probe.rss_before;
    let redis_bytes = match (probe.redis.as_mut(), probe.redis_before) {
        (Some(connection), Some(before)) => {
            let after = stack::redis_used_memory(connection).await?;
            report::bytes_per_token(before, after, loaded)
        }
        _ => None,
    };
    anyhow::ensure!(!pool.valid.is_empty(), "no token could be loaded");
    pool.make_invalid(10_000);
    scenarios::wait_introspectable(
        fixture.issuer[0].clone(),
        &fixture.gateway_auth,
        &pool.valid[0],
    )
    .await?;
    progress(&format!(
        "priming: introspecting each of the {loaded} tokens once"
    ));
    let started = Instant::now();
    let not_active = scenarios::prime(
        &fixture.issuer,
        &fixture.gateway_auth,
        Arc::new(pool.valid.clone()),
        args.load_concurrency,
    )
    .await?;
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
    let waited = driver::settle(Duration::from_secs_f64(args.settle)).await;
    progress(&format!("settled for {:.1} s", waited.as_secs_f64()));
    Ok(MemoryRow {
        stack: stack.kind.name().to_owned(),
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
    })
}

/// Every comparison on one stack.
pub(crate) async fn bench_stack(
    stack: &Stack,
    args: &RunArgs,
    peer: Option<&Peer>,
    token_counts: &[usize],
) -> anyhow::Result<StackReport> {
    let fixture = Fixture::new(stack, args).await?;
    let servers = stack.processes();
    let mut with_loader = vec![("loader", std::process::id())];
    with_loader.extend(servers.iter().copied());
    let mut external_processes = servers;
    if let Some(pid) = peer.and_then(|peer| peer.pid) {
        external_processes.push(("peer", pid));
    }
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.duration);
    let runner = Runner {
        args,
        kind: stack.kind,
        // Leaked once per stack: a handful of bytes for the life of the bench.
        shape: LoadShape {
            processes: Vec::leak(with_loader),
            warmup,
            measure,
        },
        window: Window {
            warmup,
            measure,
            processes: external_processes,
        },
        http: scenarios::http_client(args.streams.max(args.wrk_connections))?,
        dir: stack.dir(),
    };
    let echo = scenarios::connect(&stack.echo_grpc_url, args.connections).await?;
    let http_loader = if args.uses(Loader::Wrk) {
        Loader::Wrk
    } else {
        Loader::Builtin
    };
    if (args.peer || http_loader == Loader::Wrk) && which("wrk").is_none() {
        anyhow::bail!("wrk is not installed (scripts/bench installs it)");
    }
    let mut redis = match &stack.redis {
        Some(server) => Some(
            redis::aio::ConnectionManager::new(redis::Client::open(server.url.as_str())?).await?,
        ),
        None => None,
    };
    let redis_before = match redis.as_mut() {
        Some(connection) => Some(stack::redis_used_memory(connection).await?),
        None => None,
    };
    let mut probe = MemoryProbe {
        redis,
        redis_before,
        rss_before: stack.issuer_pid().and_then(stack::resident_bytes),
    };

    let mut comparisons = Vec::new();
    let mut memory = Vec::new();
    let mut loaded = Loaded::default();
    for (step, &count) in token_counts.iter().enumerate() {
        memory.push(load_step(stack, args, &fixture, &mut loaded, count, &mut probe).await?);
        let pool = &loaded.pool;
        let live = Some(pool.valid.len());
        let valid = Arc::new(pool.valid.clone());
        let invalid = Arc::new(pool.invalid.clone());
        let auth = fixture.gateway_auth.as_str();

        // gRPC, built-in loader; the echo draws from the same pool, so the
        // client's cost of picking among a million tokens is in both.
        for (scenario, tokens, expect, target) in [
            (
                INTROSPECT_VALID,
                &valid,
                Expect::Active,
                Some(GRPC_INTROSPECT_TARGET),
            ),
            (
                "introspect invalid (gRPC)",
                &invalid,
                Expect::Inactive,
                None,
            ),
        ] {
            let setup = runner.setup(scenario, live, Loader::Builtin, "echo gRPC", target);
            comparisons.push(
                runner
                    .compare(
                        setup,
                        async || {
                            runner
                                .grpc_introspect(&fixture.issuer, auth, tokens, expect)
                                .await
                        },
                        async || {
                            runner
                                .grpc_introspect(&echo, auth, &valid, Expect::Active)
                                .await
                        },
                    )
                    .await?,
            );
        }

        // gRPC, h2load: one pre-encoded request, repeated.
        if args.uses(Loader::H2load) {
            let frame = external::grpc_frame(&scenarios::introspect_message(&pool.valid[0]));
            let path = "/latchkey.token.v1.Introspection/Introspect";
            let subject = GrpcLoad {
                url: format!("{}{path}", stack.issuer_grpc_url),
                authorization: fixture.gateway_auth.clone(),
                frame: frame.clone(),
            };
            let floor = GrpcLoad {
                url: format!("{}{path}", stack.echo_grpc_url),
                ..subject.clone()
            };
            let setup = runner.setup(
                "introspect valid (gRPC, one token)",
                live,
                Loader::H2load,
                "echo gRPC",
                Some(GRPC_INTROSPECT_TARGET),
            );
            comparisons.push(
                runner
                    .compare(
                        setup,
                        async || runner.h2load("introspect", &subject).await,
                        async || runner.h2load("echo-introspect", &floor).await,
                    )
                    .await?,
            );
        }

        // HTTP introspection against the HTTP echo (same bodies).
        let sampled_valid = spread_sample(&pool.valid, MAX_SCRIPT_REQUESTS);
        let sampled_invalid = spread_sample(&pool.invalid, MAX_SCRIPT_REQUESTS);
        let echo_load =
            Arc::new(fixture.introspect_load(&stack.echo_http_url, &sampled_valid, Expect::Active));
        let valid_load = Arc::new(fixture.introspect_load(
            &stack.issuer_http_url,
            &sampled_valid,
            Expect::Active,
        ));
        let invalid_load = Arc::new(fixture.introspect_load(
            &stack.issuer_http_url,
            &sampled_invalid,
            Expect::Inactive,
        ));
        for (scenario, load, target) in [
            (
                "introspect valid (HTTP)",
                &valid_load,
                Some(HTTP_INTROSPECT_TARGET),
            ),
            ("introspect invalid (HTTP)", &invalid_load, None),
        ] {
            let setup = runner.setup(scenario, live, http_loader, "echo HTTP", target);
            comparisons.push(
                runner
                    .compare(
                        setup,
                        async || runner.http(http_loader, "introspect", load).await,
                        async || {
                            runner
                                .http(http_loader, "echo-introspect", &echo_load)
                                .await
                        },
                    )
                    .await?,
            );
        }

        // The peer, once (its introspection does not depend on Latchkey's
        // token count).
        if let Some(peer) = peer
            && step == 0
        {
            let setup = runner.setup(
                "introspect valid (HTTP)",
                live,
                Loader::Wrk,
                "node-oidc-provider",
                Some(PEER_INTROSPECT_TARGET),
            );
            comparisons.push(
                runner
                    .compare(
                        setup,
                        async || runner.http(Loader::Wrk, "introspect", &valid_load).await,
                        async || {
                            let tokens = peer.tokens(100).await?;
                            let load = Arc::new(PostLoad {
                                url: peer.introspection_url(),
                                authorizations: vec![peer.authorization.clone()],
                                bodies: tokens
                                    .iter()
                                    .map(|token| format!("token={token}"))
                                    .collect(),
                                expect: scenarios::active_text(Expect::Active).to_owned(),
                            });
                            runner.http(Loader::Wrk, "peer-introspect", &load).await
                        },
                    )
                    .await?,
            );
        }
    }

    // Issuance last, so its tokens do not count in the memory figures.
    let echo_tokens = Arc::new(spread_sample(&loaded.pool.valid, 1000));
    let auth = fixture.gateway_auth.as_str();
    let setup = runner.setup("issue (gRPC)", None, Loader::Builtin, "echo gRPC", None);
    comparisons.push(
        runner
            .compare(
                setup,
                async || {
                    let workers = (0..args.streams)
                        .map(|index| GrpcIssue {
                            client: latchkey_proto::token::v1::token_service_client::TokenServiceClient::new(
                                fixture.issuer[index % fixture.issuer.len()].clone(),
                            ),
                            clients: fixture.issue_clients.clone(),
                            next: index,
                        })
                        .collect();
                    Ok(Sample::from(&drive(runner.shape, workers).await))
                },
                async || runner.grpc_introspect(&echo, auth, &echo_tokens, Expect::Active).await,
            )
            .await?,
    );
    let issue_load = Arc::new(fixture.issue_load(&stack.issuer_http_url, false));
    let evict_load = Arc::new(fixture.issue_load(&stack.issuer_http_url, true));
    let echo_issue = Arc::new(fixture.issue_load(&stack.echo_http_url, false));
    let issue_target = match stack.kind {
        StackKind::Production => Some(HTTP_ISSUE_TARGET),
        StackKind::Embedded => None,
    };
    let evict_scenario = format!("issue (HTTP), evicting at {}", args.evict_limit);
    for (scenario, load, target) in [
        ("issue (HTTP)", &issue_load, issue_target),
        (evict_scenario.as_str(), &evict_load, None),
    ] {
        let setup = runner.setup(scenario, None, http_loader, "echo HTTP", target);
        comparisons.push(
            runner
                .compare(
                    setup,
                    async || runner.http(http_loader, "issue", load).await,
                    async || runner.http(http_loader, "echo-issue", &echo_issue).await,
                )
                .await?,
        );
    }
    if let Some(peer) = peer {
        let peer_load = Arc::new(PostLoad {
            url: peer.token_url(),
            authorizations: vec![peer.authorization.clone()],
            bodies: vec![scenarios::issue_body()],
            expect: TOKEN_TEXT.to_owned(),
        });
        let setup = runner.setup(
            "issue (HTTP)",
            None,
            Loader::Wrk,
            "node-oidc-provider",
            Some(peer_issue_target(stack.kind)),
        );
        comparisons.push(
            runner
                .compare(
                    setup,
                    async || runner.http(Loader::Wrk, "issue", &issue_load).await,
                    async || runner.http(Loader::Wrk, "peer-issue", &peer_load).await,
                )
                .await?,
        );
    }

    let flatness = compare::flatness(&comparisons, INTROSPECT_VALID);
    let mut server_side = Vec::new();
    for (service, url) in [
        ("issuer", stack.issuer_metrics_url.clone()),
        ("registry", stack.registry_metrics_url.clone()),
    ] {
        if let Ok(response) = runner.http.get(&url).send().await
            && let Ok(text) = response.text().await
        {
            server_side.extend(report::latency_means(service, &text));
        }
    }
    Ok(StackReport {
        stack: stack.kind.name().to_owned(),
        comparisons,
        memory,
        flatness,
        server_side,
    })
}

/// Where `program` is on `PATH`.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// Prints one stack's report.
pub(crate) fn print_report(report: &StackReport) {
    println!();
    println!(
        "-- {}: comparisons (medians of interleaved rounds; ratio = subject / baseline per round, spread min–max) --",
        report.stack
    );
    print!("{}", compare::render(&report.comparisons));
    println!();
    println!("-- {}: where the time goes --", report.stack);
    print!("{}", compare::render_cpu(&report.comparisons));
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
            "flatness (valid gRPC introspection's median ratio to the echo at each count, vs the smallest count; target >= 90%): {} -> {}",
            points.join(", "),
            if flat { "yes" } else { "NO" }
        );
    }
}
