//! `latchkey audit` and `latchkey usage`: what happened to a project's
//! credentials, and how much they were used.

use latchkey_proto::registry::v1 as pb;

use super::connection::Registry;
use super::error::CliError;
use super::output::{self, Format};

/// `latchkey audit`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only this project's events (required unless a platform admin).
    #[arg(long, env = "LATCHKEY_PROJECT")]
    project: Option<String>,
    /// Only events about this credential.
    #[arg(long, value_name = "ID")]
    credential: Option<String>,
    /// Most events to show, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

/// `latchkey usage`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct UsageArgs {
    /// The project.
    #[arg(long, env = "LATCHKEY_PROJECT")]
    project: String,
    /// Only this credential's usage.
    #[arg(long, value_name = "ID")]
    credential: Option<String>,
    /// The period of each row.
    #[arg(long, value_enum, default_value = "hour")]
    granularity: Granularity,
}

/// The period of a usage row.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Granularity {
    /// One minute.
    Minute,
    /// One hour (UTC).
    Hour,
    /// One day (UTC).
    Day,
}

/// Runs `latchkey audit`: pages until `limit` events, showing progress on
/// stderr when that takes more than one page.
pub(crate) async fn audit(
    registry: Registry,
    args: AuditArgs,
    format: Format,
) -> Result<(), CliError> {
    let mut client = registry.client();
    let mut all = pb::ListAuditEventsResponse::default();
    let mut page_token = String::new();
    while all.events.len() < args.limit {
        let page_size = (args.limit - all.events.len()).min(1000);
        let page = client
            .list_audit_events(registry.request(pb::ListAuditEventsRequest {
                project_id: args.project.clone().unwrap_or_default(),
                credential_id: args.credential.clone().unwrap_or_default(),
                page_size: i32::try_from(page_size).unwrap_or(1000),
                page_token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        all.events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
        if format == Format::Human {
            output::note(&format!("{} events so far…", all.events.len()));
        }
    }
    all.events.truncate(args.limit);
    if format == Format::Json {
        return output::json(&all, "ListAuditEventsResponse");
    }
    let rows: Vec<Vec<String>> = all
        .events
        .iter()
        .map(|event| {
            let actor = if event.on_behalf_of.is_empty() {
                event.actor.clone()
            } else {
                format!("{} for {}", event.actor, event.on_behalf_of)
            };
            vec![
                output::relative(event.time.as_ref()),
                enum_name(
                    pb::AuditAction::try_from(event.action).map(|action| action.as_str_name()),
                    "AUDIT_ACTION_",
                ),
                enum_name(
                    pb::AuditOutcome::try_from(event.outcome).map(|outcome| outcome.as_str_name()),
                    "AUDIT_OUTCOME_",
                ),
                actor,
                output::or_dash(&event.credential_id),
                output::or_dash(&event.source_ip),
                output::or_dash(&event.detail),
            ]
        })
        .collect();
    output::table(
        &[
            "WHEN",
            "ACTION",
            "OUTCOME",
            "ACTOR",
            "CREDENTIAL",
            "FROM",
            "DETAIL",
        ],
        &rows,
    );
    Ok(())
}

/// Runs `latchkey usage`.
pub(crate) async fn usage(
    registry: Registry,
    args: UsageArgs,
    format: Format,
) -> Result<(), CliError> {
    let mut client = registry.client();
    let granularity = match args.granularity {
        Granularity::Minute => pb::UsageGranularity::Minute,
        Granularity::Hour => pb::UsageGranularity::Hour,
        Granularity::Day => pb::UsageGranularity::Day,
    };
    let mut all = pb::ListUsageResponse::default();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_usage(registry.request(pb::ListUsageRequest {
                project_id: args.project.clone(),
                credential_id: args.credential.clone().unwrap_or_default(),
                granularity: granularity.into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            }))
            .await?
            .into_inner();
        all.buckets.extend(page.buckets);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if format == Format::Json {
        return output::json(&all, "ListUsageResponse");
    }
    let rows: Vec<Vec<String>> = all
        .buckets
        .iter()
        .map(|bucket| {
            let mut addresses = bucket.addresses.join(",");
            if bucket.more_addresses {
                addresses.push_str(",…");
            }
            vec![
                output::relative(bucket.start_time.as_ref()),
                bucket.credential_id.clone(),
                bucket.tokens_issued.to_string(),
                bucket.tokens_revoked.to_string(),
                output::or_dash(&addresses),
            ]
        })
        .collect();
    output::table(
        &["PERIOD", "CREDENTIAL", "ISSUED", "REVOKED", "FROM"],
        &rows,
    );
    Ok(())
}

/// A proto enum value's name without its prefix, lowercase
/// (`AUDIT_ACTION_CREATE_CREDENTIAL` → `create_credential`).
fn enum_name<E>(name: Result<&str, E>, prefix: &str) -> String {
    match name {
        Ok(name) => name.trim_start_matches(prefix).to_lowercase(),
        Err(_) => "unknown".to_owned(),
    }
}
