//! Rule 7: with the token store down, introspection never answers active
//! (it fails), health says NOT_SERVING, and the issuer recovers by itself
//! when the store comes back. A Redis of the test's own is stopped and
//! started again.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{Backend, Stack, TokenBackend};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{credential, eventually, issue, post_form, project_with_client};

/// A `redis-server` of one test's own, on a fixed port so it can come back
/// (empty: nothing is kept on disk).
pub(crate) struct PrivateRedis {
    port: u16,
    process: Option<Child>,
}

impl PrivateRedis {
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            port,
            process: None,
        };
        redis.resume();
        redis
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn resume(&mut self) {
        let process = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed: run scripts/test, which installs it");
        self.process = Some(process);
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn health(stack: &Stack) -> ServingStatus {
    HealthClient::new(stack.issuer.channel())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| response.into_inner().status())
        .unwrap_or(ServingStatus::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_nothing_is_active_and_the_issuer_recovers() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let mut stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::Redis,
        |_| {},
        |issuer| {
            if let Some(store) = issuer.redis.as_mut() {
                store.url = url.clone();
                store.response_timeout_ms = 300;
            }
        },
    )
    .await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let request = || token_pb::IntrospectRequest {
        token: token.clone(),
        client_ip: "127.0.0.1".into(),
        required_scopes: vec![],
    };
    assert!(
        stack
            .introspection_client()
            .introspect(request())
            .await
            .unwrap()
            .into_inner()
            .active
    );

    redis.stop();
    // Fail closed: an error, never a guessed "inactive". The exact cache
    // may answer what Redis held last until its tracking connection sees
    // the close (at once for a killed Redis, within the heartbeat for a
    // silent one); no write can have happened since, so that answer is
    // still exact. After that, nothing is active.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let refused = loop {
        match stack.introspection_client().introspect(request()).await {
            Err(status) => break status,
            Ok(answer) => {
                assert!(answer.get_ref().active, "a guessed answer: {answer:?}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "still served 2 s after Redis stopped"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some(stack.admin.basic()),
        &[("token", &token), ("client_ip", "127.0.0.1")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    // The gateways fail closed too: 503, never an allow, never a 401 that
    // would make a client drop a good token (whether the gateway's own
    // verification or the token's lookup is what cannot be made).
    let bearer = format!("Bearer {token}");
    let envoy = crate::envoy::check(
        &stack,
        crate::envoy::envoy_check("127.0.0.1", &[("authorization", &bearer)], None),
    )
    .await;
    assert_eq!(
        envoy.status.as_ref().map(|status| status.code),
        Some(14),
        "{envoy:?}"
    );
    let auth_check = reqwest::Client::new()
        .get(format!("{}/auth/check", stack.issuer.http_url()))
        .header("authorization", &bearer)
        .header("latchkey-gateway-authorization", stack.admin.basic_header())
        .send()
        .await
        .unwrap();
    assert_eq!(auth_check.status().as_u16(), 503);
    assert_eq!(
        issue(&stack, &client, &[]).await.unwrap_err().code(),
        Code::Unavailable
    );
    let not_serving = eventually(Duration::from_secs(5), || async {
        health(&stack).await == ServingStatus::NotServing
    })
    .await;
    assert!(not_serving, "health follows the store");

    // Back again (empty: this Redis keeps nothing on disk): the issuer
    // reconnects by itself.
    redis.resume();
    let serving = eventually(Duration::from_secs(10), || async {
        health(&stack).await == ServingStatus::Serving
    })
    .await;
    assert!(serving, "health recovers with the store");
    stack.renew_admin_token().await;
    let fresh = issue(&stack, &client, &[]).await.unwrap().access_token;
    let answer = crate::support::introspect(&stack, &fresh, "127.0.0.1", &[]).await;
    assert!(answer.active);
    // The token issued before the outage died with the store's contents.
    assert!(
        !stack
            .introspection_client()
            .introspect(request())
            .await
            .unwrap()
            .into_inner()
            .active
    );
}
