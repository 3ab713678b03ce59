//! The standard gRPC services every Latchkey server exposes.

use tonic_health::server::HealthReporter;

/// Server reflection (v1 and v1alpha, as grpcurl versions differ) over every
/// Latchkey proto, so `grpcurl` works with no proto files at hand. `list`
/// names exactly `services` (those the listener serves) besides health and
/// reflection: an internal service is never advertised on a public listener.
pub fn reflection_service(
    services: &[&str],
) -> (
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
) {
    let builder = || {
        let mut builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(latchkey_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                latchkey_proto::ENVOY_AUTHORIZATION_DESCRIPTOR_SET,
            )
            .with_service_name(HEALTH_SERVICE)
            .with_service_name(REFLECTION_V1)
            .with_service_name(REFLECTION_V1ALPHA);
        for service in services {
            builder = builder.with_service_name(*service);
        }
        builder
    };
    let v1 = builder()
        .build_v1()
        .expect("the embedded descriptor set is valid");
    let v1alpha = builder()
        .build_v1alpha()
        .expect("the embedded descriptor set is valid");
    (v1, v1alpha)
}

/// The standard services' names.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// `grpc.health.v1.Health` and the reporter that sets its statuses. The
/// whole server ("") starts NOT_SERVING (tonic-health would start it
/// SERVING): the service's readiness check flips it once its store answers
/// and every named service is reported.
pub async fn health_service() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, server) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    (reporter, server)
}

/// Takes the service that was polled ready out of `service` for a call's
/// future, leaving a fresh clone in its place (tower's rule: the clone has
/// not been polled, the original has).
pub fn take_ready<S: Clone>(service: &mut S) -> S {
    let clone = service.clone();
    std::mem::replace(service, clone)
}
