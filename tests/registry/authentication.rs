//! `ClientAuthentication.Authenticate`: the issuer's check of client
//! credentials. Every refusal looks the same to the caller.

use std::time::Duration;

use latchkey_proto::registry::v1 as pb;
use latchkey_runtime::{reason, status_reason};
use latchkey_tests::{Backend, Stack};
use prost_types::Timestamp;
use tonic::{Code, Status};

use crate::support::{assert_refused, create_credential, create_project_with, new_credential};

/// Asserts `status` refuses the client (not the caller) with `refusal`,
/// naming `credential` (its ID and project) when given and nothing else.
#[track_caller]
fn assert_invalid_client(status: &Status, refusal: &str, credential: Option<(&str, &str)>) {
    let (reason, metadata) = status_reason(status).expect("a reason in the details");
    assert_eq!(reason, reason::INVALID_CLIENT, "{status:?}");
    assert_eq!(metadata["refusal"], refusal, "{status:?}");
    assert_eq!(
        metadata.get("credential_id").map(String::as_str),
        credential.map(|(id, _)| id),
        "{status:?}"
    );
    assert_eq!(
        metadata.get("project_id").map(String::as_str),
        credential.map(|(_, project)| project),
        "{status:?}"
    );
}

fn request(client_id: &str, secret: &str, ip: &str) -> pb::AuthenticateRequest {
    pb::AuthenticateRequest {
        client_id: client_id.to_owned(),
        client_secret: secret.to_owned(),
        client_ip: ip.to_owned(),
    }
}

async fn the_right_secret_from_an_allowed_ip_authenticates(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project_with(
        &mut client,
        "acme",
        Some(pb::ProjectPolicy {
            max_tokens_per_credential: Some(3),
            ..Default::default()
        }),
    )
    .await;
    let (credential, secret) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            allowed_apis: vec!["orders.read".into()],
            allowed_ips: vec!["10.0.0.0/8".into()],
            ..new_credential("acme", "alice")
        },
    )
    .await;

    let snapshot = authentication
        .authenticate(request(&credential.client_id, &secret, "10.20.30.40"))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(snapshot.credential_id, credential.id);
    assert_eq!(snapshot.client_id, credential.client_id);
    assert_eq!(snapshot.project_id, "acme");
    assert_eq!(snapshot.owner, "alice");
    assert_eq!(snapshot.allowed_apis, ["orders.read"]);
    assert_eq!(snapshot.allowed_ips, ["10.0.0.0/8"]);
    assert_eq!(snapshot.state(), pb::CredentialState::Active);
    let policy = snapshot.policy.unwrap();
    assert_eq!(policy.max_tokens_per_credential, Some(3));
    assert_eq!(policy.token_ttl_seconds, Some(3600));

    // An IPv4 peer seen through an IPv6 socket is the same address.
    authentication
        .authenticate(request(&credential.client_id, &secret, "::ffff:10.0.0.1"))
        .await
        .expect("IPv4-mapped address is allowed");
}

async fn every_refusal_says_only_invalid_client(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project_with(&mut client, "acme", None).await;
    let (credential, secret) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            allowed_ips: vec!["10.0.0.0/8".into()],
            ..new_credential("acme", "alice")
        },
    )
    .await;
    let (other, other_secret) = create_credential(&mut client, new_credential("acme", "bob")).await;
    let unknown_client = latchkey_secrets::CLIENT_ID.generate();
    let wrong_secret = latchkey_secrets::CLIENT_SECRET.generate();
    let mut corrupted = secret.clone().into_bytes();
    corrupted[8] = if corrupted[8] == b'x' { b'y' } else { b'x' };
    let corrupted = String::from_utf8(corrupted).unwrap();

    // (case, request, the refusal's label, whether it names the credential)
    let attempts = [
        (
            "wrong secret",
            request(&credential.client_id, &wrong_secret, "10.0.0.1"),
            "wrong_secret",
            true,
        ),
        (
            "other credential's secret",
            request(&credential.client_id, &other_secret, "10.0.0.1"),
            "wrong_secret",
            true,
        ),
        (
            "unknown client",
            request(&unknown_client, &secret, "10.0.0.1"),
            "unknown_client",
            false,
        ),
        (
            "malformed secret",
            request(&credential.client_id, &corrupted, "10.0.0.1"),
            "malformed_secret",
            false,
        ),
        (
            "malformed client ID",
            request("client-1", &secret, "10.0.0.1"),
            "malformed_client_id",
            false,
        ),
        (
            "empty secret",
            request(&credential.client_id, "", "10.0.0.1"),
            "malformed_secret",
            false,
        ),
        (
            "IP not allowed",
            request(&credential.client_id, &secret, "192.0.2.1"),
            "ip_not_allowed",
            true,
        ),
    ];
    for (case, attempt, label, names_credential) in attempts {
        let status = authentication.authenticate(attempt).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}");
        assert_eq!(status.message(), "invalid client", "{case}");
        assert_invalid_client(
            &status,
            label,
            names_credential.then_some((credential.id.as_str(), "acme")),
        );
    }

    client
        .disable_credential(pb::DisableCredentialRequest {
            credential_id: other.id.clone(),
        })
        .await
        .unwrap();
    let disabled = authentication
        .authenticate(request(&other.client_id, &other_secret, "10.0.0.1"))
        .await;
    let disabled = assert_refused(disabled, Code::Unauthenticated, "");
    assert_eq!(disabled.message(), "invalid client");
    assert_invalid_client(&disabled, "disabled", Some((other.id.as_str(), "acme")));
    client
        .enable_credential(pb::EnableCredentialRequest {
            credential_id: other.id.clone(),
        })
        .await
        .unwrap();
    authentication
        .authenticate(request(&other.client_id, &other_secret, "10.0.0.1"))
        .await
        .expect("enabled again");

    let bad_ip = authentication
        .authenticate(request(&credential.client_id, &secret, "not-an-ip"))
        .await;
    assert_refused(bad_ip, Code::InvalidArgument, "client_ip");
}

