//! What token issuers report through the internal services (last uses,
//! token audit events), checked like public input: every field bounded,
//! times neither in the future nor (for events) older than the registry
//! keeps track of. A batch with one bad entry is refused whole, naming the
//! entry's field, and nothing of it is written.

use chrono::{DateTime, Duration, Utc};
use latchkey_secrets::CLIENT_ID;

use crate::audit::{AuditEvent, MAX_AUDIT_DETAIL_LEN};
use crate::error::RegistryError;
use crate::model::CredentialUse;
use crate::usage::{
    MAX_ROLLUP_COUNT, MAX_ROLLUPS_PER_BATCH, MAX_USAGE_ADDRESSES, UsageKind, UsageRollup,
};
use crate::validate;

/// Most uses in one `UsageSink.Record` batch.
pub const MAX_USES_PER_BATCH: usize = 10_000;

/// Most events in one `AuditSink.RecordAuditEvents` batch: with every field
/// at its bound an event takes under 900 bytes on the wire, so a full batch
/// stays under 2 MiB.
pub const MAX_AUDIT_EVENTS_PER_BATCH: usize = 2_000;

/// How far in the future a reported time may lie: the clock difference
/// tolerated between an issuer and the registry. A use dated later would
/// freeze `last_used_time` (newer uses never replace it).
pub const MAX_REPORTED_CLOCK_SKEW: Duration = Duration::seconds(60);

/// How old a reported event may be: an issuer keeps events only while the
/// registry is unreachable, and a back-dated event is how one would hide a
/// forged one among old ones.
pub const MAX_AUDIT_EVENT_AGE: Duration = Duration::days(7);

/// Checks a batch of last uses at `now`.
pub(crate) fn check_uses(uses: &[CredentialUse], now: DateTime<Utc>) -> Result<(), RegistryError> {
    if uses.len() > MAX_USES_PER_BATCH {
        return Err(RegistryError::invalid(
            "uses",
            format!("at most {MAX_USES_PER_BATCH} per batch"),
        ));
    }
    for (index, credential_use) in uses.iter().enumerate() {
        let field = |name: &str| format!("uses[{index}].{name}");
        validate::credential_id(&field("credential_id"), &credential_use.credential_id)?;
        not_in_future(&field("time"), credential_use.last_use.time, now)?;
    }
    Ok(())
}

/// Checks a batch of usage rollups and its `batch_id` at `now`: every
/// field bounded, at most one rollup per (credential, minute, kind).
pub(crate) fn check_rollups(
    rollups: &[UsageRollup],
    batch_id: &str,
    now: DateTime<Utc>,
) -> Result<(), RegistryError> {
    if rollups.len() > MAX_ROLLUPS_PER_BATCH {
        return Err(RegistryError::invalid(
            "rollups",
            format!("at most {MAX_ROLLUPS_PER_BATCH} per batch"),
        ));
    }
    if !rollups.is_empty() && uuid::Uuid::parse_str(batch_id).is_err() {
        return Err(RegistryError::invalid(
            "batch_id",
            "must be a UUID when rollups are sent",
        ));
    }
    let mut keys: std::collections::HashSet<(&str, DateTime<Utc>, UsageKind)> =
        std::collections::HashSet::with_capacity(rollups.len());
    for (index, rollup) in rollups.iter().enumerate() {
        check_rollup(index, rollup, now)?;
        if !keys.insert((rollup.credential_id.as_str(), rollup.minute, rollup.kind)) {
            return Err(RegistryError::invalid(
                format!("rollups[{index}]"),
                "repeats the credential, minute and kind of an earlier rollup",
            ));
        }
    }
    Ok(())
}

fn check_rollup(
    index: usize,
    rollup: &UsageRollup,
    now: DateTime<Utc>,
) -> Result<(), RegistryError> {
    let field = |name: &str| format!("rollups[{index}].{name}");
    validate::credential_id(&field("credential_id"), &rollup.credential_id)?;
    validate::project_id(&field("project_id"), &rollup.project_id)?;
    let minute = rollup.minute;
    if minute.timestamp_subsec_nanos() != 0 || minute.timestamp().rem_euclid(60) != 0 {
        return Err(RegistryError::invalid(
            field("minute"),
            "must be a whole minute",
        ));
    }
    not_in_future(&field("minute"), minute, now)?;
    if minute < now - MAX_AUDIT_EVENT_AGE {
        return Err(RegistryError::invalid(
            field("minute"),
            format!("older than {} days", MAX_AUDIT_EVENT_AGE.num_days()),
        ));
    }
    if !(1..=MAX_ROLLUP_COUNT).contains(&rollup.count) {
        return Err(RegistryError::invalid(
            field("count"),
            format!("must be from 1 to {MAX_ROLLUP_COUNT}"),
        ));
    }
    let minute_end = minute + Duration::minutes(1);
    let within = |time: DateTime<Utc>| time >= minute && time < minute_end;
    if !within(rollup.first_time) {
        return Err(RegistryError::invalid(
            field("first_time"),
            "must lie within the minute",
        ));
    }
    if !within(rollup.last_time) || rollup.last_time < rollup.first_time {
        return Err(RegistryError::invalid(
            field("last_time"),
            "must lie within the minute, not before first_time",
        ));
    }
    if rollup.addresses.len() > MAX_USAGE_ADDRESSES {
        return Err(RegistryError::invalid(
            field("addresses"),
            format!("at most {MAX_USAGE_ADDRESSES}"),
        ));
    }
    for (position, address) in rollup.addresses.iter().enumerate() {
        if rollup.addresses[..position].contains(address) {
            return Err(RegistryError::invalid(
                format!("rollups[{index}].addresses[{position}]"),
                "repeats an earlier address",
            ));
        }
    }
    Ok(())
}

