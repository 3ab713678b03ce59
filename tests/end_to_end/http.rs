//! The OAuth endpoints as applications and gateways use them: a mainstream
//! OAuth client library, RFC 7662 introspection, server metadata, a real
//! second source address, malformed requests, and ambiguous client
//! authentication (two methods, or two `Authorization` values) refused on
//! every endpoint, HTTP and gRPC (RFC 6749 §2.3).

use std::net::{IpAddr, Ipv4Addr};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{Stack, StackBackend};
use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl};
use tonic::transport::Endpoint;

use serde_json::json;

use crate::support::{
    Client, assert_code, credential, encode_form, introspect, post_form, project_with_client,
};

const SECOND_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn an_oauth_library_gets_a_token_from_the_advertised_endpoint(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(&["orders.read", "orders.write"], &[]),
    )
    .await;
    // The registry shows where to exchange the secret, as one seed console
    // shows the API endpoint beside the keys.
    let endpoint = client.credential.token_endpoint.clone();
    assert_eq!(
        endpoint,
        format!("{}/oauth2/token", stack.issuer.http_url())
    );

    // So does the RFC 8414 metadata document.
    let metadata: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        stack.issuer.http_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(metadata["token_endpoint"], endpoint.as_str());
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    assert!(
        metadata["introspection_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/introspect")
    );
    assert!(
        metadata["revocation_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/revoke")
    );

    let http = reqwest::ClientBuilder::new()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let oauth = BasicClient::new(ClientId::new(client.credential.client_id.clone()))
        .set_client_secret(ClientSecret::new(client.secret.clone()))
        .set_token_uri(TokenUrl::new(endpoint.clone()).unwrap());
    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("orders.read".into()))
        .request_async(&http)
        .await
        .unwrap();
    assert!(token.access_token().secret().starts_with("lkt_"));
    let lifetime = token.expires_in().unwrap().as_secs();
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    assert_eq!(token.scopes().unwrap()[0].as_str(), "orders.read");
    assert!(
        introspect(
            &stack,
            token.access_token().secret(),
            "127.0.0.1",
            &["orders.read"]
        )
        .await
        .active
    );

    let wrong = BasicClient::new(ClientId::new(client.credential.client_id.clone()))
        .set_client_secret(ClientSecret::new(
            latchkey_secrets::CLIENT_SECRET.generate(),
        ))
        .set_token_uri(TokenUrl::new(endpoint).unwrap());
    match wrong
        .exchange_client_credentials()
        .request_async(&http)
        .await
    {
        Err(RequestTokenError::ServerResponse(response)) => {
            assert_eq!(*response.error(), BasicErrorResponseType::InvalidClient);
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

async fn introspection_over_http_follows_rfc_7662(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(&["a.read"], &["127.0.0.1"]),
    )
    .await;
    // Client authentication by form fields this time.
    let (status, headers, body) = post_form(
        &stack,
        "/oauth2/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client.credential.client_id),
            ("client_secret", &client.secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "a.read");
    let token = body["access_token"].as_str().unwrap().to_owned();

    let (status, _, active) = post_form(
        &stack,
        "/oauth2/introspect",
        Some(stack.admin.basic()),
        &[
            ("token", &token),
            ("client_ip", "127.0.0.1"),
            ("scope", "a.read"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], client.credential.client_id.as_str());
    assert_eq!(active["sub"], client.credential.client_id.as_str());
    assert_eq!(active["project"], "acme");
    assert_eq!(active["token_type"], "Bearer");
    assert_eq!(active["scope"], "a.read");
    assert!(active["exp"].as_i64().unwrap() > active["iat"].as_i64().unwrap());

    for form in [
        vec![("token", token.as_str()), ("client_ip", "192.0.2.1")],
        vec![
            ("token", token.as_str()),
            ("client_ip", "127.0.0.1"),
            ("scope", "a.write"),
        ],
        vec![("token", "lkt_nonsense")],
    ] {
        let (status, _, inactive) = post_form(
            &stack,
            "/oauth2/introspect",
            Some(stack.admin.basic()),
            &form,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            inactive,
            serde_json::json!({ "active": false }),
            "inactive says nothing more"
        );
    }
}

async fn a_real_second_source_address_is_bound_by_the_allowlist(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let only_first =
        project_with_client(&stack, "acme", None, credential(&[], &["127.0.0.1"])).await;
    let only_second = crate::support::create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            ..credential(&[], &["127.0.0.2"])
        },
    )
    .await;

    let from_second = reqwest::ClientBuilder::new()
        .local_address(SECOND_ADDRESS)
        .build()
        .unwrap();
    let request_token = |client: &Client| {
        from_second
            .post(format!("{}/oauth2/token", stack.issuer.http_url()))
            .basic_auth(&client.credential.client_id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(&[("grant_type", "client_credentials")]))
            .send()
    };
    let refused = request_token(&only_first).await.unwrap();
    assert_eq!(
        refused.status().as_u16(),
        401,
        "127.0.0.2 is not allowed for this credential"
    );
    let granted = request_token(&only_second).await.unwrap();
    assert_eq!(granted.status().as_u16(), 200);

    // Over gRPC too, from a channel bound to 127.0.0.2.
    let channel = Endpoint::from_shared(format!("http://{}", stack.issuer.grpc_address()))
        .unwrap()
        .local_address(Some(SECOND_ADDRESS))
        .connect()
        .await
        .unwrap();
    let mut tokens =
        latchkey_proto::token::v1::token_service_client::TokenServiceClient::new(channel);
    let issue = |client: &Client| token_pb::IssueTokenRequest {
        client_id: client.credential.client_id.clone(),
        client_secret: client.secret.clone(),
        scopes: vec![],
    };
    let status = tokens.issue_token(issue(&only_first)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let token = tokens
        .issue_token(issue(&only_second))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    assert!(introspect(&stack, &token, "127.0.0.2", &[]).await.active);
    assert!(!introspect(&stack, &token, "127.0.0.1", &[]).await.active);
}

/// A malformed-request case: name, Basic credentials, form, expected status
/// and OAuth error code.
type Case<'a> = (
    &'a str,
    Option<(&'a str, &'a str)>,
    Vec<(&'a str, &'a str)>,
    u16,
    &'a str,
);

async fn malformed_requests_get_precise_oauth_errors(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let id = client.credential.client_id.as_str();
    let secret = client.secret.as_str();
    let basic = Some((id, secret));
    let grant = ("grant_type", "client_credentials");

    let cases: Vec<Case<'_>> = vec![
        ("missing grant_type", basic, vec![], 400, "invalid_request"),
        (
            "password grant",
            basic,
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (
            "no client authentication",
            None,
            vec![grant],
            401,
            "invalid_client",
        ),
        (
            "two authentication methods",
            basic,
            vec![grant, ("client_id", id), ("client_secret", secret)],
            400,
            "invalid_request",
        ),
        (
            "wrong secret",
            Some((id, "lks_wrong")),
            vec![grant],
            401,
            "invalid_client",
        ),
        (
            "unknown scope",
            basic,
            vec![grant, ("scope", "a.write")],
            400,
            "invalid_scope",
        ),
        (
            "bad scope syntax",
            basic,
            vec![grant, ("scope", "a.read \u{1F600}")],
            400,
            "invalid_request",
        ),
    ];
    for (case, auth, form, status, error) in cases {
        let (got, _, body) = post_form(&stack, "/oauth2/token", auth, &form).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{case}: {body}"
        );
        assert!(body["error_description"].is_string(), "{case}");
    }

    let http = reqwest::Client::new();
    let url = format!("{}/oauth2/token", stack.issuer.http_url());
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (status, body)
    };
    let (status, body) = send(
        http.post(&url)
            .basic_auth(id, Some(secret))
            .body("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "no content type: {body}"
    );
    let repeated = "grant_type=client_credentials&grant_type=client_credentials";
    let (status, body) = send(
        http.post(&url)
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(repeated),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "repeated: {body}"
    );
    let (status, body) = send(
        http.post(&url)
            .header("authorization", "Basic !!!not-base64")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = send(
        http.post(&url)
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            // Just over the 16 KiB limit, so the whole body is sent before the
            // server answers.
            .body(format!(
                "grant_type=client_credentials&scope={}",
                "a".repeat(17 * 1024)
            )),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("invalid_request")),
        "oversized"
    );
    let (status, body) = send(
        http.post(&url)
            .basic_auth(id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![0xff, 0xfe, b'=', 0x80]),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "not UTF-8"
    );

    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some(stack.admin.basic()),
        &[("client_ip", "1.2.3.4")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "introspect without token"
    );
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some(stack.admin.basic()),
        &[("token", "x"), ("client_ip", "nope")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, _, body) = post_form(&stack, "/oauth2/revoke", basic, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "revoke without token"
    );

    // gRPC: bad scope syntax names the field.
    let refused = stack
        .issuer
        .token_client()
        .issue_token(token_pb::IssueTokenRequest {
            client_id: id.to_owned(),
            client_secret: secret.to_owned(),
            scopes: vec!["has space".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(refused.message().starts_with("scope"), "{refused:?}");
}

/// A raw request to the issuer's HTTP endpoint `path`: every value of
/// `authorizations` becomes its own `Authorization` header.
async fn send_raw(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    authorizations: &[&str],
    body: &str,
) -> (u16, serde_json::Value) {
    send_raw_with(stack, method, path, authorizations, &[], body).await
}

/// [`send_raw`] with `extra` headers too.
async fn send_raw_with(
    stack: &Stack,
    method: reqwest::Method,
    path: &str,
    authorizations: &[&str],
    extra: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", stack.issuer.http_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    for value in authorizations {
        // `header` appends: repeated calls send repeated headers.
        request = request.header("authorization", *value);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

/// `Authorization: Basic` for `id` and `secret`.
fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

#[track_caller]
fn assert_invalid_request(case: &str, (status, body): &(u16, serde_json::Value), says: &str) {
    assert_eq!(
        (*status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{case}: {body}"
    );
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(says), "{case}: {description:?}");
}

async fn ambiguous_client_authentication_is_refused_on_every_http_endpoint(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let id = client.credential.client_id.as_str();
    let secret = client.secret.as_str();
    let client_basic = basic(id, secret);
    let admin_basic = stack.admin.basic_header();
    let admin_form = encode_form(&[
        ("client_id", &stack.admin.client_id),
        ("client_secret", &stack.admin.client_secret),
    ]);
    let post = reqwest::Method::POST;
    let both = "not both";
    let twice = "more than once";

    // /oauth2/token: each method alone works.
    let grant = "grant_type=client_credentials";
    let form_grant = format!(
        "{grant}&{}",
        encode_form(&[("client_id", id), ("client_secret", secret)])
    );
    let (status, body) = send_raw(
        &stack,
        post.clone(),
        "/oauth2/token",
        &[&client_basic],
        grant,
    )
    .await;
    assert_eq!(status, 200, "Basic alone: {body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = send_raw(&stack, post.clone(), "/oauth2/token", &[], &form_grant).await;
    assert_eq!(status, 200, "form alone: {body}");
    let bearer = format!("Bearer {token}");
    // Any header beside any form credential, even the same client's, even
    // an empty field; two headers, even identical ones.
    for (case, authorizations, body, says) in [
        (
            "Basic and form",
            vec![client_basic.as_str()],
            form_grant.clone(),
            both,
        ),
        (
            "Basic and client_id",
            vec![client_basic.as_str()],
            format!("{grant}&{}", encode_form(&[("client_id", id)])),
            both,
        ),
        (
            "Basic and an empty client_secret",
            vec![client_basic.as_str()],
            format!("{grant}&client_secret="),
            both,
        ),
        (
            "Bearer and form",
            vec![bearer.as_str()],
            form_grant.clone(),
            both,
        ),
        (
            "two Basic headers",
            vec![client_basic.as_str(), client_basic.as_str()],
            grant.to_owned(),
            twice,
        ),
        (
            "Basic and Bearer headers",
            vec![client_basic.as_str(), bearer.as_str()],
            grant.to_owned(),
            twice,
        ),
        (
            "a repeated client_id",
            vec![],
            format!("{form_grant}&{}", encode_form(&[("client_id", id)])),
            "repeated",
        ),
        (
            "a repeated client_secret",
            vec![],
            format!("{form_grant}&{}", encode_form(&[("client_secret", secret)])),
            "repeated",
        ),
    ] {
        let answer = send_raw(
            &stack,
            post.clone(),
            "/oauth2/token",
            &authorizations,
            &body,
        )
        .await;
        assert_invalid_request(&format!("token, {case}"), &answer, says);
    }

    // /oauth2/introspect: Basic used to win over form credentials; now
    // neither is read.
    let query = encode_form(&[("token", &token)]);
    for (case, authorizations) in [("Basic", vec![admin_basic.as_str()]), ("form", vec![])] {
        let body = if authorizations.is_empty() {
            format!("{query}&{admin_form}")
        } else {
            query.clone()
        };
        let (status, answer) = send_raw(
            &stack,
            post.clone(),
            "/oauth2/introspect",
            &authorizations,
            &body,
        )
        .await;
        assert_eq!(
            (status, &answer["active"]),
            (200, &json!(true)),
            "{case} alone: {answer}"
        );
    }
    for (case, authorizations, body, says) in [
        (
            "Basic and form",
            vec![admin_basic.as_str()],
            format!("{query}&{admin_form}"),
            both,
        ),
        (
            "Basic and client_id",
            vec![admin_basic.as_str()],
            format!(
                "{query}&{}",
                encode_form(&[("client_id", &stack.admin.client_id)])
            ),
            both,
        ),
        (
            "two Basic headers",
            vec![admin_basic.as_str(), admin_basic.as_str()],
            query.clone(),
            twice,
        ),
        (
            "a repeated token",
            vec![admin_basic.as_str()],
            format!("{query}&{query}"),
            "repeated",
        ),
    ] {
        let answer = send_raw(
            &stack,
            post.clone(),
            "/oauth2/introspect",
            &authorizations,
            &body,
        )
        .await;
        assert_invalid_request(&format!("introspect, {case}"), &answer, says);
    }

    // /oauth2/revoke: refused calls revoke nothing.
    for (case, authorizations, body, says) in [
        (
            "Basic and form",
            vec![client_basic.as_str()],
            format!(
                "{query}&{}",
                encode_form(&[("client_id", id), ("client_secret", secret)])
            ),
            both,
        ),
        (
            "two Basic headers",
            vec![client_basic.as_str(), client_basic.as_str()],
            query.clone(),
            twice,
        ),
        (
            "a repeated token",
            vec![client_basic.as_str()],
            format!("{query}&{query}"),
            "repeated",
        ),
    ] {
        let answer = send_raw(
            &stack,
            post.clone(),
            "/oauth2/revoke",
            &authorizations,
            &body,
        )
        .await;
        assert_invalid_request(&format!("revoke, {case}"), &answer, says);
    }
    assert!(
        introspect(&stack, &token, "127.0.0.1", &[]).await.active,
        "a refused revocation revoked the token"
    );

    // /auth/check (asked as a gateway): one token checked, two refused.
    let get = reqwest::Method::GET;
    let gateway_basic = stack.admin.basic_header();
    let gateway = [("latchkey-gateway-authorization", gateway_basic.as_str())];
    let (status, _) =
        send_raw_with(&stack, get.clone(), "/auth/check", &[&bearer], &gateway, "").await;
    assert_eq!(status, 200);
    let answer = send_raw_with(
        &stack,
        get,
        "/auth/check",
        &[&bearer, &bearer],
        &gateway,
        "",
    )
    .await;
    assert_invalid_request("auth/check, two Bearer headers", &answer, twice);

    let (status, _) = send_raw(&stack, post, "/oauth2/revoke", &[&client_basic], &query).await;
    assert_eq!(status, 200, "Basic alone revokes");
    assert!(!introspect(&stack, &token, "127.0.0.1", &[]).await.active);
}

async fn ambiguous_attempts_never_count_as_failures(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let id = client.credential.client_id.as_str();
    let right = basic(id, &client.secret);
    let wrong_form = format!(
        "grant_type=client_credentials&{}",
        encode_form(&[("client_id", id), ("client_secret", "lks_wrong")])
    );
    // More than the ten failures a client may have in a window: refused
    // before any secret is checked, so none of them counts.
    for _ in 0..12 {
        let answer = send_raw(
            &stack,
            reqwest::Method::POST,
            "/oauth2/token",
            &[&right],
            &wrong_form,
        )
        .await;
        assert_invalid_request("Basic and a wrong form secret", &answer, "not both");
    }
    let (status, body) = send_raw(
        &stack,
        reqwest::Method::POST,
        "/oauth2/token",
        &[&right],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(status, 200, "the right secret alone still works: {body}");
}

/// `message` with each of `values` as its own `authorization` metadata.
fn with_authorization<T>(message: T, values: &[&str]) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for value in values {
        request
            .metadata_mut()
            .append("authorization", value.parse().unwrap());
    }
    request
}

async fn ambiguous_client_authentication_is_refused_over_grpc(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let issue_request = || token_pb::IssueTokenRequest {
        client_id: client.credential.client_id.clone(),
        client_secret: client.secret.clone(),
        scopes: vec![],
    };
    let client_basic = basic(&client.credential.client_id, &client.secret);

    // IssueToken: the fields alone work; metadata beside them, or instead
    // of them, is refused.
    let mut tokens = stack.issuer.token_client();
    let token = tokens
        .issue_token(issue_request())
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let refused = assert_code(
        tokens
            .issue_token(with_authorization(issue_request(), &[&client_basic]))
            .await,
        tonic::Code::InvalidArgument,
    );
    assert!(
        refused
            .message()
            .contains("not authorization metadata as well"),
        "{refused:?}"
    );
    let refused = assert_code(
        tokens
            .issue_token(with_authorization(
                token_pb::IssueTokenRequest::default(),
                &[&client_basic],
            ))
            .await,
        tonic::Code::InvalidArgument,
    );
    assert!(
        refused.message().starts_with("authorization:"),
        "{refused:?}"
    );
    assert_code(
        tokens
            .revoke_token(with_authorization(
                token_pb::RevokeTokenRequest {
                    token: token.clone(),
                    client_id: client.credential.client_id.clone(),
                    client_secret: client.secret.clone(),
                },
                &[&client_basic],
            ))
            .await,
        tonic::Code::InvalidArgument,
    );

    // Introspect: one authorization value works, two are refused (the first
    // used to win).
    let admin = stack.admin.basic_header();
    let introspect_request = || token_pb::IntrospectRequest {
        token: token.clone(),
        client_ip: "127.0.0.1".into(),
        required_scopes: vec![],
    };
    let mut gateway = stack.issuer.introspection_client();
    let answer = gateway
        .introspect(with_authorization(introspect_request(), &[&admin]))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active, "not revoked by the refused RevokeToken");
    for pair in [
        [admin.as_str(), admin.as_str()],
        [admin.as_str(), "Basic YTpi"],
    ] {
        let refused = assert_code(
            gateway
                .introspect(with_authorization(introspect_request(), &pair))
                .await,
            tonic::Code::InvalidArgument,
        );
        assert!(
            refused.message().starts_with("authorization:"),
            "{refused:?}"
        );
    }
}

on_both_stacks!(
    an_oauth_library_gets_a_token_from_the_advertised_endpoint,
    introspection_over_http_follows_rfc_7662,
    a_real_second_source_address_is_bound_by_the_allowlist,
    malformed_requests_get_precise_oauth_errors,
    ambiguous_client_authentication_is_refused_on_every_http_endpoint,
    ambiguous_attempts_never_count_as_failures,
    ambiguous_client_authentication_is_refused_over_grpc,
);
