//! How a credential is shown to people: the consoles' columns, its
//! details, and its secret with the warning.

use latchkey_proto::registry::v1 as pb;

use super::output;

/// The columns the seed consoles show.
pub(crate) fn show_table(credentials: &[pb::Credential]) {
    if credentials.is_empty() {
        output::note("No credentials.");
        return;
    }
    let rows: Vec<Vec<String>> = credentials
        .iter()
        .map(|credential| {
            vec![
                credential.name.clone(),
                output::or_dash(&credential.description),
                credential.client_id.clone(),
                output::relative(credential.create_time.as_ref()),
                last_used(credential),
                state(credential).to_owned(),
                credential.id.clone(),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "DESCRIPTION",
            "CLIENT ID",
            "CREATED",
            "LAST USED",
            "STATE",
            "ID",
        ],
        &rows,
    );
}

pub(crate) fn show_details(credential: &pb::Credential) {
    let list = |items: &[String], empty: &str| {
        if items.is_empty() {
            empty.to_owned()
        } else {
            items.join(", ")
        }
    };
    let fields = [
        ("Name", credential.name.clone()),
        ("Description", output::or_dash(&credential.description)),
        ("Client ID", credential.client_id.clone()),
        ("ID", credential.id.clone()),
        ("Project", credential.project_id.clone()),
        ("Owner", credential.owner.clone()),
        ("State", state(credential).to_owned()),
        ("Allowed APIs", list(&credential.allowed_apis, "none")),
        ("Allowed IPs", list(&credential.allowed_ips, "any")),
        ("Created", output::relative(credential.create_time.as_ref())),
        ("Last used", last_used(credential)),
        (
            "Expires",
            match &credential.expire_time {
                Some(time) => output::relative(Some(time)),
                None => "never".to_owned(),
            },
        ),
        (
            "Token endpoint",
            output::or_dash(&credential.token_endpoint),
        ),
    ];
    for (label, value) in fields {
        output::line(&format!("{:<15} {value}", format!("{label}:")));
    }
}

fn last_used(credential: &pb::Credential) -> String {
    match &credential.last_used_time {
        None => "never".to_owned(),
        Some(time) if credential.last_used_ip.is_empty() => output::relative(Some(time)),
        Some(time) => format!(
            "{} from {}",
            output::relative(Some(time)),
            credential.last_used_ip
        ),
    }
}

fn state(credential: &pb::Credential) -> &'static str {
    match pb::CredentialState::try_from(credential.state) {
        Ok(pb::CredentialState::Active) => "active",
        Ok(pb::CredentialState::Disabled) => "disabled",
        Ok(pb::CredentialState::Unspecified) | Err(_) => "unknown",
    }
}

/// The secret, shown once, with the warning the consoles give.
pub(crate) fn show_secret(secret: &str) {
    output::line(&format!("Client secret:  {secret}"));
    output::note(
        "Store the client secret safely now: it is shown only this once and cannot be \
         retrieved later (rotate the credential to get a new one).",
    );
}
