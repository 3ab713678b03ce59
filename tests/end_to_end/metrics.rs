//! `GET /metrics` on both services: calls by RPC and outcome, issuance and
//! introspection outcomes and latencies, in Prometheus text.

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Stack, StackBackend};

use crate::support::{
    credential, introspect, issue, post_form, project_with_client, sample, scrape,
};

async fn both_services_count_what_they_do(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &["127.0.0.1"])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    assert!(!introspect(&stack, &token, "192.0.2.1", &[]).await.active);
    let (status, _, _) = post_form(
        &stack,
        "/oauth2/token",
        Some((&client.credential.client_id, "lks_wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    let anonymous = stack
        .registry
        .client_with_token(None)
        .get_project(registry_pb::GetProjectRequest {
            project_id: "acme".into(),
        })
        .await;
    assert!(anonymous.is_err());

    let issuer = scrape(&stack.issuer.metrics_url()).await;
    // The admin's token and the client's.
    assert_eq!(sample(&issuer, "latchkey_issuer_tokens_issued_total"), 2.0);
    assert_eq!(
        sample(
            &issuer,
            r#"latchkey_issuer_tokens_refused_total{reason="invalid_client"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &issuer,
            r#"latchkey_issuer_introspections_total{outcome="ip_not_allowed"}"#
        ),
        1.0
    );
    assert!(
        sample(
            &issuer,
            r#"latchkey_issuer_introspections_total{outcome="active"}"#
        ) >= 1.0
    );
    assert!(sample(&issuer, "latchkey_issuer_introspection_seconds_count") >= 2.0);
    assert_eq!(
        sample(&issuer, "latchkey_issuer_issuance_seconds_count"),
        3.0
    );
    assert!(
        sample(
            &issuer,
            r#"latchkey_issuer_grpc_requests_total{rpc="latchkey.token.v1.TokenService/IssueToken",code="OK"}"#
        ) >= 2.0
    );
    assert!(issuer.contains("latchkey_issuer_usage_flush_lag_seconds"));
    // The registry takes every rollup batch: none dropped.
    assert_eq!(
        sample(&issuer, "latchkey_issuer_usage_rollups_dropped_total"),
        0.0
    );
    assert!(issuer.contains("latchkey_issuer_usage_rollups_pending"));

    let registry = scrape(&stack.registry.metrics_url()).await;
    assert_eq!(
        sample(
            &registry,
            r#"latchkey_registry_grpc_requests_total{rpc="latchkey.registry.v1.CredentialRegistry/CreateCredential",code="OK"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &registry,
            r#"latchkey_registry_grpc_requests_total{rpc="latchkey.registry.v1.CredentialRegistry/GetProject",code="UNAUTHENTICATED"}"#
        ),
        1.0
    );
    assert!(registry.contains("latchkey_registry_grpc_request_seconds_bucket"));

    // Evictions are counted (never logged per issuance at INFO).
    let evicting = project_with_client(
        &stack,
        "evicting",
        Some(registry_pb::ProjectPolicy {
            max_tokens_per_credential: Some(1),
            on_token_limit: Some(registry_pb::OnTokenLimit::EvictOldest.into()),
            ..Default::default()
        }),
        credential(&[], &[]),
    )
    .await;
    for _ in 0..3 {
        issue(&stack, &evicting, &[]).await.unwrap();
    }
    let issuer = scrape(&stack.issuer.metrics_url()).await;
    assert_eq!(sample(&issuer, "latchkey_issuer_tokens_evicted_total"), 2.0);
}

on_both_stacks!(both_services_count_what_they_do);
