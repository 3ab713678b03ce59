//! The tonic `BearerLayer`: a callee refusing a revoked token gets the call
//! once more with a new token; a callee that keeps refusing gets it twice,
//! never more.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use latchkey_client::BearerLayer;
use latchkey_client::server::{AccessRules, LatchkeyAuthLayer};
use latchkey_tests::{Stack, StackBackend};
use tokio::net::TcpListener;
use tonic::service::InterceptorLayer;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{builder, credential, gateway, issued, revoke, shop};

/// The `authorization` of every call that reached the callee, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// A health service on 127.0.0.1 behind the service layer (`Check` needs
/// `inventory.read`), and in front of it a recorder of each call's bearer
/// token that refuses every call itself when `refuse_all`. The server
/// task and a lazy channel to it.
async fn callee(
    stack: &Stack,
    seen: &Seen,
    refuse_all: bool,
) -> (
    tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    Channel,
) {
    let seen = Arc::clone(seen);
    let recorder = InterceptorLayer::new(move |request: tonic::Request<()>| {
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        seen.lock().unwrap().push(authorization);
        if refuse_all {
            return Err(Status::unauthenticated("this callee refuses every token"));
        }
        Ok(request)
    });
    let rules = AccessRules::new().route("/grpc.health.v1.Health/Check", ["inventory.read"]);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(recorder)
            .layer(LatchkeyAuthLayer::new(gateway(stack).await, rules))
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_lazy();
    (server, channel)
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_replaced_and_the_call_resent_once() {
    let stack = shop(StackBackend::Embedded, None).await;
    let seen = Seen::default();
    let (server, channel) = callee(&stack, &seen, false).await;
    let reader = credential(&stack, "reader", &["inventory.read"], &[]).await;
    let source = builder(&reader).build_grpc(stack.issuer.channel());
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(BearerLayer::new(source.clone()))
            .service(channel),
    );
    assert_eq!(client.check(check()).await.unwrap().into_inner().status, 1);

    // The cached token is revoked behind the source's back: the callee
    // refuses it, and the same call goes again with a new token.
    let revoked = source.token().await.unwrap();
    revoke(&stack, &reader, revoked.expose()).await;
    let before = issued(&stack).await;
    let answer = client.check(check()).await.unwrap().into_inner();
    assert_eq!(answer.status, 1, "SERVING");
    assert_eq!(issued(&stack).await - before, 1.0, "one new token");
    let renewed = source.token().await.unwrap();
    assert_ne!(renewed, revoked);
    let first = format!("Bearer {}", revoked.expose());
    let second = format!("Bearer {}", renewed.expose());
    assert_eq!(
        *seen.lock().unwrap(),
        vec![first.clone(), first, second],
        "the callee saw the revoked token twice (first call, refused call) and then the new one"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_keeps_refusing_gets_each_call_twice_at_most() {
    let stack = shop(StackBackend::Embedded, None).await;
    let seen = Seen::default();
    let (server, channel) = callee(&stack, &seen, true).await;
    let caller = credential(&stack, "caller", &["inventory.read"], &[]).await;
    let source = builder(&caller).build_grpc(stack.issuer.channel());
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(BearerLayer::new(source))
            .service(channel),
    );

    let before = issued(&stack).await;
    let refused = client.check(check()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(refused.message(), "this callee refuses every token");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "asked twice: {seen:?}");
        assert_ne!(seen[0], seen[1], "the second time with a new token");
    }
    assert_eq!(issued(&stack).await - before, 2.0);

    // The next call is again asked twice at most: nothing loops.
    client.check(check()).await.unwrap_err();
    assert_eq!(seen.lock().unwrap().len(), 4);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_limit_of_zero_keeps_the_old_behaviour() {
    let stack = shop(StackBackend::Embedded, None).await;
    let seen = Seen::default();
    let (server, channel) = callee(&stack, &seen, true).await;
    let caller = credential(&stack, "caller", &["inventory.read"], &[]).await;
    let source = builder(&caller).build_grpc(stack.issuer.channel());
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(BearerLayer::new(source.clone()).resend_limit(0))
            .service(channel),
    );

    let refused = client.check(check()).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(seen.lock().unwrap().len(), 1, "not resent");
    // The refused token is dropped all the same: the next call has a new one.
    client.check(check()).await.unwrap_err();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], seen[1]);
    drop(seen);
    drop(source);
    server.abort();
}
