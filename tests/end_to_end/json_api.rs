//! The management API over HTTP/JSON (issue 15), driven with the real
//! `curl` as a user would: every RPC family answers in the proto3 JSON
//! mapping, errors are `{code, message, details}` with Connect's HTTP
//! statuses, authentication, on-behalf-of and address binding are the gRPC
//! ones, CORS is off unless configured, and the OpenAPI document served is
//! the committed one and names every RPC. On the embedded stack: the HTTP
//! layer is the same over either database (the end-to-end gRPC tests cover
//! both).

use std::process::Command;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Backend, Stack, StackBackend, TokenBackend};
use serde_json::{Value, json};
use tonic::Code;

use crate::support::{create_client, issue};

pub(crate) const SERVICE: &str = "latchkey.registry.v1.CredentialRegistry";

/// An HTTP answer as curl saw it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// Header lines, names lowercased.
    headers: Vec<(String, String)>,
    pub(crate) text: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {:?}", self.status, self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Asserts an error answer: its HTTP status and Connect code.
    pub(crate) fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "{self:?}");
        let body = self.json();
        assert_eq!(body["code"], code, "{self:?}");
        body["message"].as_str().unwrap_or_default().to_owned()
    }
}

/// Runs `curl` with `args` (plus `-sS -i`), off the async runtime.
pub(crate) async fn curl(args: Vec<String>) -> Answer {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "-i", "-H", "Expect:"])
            .args(&args)
            .output()
    })
    .await
    .unwrap()
    .expect("curl is needed: scripts/test installs it");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let raw = String::from_utf8(output.stdout).expect("UTF-8 answer");
    let (head, text) = raw.split_once("\r\n\r\n").expect("headers and body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        text: text.to_owned(),
    }
}

/// POSTs `body` to method `method` with `token` and `extra` curl arguments.
pub(crate) async fn call_with(
    stack: &Stack,
    method: &str,
    token: Option<&str>,
    body: &Value,
    extra: &[&str],
) -> Answer {
    let mut args = vec![
        "-X".to_owned(),
        "POST".to_owned(),
        "-H".to_owned(),
        "content-type: application/json".to_owned(),
        "--data-binary".to_owned(),
        body.to_string(),
    ];
    if let Some(token) = token {
        args.extend(["-H".to_owned(), format!("authorization: Bearer {token}")]);
    }
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args.push(format!("{}/{SERVICE}/{method}", stack.registry.http_url()));
    curl(args).await
}

/// POSTs as the platform admin and expects 200.
pub(crate) async fn admin_call(stack: &Stack, method: &str, body: Value) -> Value {
    let answer = call_with(stack, method, stack.registry.admin_token(), &body, &[]).await;
    assert_eq!(answer.status, 200, "{method}: {answer:?}");
    answer.json()
}

