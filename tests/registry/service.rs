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
    let mut health = HealthClient::new(registry.channel());
    for service in [
        "",
        "latchkey.registry.v1.CredentialRegistry",
        "latchkey.registry.v1.ClientAuthentication",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
}

async fn reflection_lists_the_services_and_describes_them(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut reflection = ServerReflectionClient::new(registry.channel());
    let requests = tokio_stream::iter([
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "latchkey.registry.v1.CredentialRegistry".into(),
            )),
        },
    ]);
    let mut answers = reflection
        .server_reflection_info(requests)
        .await
        .unwrap()
        .into_inner();

    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "latchkey.registry.v1.CredentialRegistry",
        "latchkey.registry.v1.ClientAuthentication",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

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
    reflection_lists_the_services_and_describes_them,
    shutdown_drains_and_stops_serving,
);
