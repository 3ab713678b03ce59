//! `latchkey members …`: a project's users and the APIs each may hold.

use latchkey_proto::registry::v1 as pb;

use super::connection::Registry;
use super::error::CliError;
use super::output::{self, Format};

/// What to do with members.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Lists a project's members (every page).
    List {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// Lists removed members too.
        #[arg(long)]
        show_removed: bool,
    },
    /// Adds a user to a project.
    Create {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// The user, as credentials name their owner.
        user: String,
        /// A human-readable name.
        #[arg(long)]
        display_name: Option<String>,
        /// Makes the user the project's owner (default: a member).
        #[arg(long)]
        owner: bool,
        /// An API the user holds; repeatable. Their credentials hold at most these.
        #[arg(long = "api", value_name = "API")]
        api_ceiling: Vec<String>,
    },
    /// Shows one member.
    Get {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// The user.
        user: String,
    },
    /// Changes a member's name, APIs or state (only the given flags change).
    Update {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// The user.
        user: String,
        /// The new human-readable name.
        #[arg(long)]
        display_name: Option<String>,
        /// The APIs the user holds, replacing the current list; repeatable.
        #[arg(long = "api", value_name = "API")]
        api_ceiling: Vec<String>,
        /// Suspends the member: their credentials are refused until resumed.
        #[arg(long, conflicts_with = "resume")]
        suspend: bool,
        /// Makes a suspended member active again.
        #[arg(long)]
        resume: bool,
    },
    /// Removes a user for good: their credentials are refused, their tokens revoked.
    Remove {
        /// The project.
        #[arg(long, env = "LATCHKEY_PROJECT")]
        project: String,
        /// The user.
        user: String,
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
        Command::List {
            project,
            show_removed,
        } => {
            let mut all = pb::ListMembersResponse::default();
            let mut page_token = String::new();
            loop {
                let page = client
                    .list_members(registry.request(pb::ListMembersRequest {
                        project_id: project.clone(),
                        page_size: 1000,
                        page_token,
                        show_removed,
                        order_by: String::new(),
                    }))
                    .await?
                    .into_inner();
                all.members.extend(page.members);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            if format == Format::Json {
                return output::json(&all, "ListMembersResponse");
            }
            let rows: Vec<Vec<String>> = all.members.iter().map(row).collect();
            output::table(&["USER", "NAME", "ROLE", "APIS", "STATE", "ADDED"], &rows);
            Ok(())
        }
        Command::Create {
            project,
            user,
            display_name,
            owner,
            api_ceiling,
        } => {
            let role = if owner {
                pb::MemberRole::Owner
            } else {
                pb::MemberRole::Member
            };
            let response = client
                .create_member(registry.request(pb::CreateMemberRequest {
                    project_id: project,
                    user_id: user,
                    display_name: display_name.unwrap_or_default(),
                    role: role.into(),
                    api_ceiling,
                }))
                .await?
                .into_inner();
            show(
                &response,
                "CreateMemberResponse",
                response.member.as_ref(),
                format,
            )
        }
        Command::Get { project, user } => {
            let response = client
                .get_member(registry.request(pb::GetMemberRequest {
                    project_id: project,
                    user_id: user,
                }))
                .await?
                .into_inner();
            show(
                &response,
                "GetMemberResponse",
                response.member.as_ref(),
                format,
            )
        }
        Command::Update {
            project,
            user,
            display_name,
            api_ceiling,
            suspend,
            resume,
        } => {
            let mut paths = Vec::new();
            if display_name.is_some() {
                paths.push("display_name".to_owned());
            }
            if !api_ceiling.is_empty() {
                paths.push("api_ceiling".to_owned());
            }
            let state = if suspend {
                pb::MemberState::Suspended
            } else if resume {
                pb::MemberState::Active
            } else {
                pb::MemberState::Unspecified
            };
            if suspend || resume {
                paths.push("state".to_owned());
            }
            let response = client
                .update_member(registry.request(pb::UpdateMemberRequest {
                    member: Some(pb::Member {
                        project_id: project,
                        user_id: user,
                        display_name: display_name.unwrap_or_default(),
                        api_ceiling,
                        state: state.into(),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                }))
                .await?
                .into_inner();
            show(
                &response,
                "UpdateMemberResponse",
                response.member.as_ref(),
                format,
            )
        }
        Command::Remove { project, user } => {
            let response = client
                .remove_member(registry.request(pb::RemoveMemberRequest {
                    project_id: project,
                    user_id: user,
                }))
                .await?
                .into_inner();
            show(
                &response,
                "RemoveMemberResponse",
                response.member.as_ref(),
                format,
            )
        }
    }
}

fn show(
    response: &impl prost::Message,
    message: &str,
    member: Option<&pb::Member>,
    format: Format,
) -> Result<(), CliError> {
    if format == Format::Json {
        return output::json(response, message);
    }
    if let Some(member) = member {
        output::table(
            &["USER", "NAME", "ROLE", "APIS", "STATE", "ADDED"],
            &[row(member)],
        );
    }
    Ok(())
}

fn row(member: &pb::Member) -> Vec<String> {
    let role = match pb::MemberRole::try_from(member.role) {
        Ok(pb::MemberRole::Owner) => "owner",
        Ok(pb::MemberRole::Member) => "member",
        Ok(pb::MemberRole::Unspecified) | Err(_) => "unknown",
    };
    let state = match pb::MemberState::try_from(member.state) {
        Ok(pb::MemberState::Active) => "active",
        Ok(pb::MemberState::Suspended) => "suspended",
        Ok(pb::MemberState::Removed) => "removed",
        Ok(pb::MemberState::Unspecified) | Err(_) => "unknown",
    };
    vec![
        member.user_id.clone(),
        output::or_dash(&member.display_name),
        role.to_owned(),
        if member.api_ceiling.is_empty() {
            "none".to_owned()
        } else {
            member.api_ceiling.join(",")
        },
        state.to_owned(),
        output::relative(member.create_time.as_ref()),
    ]
}