/// A management token for a new credential in `project` of `owner`
/// holding `apis` (and allowed from `ips`).
async fn token_for(
    stack: &Stack,
    project: &str,
    owner: &str,
    apis: &[&str],
    ips: &[&str],
) -> (String, String) {
    let client = create_client(
        stack,
        registry_pb::CreateCredentialRequest {
            project_id: project.to_owned(),
            owner: owner.to_owned(),
            allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
            allowed_ips: ips.iter().map(|ip| (*ip).to_owned()).collect(),
            ..Default::default()
        },
    )
    .await;
    let token = issue(stack, &client, &[]).await.unwrap().access_token;
    (client.credential.id, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_live_and_die_over_json() {
    let stack = Stack::start(StackBackend::Embedded).await;
    admin_call(
        &stack,
        "CreateProject",
        json!({"projectId": "acme", "displayName": "Acme"}),
    )
    .await;

    let created = call_with(
        &stack,
        "CreateCredential",
        stack.registry.admin_token(),
        // The protos' own field names are accepted as well as lowerCamelCase.
        &json!({"project_id": "acme", "owner": "alice", "name": "ci", "allowedApis": ["orders.read"]}),
        &[],
    )
    .await;
    assert_eq!(created.status, 200, "{created:?}");
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.header("cache-control"), Some("no-store"));
    assert_eq!(created.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(created.header("x-frame-options"), Some("DENY"));
    assert_eq!(
        created.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
    assert_eq!(created.header("access-control-allow-origin"), None);
    let created = created.json();
    let secret = created["clientSecret"].as_str().unwrap().to_owned();
    let credential = &created["credential"];
    let id = credential["id"].as_str().unwrap().to_owned();
    let client_id = credential["clientId"].as_str().unwrap().to_owned();
    assert!(!secret.is_empty());
    assert_eq!(credential["projectId"], "acme");
    assert_eq!(credential["allowedApis"], json!(["orders.read"]));
    assert_eq!(credential["allowedIps"], json!([]));
    assert_eq!(credential["state"], "CREDENTIAL_STATE_ACTIVE");
    assert_eq!(
        credential["tokenEndpoint"],
        stack.registry.config().token_endpoint.as_str()
    );

    // The secret works at the token endpoint, with curl too.
    let token = curl(vec![
        "-u".to_owned(),
        format!("{client_id}:{secret}"),
        "-d".to_owned(),
        "grant_type=client_credentials".to_owned(),
        format!("{}/oauth2/token", stack.issuer.http_url()),
    ])
    .await;
    assert_eq!(token.status, 200, "{token:?}");

    // Reads never show the secret again.
    let listed = call_with(
        &stack,
        "ListCredentials",
        stack.registry.admin_token(),
        &json!({"projectId": "acme"}),
        &[],
    )
    .await;
    assert_eq!(listed.status, 200);
    assert!(!listed.text.contains(&secret));
    let listed = listed.json();
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(listed["credentials"][0]["id"], id.as_str());
    let got = call_with(
        &stack,
        "GetCredential",
        stack.registry.admin_token(),
        &json!({"credentialId": id}),
        &[],
    )
    .await;
    assert_eq!(got.status, 200);
    assert!(!got.text.contains(&secret));
    let etag = got.json()["credential"]["etag"]
        .as_str()
        .unwrap()
        .to_owned();

    // Update with the etag and a field mask (a comma-separated string in JSON).
    let updated = admin_call(
        &stack,
        "UpdateCredential",
        json!({
            "credential": {"id": id, "name": "ci-renamed", "description": "builds", "etag": etag},
            "updateMask": "name,description",
        }),
    )
    .await;
    assert_eq!(updated["credential"]["name"], "ci-renamed");
    assert_eq!(updated["credential"]["description"], "builds");
    // The old etag no longer matches: nothing changes.
    let stale = call_with(
        &stack,
        "UpdateCredential",
        stack.registry.admin_token(),
        &json!({"credential": {"id": id, "name": "other", "etag": etag}, "updateMask": "name"}),
        &[],
    )
    .await;
    stale.assert_error(409, "aborted");

    // Disable, enable, rotate.
    let disabled = admin_call(&stack, "DisableCredential", json!({"credentialId": id})).await;
    assert_eq!(disabled["credential"]["state"], "CREDENTIAL_STATE_DISABLED");
    let enabled = admin_call(&stack, "EnableCredential", json!({"credentialId": id})).await;
    assert_eq!(enabled["credential"]["state"], "CREDENTIAL_STATE_ACTIVE");
    let rotated = admin_call(
        &stack,
        "RotateCredentialSecret",
        json!({"credentialId": id}),
    )
    .await;
    let new_secret = rotated["clientSecret"].as_str().unwrap();
    assert!(!new_secret.is_empty() && new_secret != secret);

    // Deleting needs the name typed in: a wrong one deletes nothing.
    let wrong = call_with(
        &stack,
        "DeleteCredential",
        stack.registry.admin_token(),
        &json!({"credentialId": id, "confirmName": "ci"}),
        &[],
    )
    .await;
    wrong.assert_error(400, "failed_precondition");
    admin_call(&stack, "GetCredential", json!({"credentialId": id})).await;
    admin_call(
        &stack,
        "DeleteCredential",
        json!({"credentialId": id, "confirmName": "ci-renamed"}),
    )
    .await;
    let gone = call_with(
        &stack,
        "GetCredential",
        stack.registry.admin_token(),
        &json!({"credentialId": id}),
        &[],
    )
    .await;
    gone.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_members_audit_and_usage_over_json() {
    let stack = Stack::start(StackBackend::Embedded).await;
    admin_call(&stack, "CreateProject", json!({"projectId": "acme"})).await;
    let project = admin_call(&stack, "GetProject", json!({"projectId": "acme"})).await;
    assert_eq!(project["project"]["id"], "acme");
    let projects = admin_call(&stack, "ListProjects", json!({})).await;
    assert!(
        projects["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|project| project["id"] == "acme")
    );
    admin_call(
        &stack,
        "UpdateProject",
        json!({"project": {"id": "acme", "displayName": "Acme Inc"}, "updateMask": "displayName"}),
    )
    .await;

    let member = admin_call(
        &stack,
        "CreateMember",
        json!({"projectId": "acme", "userId": "alice", "role": "MEMBER_ROLE_MEMBER", "apiCeiling": ["orders.read"]}),
    )
    .await;
    assert_eq!(member["member"]["userId"], "alice");
    assert_eq!(member["member"]["state"], "MEMBER_STATE_ACTIVE");
    admin_call(
        &stack,
        "GetMember",
        json!({"projectId": "acme", "userId": "alice"}),
    )
    .await;
    let updated = admin_call(
        &stack,
        "UpdateMember",
        json!({"member": {"projectId": "acme", "userId": "alice", "apiCeiling": ["orders.read", "orders.write"]}, "updateMask": "apiCeiling"}),
    )
    .await;
    assert_eq!(
        updated["member"]["apiCeiling"],
        json!(["orders.read", "orders.write"])
    );
    let members = admin_call(&stack, "ListMembers", json!({"projectId": "acme"})).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    admin_call(
        &stack,
        "RemoveMember",
        json!({"projectId": "acme", "userId": "alice"}),
    )
    .await;

    let audit = admin_call(&stack, "ListAuditEvents", json!({"projectId": "acme"})).await;
    let events = audit["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{audit}");
    let usage = admin_call(
        &stack,
        "ListUsage",
        json!({"projectId": "acme", "granularity": "USAGE_GRANULARITY_DAY"}),
    )
    .await;
    assert!(usage["buckets"].is_array(), "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_with_connect_statuses() {
    let stack = Stack::start(StackBackend::Embedded).await;
    let admin = stack.registry.admin_token();
    let empty = json!({});

    let message = call_with(&stack, "ListProjects", None, &empty, &[])
        .await
        .assert_error(401, "unauthenticated");
    assert!(message.contains("bearer"), "{message}");
    call_with(&stack, "ListProjects", Some("not-a-token"), &empty, &[])
        .await
        .assert_error(401, "unauthenticated");
    let message = call_with(&stack, "MakeCoffee", admin, &empty, &[])
        .await
        .assert_error(404, "not_found");
    assert!(message.contains("MakeCoffee"), "{message}");

    // A bad field value: 400 naming the field.
    admin_call(&stack, "CreateProject", json!({"projectId": "acme"})).await;
    let message = call_with(
        &stack,
        "CreateCredential",
        admin,
        &json!({"projectId": "acme", "owner": "alice", "allowedIps": ["nowhere"]}),
        &[],
    )
    .await
    .assert_error(400, "invalid_argument");
    assert!(message.contains("allowed_ips"), "{message}");
    // An unknown field is named, never ignored.
    let message = call_with(
        &stack,
        "ListCredentials",
        admin,
        &json!({"projectid": "acme"}),
        &[],
    )
    .await
    .assert_error(400, "invalid_argument");
    assert!(message.contains("projectid"), "{message}");
    // A wrong type too.
    call_with(
        &stack,
        "ListCredentials",
        admin,
        &json!({"projectId": "acme", "pageSize": "many"}),
        &[],
    )
    .await
    .assert_error(400, "invalid_argument");

    // Malformed JSON.
    let answer = curl(vec![
        "-X".into(),
        "POST".into(),
        "-H".into(),
        "content-type: application/json".into(),
        "-H".into(),
        format!("authorization: Bearer {}", admin.unwrap()),
        "--data-binary".into(),
        "{\"projectId\": ".into(),
        format!("{}/{SERVICE}/ListCredentials", stack.registry.http_url()),
    ])
    .await;
    answer.assert_error(400, "invalid_argument");
    // Not JSON at all.
    let answer = curl(vec![
        "-H".into(),
        format!("authorization: Bearer {}", admin.unwrap()),
        "-d".into(),
        "project_id=acme".into(),
        format!("{}/{SERVICE}/ListCredentials", stack.registry.http_url()),
    ])
    .await;
    answer.assert_error(415, "invalid_argument");
    // Too large.
    let big = json!({"projectId": "acme", "owner": "x".repeat(300 * 1024)});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), big.to_string()).unwrap();
    let answer = curl(vec![
        "-H".into(),
        "content-type: application/json".into(),
        "-H".into(),
        format!("authorization: Bearer {}", admin.unwrap()),
        "--data-binary".into(),
        format!("@{}", file.path().display()),
        format!("{}/{SERVICE}/CreateCredential", stack.registry.http_url()),
    ])
    .await;
    answer.assert_error(413, "resource_exhausted");
    // Only POST calls a method; other paths are JSON 404s.
    let answer = curl(vec![format!(
        "{}/{SERVICE}/ListProjects",
        stack.registry.http_url()
    )])
    .await;
    assert_eq!(answer.status, 405, "{answer:?}");
    let answer = curl(vec![format!("{}/nothing/here", stack.registry.http_url())]).await;
    answer.assert_error(404, "not_found");
    assert_eq!(answer.header("x-frame-options"), Some("DENY"));
    // Nothing was created by any of these.
    let listed = admin_call(&stack, "ListCredentials", json!({"projectId": "acme"})).await;
    assert_eq!(listed["credentials"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_confined_as_over_grpc() {
    let stack = Stack::start(StackBackend::Embedded).await;
    for project in ["acme", "tiber"] {
        admin_call(&stack, "CreateProject", json!({"projectId": project})).await;
    }
    let (_, alice) = token_for(
        &stack,
        "acme",
        "alice",
        &["credentials:own", "orders.read"],
        &[],
    )
    .await;
    let (bob_key, _) = token_for(&stack, "acme", "bob", &["orders.read"], &[]).await;
    let (tiber_key, _) = token_for(&stack, "tiber", "carol", &["orders.read"], &[]).await;

    // Another owner's key and another project's key do not exist for alice.
    for id in [&bob_key, &tiber_key] {
        call_with(
            &stack,
            "GetCredential",
            Some(&alice),
            &json!({"credentialId": id}),
            &[],
        )
        .await
        .assert_error(404, "not_found");
    }
    let own = call_with(
        &stack,
        "ListCredentials",
        Some(&alice),
        &json!({"projectId": "acme"}),
        &[],
    )
    .await;
    assert_eq!(own.status, 200, "{own:?}");
    let owners: Vec<Value> = own.json()["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|credential| credential["owner"].clone())
        .collect();
    assert_eq!(owners, vec![json!("alice")]);
    // Granting beyond what one holds: the same refusal as over gRPC.
    let request = json!({"projectId": "acme", "allowedApis": ["orders.read", "orders.admin"]});
    let http = call_with(&stack, "CreateCredential", Some(&alice), &request, &[]).await;
    let grpc = stack
        .registry
        .client_with_token(Some(&alice))
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            allowed_apis: vec!["orders.read".into(), "orders.admin".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(grpc.code(), Code::PermissionDenied);
    assert_eq!(http.assert_error(403, "permission_denied"), grpc.message());

    // The admin acting on behalf of a member is confined to that member,
    // over HTTP as over gRPC.
    admin_call(
        &stack,
        "CreateMember",
        json!({"projectId": "acme", "userId": "dave", "apiCeiling": ["orders.read"]}),
    )
    .await;
    let admin = stack.registry.admin_token();
    let acting = call_with(
        &stack,
        "CreateCredential",
        admin,
        &json!({"projectId": "acme", "allowedApis": ["orders.write"]}),
        &["-H", "x-latchkey-on-behalf-of: acme/dave"],
    )
    .await;
    let message = acting.assert_error(403, "permission_denied");
    assert!(message.contains("orders.write"), "{message}");
    let made = call_with(
        &stack,
        "CreateCredential",
        admin,
        &json!({"projectId": "acme", "allowedApis": ["orders.read"]}),
        &["-H", "x-latchkey-on-behalf-of: acme/dave"],
    )
    .await;
    assert_eq!(made.status, 200, "{made:?}");
    assert_eq!(made.json()["credential"]["owner"], "dave");
    let seen = call_with(
        &stack,
        "GetCredential",
        admin,
        &json!({"credentialId": bob_key}),
        &["-H", "x-latchkey-on-behalf-of: acme/dave"],
    )
    .await;
    seen.assert_error(404, "not_found");
    let nobody = call_with(
        &stack,
        "ListCredentials",
        admin,
        &json!({"projectId": "acme"}),
        &["-H", "x-latchkey-on-behalf-of: acme/nobody"],
    )
    .await;
    assert!(nobody.status >= 400, "{nobody:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_tokens_stay_bound_to_addresses() {
    let stack = Stack::start(StackBackend::Embedded).await;
    admin_call(&stack, "CreateProject", json!({"projectId": "acme"})).await;
    let (id, token) = token_for(
        &stack,
        "acme",
        "ops",
        &["credentials:manage"],
        &["127.0.0.1"],
    )
    .await;
    // From its allowed address (curl's, on loopback) the token works: the
    // client's real address reached the check.
    let answer = call_with(
        &stack,
        "ListCredentials",
        Some(&token),
        &json!({"projectId": "acme"}),
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // Once the credential is bound elsewhere, its live token is refused here.
    admin_call(
        &stack,
        "UpdateCredential",
        json!({"credential": {"id": id, "allowedIps": ["10.0.0.0/8"]}, "updateMask": "allowedIps"}),
    )
    .await;
    call_with(
        &stack,
        "ListCredentials",
        Some(&token),
        &json!({"projectId": "acme"}),
        &[],
    )
    .await
    .assert_error(401, "unauthenticated");
    let grpc = stack
        .registry
        .client_with_token(Some(&token))
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(grpc.unwrap_err().code(), Code::Unauthenticated);
}

/// A preflight from `origin` for `url`.
async fn preflight(url: String, origin: &str) -> Answer {
    curl(vec![
        "-X".into(),
        "OPTIONS".into(),
        "-H".into(),
        format!("origin: {origin}"),
        "-H".into(),
        "access-control-request-method: POST".into(),
        "-H".into(),
        "access-control-request-headers: authorization, content-type, x-latchkey-on-behalf-of"
            .into(),
        url,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_off_by_default() {
    let stack = Stack::start(StackBackend::Embedded).await;
    let api = format!("{}/{SERVICE}/ListProjects", stack.registry.http_url());
    let answer = preflight(api, "http://console.test").await;
    assert_eq!(
        answer.header("access-control-allow-origin"),
        None,
        "{answer:?}"
    );
    let answer = call_with(
        &stack,
        "ListProjects",
        stack.registry.admin_token(),
        &json!({}),
        &["-H", "origin: http://console.test"],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), None);
    let token = preflight(
        format!("{}/oauth2/token", stack.issuer.http_url()),
        "http://console.test",
    )
    .await;
    assert_eq!(
        token.header("access-control-allow-origin"),
        None,
        "{token:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_configured_origins() {
    let console = "http://console.test:8081";
    let stack = Stack::start_with(
        Backend::Sqlite,
        TokenBackend::Memory,
        |registry| registry.cors_allowed_origins = vec![console.to_owned()],
        |issuer| issuer.cors_allowed_origins = vec![console.to_owned()],
    )
    .await;
    let api = format!("{}/{SERVICE}/ListProjects", stack.registry.http_url());
    let allowed = preflight(api.clone(), console).await;
    assert!(allowed.status < 300, "{allowed:?}");
    assert_eq!(allowed.header("access-control-allow-origin"), Some(console));
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for header in ["authorization", "content-type", "x-latchkey-on-behalf-of"] {
        assert!(headers.contains(header), "{headers}");
    }
    assert_eq!(allowed.header("access-control-allow-credentials"), None);
    let answer = call_with(
        &stack,
        "ListProjects",
        stack.registry.admin_token(),
        &json!({}),
        &["-H", &format!("origin: {console}")],
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("access-control-allow-origin"), Some(console));

    let other = preflight(api, "http://evil.test").await;
    assert_eq!(
        other.header("access-control-allow-origin"),
        None,
        "{other:?}"
    );

    // The console signs in at the token endpoint from the browser.
    let token_url = format!("{}/oauth2/token", stack.issuer.http_url());
    let allowed = preflight(token_url.clone(), console).await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some(console),
        "{allowed:?}"
    );
    let other = preflight(token_url, "http://evil.test").await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    // Introspection is for servers: no CORS there.
    let introspect = preflight(
        format!("{}/oauth2/introspect", stack.issuer.http_url()),
        console,
    )
    .await;
    assert_eq!(introspect.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_committed_and_complete() {
    let stack = Stack::start(StackBackend::Embedded).await;
    let served = curl(vec![format!("{}/openapi.json", stack.registry.http_url())]).await;
    assert_eq!(served.status, 200);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json");
    assert!(
        served.text == committed,
        "the served OpenAPI document differs from docs/openapi.json; rewrite it with \
         `LATCHKEY_WRITE_OPENAPI=1 cargo test -p latchkey-registry-http openapi`"
    );
    let document = served.json();
    // Every RPC the descriptors name is a documented path.
    let descriptors: prost_types::FileDescriptorSet =
        prost::Message::decode(latchkey_proto::FILE_DESCRIPTOR_SET).unwrap();
    let service = descriptors
        .file
        .iter()
        .flat_map(|file| file.service.iter())
        .find(|service| service.name() == "CredentialRegistry")
        .unwrap();
    assert!(service.method.len() >= 20);
    for method in &service.method {
        let path = format!("/{SERVICE}/{}", method.name());
        let operation = &document["paths"][&path]["post"];
        assert!(
            operation.is_object(),
            "{path} is not in the OpenAPI document"
        );
        assert!(
            !operation["description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{path} has no description"
        );
    }
    assert_eq!(
        document["paths"].as_object().unwrap().len(),
        service.method.len()
    );
    // And it is valid OpenAPI by an independent validator, not only by our
    // own reading of it.
    assert_valid_openapi(&served.text);
}

/// Runs the OpenAPI validator `scripts/test` installs (PyPI
/// `openapi-spec-validator`, `LATCHKEY_TEST_OPENAPI_VALIDATOR`) on `document`.
fn assert_valid_openapi(document: &str) {
    let validator = std::env::var_os("LATCHKEY_TEST_OPENAPI_VALIDATOR").expect(
        "an OpenAPI validator is needed: run scripts/test (it installs one) or set \
         LATCHKEY_TEST_OPENAPI_VALIDATOR",
    );
    let file = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(file.path(), document).unwrap();
    let output = Command::new(&validator)
        .arg(file.path())
        .output()
        .expect("run the OpenAPI validator");
    assert!(
        output.status.success(),
        "the OpenAPI document is not valid:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