/// Checks a batch of token events at `now`.
pub(crate) fn check_token_events(
    events: &[AuditEvent],
    now: DateTime<Utc>,
) -> Result<(), RegistryError> {
    if events.len() > MAX_AUDIT_EVENTS_PER_BATCH {
        return Err(RegistryError::invalid(
            "events",
            format!("at most {MAX_AUDIT_EVENTS_PER_BATCH} per batch"),
        ));
    }
    for (index, event) in events.iter().enumerate() {
        check_token_event(index, event, now)?;
    }
    Ok(())
}

fn check_token_event(
    index: usize,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> Result<(), RegistryError> {
    let field = |name: &str| format!("events[{index}].{name}");
    if !event.action.is_token_event() {
        return Err(RegistryError::invalid(
            field("action"),
            "issuers report only ISSUE_TOKEN, REVOKE_TOKEN and AUTHENTICATE_CLIENT",
        ));
    }
    if uuid::Uuid::parse_str(&event.id).is_err() {
        return Err(RegistryError::invalid(field("id"), "must be a UUID"));
    }
    not_in_future(&field("time"), event.time, now)?;
    if event.time < now - MAX_AUDIT_EVENT_AGE {
        return Err(RegistryError::invalid(
            field("time"),
            format!("older than {} days", MAX_AUDIT_EVENT_AGE.num_days()),
        ));
    }
    // An issuer names the acting credential, or the client ID presented
    // when it names none; never free text (it could be a pasted secret).
    if !event.actor.is_empty()
        && validate::credential_id("actor", &event.actor).is_err()
        && CLIENT_ID.check(&event.actor).is_err()
    {
        return Err(RegistryError::invalid(
            field("actor"),
            "must be a credential ID or a client ID",
        ));
    }
    // Token events have no member acting through them.
    if !event.on_behalf_of.is_empty() {
        return Err(RegistryError::invalid(
            field("on_behalf_of"),
            "issuers report no calls on behalf of members",
        ));
    }
    if !event.project_id.is_empty() {
        validate::project_id(&field("project_id"), &event.project_id)?;
    }
    if !event.credential_id.is_empty() {
        validate::credential_id(&field("credential_id"), &event.credential_id)?;
    }
    if event.detail.len() > MAX_AUDIT_DETAIL_LEN {
        return Err(RegistryError::invalid(
            field("detail"),
            format!("longer than {MAX_AUDIT_DETAIL_LEN} bytes"),
        ));
    }
    if event.detail.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            field("detail"),
            "contains control characters",
        ));
    }
    Ok(())
}

