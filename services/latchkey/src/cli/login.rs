//! `latchkey login`: asks for the endpoints and a management credential,
//! checks the credential gets a token, and writes the profile (mode 0600).
//! The secret is read at a prompt without echo, or from stdin with
//! `--secret-stdin`, never from a flag: flags end up in shell history and
//! in every user's `ps`.

use std::io::BufRead;

use super::connection::token_source;
use super::error::CliError;
use super::output;
use super::profile::{self, Profile, Resolved};

/// `latchkey login`'s flags; what is not given is asked for.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The registry's gRPC URL.
    #[arg(long, value_name = "URL")]
    registry_url: Option<String>,
    /// The issuer's token endpoint.
    #[arg(long, value_name = "URL")]
    token_url: Option<String>,
    /// The management credential's client ID.
    #[arg(long)]
    client_id: Option<String>,
    /// Reads the secret from stdin (the first line after any asked field)
    /// instead of a prompt without echo.
    #[arg(long)]
    secret_stdin: bool,
}

/// Runs `latchkey login` for the profile `name`.
pub(crate) async fn run(name: &str, args: Args) -> Result<(), CliError> {
    let stored = profile::stored(name)?;
    let registry_url = given_or_asked(
        args.registry_url,
        "Registry gRPC URL",
        stored
            .registry_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:50051"),
    )?;
    let token_url = given_or_asked(
        args.token_url,
        "Token endpoint",
        stored
            .token_url
            .as_deref()
            .unwrap_or("http://127.0.0.1:8080/oauth2/token"),
    )?;
    let client_id = given_or_asked(
        args.client_id,
        "Client ID",
        stored.client_id.as_deref().unwrap_or(""),
    )?;
    let client_secret = if args.secret_stdin {
        read_line()?
    } else {
        rpassword::prompt_password("Client secret (not shown): ")?
    };
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(CliError::Config(
            "a client ID and a secret are needed".to_owned(),
        ));
    }
    let resolved = Resolved {
        registry_url,
        token_url,
        client_id,
        client_secret,
    };
    // A profile that cannot get a token is not worth keeping.
    token_source(&resolved)?.token().await?;
    let path = profile::save(
        name,
        Profile {
            registry_url: Some(resolved.registry_url),
            token_url: Some(resolved.token_url),
            client_id: Some(resolved.client_id.clone()),
            client_secret: Some(resolved.client_secret),
        },
    )?;
    output::line(&format!(
        "Logged in as {} (profile {name:?}, saved in {}).",
        resolved.client_id,
        path.display()
    ));
    Ok(())
}

/// `given`, or the answer to `question` (`default` when empty).
fn given_or_asked(
    given: Option<String>,
    question: &str,
    default: &str,
) -> Result<String, CliError> {
    if let Some(given) = given {
        return Ok(given);
    }
    if default.is_empty() {
        output::note(&format!("{question}:"));
    } else {
        output::note(&format!("{question} [{default}]:"));
    }
    let answer = read_line()?;
    Ok(if answer.is_empty() {
        default.to_owned()
    } else {
        answer
    })
}

fn read_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}
