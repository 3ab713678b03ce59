//! `credential-registry`: serves Latchkey's credential registry.

// The binary shares its package's dependency list with the library.
#![allow(unused_crate_dependencies)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use credential_registry::{RegistryConfig, ServeError, serve};
use latchkey_runtime::{Shutdown, init_telemetry, shutdown_on_signals};

/// Latchkey's credential registry: projects and client credentials over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file; `LATCHKEY_*` variables override it.
    #[arg(long, short, env = "LATCHKEY_CONFIG")]
    config: Option<PathBuf>,
}

/// Exit code for bad configuration (EX_CONFIG would be 78; linkerd and
/// sysexits' EX_USAGE use 64, which operators' tooling already expects).
const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match RegistryConfig::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("credential-registry: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let _telemetry = init_telemetry(config.log_format, "info");
    let listener = match tokio::net::TcpListener::bind(config.listen_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(address = %config.listen_addr, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    shutdown_on_signals(shutdown.clone());
    match serve(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ ServeError::Config(_)) => {
            tracing::error!(%error, "invalid configuration");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            tracing::error!(%error, "credential registry failed");
            ExitCode::FAILURE
        }
    }
}
