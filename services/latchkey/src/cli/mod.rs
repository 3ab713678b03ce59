//! The `latchkey` command line client: profiles, and the registry's
//! management calls for people (tables, prompts) and scripts (JSON, exit
//! codes by error kind; see [`error::EXIT_CODES_HELP`]).

mod activity;
mod connection;
mod credential_view;
mod credentials;
pub(crate) mod error;
mod login;
mod members;
mod output;
mod profile;
mod projects;
mod tokens;

use std::process::ExitCode;

use connection::Registry;
use error::CliError;
use output::Format;

/// Flags every client command takes.
#[derive(Debug, clap::Args)]
pub(crate) struct Global {
    /// The profile to use (from `latchkey login --profile NAME`).
    #[arg(long, global = true, env = "LATCHKEY_PROFILE", default_value = profile::DEFAULT_PROFILE)]
    profile: String,
    /// How to print results: tables for people or the responses' JSON.
    #[arg(long, short, global = true, value_enum, default_value = "human")]
    output: Format,
    /// Act on behalf of this member (the caller must be allowed to), confined
    /// to what the member may do.
    #[arg(long, global = true, value_name = "USER")]
    on_behalf_of: Option<String>,
}

/// The client commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Saves a profile: the endpoints and a management credential.
    Login(login::Args),
    /// Client credentials: create, list, rotate, delete…
    #[command(subcommand)]
    Credentials(credentials::Command),
    /// Projects.
    #[command(subcommand)]
    Projects(projects::Command),
    /// A project's members (users) and the APIs each may hold.
    #[command(subcommand)]
    Members(members::Command),
    /// The audit trail, newest first: who changed what, from where.
    Audit(activity::AuditArgs),
    /// Tokens issued and revoked per credential and period.
    Usage(activity::UsageArgs),
    /// Access tokens: issue one for a credential, introspect, revoke.
    #[command(subcommand)]
    Tokens(tokens::Command),
    /// Prints a shell completion script: `latchkey completions bash > …`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Runs `command` and tells how it went, as an exit code. `whole` is the
/// binary's whole command line definition, for `completions`.
pub(crate) async fn run(
    global: Global,
    command: Command,
    whole: fn() -> clap::Command,
) -> ExitCode {
    if let Command::Completions { shell } = command {
        clap_complete::generate(shell, &mut whole(), "latchkey", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    match execute(global, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::note(&format!("error: {error}"));
            error.exit_code()
        }
    }
}

async fn execute(global: Global, command: Command) -> Result<(), CliError> {
    let on_behalf_of = global.on_behalf_of.as_deref();
    match command {
        Command::Login(args) => login::run(&global.profile, args).await,
        Command::Credentials(command) => {
            let registry = connect(&global).await?;
            credentials::run(registry, command, global.output, on_behalf_of).await
        }
        Command::Projects(command) => {
            let registry = connect(&global).await?;
            projects::run(registry, command, global.output).await
        }
        Command::Members(command) => {
            let registry = connect(&global).await?;
            members::run(registry, command, global.output).await
        }
        Command::Audit(args) => activity::audit(connect(&global).await?, args, global.output).await,
        Command::Usage(args) => activity::usage(connect(&global).await?, args, global.output).await,
        Command::Tokens(command) => {
            let profile = profile::resolve(&global.profile)?;
            tokens::run(&profile, command, global.output).await
        }
        // Answered by `run` before any profile is read.
        Command::Completions { .. } => Ok(()),
    }
}

async fn connect(global: &Global) -> Result<Registry, CliError> {
    let profile = profile::resolve(&global.profile)?;
    Registry::connect(&profile, global.on_behalf_of.as_deref()).await
}
