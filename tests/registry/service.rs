//! Service hygiene: health, reflection (so grpcurl works without protos),
//! graceful shutdown.

use latchkey_tests::{Backend, Stack};
use tokio_stream::StreamExt;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn health_reports_serving_for_each_service(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    // Health needs no signature on the internal listener: probes have no key.
    for (channel, services) in [
        (
            registry.channel(),
            &["", "latchkey.registry.v1.CredentialRegistry"][..],
        ),
        (
            registry.unsigned_internal_channel(),
            &[
                "",
                "latchkey.registry.v1.ClientAuthentication",
                "latchkey.registry.v1.UsageSink",
                "latchkey.registry.v1.AuditSink",
            ][..],
        ),
    ] {
        let mut health = HealthClient::new(channel);
        for service in services {
            let status = health
                .check(HealthCheckRequest {
                    service: (*service).into(),
                })
                .await
                .unwrap()
                .into_inner()
                .status();
            assert_eq!(status, ServingStatus::Serving, "{service:?}");
        }
    }
}

/// The names `list` answers on `channel`, sorted.
async fn listed_services(channel: tonic::transport::Channel) -> Vec<String> {
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

/// What every listener lists besides its own services.
const STANDARD: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names
        .iter()
        .chain(&STANDARD)
        .map(|name| (*name).to_owned())
        .collect();
    names.sort();
    names
}

async fn each_listener_lists_exactly_what_it_serves(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    assert_eq!(
        listed_services(registry.channel()).await,
        sorted(&["latchkey.registry.v1.CredentialRegistry"]),
        "the public listener advertises no internal service"
    );
    assert_eq!(
        listed_services(registry.unsigned_internal_channel()).await,
        sorted(&[
            "latchkey.registry.v1.AuditSink",
            "latchkey.registry.v1.ClientAuthentication",
            "latchkey.registry.v1.UsageSink",
        ]),
    );
    let issuer = &stack.issuer;
    assert_eq!(
        listed_services(issuer.channel()).await,
        sorted(&[
            "envoy.service.auth.v3.Authorization",
            "latchkey.token.v1.Introspection",
            "latchkey.token.v1.TokenService",
        ]),
    );
    assert_eq!(
        listed_services(issuer.unsigned_internal_channel()).await,
        sorted(&["latchkey.token.v1.TokenAdmin"]),
    );
}

async fn reflection_describes_the_services(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut reflection = ServerReflectionClient::new(stack.registry.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "latchkey.registry.v1.CredentialRegistry".into(),
        )),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected file descriptors");
    };
    assert!(!files.file_descriptor_proto.is_empty());
}

async fn shutdown_drains_and_stops_serving(backend: Backend) {
    let mut stack = Stack::for_registry(backend).await;
    let registry = &mut stack.registry;
    let address = registry.address();
    registry.stop().await.expect("clean shutdown");
    let connect = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await;
    assert!(connect.is_err(), "the port is closed after shutdown");
}

on_both_backends!(
    health_reports_serving_for_each_service,
    each_listener_lists_exactly_what_it_serves,
    reflection_describes_the_services,
    shutdown_drains_and_stops_serving,
);