async fn oversized_values_are_a_bad_request_not_a_refused_client(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project_with(&mut client, "acme", None).await;
    let (credential, secret) =
        create_credential(&mut client, new_credential("acme", "alice")).await;
    let long_id = format!("{}{}", credential.client_id, "x".repeat(200));
    let long_secret = format!("{secret}{}", "y".repeat(300));
    let long_ip = format!("10.0.0.1{}", " ".repeat(100));
    for (attempt, field, echoed) in [
        (
            request(&long_id, &secret, "10.0.0.1"),
            "client_id",
            "xxxxxxxx",
        ),
        (
            request(&credential.client_id, &long_secret, "10.0.0.1"),
            "client_secret",
            "yyyyyyyy",
        ),
        (
            request(&credential.client_id, &secret, &long_ip),
            "client_ip",
            "10.0.0.1",
        ),
    ] {
        let status = assert_refused(
            authentication.authenticate(attempt).await,
            Code::InvalidArgument,
            &format!("{field}: longer than"),
        );
        assert!(!status.message().contains(echoed), "{status:?}");
        assert!(status_reason(&status).is_none(), "not a refused client");
    }
    authentication
        .authenticate(request(&credential.client_id, &secret, "10.0.0.1"))
        .await
        .expect("the same client, well formed");
}

async fn an_expired_credential_is_refused(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project_with(&mut client, "acme", None).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let soon = now + Duration::from_millis(1500);
    let (credential, secret) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            expire_time: Some(Timestamp {
                seconds: soon.as_secs() as i64,
                nanos: soon.subsec_nanos() as i32,
            }),
            ..new_credential("acme", "alice")
        },
    )
    .await;
    authentication
        .authenticate(request(&credential.client_id, &secret, "10.0.0.1"))
        .await
        .expect("not expired yet");
    // Expiry is a point in time; the only honest test waits for it.
    let wait = soon.saturating_sub(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap(),
    );
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    let expired = authentication
        .authenticate(request(&credential.client_id, &secret, "10.0.0.1"))
        .await;
    let expired = assert_refused(expired, Code::Unauthenticated, "invalid client");
    assert_invalid_client(&expired, "expired", Some((credential.id.as_str(), "acme")));
}

async fn rotation_keeps_the_old_secret_only_for_the_grace_period(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project_with(&mut client, "acme", None).await;
    let (credential, first) = create_credential(&mut client, new_credential("acme", "alice")).await;
    let rotate = |grace: u32| pb::RotateCredentialSecretRequest {
        credential_id: credential.id.clone(),
        grace_period_seconds: grace,
        revoke_tokens: false,
    };

    let second = client
        .rotate_credential_secret(rotate(300))
        .await
        .unwrap()
        .into_inner()
        .client_secret;
    for secret in [&first, &second] {
        authentication
            .authenticate(request(&credential.client_id, secret, "10.0.0.1"))
            .await
            .expect("both secrets work during the grace period");
    }

    let third = client
        .rotate_credential_secret(rotate(0))
        .await
        .unwrap()
        .into_inner()
        .client_secret;
    for old in [&first, &second] {
        let refused = authentication
            .authenticate(request(&credential.client_id, old, "10.0.0.1"))
            .await;
        assert_refused(refused, Code::Unauthenticated, "invalid client");
    }
    authentication
        .authenticate(request(&credential.client_id, &third, "10.0.0.1"))
        .await
        .expect("the newest secret works");
}

on_both_backends!(
    the_right_secret_from_an_allowed_ip_authenticates,
    every_refusal_says_only_invalid_client,
    oversized_values_are_a_bad_request_not_a_refused_client,
    an_expired_credential_is_refused,
    rotation_keeps_the_old_secret_only_for_the_grace_period,
);
