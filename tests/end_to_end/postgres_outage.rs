//! Rule 7, finding 9: introspection stays up while PostgreSQL is down.
//! Gateways authenticating with client ID and secret are verified like
//! clients at issuance: a verification the registry made before is honoured
//! as long as the token store holds the same policy version of the
//! gateway's credential, so no registry call (hence no SQL) is needed when
//! the short caller-cache entry ends. A gateway credential deleted,
//! disabled or narrowed before the outage is still refused at once, and a
//! token deleted before it still reads inactive. The outage is a cut TCP
//! relay in front of the shared PostgreSQL.
//!
//! The caller cache holds a caller per (credentials, address) for 30 s;
//! asking from addresses it has never seen (127.0.0.2, 127.0.0.3) is what
//! happens when an entry ends, without waiting for it.

use std::net::{IpAddr, Ipv4Addr};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Backend, Stack, TcpRelay, TokenBackend};
use prost_types::FieldMask;
use tonic::Code;

use crate::sources::{grpc_introspect_from, introspect_from, pair};
use crate::support::{Client, create_client, credential, issue, project_with_client};

const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const NEW_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
];

async fn gateway(stack: &Stack, apis: &[&str]) -> Client {
    create_client(
        stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            ..credential(apis, &[])
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_by_basic_answers_correctly_with_postgres_cut() {
    let (mut relay, relayed) = TcpRelay::in_front_of_postgres().await;
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::Redis,
        |registry| {
            registry.database.url = relayed.clone();
            registry.database.acquire_timeout_ms = 500;
        },
        |_| {},
    )
    .await;
    let app = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let live = issue(&stack, &app, &[]).await.unwrap().access_token;
    let gone = gateway(&stack, &["orders.read"]).await;
    let gone_token = issue(&stack, &gone, &[]).await.unwrap().access_token;

    let introspect = &["tokens:introspect"];
    let working = gateway(&stack, introspect).await;
    let disabled = gateway(&stack, introspect).await;
    let deleted = gateway(&stack, introspect).await;
    let narrowed = gateway(&stack, &["tokens:introspect", "orders.read"]).await;
    // Each gateway is verified once, before the outage.
    for gateway in [&working, &disabled, &deleted, &narrowed] {
        let answer = introspect_from(&stack, HOME, pair(gateway), &live).await;
        assert_eq!((answer.0, answer.2["active"].as_bool()), (200, Some(true)));
    }

    let mut admin = stack.registry.client();
    admin
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: gone.credential.id.clone(),
            confirm_name: gone.credential.name.clone(),
        })
        .await
        .unwrap();
    admin
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: disabled.credential.id.clone(),
        })
        .await
        .unwrap();
    admin
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: deleted.credential.id.clone(),
            confirm_name: deleted.credential.name.clone(),
        })
        .await
        .unwrap();
    admin
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: narrowed.credential.id.clone(),
                allowed_apis: vec!["orders.read".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["allowed_apis".into()],
            }),
        })
        .await
        .unwrap();

    relay.cut().await;
    // The registry cannot verify anything now (a well-formed secret: a
    // malformed one is refused before the database).
    let unverifiable = latchkey_secrets::CLIENT_SECRET.generate();
    let fresh_gateway = introspect_from(
        &stack,
        HOME,
        (&working.credential.client_id, &unverifiable),
        &live,
    )
    .await;
    assert_eq!(fresh_gateway.0, 503, "{fresh_gateway:?}");

    for from in NEW_ADDRESSES {
        // The working gateway answers, correctly, over HTTP and gRPC.
        let answer = introspect_from(&stack, from, pair(&working), &live).await;
        assert_eq!(
            (answer.0, answer.2["active"].as_bool()),
            (200, Some(true)),
            "{from}: {answer:?}"
        );
        let answer = introspect_from(&stack, from, pair(&working), &gone_token).await;
        assert_eq!(
            (answer.0, answer.2["active"].as_bool()),
            (200, Some(false)),
            "{from}: a deleted credential's token: {answer:?}"
        );
        let answer = grpc_introspect_from(&stack, from, pair(&working), &live).await;
        assert!(answer.unwrap().active, "{from}");
        let answer = grpc_introspect_from(&stack, from, pair(&working), &gone_token).await;
        assert!(!answer.unwrap().active, "{from}");

        // The changed gateways are refused at once, the outage
        // notwithstanding.
        for refused in [&disabled, &deleted] {
            let answer = introspect_from(&stack, from, pair(refused), &live).await;
            assert_eq!(
                (answer.0, answer.2["error"].as_str()),
                (401, Some("invalid_client")),
                "{from}: {answer:?}"
            );
            let status = grpc_introspect_from(&stack, from, pair(refused), &live)
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{from}: {status:?}");
        }
        let answer = introspect_from(&stack, from, pair(&narrowed), &live).await;
        assert_eq!(
            (answer.0, answer.2["error"].as_str()),
            (403, Some("insufficient_scope")),
            "{from}: {answer:?}"
        );
        let status = grpc_introspect_from(&stack, from, pair(&narrowed), &live)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{from}: {status:?}");
    }
    relay.restore().await;
}
