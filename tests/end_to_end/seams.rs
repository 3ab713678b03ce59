//! The internal seams (issue 12): the internal services live only on the
//! internal listeners, and every internal call must carry a valid service
//! signature. Tried as an attacker who reaches every port and holds a
//! low-privilege credential would: forged, unsigned, replayed, stale,
//! altered and redirected calls are refused before any handler runs, and
//! nothing they carry is believed.

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::audit_sink_client::AuditSinkClient;
use latchkey_proto::registry::v1::client_authentication_client::ClientAuthenticationClient;
use latchkey_proto::registry::v1::usage_sink_client::UsageSinkClient;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::InactiveReason;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_runtime::{InternalKey, SIGNATURE_HEADER, reason, status_reason};
use latchkey_secrets::HashKey;
use latchkey_tests::{Stack, StackBackend};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::support::{Client, credential, introspect, issue, project_with_client};

const SYNC_POLICY: &str = "/latchkey.token.v1.TokenAdmin/SyncPolicy";
const CHECK_CALLER: &str = "/latchkey.token.v1.TokenAdmin/CheckCaller";

/// The stack's internal key, as both services hold it.
fn internal_key(stack: &Stack) -> InternalKey {
    let key = HashKey::from_hex(&stack.registry.internal_key()).unwrap();
    InternalKey::new(&key, None)
}

/// `message` as gRPC frames it on the wire (uncompressed): what a signature
/// covers.
fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

/// `message` with a signature made by `key` for `path` over `signed_body`
/// (the message's own frame unless an attack says otherwise), at `time_ms`.
fn with_signature<M>(
    key: &InternalKey,
    path: &str,
    signed_body: &[u8],
    time_ms: u64,
    message: M,
) -> tonic::Request<M> {
    carrying(&key.sign_at(path, signed_body, time_ms), message)
}

/// `message` carrying the signature header `value` (a captured one).
fn carrying<M>(value: &tonic::codegen::http::HeaderValue, message: M) -> tonic::Request<M> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        SIGNATURE_HEADER,
        MetadataValue::try_from(value.to_str().unwrap()).unwrap(),
    );
    request
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Asserts `outcome` is the refusal of an unauthenticated internal call,
/// told apart from a refused client by its reason.
#[track_caller]
fn assert_service_refused<T: std::fmt::Debug>(outcome: Result<T, Status>) -> Status {
    let status = outcome.expect_err("an internal call without a valid signature");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let (found, _) = status_reason(&status).expect("a reason in the status details");
    assert_eq!(found, reason::SERVICE_UNAUTHENTICATED, "{status:?}");
    status
}

/// The policy an attacker with `client`'s credential would like stored:
/// its token in the admin's project, as the admin's owner, pinned at the
/// highest version so no registry change could follow.
fn takeover_policy(stack: &Stack, client: &Client) -> token_pb::CredentialPolicy {
    token_pb::CredentialPolicy {
        credential_id: client.credential.id.clone(),
        version: (1 << 53) - 1,
        state: token_pb::PolicyState::Active.into(),
        client_id: client.credential.client_id.clone(),
        project_id: stack.admin.project_id.clone(),
        owner: "admin".into(),
        allowed_apis: vec!["registry:admin".into()],
        allowed_ips: Vec::new(),
        expire_time: None,
    }
}

