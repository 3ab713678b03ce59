//! The registry's side of the audit trail: issuers' batches through
//! `AuditSink` are checked field by field and recorded once however often
//! they are sent, and retention deletes what is older than configured.

use chrono::{Duration, Utc};
use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::audit_sink_client::AuditSinkClient;
use latchkey_registry::{ProjectPolicy, Registry};
use latchkey_registry_store::DatabaseConfig;
use latchkey_secrets::HashKey;
use latchkey_tests::{Backend, Stack, TestSchema, postgres_url};
use tonic::Code;

use crate::support::assert_refused;

fn issued(id: &str, seconds_ago: i64) -> pb::AuditEvent {
    let time = Utc::now() - Duration::seconds(seconds_ago);
    pb::AuditEvent {
        id: id.to_owned(),
        time: Some(prost_types::Timestamp {
            seconds: time.timestamp(),
            nanos: 0,
        }),
        actor: latchkey_secrets::CLIENT_ID.generate(),
        action: pb::AuditAction::IssueToken.into(),
        project_id: "acme".into(),
        credential_id: String::new(),
        source_ip: "10.1.2.3".into(),
        outcome: pb::AuditOutcome::Succeeded.into(),
        detail: "scopes \"orders.read\"".into(),
        on_behalf_of: String::new(),
    }
}

/// `seconds_ago` before now (negative: in the future).
fn at(seconds_ago: i64) -> prost_types::Timestamp {
    let time = Utc::now() - Duration::seconds(seconds_ago);
    prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn listed(stack: &Stack) -> Vec<pb::AuditEvent> {
    stack
        .registry
        .client()
        .list_audit_events(pb::ListAuditEventsRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
}

async fn issuer_batches_are_checked_and_recorded_once(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut sink = AuditSinkClient::new(stack.registry.internal_channel());
    let batch = pb::RecordAuditEventsRequest {
        events: vec![issued(&new_id(), 1), issued(&new_id(), 0)],
    };
    for _ in 0..2 {
        sink.record_audit_events(batch.clone()).await.unwrap();
    }
    let events = listed(&stack).await;
    assert_eq!(events.len(), 2, "a resent batch counts once: {events:?}");
    assert_eq!(events[0].id, batch.events[1].id, "newest first");
    assert_eq!(events[0].source_ip, "10.1.2.3");

    // Issuers report token events only, each field checked; a bad batch
    // records nothing.
    let bad = |change: fn(&mut pb::AuditEvent), field: &str| {
        let mut event = issued(&new_id(), 0);
        change(&mut event);
        (
            pb::RecordAuditEventsRequest {
                events: vec![issued(&new_id(), 0), event],
            },
            field.to_owned(),
        )
    };
    for (request, field) in [
        bad(
            |e| e.action = pb::AuditAction::DeleteCredential.into(),
            "events[1].action",
        ),
        bad(|e| e.outcome = 0, "events[1].outcome"),
        bad(|e| e.time = None, "events[1].time"),
        bad(|e| e.id = "x".into(), "events[1].id"),
        bad(|e| e.source_ip = "nowhere".into(), "events[1].source_ip"),
        bad(
            |e| e.credential_id = "not-a-uuid".into(),
            "events[1].credential_id",
        ),
        // Finding 5: no event from the future, none back-dated past what
        // an issuer could still hold, and every field bounded.
        bad(|e| e.time = Some(at(-3600)), "events[1].time"),
        bad(|e| e.time = Some(at(8 * 24 * 3600)), "events[1].time"),
        bad(
            |e| {
                e.time = Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                })
            },
            "events[1].time",
        ),
        bad(|e| e.actor = "admin".into(), "events[1].actor"),
        bad(|e| e.actor = "x".repeat(10_000), "events[1].actor"),
        bad(|e| e.project_id = "../ops".into(), "events[1].project_id"),
        bad(|e| e.project_id = "p".repeat(64), "events[1].project_id"),
        bad(|e| e.detail = "d".repeat(513), "events[1].detail"),
        bad(|e| e.detail = "forged\nline".into(), "events[1].detail"),
        bad(
            |e| e.source_ip = format!("10.1.2.3{}", " ".repeat(100)),
            "events[1].source_ip",
        ),
    ] {
        assert_refused(
            sink.record_audit_events(request).await,
            Code::InvalidArgument,
            &field,
        );
    }
    let too_many = pb::RecordAuditEventsRequest {
        events: (0..=latchkey_registry::MAX_AUDIT_EVENTS_PER_BATCH)
            .map(|_| issued(&new_id(), 0))
            .collect(),
    };
    assert_refused(
        sink.record_audit_events(too_many).await,
        Code::InvalidArgument,
        "events: at most",
    );
    assert_eq!(
        listed(&stack).await.len(),
        2,
        "no refused batch wrote anything"
    );

    // An issuer's own events, as it reports them, pass.
    let mut by_credential = issued(&new_id(), 6 * 24 * 3600);
    by_credential.actor = new_id();
    by_credential.credential_id = new_id();
    by_credential.detail = "d".repeat(512);
    sink.record_audit_events(pb::RecordAuditEventsRequest {
        events: vec![by_credential],
    })
    .await
    .unwrap();
    assert_eq!(listed(&stack).await.len(), 3);
}

async fn retention_deletes_only_older_events(backend: Backend) {
    let directory = tempfile::tempdir().unwrap();
    let schema = match backend {
        Backend::Postgres => Some(TestSchema::create().await),
        Backend::Sqlite => None,
    };
    let database = DatabaseConfig {
        url: match &schema {
            Some(_) => postgres_url(),
            None => format!(
                "sqlite://{}/registry.db?mode=rwc",
                directory.path().display()
            ),
        },
        schema: schema.as_ref().map(|schema| schema.name().to_owned()),
        ..DatabaseConfig::default()
    };
    let store = latchkey_registry_store::connect(&database, ProjectPolicy::default())
        .await
        .unwrap();
    let registry = Registry::new(
        std::sync::Arc::new(store),
        HashKey::generate(),
        std::sync::Arc::new(latchkey_registry::NoTokenSync),
    );
    let day = 24 * 3600;
    let event = |seconds_ago| {
        let mut event = latchkey_registry::AuditEvent::by(
            &latchkey_registry::Caller::bootstrap(),
            latchkey_registry::AuditAction::IssueToken,
        );
        event.time = Utc::now() - Duration::seconds(seconds_ago);
        event.actor = latchkey_secrets::CLIENT_ID.generate();
        event.project_id = "acme".into();
        event
    };
    let old = event(3 * day);
    let recent = event(day / 2);
    registry
        .record_audit_events(vec![old.clone(), recent.clone()])
        .await
        .unwrap();
    let deleted = registry
        .purge_audit_events(Utc::now() - Duration::seconds(day))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let (kept, _) = registry
        .list_audit_events(
            &latchkey_registry::Caller::bootstrap(),
            latchkey_registry::ListAuditEvents::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        kept.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [recent.id.as_str()]
    );
}

on_both_backends!(
    issuer_batches_are_checked_and_recorded_once,
    retention_deletes_only_older_events,
);
