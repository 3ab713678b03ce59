//! OpenTelemetry across both services, black-box: the real
//! `credential-registry` and `token-issuer` binaries export to an in-process
//! OTLP/gRPC receiver, and one `IssueToken` call yields one trace with spans
//! from both, carrying the gRPC semantic-convention attributes and never a
//! secret or a token.
//!
//! The binaries are taken from the target directory this test was built in
//! (see `latchkey_tests::binaries`).

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use latchkey_tests::binaries::{Running, bootstrap, command, free_ports, wait_until_serving};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use tonic::transport::{Channel, Endpoint};

const ISSUE_TOKEN: &str = "latchkey.token.v1.TokenService/IssueToken";
const AUTHENTICATE: &str = "latchkey.registry.v1.ClientAuthentication/Authenticate";

/// An OTLP/gRPC trace receiver keeping every export it is sent.
#[derive(Debug, Clone, Default)]
struct Receiver {
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.exports.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A received span with the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    span: Span,
}

impl Receiver {
    fn spans(&self) -> Vec<Received> {
        let exports = self.exports.lock().unwrap();
        let mut spans = Vec::new();
        for export in exports.iter() {
            for resource_spans in &export.resource_spans {
                let service = resource_spans
                    .resource
                    .as_ref()
                    .and_then(|resource| attribute(&resource.attributes, "service.name"))
                    .map(text)
                    .unwrap_or_default();
                for scope_spans in &resource_spans.scope_spans {
                    for span in &scope_spans.spans {
                        spans.push(Received {
                            service: service.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        spans
    }

    /// Every string the exporters sent: names, attribute keys and values
    /// (resource, scope, span, event, link), status messages.
    fn every_string(&self) -> Vec<String> {
        let exports = self.exports.lock().unwrap();
        let mut strings = Vec::new();
        let mut add = |attributes: &[KeyValue]| {
            for pair in attributes {
                strings.push(pair.key.clone());
                if let Some(value) = &pair.value {
                    strings.push(text(value));
                }
            }
        };
        for export in exports.iter() {
            for resource_spans in &export.resource_spans {
                if let Some(resource) = &resource_spans.resource {
                    add(&resource.attributes);
                }
                for scope_spans in &resource_spans.scope_spans {
                    if let Some(scope) = &scope_spans.scope {
                        add(&scope.attributes);
                    }
                    for span in &scope_spans.spans {
                        add(&span.attributes);
                        for event in &span.events {
                            add(&event.attributes);
                        }
                        for link in &span.links {
                            add(&link.attributes);
                        }
                    }
                }
            }
        }
        for export in exports.iter() {
            for resource_spans in &export.resource_spans {
                for scope_spans in &resource_spans.scope_spans {
                    for span in &scope_spans.spans {
                        strings.push(span.name.clone());
                        strings.push(span.trace_state.clone());
                        strings.extend(span.events.iter().map(|event| event.name.clone()));
                        strings.extend(span.status.iter().map(|status| status.message.clone()));
                    }
                }
            }
        }
        strings
    }
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|pair| pair.key == key)
        .and_then(|pair| pair.value.as_ref())
}

/// A value as text, whatever its type.
fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(Value::StringValue(value)) => value.clone(),
        Some(Value::BoolValue(value)) => value.to_string(),
        Some(Value::IntValue(value)) => value.to_string(),
        Some(Value::DoubleValue(value)) => value.to_string(),
        Some(Value::BytesValue(value)) => String::from_utf8_lossy(value).into_owned(),
        Some(Value::ArrayValue(array)) => {
            array.values.iter().map(text).collect::<Vec<_>>().join(",")
        }
        Some(Value::KvlistValue(list)) => list
            .values
            .iter()
            .map(|pair| {
                format!(
                    "{}={}",
                    pair.key,
                    pair.value.as_ref().map(text).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        // Values of other kinds (none today) are not text.
        _ => String::new(),
    }
}

fn string_attribute(span: &Span, key: &str) -> Option<String> {
    match attribute(&span.attributes, key).and_then(|value| value.value.as_ref()) {
        Some(Value::StringValue(value)) => Some(value.clone()),
        _ => None,
    }
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    match attribute(&span.attributes, key).and_then(|value| value.value.as_ref()) {
        Some(Value::IntValue(value)) => Some(*value),
        _ => None,
    }
}

fn status_code(span: &Span) -> StatusCode {
    span.status
        .as_ref()
        .map_or(StatusCode::Unset, |status| status.code())
}

/// Asserts the RPC semantic-convention attributes of `span`.
fn assert_rpc_span(span: &Span, kind: SpanKind, full_method: &str, grpc_code: i64) {
    let (service, method) = full_method.split_once('/').unwrap();
    assert_eq!(span.name, full_method);
    assert_eq!(span.kind(), kind, "kind of {full_method}");
    assert_eq!(
        string_attribute(span, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        string_attribute(span, "rpc.service").as_deref(),
        Some(service)
    );
    assert_eq!(
        string_attribute(span, "rpc.method").as_deref(),
        Some(method)
    );
    assert_eq!(
        int_attribute(span, "rpc.grpc.status_code"),
        Some(grpc_code),
        "status code of {full_method} ({kind:?})"
    );
    assert!(
        string_attribute(span, "server.address").is_some(),
        "server.address of {full_method} ({kind:?})"
    );
    assert!(
        int_attribute(span, "server.port").is_some(),
        "server.port of {full_method} ({kind:?})"
    );
    if kind == SpanKind::Server {
        assert_eq!(
            string_attribute(span, "network.peer.address").as_deref(),
            Some("127.0.0.1")
        );
    }
}

/// Exports to the receiver at `port` as `service`, in batches sent every
/// 100 ms.
fn exporting_to(command: &mut Command, port: u16, service: &str) {
    command
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
}

async fn channel(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// An `IssueToken` request with `traceparent` set to `traceparent`.
fn issue_request(
    client_id: &str,
    client_secret: &str,
    traceparent: &str,
) -> tonic::Request<token_pb::IssueTokenRequest> {
    let mut request = tonic::Request::new(token_pb::IssueTokenRequest {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
        scopes: Vec::new(),
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
}

/// Polls until `found` returns something from the spans received so far.
async fn wait_for<T>(
    receiver: &Receiver,
    what: &str,
    logs: &Path,
    found: impl Fn(&[Received]) -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = found(&receiver.spans()) {
            return value;
        }
        if Instant::now() > deadline {
            let names: Vec<_> = receiver
                .spans()
                .iter()
                .map(|received| format!("{} {}", received.service, received.span.name))
                .collect();
            panic!(
                "{what} not received after 20 s; received {names:#?}\nlogs:\n{}",
                std::fs::read_to_string(logs).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The spans of trace `trace_id`, by span ID.
fn trace(spans: &[Received], trace_id: &[u8]) -> HashMap<Vec<u8>, Received> {
    spans
        .iter()
        .filter(|received| received.span.trace_id == trace_id)
        .map(|received| (received.span.span_id.clone(), received.clone()))
        .collect()
}

/// Whether `span`'s chain of parents in `trace` reaches `ancestor`.
fn descends_from(trace: &HashMap<Vec<u8>, Received>, span: &Span, ancestor: &Span) -> bool {
    let mut parent = span.parent_span_id.clone();
    while !parent.is_empty() {
        if parent == ancestor.span_id {
            return true;
        }
        match trace.get(&parent) {
            Some(received) => parent = received.span.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

fn find<'a>(
    trace: &'a HashMap<Vec<u8>, Received>,
    service: &str,
    name: &str,
    kind: SpanKind,
) -> Option<&'a Span> {
    trace
        .values()
        .find(|received| {
            received.service == service
                && received.span.name == name
                && received.span.kind() == kind
        })
        .map(|received| &received.span)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_issue_token_call_is_one_trace_across_both_services() {
    // The receiver.
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = listener.local_addr().unwrap().port();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    // Both services, exporting to it.
    let directory = tempfile::tempdir().unwrap();
    let (registry_dir, issuer_dir) = (directory.path().join("r"), directory.path().join("i"));
    std::fs::create_dir_all(&registry_dir).unwrap();
    std::fs::create_dir_all(&issuer_dir).unwrap();
    let logs = directory.path().join("logs");
    let [
        registry_port,
        issuer_port,
        http_port,
        registry_internal_port,
        issuer_internal_port,
    ] = free_ports();
    // The two services' data directories differ: they share a configured
    // internal key, as separate processes must.
    let internal_key = latchkey_secrets::HashKey::generate().to_hex();
    let (admin_id, admin_secret) = bootstrap(&registry_dir, "ops", |_| {});

    let mut registry = command("credential-registry", &registry_dir);
    registry
        .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{registry_port}"))
        .env(
            "LATCHKEY_INTERNAL_LISTEN_ADDR",
            format!("127.0.0.1:{registry_internal_port}"),
        )
        .env("LATCHKEY_INTERNAL_KEY", &internal_key)
        .env("LATCHKEY_METRICS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "LATCHKEY_TOKEN_ISSUER_URL",
            format!("http://127.0.0.1:{issuer_internal_port}"),
        );
    exporting_to(&mut registry, otlp, "credential-registry");
    let mut registry = Running(registry.spawn().unwrap());
    let mut issuer = command("token-issuer", &issuer_dir);
    issuer
        .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{issuer_port}"))
        .env(
            "LATCHKEY_INTERNAL_LISTEN_ADDR",
            format!("127.0.0.1:{issuer_internal_port}"),
        )
        .env("LATCHKEY_INTERNAL_KEY", &internal_key)
        .env(
            "LATCHKEY_HTTP_LISTEN_ADDR",
            format!("127.0.0.1:{http_port}"),
        )
        .env(
            "LATCHKEY_REGISTRY_URL",
            format!("http://127.0.0.1:{registry_internal_port}"),
        );
    exporting_to(&mut issuer, otlp, "token-issuer");
    let mut issuer = Running(issuer.spawn().unwrap());
    let registry_log = directory.path().join("r/credential-registry.log");
    let issuer_log = directory.path().join("i/token-issuer.log");
    wait_until_serving(registry_port, &mut registry.0, &registry_log).await;
    wait_until_serving(issuer_port, &mut issuer.0, &issuer_log).await;

    // A fresh credential, created with an admin token.
    let mut tokens = TokenServiceClient::new(channel(issuer_port).await);
    let admin_token = tokens
        .issue_token(token_pb::IssueTokenRequest {
            client_id: admin_id.clone(),
            client_secret: admin_secret.clone(),
            scopes: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    // One credential per traced issuance: the issuer reuses a recent
    // verification of a client's secret, and each trace below must reach
    // the registry.
    let create = |name: &'static str| {
        let admin_token = admin_token.clone();
        async move {
            let mut management = tonic::Request::new(registry_pb::CreateCredentialRequest {
                project_id: "ops".into(),
                owner: "tracing".into(),
                name: name.into(),
                allowed_apis: vec!["orders.read".into()],
                ..Default::default()
            });
            management.metadata_mut().insert(
                "authorization",
                format!("Bearer {admin_token}").parse().unwrap(),
            );
            let created = CredentialRegistryClient::new(channel(registry_port).await)
                .create_credential(management)
                .await
                .unwrap()
                .into_inner();
            (created.credential.unwrap().client_id, created.client_secret)
        }
    };
    let (client_id, client_secret) = create("traced").await;
    let (http_client_id, http_client_secret) = create("traced-http").await;
    let (fresh_client_id, fresh_client_secret) = create("traced-fresh").await;

    // The traced call, as a caller already in a trace would make it.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let trace_id = format!("{:032x}", nanos | (0x5a << 120));
    let caller_span = "00f067aa0ba902b7";
    let access_token = tokens
        .issue_token(issue_request(
            &client_id,
            &client_secret,
            &format!("00-{trace_id}-{caller_span}-01"),
        ))
        .await
        .unwrap()
        .into_inner()
        .access_token;
    // A refused call in another trace: a client error is not a server fault.
    let refused_trace = format!("{:032x}", nanos | (0xa5 << 120));
    let refused = tokens
        .issue_token(issue_request(
            &client_id,
            "lks_not-the-secret",
            &format!("00-{refused_trace}-{caller_span}-01"),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // Both logs in one file, shown when something is not received.
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(
        &logs,
        format!(
            "--- registry\n{}\n--- issuer\n{}",
            read(&registry_log),
            read(&issuer_log)
        ),
    )
    .unwrap();
    let trace_bytes: Vec<u8> = (0..16)
        .map(|index| u8::from_str_radix(&trace_id[index * 2..index * 2 + 2], 16).unwrap())
        .collect();
    let spans = wait_for(&receiver, "the IssueToken trace", &logs, |spans| {
        let trace = trace(spans, &trace_bytes);
        find(
            &trace,
            "credential-registry",
            AUTHENTICATE,
            SpanKind::Server,
        )?;
        find(&trace, "token-issuer", ISSUE_TOKEN, SpanKind::Server)?;
        find(&trace, "token-issuer", AUTHENTICATE, SpanKind::Client)?;
        Some(trace)
    })
    .await;
    let issue = find(&spans, "token-issuer", ISSUE_TOKEN, SpanKind::Server).unwrap();
    let call = find(&spans, "token-issuer", AUTHENTICATE, SpanKind::Client).unwrap();
    let authenticate = find(
        &spans,
        "credential-registry",
        AUTHENTICATE,
        SpanKind::Server,
    )
    .unwrap();
    // The issuer's span continues the caller's trace, under the caller's span.
    assert_eq!(hex(&issue.parent_span_id), caller_span);
    assert!(
        descends_from(&spans, call, issue),
        "client span under IssueToken"
    );
    assert_eq!(
        authenticate.parent_span_id, call.span_id,
        "registry span under the call"
    );
    assert!(descends_from(&spans, authenticate, issue));
    assert_rpc_span(issue, SpanKind::Server, ISSUE_TOKEN, 0);
    assert_rpc_span(call, SpanKind::Client, AUTHENTICATE, 0);
    assert_rpc_span(authenticate, SpanKind::Server, AUTHENTICATE, 0);
    for span in [issue, call, authenticate] {
        assert_ne!(status_code(span), StatusCode::Error, "{} failed", span.name);
    }

    // The refused call: UNAUTHENTICATED everywhere; an error for the
    // issuer's client span only.
    let refused_bytes: Vec<u8> = (0..16)
        .map(|index| u8::from_str_radix(&refused_trace[index * 2..index * 2 + 2], 16).unwrap())
        .collect();
    let refused = wait_for(&receiver, "the refused call's trace", &logs, |spans| {
        let trace = trace(spans, &refused_bytes);
        find(
            &trace,
            "credential-registry",
            AUTHENTICATE,
            SpanKind::Server,
        )?;
        find(&trace, "token-issuer", ISSUE_TOKEN, SpanKind::Server)?;
        Some(trace)
    })
    .await;
    let unauthenticated = tonic::Code::Unauthenticated as i64;
    let refused_issue = find(&refused, "token-issuer", ISSUE_TOKEN, SpanKind::Server).unwrap();
    let refused_call = find(&refused, "token-issuer", AUTHENTICATE, SpanKind::Client).unwrap();
    let refused_check = find(
        &refused,
        "credential-registry",
        AUTHENTICATE,
        SpanKind::Server,
    )
    .unwrap();
    assert_rpc_span(
        refused_issue,
        SpanKind::Server,
        ISSUE_TOKEN,
        unauthenticated,
    );
    assert_rpc_span(
        refused_call,
        SpanKind::Client,
        AUTHENTICATE,
        unauthenticated,
    );
    assert_rpc_span(
        refused_check,
        SpanKind::Server,
        AUTHENTICATE,
        unauthenticated,
    );
    assert_ne!(status_code(refused_issue), StatusCode::Error);
    assert_ne!(status_code(refused_check), StatusCode::Error);
    assert_eq!(status_code(refused_call), StatusCode::Error);

    // The OAuth HTTP endpoint continues a trace too.
    let http_trace = format!("{:032x}", nanos | (0x3c << 120));
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/oauth2/token"))
        .basic_auth(&http_client_id, Some(&http_client_secret))
        .header("traceparent", format!("00-{http_trace}-{caller_span}-01"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let http_token: serde_json::Value = response.json().await.unwrap();
    let http_token = http_token["access_token"].as_str().unwrap().to_owned();
    let http_bytes: Vec<u8> = (0..16)
        .map(|index| u8::from_str_radix(&http_trace[index * 2..index * 2 + 2], 16).unwrap())
        .collect();
    let http = wait_for(
        &receiver,
        "the HTTP token request's trace",
        &logs,
        |spans| {
            let trace = trace(spans, &http_bytes);
            find(
                &trace,
                "credential-registry",
                AUTHENTICATE,
                SpanKind::Server,
            )?;
            find(
                &trace,
                "token-issuer",
                "POST /oauth2/token",
                SpanKind::Server,
            )?;
            Some(trace)
        },
    )
    .await;
    let request = find(
        &http,
        "token-issuer",
        "POST /oauth2/token",
        SpanKind::Server,
    )
    .unwrap();
    assert_eq!(hex(&request.parent_span_id), caller_span);
    assert_eq!(
        string_attribute(request, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        string_attribute(request, "http.route").as_deref(),
        Some("/oauth2/token")
    );
    assert_eq!(
        int_attribute(request, "http.response.status_code"),
        Some(200)
    );
    let http_check = find(&http, "credential-registry", AUTHENTICATE, SpanKind::Server).unwrap();
    assert!(descends_from(&http, http_check, request));

    // A garbage traceparent neither fails the call nor joins a trace: the
    // issuer starts a new one, which still reaches the registry.
    let known: HashSet<Vec<u8>> = receiver
        .spans()
        .iter()
        .map(|received| received.span.trace_id.clone())
        .collect();
    tokens
        .issue_token(issue_request(
            &fresh_client_id,
            &fresh_client_secret,
            "00-not-a-trace-01",
        ))
        .await
        .unwrap();
    let fresh = wait_for(
        &receiver,
        "a new trace for the garbage traceparent",
        &logs,
        |spans| {
            let issue = spans.iter().find(|received| {
                received.service == "token-issuer"
                    && received.span.name == ISSUE_TOKEN
                    && !known.contains(&received.span.trace_id)
            })?;
            let trace = trace(spans, &issue.span.trace_id);
            find(
                &trace,
                "credential-registry",
                AUTHENTICATE,
                SpanKind::Server,
            )?;
            Some((issue.span.clone(), trace))
        },
    )
    .await;
    let (fresh_issue, fresh_trace) = fresh;
    assert!(fresh_issue.parent_span_id.is_empty(), "a root span");
    assert_eq!(fresh_issue.trace_id.len(), 16);
    assert!(fresh_issue.trace_id.iter().any(|byte| *byte != 0));
    let fresh_check = find(
        &fresh_trace,
        "credential-registry",
        AUTHENTICATE,
        SpanKind::Server,
    )
    .unwrap();
    assert!(descends_from(&fresh_trace, fresh_check, &fresh_issue));

    // Nothing exported carries a secret or a token.
    let strings = receiver.every_string();
    assert!(strings.len() > 50, "something to look at");
    for forbidden in [
        admin_secret.as_str(),
        client_secret.as_str(),
        http_client_secret.as_str(),
        fresh_client_secret.as_str(),
        admin_token.as_str(),
        access_token.as_str(),
        http_token.as_str(),
        "lks_",
        "lkt_",
    ] {
        if let Some(found) = strings.iter().find(|value| value.contains(forbidden)) {
            panic!("exported {found:?}, which carries a secret or token");
        }
    }
}