async fn internal_services_are_not_on_public_listeners(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let key = internal_key(&stack);

    // Even correctly signed, TokenAdmin is not served on the public port
    // every client program reaches for IssueToken.
    let request = token_pb::SyncPolicyRequest {
        policy: Some(takeover_policy(&stack, &client)),
    };
    let signed = with_signature(&key, SYNC_POLICY, &frame(&request), now_ms(), request);
    let refused = TokenAdminClient::new(stack.issuer.channel())
        .sync_policy(signed)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");

    let refused = ClientAuthenticationClient::new(stack.registry.channel())
        .authenticate(registry_pb::AuthenticateRequest {
            client_id: client.credential.client_id.clone(),
            client_secret: client.secret.clone(),
            client_ip: "127.0.0.1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    let refused = UsageSinkClient::new(stack.registry.channel())
        .record(registry_pb::RecordRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
    let refused = AuditSinkClient::new(stack.registry.channel())
        .record_audit_events(registry_pb::RecordAuditEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented, "{refused:?}");
}

async fn unsigned_and_forged_internal_calls_change_nothing(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let mut unsigned = TokenAdminClient::new(stack.issuer.unsigned_internal_channel());
    let forger = InternalKey::new(&HashKey::generate(), None);

    // Finding 1 and 2: rewrite the credential's stored policy into the
    // admin's project and pin its version, unsigned and with a wrong key.
    let request = token_pb::SyncPolicyRequest {
        policy: Some(takeover_policy(&stack, &client)),
    };
    let forged = with_signature(
        &forger,
        SYNC_POLICY,
        &frame(&request),
        now_ms(),
        request.clone(),
    );
    assert_service_refused(unsigned.sync_policy(request).await);
    assert_service_refused(unsigned.sync_policy(forged).await);
    let purge = token_pb::PurgeCredentialRequest {
        policy: Some(takeover_policy(&stack, &client)),
    };
    assert_service_refused(unsigned.purge_credential(purge).await);
    // Finding 3: no unauthenticated introspection with a chosen address.
    assert_service_refused(
        unsigned
            .check_caller(token_pb::CheckCallerRequest {
                token: token.clone(),
                client_ip: "127.0.0.1".into(),
            })
            .await,
    );
    // Finding 5: no secret oracle, no last use from the future, no audit
    // events in another credential's name.
    let internal = stack.registry.unsigned_internal_channel();
    assert_service_refused(
        ClientAuthenticationClient::new(internal.clone())
            .authenticate(registry_pb::AuthenticateRequest {
                client_id: client.credential.client_id.clone(),
                client_secret: client.secret.clone(),
                client_ip: "127.0.0.1".into(),
            })
            .await,
    );
    assert_service_refused(
        UsageSinkClient::new(internal.clone())
            .record(registry_pb::RecordRequest {
                uses: vec![registry_pb::CredentialUse {
                    credential_id: client.credential.id.clone(),
                    time: Some(prost_types::Timestamp {
                        seconds: 4_070_908_800, // 2099-01-01
                        nanos: 0,
                    }),
                    ip: "6.6.6.6".into(),
                }],
                ..Default::default()
            })
            .await,
    );
    assert_service_refused(
        AuditSinkClient::new(internal)
            .record_audit_events(registry_pb::RecordAuditEventsRequest {
                events: vec![registry_pb::AuditEvent {
                    id: uuid::Uuid::now_v7().to_string(),
                    time: Some(prost_types::Timestamp {
                        seconds: 1_000_000_000,
                        nanos: 0,
                    }),
                    actor: client.credential.id.clone(),
                    action: registry_pb::AuditAction::IssueToken.into(),
                    project_id: "acme".into(),
                    credential_id: client.credential.id.clone(),
                    ..Default::default()
                }],
            })
            .await,
    );

    // Nothing was believed: the token is still acme's, alice's, and the
    // registry's next change still reaches it.
    let answer = introspect(&stack, &token, "127.0.0.1", &[]).await;
    assert!(answer.active, "{answer:?}");
    assert_eq!(
        (answer.project_id.as_str(), answer.owner.as_str()),
        ("acme", "alice")
    );
    assert_eq!(answer.scopes, ["a.read"]);
    stack
        .registry
        .client()
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: client.credential.id.clone(),
        })
        .await
        .unwrap();
    let answer = introspect(&stack, &token, "127.0.0.1", &[]).await;
    assert!(!answer.active);
    assert_eq!(answer.reason(), InactiveReason::CredentialDisabled);
    let stored = stack
        .registry
        .client()
        .get_credential(registry_pb::GetCredentialRequest {
            credential_id: client.credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    let last_used = stored.last_used_time.map_or(0, |time| time.seconds);
    assert!(
        last_used < 4_000_000_000,
        "no last use from 2099: {stored:?}"
    );
}

async fn signed_calls_cannot_be_replayed_delayed_altered_or_redirected(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let key = internal_key(&stack);
    let mut admin = TokenAdminClient::new(stack.issuer.unsigned_internal_channel());
    let check = token_pb::CheckCallerRequest {
        token: token.clone(),
        client_ip: "127.0.0.1".into(),
    };

    // A correctly signed call is answered once...
    let signed =
        |time_ms| with_signature(&key, CHECK_CALLER, &frame(&check), time_ms, check.clone());
    let captured = key.sign(CHECK_CALLER, &frame(&check));
    let answer = admin
        .check_caller(carrying(&captured, check.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active, "{answer:?}");
    // ...and a captured copy of it is not answered again.
    let status =
        assert_service_refused(admin.check_caller(carrying(&captured, check.clone())).await);
    assert!(status.message().contains("replayed"), "{status:?}");
    // Outside the clock-skew window (30 s by default), either way.
    for time_ms in [now_ms() - 120_000, now_ms() + 120_000] {
        let status = assert_service_refused(admin.check_caller(signed(time_ms)).await);
        assert!(status.message().contains("clock-skew"), "{status:?}");
    }
    // A signature over another body does not cover this one.
    let other = token_pb::CheckCallerRequest {
        token: token.clone(),
        client_ip: "127.0.0.2".into(),
    };
    let altered = with_signature(&key, CHECK_CALLER, &frame(&check), now_ms(), other);
    assert_service_refused(admin.check_caller(altered).await);
    // Nor does a signature for SyncPolicy cover PurgeCredential, even when
    // the two bodies are the same bytes.
    let policy = Some(token_pb::CredentialPolicy {
        version: 100,
        state: token_pb::PolicyState::Active.into(),
        credential_id: client.credential.id.clone(),
        client_id: client.credential.client_id.clone(),
        project_id: "acme".into(),
        owner: "alice".into(),
        ..Default::default()
    });
    let sync_body = frame(&token_pb::SyncPolicyRequest {
        policy: policy.clone(),
    });
    let purge = token_pb::PurgeCredentialRequest { policy };
    assert_eq!(sync_body, frame(&purge), "the same bytes on the wire");
    let redirected = with_signature(&key, SYNC_POLICY, &sync_body, now_ms(), purge);
    assert_service_refused(admin.purge_credential(redirected).await);
    assert!(
        introspect(&stack, &token, "127.0.0.1", &[]).await.active,
        "nothing was purged"
    );
}

on_both_stacks!(
    internal_services_are_not_on_public_listeners,
    unsigned_and_forged_internal_calls_change_nothing,
    signed_calls_cannot_be_replayed_delayed_altered_or_redirected,
);
