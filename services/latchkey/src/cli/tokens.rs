//! `latchkey tokens …`: the issuer's OAuth endpoints, next to the profile's
//! token endpoint. Secrets and tokens are read from stdin (or a prompt
//! without echo), never from flags.

use std::io::BufRead;

use super::error::CliError;
use super::output::{self, Format};
use super::profile::Resolved;

/// What to do with tokens.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Gets an access token for a credential (client credentials grant).
    Issue {
        /// The credential's client ID.
        #[arg(long)]
        client_id: String,
        /// A scope to ask for; repeatable (none: every allowed API).
        #[arg(long = "scope", value_name = "API")]
        scopes: Vec<String>,
        /// Reads the credential's secret from stdin instead of a prompt.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Tells whether a token (read from stdin) is active, as a gateway
    /// would ask, authenticated with the profile's credential
    /// (`tokens:introspect`).
    Introspect {
        /// The address the token is presented from.
        #[arg(long, value_name = "IP")]
        client_ip: Option<String>,
    },
    /// Revokes a token (read from the first line of stdin); only the
    /// token's own credential can (RFC 7009).
    Revoke {
        /// The client ID of the credential the token was issued to.
        #[arg(long)]
        client_id: String,
        /// Reads the credential's secret from stdin (the line after the
        /// token) instead of a prompt.
        #[arg(long)]
        secret_stdin: bool,
    },
}

/// Runs `command`.
pub(crate) async fn run(
    profile: &Resolved,
    command: Command,
    format: Format,
) -> Result<(), CliError> {
    // The same bound as the token source's own client: a stuck issuer is
    // an error (exit 6), not a hung terminal.
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|error| CliError::Config(format!("HTTP client: {error}")))?;
    match command {
        Command::Issue {
            client_id,
            scopes,
            secret_stdin,
        } => {
            let secret = if secret_stdin {
                read_line()?
            } else {
                rpassword::prompt_password("Client secret (not shown): ")?
            };
            let mut form = vec![("grant_type", "client_credentials".to_owned())];
            if !scopes.is_empty() {
                form.push(("scope", scopes.join(" ")));
            }
            let request = http
                .post(&profile.token_url)
                .basic_auth(client_id, Some(secret))
                .form(&form);
            show_token(&send(request).await?, format);
            Ok(())
        }
        Command::Introspect { client_ip } => {
            output::note("Token (stdin):");
            let token = read_line()?;
            let url = sibling(&profile.token_url, "introspect")?;
            let mut form = vec![("token", token)];
            if let Some(client_ip) = client_ip {
                form.push(("client_ip", client_ip));
            }
            let request = http
                .post(url)
                .basic_auth(&profile.client_id, Some(&profile.client_secret))
                .form(&form);
            show_introspection(&send(request).await?, format);
            Ok(())
        }
        Command::Revoke {
            client_id,
            secret_stdin,
        } => {
            output::note("Token (stdin):");
            let token = read_line()?;
            let secret = if secret_stdin {
                read_line()?
            } else {
                rpassword::prompt_password("Client secret (not shown): ")?
            };
            let request = http
                .post(sibling(&profile.token_url, "revoke")?)
                .basic_auth(client_id, Some(secret))
                .form(&[("token", token)]);
            send(request).await?;
            if format == Format::Json {
                output::line("{}");
            } else {
                output::line("Revoked.");
            }
            Ok(())
        }
    }
}

/// The token endpoint's answer: as it is for scripts.
fn show_token(response: &serde_json::Value, format: Format) {
    if format == Format::Json {
        output::line(&response.to_string());
        return;
    }
    output::line(&format!(
        "Access token:  {}",
        response["access_token"].as_str().unwrap_or("")
    ));
    output::line(&format!("Expires in:    {} s", response["expires_in"]));
    output::line(&format!(
        "Scope:         {}",
        response["scope"].as_str().unwrap_or("-")
    ));
}

/// The introspection answer (RFC 7662 fields): as it is for scripts.
fn show_introspection(response: &serde_json::Value, format: Format) {
    if format == Format::Json {
        output::line(&response.to_string());
        return;
    }
    let Some(fields) = response.as_object() else {
        return;
    };
    for (key, value) in fields {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        output::line(&format!("{:<14} {value}", format!("{key}:")));
    }
}

/// The endpoint `name` beside the token endpoint (`…/oauth2/introspect`).
fn sibling(token_url: &str, name: &str) -> Result<String, CliError> {
    token_url
        .strip_suffix("/token")
        .map(|base| format!("{base}/{name}"))
        .ok_or_else(|| {
            CliError::Config(format!(
                "token URL {token_url:?} does not end in /token: cannot find /{name} beside it"
            ))
        })
}

/// Sends `request`; an OAuth error answer becomes the error of its kind.
async fn send(request: reqwest::RequestBuilder) -> Result<serde_json::Value, CliError> {
    let unavailable = |error: reqwest::Error| {
        CliError::Status(tonic::Status::unavailable(format!("the issuer: {error}")))
    };
    let response = request.send().await.map_err(unavailable)?;
    let status = response.status();
    let text = response.text().await.map_err(unavailable)?;
    // A revocation answers 200 with an empty body.
    let body: serde_json::Value = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).map_err(|error| {
            CliError::Status(tonic::Status::unknown(format!(
                "the issuer answered HTTP {status} with something not JSON: {error}"
            )))
        })?
    };
    if status.is_success() {
        return Ok(body);
    }
    let error = body["error"].as_str().unwrap_or("error");
    let description = body["error_description"].as_str().unwrap_or("");
    let message = format!("{error}: {description}");
    // The OAuth error codes (RFC 6749 §5.2) as the gRPC codes they mean,
    // so the exit codes are the same as for the registry's calls.
    Err(CliError::Status(match status.as_u16() {
        401 => tonic::Status::unauthenticated(message),
        403 => tonic::Status::permission_denied(message),
        400 => tonic::Status::invalid_argument(message),
        429 | 503 => tonic::Status::unavailable(message),
        _ => tonic::Status::unknown(message),
    }))
}

fn read_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}
