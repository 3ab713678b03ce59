//! Issue 14: a successful issue or revocation is counted in the usage
//! rollups and is no audit event; refusals stay audit events.

use std::sync::Arc;

use crate::audit::{AuditQueue, TOKEN_EVENT_TARGET, TokenAction};
use crate::error::IssueError;
use crate::rollup::{UsageKind, UsageRollup, UsageRollups};
use crate::testing::{CLIENT_ID, CREDENTIAL_ID, Fixture, SECRET};

use super::{request, right};

fn recorded() -> (Fixture, Arc<AuditQueue>, Arc<UsageRollups>) {
    let mut fixture = Fixture::new();
    let queue = Arc::new(AuditQueue::default());
    let rollups = Arc::new(UsageRollups::default());
    fixture.tokens = fixture
        .tokens
        .with_audit(queue.clone())
        .with_usage_rollups(rollups.clone());
    (fixture, queue, rollups)
}

/// Every rollup held, issued ones first.
fn drained(rollups: &UsageRollups) -> Vec<UsageRollup> {
    let mut all: Vec<UsageRollup> = rollups
        .drain()
        .into_iter()
        .flat_map(|batch| batch.rollups)
        .collect();
    all.sort_by_key(|rollup| rollup.kind == UsageKind::Revoked);
    all
}

#[tokio::test]
async fn an_issued_token_is_counted_and_not_audited() {
    let (fixture, queue, rollups) = recorded();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    fixture
        .tokens
        .issuer()
        .issue(request(SECRET, "10.0.0.2"))
        .await
        .unwrap();

    assert!(queue.is_empty(), "{:?}", queue.take(10));
    let counted = drained(&rollups);
    assert_eq!(counted.len(), 1, "{counted:?}");
    let rollup = &counted[0];
    assert_eq!(
        (
            rollup.credential_id.as_str(),
            rollup.project_id.as_str(),
            rollup.kind,
            rollup.count
        ),
        (CREDENTIAL_ID, "acme", UsageKind::Issued, 2)
    );
    assert_eq!(
        rollup.addresses,
        [
            "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "10.0.0.2".parse().unwrap()
        ]
    );
    assert!(rollup.first_time <= rollup.last_time);
}

#[tokio::test]
async fn refused_issuances_are_audited_and_not_counted() {
    let (fixture, queue, rollups) = recorded();
    fixture
        .tokens
        .issuer()
        .issue(request("lks_wrong", "10.0.0.1"))
        .await
        .unwrap_err();
    let mut foreign_scope = right();
    foreign_scope.scopes = vec!["billing.admin".to_owned()];
    let refused = fixture.tokens.issuer().issue(foreign_scope).await;
    assert!(
        matches!(refused, Err(IssueError::InvalidScope(_))),
        "{refused:?}"
    );

    let events = queue.take(10);
    let seen: Vec<_> = events
        .iter()
        .map(|event| (event.action, event.succeeded, event.detail.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (TokenAction::Authenticate, false, "wrong_secret"),
            (TokenAction::Issue, false, "invalid_scope"),
        ]
    );
    assert!(
        events
            .iter()
            .all(|event| event.credential_id == CREDENTIAL_ID)
    );
    assert!(rollups.drain().is_empty());
    assert_eq!(rollups.dropped(), 0);
}

#[tokio::test]
async fn a_revocation_is_counted_only_when_it_revoked_a_token() {
    let (fixture, queue, rollups) = recorded();
    let token = fixture
        .tokens
        .issuer()
        .issue(right())
        .await
        .unwrap()
        .access_token;
    let ip = "10.0.0.3".parse().unwrap();
    fixture
        .tokens
        .issuer()
        .revoke(&token, CLIENT_ID, SECRET, ip)
        .await
        .unwrap();
    // Already revoked, and not a token at all: nothing changes, nothing
    // is counted.
    fixture
        .tokens
        .issuer()
        .revoke(&token, CLIENT_ID, SECRET, ip)
        .await
        .unwrap();
    fixture
        .tokens
        .issuer()
        .revoke("not-a-token", CLIENT_ID, SECRET, ip)
        .await
        .unwrap();
    // A refused revocation stays an audit event.
    fixture
        .tokens
        .issuer()
        .revoke(&token, CLIENT_ID, "lks_wrong", ip)
        .await
        .unwrap_err();

    let counted: Vec<_> = drained(&rollups)
        .into_iter()
        .map(|rollup| (rollup.kind, rollup.count, rollup.addresses))
        .collect();
    assert_eq!(
        counted,
        [
            (UsageKind::Issued, 1, vec!["10.0.0.1".parse().unwrap()]),
            (UsageKind::Revoked, 1, vec![ip]),
        ]
    );
    let events = queue.take(10);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (
            events[0].action,
            events[0].succeeded,
            events[0].detail.as_str()
        ),
        (TokenAction::Authenticate, false, "wrong_secret")
    );
}

/// Events seen under [`TOKEN_EVENT_TARGET`], each as its fields' text.
#[derive(Debug, Default, Clone)]
struct TokenEventLog(Arc<std::sync::Mutex<Vec<String>>>);

impl tracing::field::Visit for TokenEventLog {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for TokenEventLog {
    fn enabled(&self, _metadata: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let metadata = event.metadata();
        if metadata.target() != TOKEN_EVENT_TARGET {
            return;
        }
        self.0.lock().unwrap().push(format!("{}", metadata.level()));
        event.record(&mut self.clone());
    }
    fn enter(&self, _span: &tracing::span::Id) {}
    fn exit(&self, _span: &tracing::span::Id) {}
}

/// Issues and revokes a token with the per-token log `enabled`; what it
/// logged, and the token.
async fn logged_with(enabled: bool) -> (Vec<String>, String) {
    let log = TokenEventLog::default();
    let _default = tracing::subscriber::set_default(log.clone());
    let (mut fixture, _queue, rollups) = recorded();
    fixture.tokens = fixture.tokens.with_token_event_log(enabled);
    let token = fixture
        .tokens
        .issuer()
        .issue(right())
        .await
        .unwrap()
        .access_token;
    fixture
        .tokens
        .issuer()
        .revoke(&token, CLIENT_ID, SECRET, "10.0.0.1".parse().unwrap())
        .await
        .unwrap();
    // Counted either way.
    assert_eq!(
        drained(&rollups)
            .iter()
            .map(|rollup| rollup.count)
            .sum::<u64>(),
        2
    );
    let lines = log.0.lock().unwrap().clone();
    (lines, token)
}

#[tokio::test]
async fn each_token_is_logged_for_export_only_when_asked_and_never_the_token() {
    let (lines, token) = logged_with(true).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (issued, revoked) = (&lines[0], &lines[1]);
    for line in &lines {
        assert!(line.starts_with("INFO"), "{line}");
        assert!(line.contains(CREDENTIAL_ID), "{line}");
        assert!(line.contains("project_id=\"acme\""), "{line}");
        assert!(line.contains("client_ip=10.0.0.1"), "{line}");
        assert!(!line.contains(&token) && !line.contains(SECRET), "{line}");
    }
    assert!(issued.contains("event=\"issued\""), "{issued}");
    assert!(
        issued.contains("scopes=\"orders.read tokens:introspect\""),
        "{issued}"
    );
    assert!(revoked.contains("event=\"revoked\""), "{revoked}");

    let (lines, _) = logged_with(false).await;
    assert!(lines.is_empty(), "{lines:?}");
}
