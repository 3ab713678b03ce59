//! `latchkey projects …`: the tenants credentials live in.

use latchkey_proto::registry::v1 as pb;

use super::connection::Registry;
use super::error::CliError;
use super::output::{self, Format};

/// What to do with projects.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Lists the projects the caller may see (every page).
    List,
    /// Shows one project and its effective policy.
    Get {
        /// The project's ID.
        id: String,
    },
    /// Creates a project with the configured default policy.
    Create {
        /// The new project's ID: 3 to 63 lowercase letters, digits and hyphens.
        id: String,
        /// A human-readable name (default: the ID).
        #[arg(long)]
        display_name: Option<String>,
        /// The base URL of the platform's API, shown beside its credentials.
        #[arg(long)]
        api_endpoint: Option<String>,
    },
    /// Changes a project's name or API endpoint ("" clears one).
    Update {
        /// The project's ID.
        id: String,
        /// The new human-readable name.
        #[arg(long)]
        display_name: Option<String>,
        /// The new API endpoint.
        #[arg(long)]
        api_endpoint: Option<String>,
    },
    /// Overrides a project's limits (only the given ones change).
    Policy {
        /// The project's ID.
        id: String,
        /// Most API credentials in the project; 0: unlimited.
        #[arg(long)]
        max_credentials: Option<u32>,
        /// Most API credentials per owner; 0: unlimited.
        #[arg(long)]
        max_credentials_per_owner: Option<u32>,
        /// Most live tokens per credential.
        #[arg(long)]
        max_tokens_per_credential: Option<u32>,
        /// Lifetime of issued tokens, in seconds.
        #[arg(long)]
        token_ttl_seconds: Option<u32>,
    },
}

/// Runs `command`.
pub(crate) async fn run(
    registry: Registry,
    command: Command,
    format: Format,
) -> Result<(), CliError> {
    let mut client = registry.client();
    match command {
        Command::List => {
            let mut all = pb::ListProjectsResponse::default();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_projects(registry.request(pb::ListProjectsRequest {
                        page_size: 1000,
                        page_token,
                        order_by: String::new(),
                    }))
                    .await?
                    .into_inner();
                all.projects.extend(page.projects);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            match format {
                Format::Json => output::json(&all, "ListProjectsResponse"),
                Format::Human => {
                    let rows: Vec<Vec<String>> = all
                        .projects
                        .iter()
                        .map(|project| {
                            vec![
                                project.id.clone(),
                                project.display_name.clone(),
                                output::or_dash(&project.api_endpoint),
                                output::relative(project.create_time.as_ref()),
                            ]
                        })
                        .collect();
                    output::table(&["ID", "NAME", "API ENDPOINT", "CREATED"], &rows);
                    Ok(())
                }
            }
        }
        Command::Get { id } => {
            let response = client
                .get_project(registry.request(pb::GetProjectRequest { project_id: id }))
                .await?
                .into_inner();
            show(
                &response,
                "GetProjectResponse",
                response.project.as_ref(),
                format,
            )
        }
        Command::Create {
            id,
            display_name,
            api_endpoint,
        } => {
            let response = client
                .create_project(registry.request(pb::CreateProjectRequest {
                    project_id: id,
                    display_name: display_name.unwrap_or_default(),
                    policy: None,
                    api_endpoint: api_endpoint.unwrap_or_default(),
                }))
                .await?
                .into_inner();
            show(
                &response,
                "CreateProjectResponse",
                response.project.as_ref(),
                format,
            )
        }
        Command::Update {
            id,
            display_name,
            api_endpoint,
        } => {
            let mut paths = Vec::new();
            if display_name.is_some() {
                paths.push("display_name".to_owned());
            }
            if api_endpoint.is_some() {
                paths.push("api_endpoint".to_owned());
            }
            let response = client
                .update_project(registry.request(pb::UpdateProjectRequest {
                    project: Some(pb::Project {
                        id,
                        display_name: display_name.unwrap_or_default(),
                        api_endpoint: api_endpoint.unwrap_or_default(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                }))
                .await?
                .into_inner();
            show(
                &response,
                "UpdateProjectResponse",
                response.project.as_ref(),
                format,
            )
        }
        Command::Policy {
            id,
            max_credentials,
            max_credentials_per_owner,
            max_tokens_per_credential,
            token_ttl_seconds,
        } => {
            let response = client
                .update_project_policy(registry.request(pb::UpdateProjectPolicyRequest {
                    project_id: id,
                    policy: Some(pb::ProjectPolicy {
                        max_credentials,
                        max_credentials_per_owner,
                        max_tokens_per_credential,
                        token_ttl_seconds,
                        on_token_limit: None,
                    }),
                }))
                .await?
                .into_inner();
            show(
                &response,
                "UpdateProjectPolicyResponse",
                response.project.as_ref(),
                format,
            )
        }
    }
}

fn show(
    response: &impl prost::Message,
    message: &str,
    project: Option<&pb::Project>,
    format: Format,
) -> Result<(), CliError> {
    if format == Format::Json {
        return output::json(response, message);
    }
    let Some(project) = project else {
        return Ok(());
    };
    let policy = project.policy.unwrap_or_default();
    let limit = |value: Option<u32>| match value {
        Some(0) => "unlimited".to_owned(),
        Some(value) => value.to_string(),
        None => "-".to_owned(),
    };
    let fields = [
        ("ID", project.id.clone()),
        ("Name", project.display_name.clone()),
        ("API endpoint", output::or_dash(&project.api_endpoint)),
        ("Created", output::relative(project.create_time.as_ref())),
        ("Max credentials", limit(policy.max_credentials)),
        ("Per owner", limit(policy.max_credentials_per_owner)),
        ("Tokens each", limit(policy.max_tokens_per_credential)),
        (
            "Token lifetime",
            policy
                .token_ttl_seconds
                .map_or_else(|| "-".to_owned(), |seconds| format!("{seconds} s")),
        ),
    ];
    for (label, value) in fields {
        output::line(&format!("{:<16} {value}", format!("{label}:")));
    }
    Ok(())
}
