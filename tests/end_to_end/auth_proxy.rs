//! Sign-in through a trusted authentication proxy (issue 15): a request
//! from the configured proxy address naming a user in `x-forwarded-user`
//! acts as the proxy on behalf of that member, exactly as an on-behalf-of
//! call; from anywhere else, with a bearer token, or over gRPC the header
//! does nothing. Driven with curl; `--interface 127.0.0.2` is a caller on
//! the same machine that is not the proxy.

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Backend, Stack, TokenBackend};
use serde_json::{Value, json};
use tonic::Code;

use crate::json_api::{Answer, admin_call, call_with, curl};

/// A stack whose registry trusts 127.0.0.1 as its auth proxy for `acme`,
/// with members alice (active) and sam (suspended).
async fn proxied_stack() -> Stack {
    let stack = Stack::start_with(
        Backend::Sqlite,
        TokenBackend::Memory,
        |registry| {
            registry.auth_proxy.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            registry.auth_proxy.project = "acme".to_owned();
        },
        |_| {},
    )
    .await;
    admin_call(&stack, "CreateProject", json!({"projectId": "acme"})).await;
    for user in ["alice", "sam"] {
        admin_call(
            &stack,
            "CreateMember",
            json!({"projectId": "acme", "userId": user, "apiCeiling": ["orders.read"]}),
        )
        .await;
    }
    admin_call(
        &stack,
        "UpdateMember",
        json!({"member": {"projectId": "acme", "userId": "sam", "state": "MEMBER_STATE_SUSPENDED"}, "updateMask": "state"}),
    )
    .await;
    // Someone else's key, which alice must not see.
    admin_call(
        &stack,
        "CreateCredential",
        json!({"projectId": "acme", "owner": "bob", "allowedApis": ["orders.read"]}),
    )
    .await;
    stack
}

/// `method` with no token, as `user` through the proxy header, plus `extra`.
async fn as_user(stack: &Stack, method: &str, user: &str, body: &Value, extra: &[&str]) -> Answer {
    let header = format!("x-forwarded-user: {user}");
    let mut args = vec!["-H", header.as_str()];
    args.extend_from_slice(extra);
    call_with(stack, method, None, body, &args).await
}

fn owners(listed: &Value) -> Vec<Value> {
    listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|credential| credential["owner"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trusted_proxy_signs_members_in() {
    let stack = proxied_stack().await;
    let list = json!({"projectId": "acme"});

    let created = as_user(
        &stack,
        "CreateCredential",
        "alice",
        &json!({"projectId": "acme", "name": "ci", "allowedApis": ["orders.read"]}),
        &[],
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    let created = created.json();
    assert_eq!(created["credential"]["owner"], "alice");
    let id = created["credential"]["id"].as_str().unwrap().to_owned();
    // Confined to the member: beyond her ceiling is refused.
    as_user(
        &stack,
        "CreateCredential",
        "alice",
        &json!({"projectId": "acme", "allowedApis": ["orders.write"]}),
        &[],
    )
    .await
    .assert_error(403, "permission_denied");

    let listed = as_user(&stack, "ListCredentials", "alice", &list, &[]).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(owners(&listed.json()), vec![json!("alice")]);

    // The audit trail names the proxy and the member.
    let audit = admin_call(&stack, "ListAuditEvents", json!({"projectId": "acme"})).await;
    let event = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["credentialId"] == id.as_str())
        .unwrap_or_else(|| panic!("no event of {id}: {audit}"));
    assert_eq!(event["actor"], "auth-proxy", "{event}");
    assert_eq!(event["onBehalfOf"], "alice", "{event}");

    // A suspended or unknown member is refused as on-behalf-of is.
    let suspended = as_user(&stack, "ListCredentials", "sam", &list, &[]).await;
    let message = suspended.assert_error(403, "permission_denied");
    assert!(message.contains("suspended"), "{message}");
    assert!(message.contains("x-forwarded-user"), "{message}");
    as_user(&stack, "ListCredentials", "nobody", &list, &[])
        .await
        .assert_error(403, "permission_denied");
    // Sent twice, the header names nobody.
    as_user(
        &stack,
        "ListCredentials",
        "alice",
        &list,
        &["-H", "x-forwarded-user: bob"],
    )
    .await
    .assert_error(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_means_nothing_from_anyone_else() {
    let stack = proxied_stack().await;
    let list = json!({"projectId": "acme"});

    // Another address of this machine is not the proxy.
    as_user(
        &stack,
        "ListCredentials",
        "alice",
        &list,
        &["--interface", "127.0.0.2"],
    )
    .await
    .assert_error(401, "unauthenticated");

    // Beside an authorization header the bearer path decides, alone.
    let bad = call_with(
        &stack,
        "ListCredentials",
        Some("not-a-token"),
        &list,
        &["-H", "x-forwarded-user: alice"],
    )
    .await;
    bad.assert_error(401, "unauthenticated");
    let admin = call_with(
        &stack,
        "ListCredentials",
        stack.registry.admin_token(),
        &list,
        &["-H", "x-forwarded-user: alice"],
    )
    .await;
    assert_eq!(admin.status, 200, "{admin:?}");
    assert_eq!(owners(&admin.json()), vec![json!("bob")]);

    // Over gRPC, even from the proxy's own address, the header is metadata
    // no one reads: request extensions never cross the network.
    let mut request = tonic::Request::new(registry_pb::ListCredentialsRequest {
        project_id: "acme".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-forwarded-user", "alice".parse().unwrap());
    let refused = stack
        .registry
        .client_with_token(None)
        .list_credentials(request)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_config_says_who_the_proxy_signed_in() {
    let stack = proxied_stack().await;
    let url = format!("{}/console/config.json", stack.registry.http_url());
    let config = |extra: &[&str]| {
        let mut args: Vec<String> = extra.iter().map(|arg| (*arg).to_owned()).collect();
        args.push(url.clone());
        curl(args)
    };
    let signed_in = config(&["-H", "x-forwarded-user: alice"]).await;
    assert_eq!(signed_in.status, 200, "{signed_in:?}");
    assert_eq!(
        signed_in.json()["signedInByProxy"],
        json!({"user": "alice", "project": "acme"})
    );
    for extra in [
        &[][..],
        &["-H", "x-forwarded-user: alice", "--interface", "127.0.0.2"][..],
        &[
            "-H",
            "x-forwarded-user: alice",
            "-H",
            "authorization: Bearer x",
        ][..],
    ] {
        let answer = config(extra).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(answer.json().get("signedInByProxy").is_none(), "{answer:?}");
    }
}
