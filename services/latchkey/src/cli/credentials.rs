//! `latchkey credentials …`: a project's client credentials.

use std::io::BufRead;

use latchkey_proto::registry::v1 as pb;

use super::connection::Registry;
use super::credential_view::{show_details, show_secret, show_table};
use super::error::CliError;
use super::output::{self, Format};

/// What to do with credentials.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Lists a project's credentials (every page).
    List {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// Only this owner's credentials.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Shows one credential.
    Get {
        /// The credential's ID.
        id: String,
    },
    /// Creates a credential and prints its secret, once.
    Create {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// The user the credential belongs to (default: --on-behalf-of).
        #[arg(long)]
        owner: Option<String>,
        /// A name unique in the project (generated when not given).
        #[arg(long)]
        name: Option<String>,
        /// What the credential is for.
        #[arg(long)]
        description: Option<String>,
        /// An API (scope) its tokens may call; repeatable.
        #[arg(long = "allowed-api", value_name = "API")]
        allowed_apis: Vec<String>,
        /// An address or CIDR block it may be used from; repeatable (none: any).
        #[arg(long = "allowed-ip", value_name = "CIDR")]
        allowed_ips: Vec<String>,
    },
    /// Renames a credential.
    Rename {
        /// The credential's ID.
        id: String,
        /// The new name.
        name: String,
    },
    /// Changes a credential's description, APIs or addresses (only the
    /// given flags change).
    Update {
        /// The credential's ID.
        id: String,
        /// The new description ("" clears it).
        #[arg(long)]
        description: Option<String>,
        /// The APIs its tokens may call, replacing the current list; repeatable.
        #[arg(long = "allowed-api", value_name = "API")]
        allowed_apis: Vec<String>,
        /// The addresses it may be used from, replacing the current list; repeatable.
        #[arg(long = "allowed-ip", value_name = "CIDR", conflicts_with = "any_ip")]
        allowed_ips: Vec<String>,
        /// Allows every address (clears the address list).
        #[arg(long)]
        any_ip: bool,
    },
    /// Replaces a credential's secret and prints the new one, once.
    Rotate {
        /// The credential's ID.
        id: String,
        /// How long the previous secret keeps working, in seconds.
        #[arg(long, default_value_t = 0)]
        grace_period: u32,
        /// Also revoke the access tokens issued so far.
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Refuses a credential's secret until it is enabled again.
    Disable {
        /// The credential's ID.
        id: String,
    },
    /// Accepts a disabled credential's secret again.
    Enable {
        /// The credential's ID.
        id: String,
    },
    /// Deletes a credential for good, after its name is typed to confirm.
    Delete {
        /// The credential's ID.
        id: String,
        /// The credential's name, to delete without a prompt (scripts).
        #[arg(long, value_name = "NAME")]
        confirm_name: Option<String>,
    },
}

/// Runs `command`.
pub(crate) async fn run(
    registry: Registry,
    command: Command,
    format: Format,
    on_behalf_of: Option<&str>,
) -> Result<(), CliError> {
    let mut client = registry.client();
    match command {
        Command::List { project, owner } => {
            let mut all = pb::ListCredentialsResponse::default();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_credentials(registry.request(pb::ListCredentialsRequest {
                        project_id: project.clone(),
                        owner: owner.clone().unwrap_or_default(),
                        page_size: 1000,
                        page_token,
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                all.credentials.extend(page.credentials);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
                if format == Format::Human {
                    output::note(&format!("{} credentials so far…", all.credentials.len()));
                }
            }
            match format {
                Format::Json => output::json(&all, "ListCredentialsResponse"),
                Format::Human => {
                    show_table(&all.credentials);
                    Ok(())
                }
            }
        }
        Command::Get { id } => {
            let response = client
                .get_credential(registry.request(pb::GetCredentialRequest { credential_id: id }))
                .await?
                .into_inner();
            show_one(
                &response,
                "GetCredentialResponse",
                response.credential.as_ref(),
                format,
            )
        }
        Command::Create {
            project,
            owner,
            name,
            description,
            allowed_apis,
            allowed_ips,
        } => {
            // `--on-behalf-of` is `USER` or `PROJECT/USER`; the user owns it.
            let member = on_behalf_of.map(|member| {
                member
                    .split_once('/')
                    .map_or(member, |(_, user)| user)
                    .to_owned()
            });
            let Some(owner) = owner.or(member) else {
                return Err(CliError::Usage(
                    "--owner is needed (or --on-behalf-of, whose user owns it)".to_owned(),
                ));
            };
            let response = client
                .create_credential(registry.request(pb::CreateCredentialRequest {
                    project_id: project,
                    owner,
                    name: name.unwrap_or_default(),
                    description: description.unwrap_or_default(),
                    allowed_apis,
                    allowed_ips,
                    expire_time: None,
                }))
                .await?
                .into_inner();
            match format {
                Format::Json => output::json(&response, "CreateCredentialResponse"),
                Format::Human => {
                    if let Some(credential) = &response.credential {
                        show_details(credential);
                    }
                    show_secret(&response.client_secret);
                    Ok(())
                }
            }
        }
        Command::Rename { id, name } => {
            let credential = pb::Credential {
                id,
                name,
                ..Default::default()
            };
            update(&registry, credential, vec!["name".to_owned()], format).await
        }
        Command::Update {
            id,
            description,
            allowed_apis,
            allowed_ips,
            any_ip,
        } => {
            let mut paths = Vec::new();
            if description.is_some() {
                paths.push("description".to_owned());
            }
            if !allowed_apis.is_empty() {
                paths.push("allowed_apis".to_owned());
            }
            if !allowed_ips.is_empty() || any_ip {
                paths.push("allowed_ips".to_owned());
            }
            if paths.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give --description, --allowed-api, --allowed-ip or --any-ip".to_owned(),
                ));
            }
            let credential = pb::Credential {
                id,
                description: description.unwrap_or_default(),
                allowed_apis,
                allowed_ips,
                ..Default::default()
            };
            update(&registry, credential, paths, format).await
        }
        Command::Rotate {
            id,
            grace_period,
            revoke_tokens,
        } => {
            let response = client
                .rotate_credential_secret(registry.request(pb::RotateCredentialSecretRequest {
                    credential_id: id,
                    grace_period_seconds: grace_period,
                    revoke_tokens,
                }))
                .await?
                .into_inner();
            match format {
                Format::Json => output::json(&response, "RotateCredentialSecretResponse"),
                Format::Human => {
                    if let Some(credential) = &response.credential {
                        show_details(credential);
                    }
                    output::line(&format!(
                        "Previous secret ends:  {}",
                        match &response.previous_secret_expire_time {
                            Some(time) => output::relative(Some(time)),
                            None => "already ended".to_owned(),
                        }
                    ));
                    show_secret(&response.client_secret);
                    Ok(())
                }
            }
        }
        Command::Disable { id } => {
            let response = client
                .disable_credential(
                    registry.request(pb::DisableCredentialRequest { credential_id: id }),
                )
                .await?
                .into_inner();
            show_one(
                &response,
                "DisableCredentialResponse",
                response.credential.as_ref(),
                format,
            )
        }
        Command::Enable { id } => {
            let response = client
                .enable_credential(
                    registry.request(pb::EnableCredentialRequest { credential_id: id }),
                )
                .await?
                .into_inner();
            show_one(
                &response,
                "EnableCredentialResponse",
                response.credential.as_ref(),
                format,
            )
        }
        Command::Delete { id, confirm_name } => {
            let credential = client
                .get_credential(registry.request(pb::GetCredentialRequest {
                    credential_id: id.clone(),
                }))
                .await?
                .into_inner()
                .credential
                .unwrap_or_default();
            let typed = match confirm_name {
                Some(name) => name,
                None => prompt(&format!(
                    "This deletes credential {:?} ({}) for good; its tokens stop working.\n\
                     Type its name to confirm:",
                    credential.name, credential.client_id
                ))?,
            };
            if typed != credential.name {
                return Err(CliError::NotConfirmed(format!(
                    "the name typed ({typed:?}) is not the credential's ({:?}): nothing deleted",
                    credential.name
                )));
            }
            // The registry checks the name too, against the credential as it
            // is when deleting (it may have been renamed meanwhile).
            let response = client
                .delete_credential(registry.request(pb::DeleteCredentialRequest {
                    credential_id: id,
                    confirm_name: typed,
                }))
                .await?
                .into_inner();
            match format {
                Format::Json => output::json(&response, "DeleteCredentialResponse"),
                Format::Human => {
                    output::line(&format!("Deleted credential {:?}.", credential.name));
                    Ok(())
                }
            }
        }
    }
}

async fn update(
    registry: &Registry,
    credential: pb::Credential,
    paths: Vec<String>,
    format: Format,
) -> Result<(), CliError> {
    let response = registry
        .client()
        .update_credential(registry.request(pb::UpdateCredentialRequest {
            credential: Some(credential),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await?
        .into_inner();
    show_one(
        &response,
        "UpdateCredentialResponse",
        response.credential.as_ref(),
        format,
    )
}

/// Shows a response holding one credential.
fn show_one(
    response: &impl prost::Message,
    message: &str,
    credential: Option<&pb::Credential>,
    format: Format,
) -> Result<(), CliError> {
    match format {
        Format::Json => output::json(response, message),
        Format::Human => {
            if let Some(credential) = credential {
                show_details(credential);
            }
            Ok(())
        }
    }
}

/// Asks `question` on stderr and reads one line of stdin.
fn prompt(question: &str) -> Result<String, CliError> {
    output::note(question);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_owned())
}