fn not_in_future(
    field: &str,
    time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), RegistryError> {
    if time > now + MAX_REPORTED_CLOCK_SKEW {
        return Err(RegistryError::invalid(
            field,
            format!(
                "in the future (more than {} s ahead of the registry's clock)",
                MAX_REPORTED_CLOCK_SKEW.num_seconds()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Caller;
    use crate::audit::AuditAction;
    use crate::model::{LastUse, now};

    fn field_of(error: RegistryError) -> String {
        match error {
            RegistryError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    fn issued() -> AuditEvent {
        let mut event = AuditEvent::by(&Caller::bootstrap(), AuditAction::IssueToken);
        event.actor = CLIENT_ID.generate();
        event.project_id = "acme".into();
        event
    }

    #[test]
    fn uses_from_the_future_are_refused() {
        let at = now();
        let use_at = |time| CredentialUse {
            credential_id: uuid::Uuid::now_v7().to_string(),
            last_use: LastUse {
                time,
                ip: "10.0.0.1".parse().unwrap(),
            },
        };
        assert!(check_uses(&[use_at(at + Duration::seconds(30))], at).is_ok());
        let error = check_uses(&[use_at(at), use_at(at + Duration::days(365))], at).unwrap_err();
        assert_eq!(field_of(error), "uses[1].time");
    }

    fn rollup(at: DateTime<Utc>) -> UsageRollup {
        let minute = crate::UsageGranularity::Minute.period_start(at);
        UsageRollup {
            credential_id: uuid::Uuid::now_v7().to_string(),
            project_id: "acme".into(),
            minute,
            kind: UsageKind::TokenIssued,
            count: 3,
            first_time: minute + Duration::seconds(1),
            last_time: minute + Duration::seconds(59),
            addresses: vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            more_addresses: false,
        }
    }

    #[test]
    fn rollups_are_bounded_field_by_field() {
        let at = now();
        let batch = uuid::Uuid::now_v7().to_string();
        assert!(check_rollups(&[rollup(at)], &batch, at).is_ok());
        assert!(check_rollups(&[], "", at).is_ok(), "uses only: no batch ID");
        type Change = fn(&mut UsageRollup);
        let cases: [(Change, &str); 12] = [
            (
                |r| r.credential_id = "nope".into(),
                "rollups[1].credential_id",
            ),
            (
                |r| r.project_id = "Not A Project".into(),
                "rollups[1].project_id",
            ),
            (|r| r.minute += Duration::seconds(1), "rollups[1].minute"),
            (
                |r| r.minute += Duration::nanoseconds(5),
                "rollups[1].minute",
            ),
            (|r| r.minute += Duration::minutes(3), "rollups[1].minute"),
            (|r| r.minute -= Duration::days(8), "rollups[1].minute"),
            (|r| r.count = 0, "rollups[1].count"),
            (|r| r.count = MAX_ROLLUP_COUNT + 1, "rollups[1].count"),
            (
                |r| r.first_time -= Duration::seconds(2),
                "rollups[1].first_time",
            ),
            (
                |r| r.last_time += Duration::seconds(1),
                "rollups[1].last_time",
            ),
            (
                |r| r.last_time = r.first_time - Duration::milliseconds(1),
                "rollups[1].last_time",
            ),
            (
                |r| r.addresses = vec!["10.0.0.1".parse().unwrap(); 2],
                "rollups[1].addresses[1]",
            ),
        ];
        for (change, field) in cases {
            let mut bad = rollup(at);
            change(&mut bad);
            let error = check_rollups(&[rollup(at), bad], &batch, at).unwrap_err();
            assert_eq!(field_of(error), field);
        }
        let mut crowded = rollup(at);
        crowded.addresses = (0..=32u8)
            .map(|n| std::net::IpAddr::from([10, 0, 0, n]))
            .collect();
        let error = check_rollups(&[crowded], &batch, at).unwrap_err();
        assert_eq!(field_of(error), "rollups[0].addresses");
        let twice = rollup(at);
        let error = check_rollups(&[twice.clone(), twice], &batch, at).unwrap_err();
        assert_eq!(field_of(error), "rollups[1]");
        let error = check_rollups(&[rollup(at)], "batch-1", at).unwrap_err();
        assert_eq!(field_of(error), "batch_id");
        let too_many = vec![rollup(at); MAX_ROLLUPS_PER_BATCH + 1];
        assert_eq!(
            field_of(check_rollups(&too_many, &batch, at).unwrap_err()),
            "rollups"
        );
    }

    #[test]
    fn events_are_bounded_field_by_field() {
        let at = now();
        assert!(check_token_events(&[issued()], at).is_ok());
        type Change = fn(&mut AuditEvent);
        let cases: [(Change, &str); 9] = [
            (|e| e.time += Duration::minutes(5), "events[0].time"),
            (|e| e.time -= Duration::days(8), "events[0].time"),
            (|e| e.actor = "admin".into(), "events[0].actor"),
            (|e| e.actor = "x".repeat(300), "events[0].actor"),
            (
                |e| e.project_id = "Not A Project".into(),
                "events[0].project_id",
            ),
            (|e| e.detail = "d".repeat(513), "events[0].detail"),
            (|e| e.detail = "line\nbreak".into(), "events[0].detail"),
            (
                |e| e.credential_id = "not-a-credential".into(),
                "events[0].credential_id",
            ),
            (
                |e| e.on_behalf_of = "alice".into(),
                "events[0].on_behalf_of",
            ),
        ];
        for (change, field) in cases {
            let mut event = issued();
            change(&mut event);
            assert_eq!(
                field_of(check_token_events(&[event], at).unwrap_err()),
                field
            );
        }
        let mut by_credential = issued();
        by_credential.actor = uuid::Uuid::now_v7().to_string();
        by_credential.time -= Duration::days(6);
        assert!(check_token_events(&[by_credential], at).is_ok());
        let anonymous = AuditEvent {
            actor: String::new(),
            project_id: String::new(),
            ..issued()
        };
        assert!(check_token_events(&[anonymous], at).is_ok());
    }
}
