//! `token-issuer`: serves Latchkey's token issuer.

// The binary shares its package's dependency list with the library.
#![allow(unused_crate_dependencies)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use latchkey_runtime::{Shutdown, init_telemetry, shutdown_on_signals};
use token_issuer::{IssuerConfig, Listeners, ServeError, serve};

/// mimalloc instead of glibc's malloc: the hot paths allocate per request
/// (hyper, tonic, prost), and glibc's arenas cost a fifth of the issuer's
/// CPU; mimalloc cut the issuer's CPU per issuance by about a fifth in the
/// bench (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latchkey's token issuer: client-credentials grant, introspection, OAuth
/// endpoints.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file; `LATCHKEY_*` variables override it.
    #[arg(long, short, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
}

/// Exit code for bad configuration.
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match IssuerConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("token-issuer: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let _telemetry = init_telemetry(config.log_format, "info");
    let listeners = match bind(&config).await {
        Ok(listeners) => listeners,
        Err((address, error)) => {
            tracing::error!(%address, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone());
    match serve(config, listeners, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ ServeError::Config(_)) => {
            tracing::error!(%error, "invalid configuration");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            tracing::error!(%error, "token issuer failed");
            ExitCode::FAILURE
        }
    }
}

async fn bind(config: &IssuerConfig) -> Result<Listeners, (std::net::SocketAddr, std::io::Error)> {
    let bind = |address| async move {
        tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| (address, error))
    };
    Ok(Listeners {
        grpc: bind(config.listen_addr).await?,
        internal: bind(config.internal_listen_addr).await?,
        http: bind(config.http_listen_addr).await?,
        admin: bind(config.admin_listen_addr).await?,
    })
}
