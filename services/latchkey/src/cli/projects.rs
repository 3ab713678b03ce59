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
    /// Creates a project; its policy is the configured default but for the
    /// limits given.
    Create {
        /// The new project's ID: 3 to 63 lowercase letters, digits and hyphens.
        id: String,
        /// A human-readable name (default: the ID).
        #[arg(long)]
        display_name: Option<String>,
        /// The base URL of the platform's API, shown beside its credentials.
        #[arg(long)]
        api_endpoint: Option<String>,
        #[command(flatten)]
        policy: PolicyArgs,
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
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// A project's policy, one flag per field of `ProjectPolicy`; a flag not
/// given leaves its field unset (the default, or the current value).
#[derive(Debug, clap::Args)]
pub(crate) struct PolicyArgs {
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
    /// What a credential at its token limit gets when it asks for another
    /// token: a refusal, or the token with its oldest live one revoked.
    #[arg(long, value_enum)]
    on_token_limit: Option<OnTokenLimit>,
}

impl PolicyArgs {
    fn into_policy(self) -> pb::ProjectPolicy {
        pb::ProjectPolicy {
            max_credentials: self.max_credentials,
            max_credentials_per_owner: self.max_credentials_per_owner,
            max_tokens_per_credential: self.max_tokens_per_credential,
            token_ttl_seconds: self.token_ttl_seconds,
            on_token_limit: self
                .on_token_limit
                .map(|choice| pb::OnTokenLimit::from(choice) as i32),
        }
    }
}

/// `--on-token-limit`: the choices of `OnTokenLimit` but its unset value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OnTokenLimit {
    /// Refuse the new token.
    Reject,
    /// Issue it and revoke the credential's oldest live token.
    // The configuration file spells it `evict_oldest`.
    #[value(alias = "evict_oldest")]
    EvictOldest,
}

impl From<OnTokenLimit> for pb::OnTokenLimit {
    fn from(choice: OnTokenLimit) -> Self {
        match choice {
            OnTokenLimit::Reject => Self::Reject,
            OnTokenLimit::EvictOldest => Self::EvictOldest,
        }
    }
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
            policy,
        } => {
            let policy = policy.into_policy();
            let response = client
                .create_project(registry.request(pb::CreateProjectRequest {
                    project_id: id,
                    display_name: display_name.unwrap_or_default(),
                    // An empty override is no override: leave the field out.
                    policy: (policy != pb::ProjectPolicy::default()).then_some(policy),
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
        Command::Policy { id, policy } => {
            let response = client
                .update_project_policy(registry.request(pb::UpdateProjectPolicyRequest {
                    project_id: id,
                    policy: Some(policy.into_policy()),
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
        ("On token limit", on_token_limit(policy.on_token_limit)),
    ];
    for (label, value) in fields {
        output::line(&format!("{:<16} {value}", format!("{label}:")));
    }
    Ok(())
}

/// How `projects get` shows `on_token_limit`: the words of its flag.
fn on_token_limit(value: Option<i32>) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    match pb::OnTokenLimit::try_from(value) {
        Ok(pb::OnTokenLimit::Reject) => "reject".to_owned(),
        Ok(pb::OnTokenLimit::EvictOldest) => "evict-oldest".to_owned(),
        Ok(pb::OnTokenLimit::Unspecified) => "-".to_owned(),
        // A value added to the proto after this CLI was built.
        Err(_) => format!("unknown ({value})"),
    }
}
