//! The floors' server: a bare tonic service implementing
//! `latchkey.token.v1.Introspection/Introspect` with a constant answer, and
//! a bare axum `POST /oauth2/introspect` and `POST /oauth2/token` with
//! constant JSON answers, so the client side of each floor is the client
//! side of the real scenario.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use latchkey_proto::token::v1 as pb;
use latchkey_proto::token::v1::introspection_server::{Introspection, IntrospectionServer};
use tonic::{Request, Response, Status};

/// The constant answer, shaped like an active introspection.
fn answer() -> pb::IntrospectResponse {
    pb::IntrospectResponse {
        active: true,
        reason: pb::InactiveReason::Unspecified as i32,
        client_id: "lkc_0000000000000000000000000000".to_owned(),
        credential_id: "01900000-0000-7000-8000-000000000000".to_owned(),
        project_id: "bench".to_owned(),
        owner: "bench".to_owned(),
        scopes: vec!["bench.read".to_owned()],
        issue_time: Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        }),
        expire_time: Some(prost_types::Timestamp {
            seconds: 1_800_003_600,
            nanos: 0,
        }),
    }
}

const HTTP_ANSWER: &str = r#"{"active":true,"scope":"bench.read","client_id":"lkc_0000000000000000000000000000","token_type":"Bearer","exp":1800003600,"iat":1800000000,"sub":"lkc_0000000000000000000000000000","project":"bench","owner":"bench","credential_id":"01900000-0000-7000-8000-000000000000"}"#;

#[derive(Debug)]
struct Echo(pb::IntrospectResponse);

#[tonic::async_trait]
impl Introspection for Echo {
    async fn introspect(
        &self,
        _request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        Ok(Response::new(self.0.clone()))
    }
}

const TOKEN_ANSWER: &str = r#"{"access_token":"lkt_0000000000000000000000000000000000000000000000000000000000000000000000","token_type":"Bearer","expires_in":3600,"scope":"bench.read"}"#;

async fn token_echo(_body: axum::body::Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], TOKEN_ANSWER)
}

async fn http_echo(_body: axum::body::Bytes) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], HTTP_ANSWER)
}

/// Serves both floors until the process is killed.
pub(crate) async fn serve(grpc: SocketAddr, http: SocketAddr) -> anyhow::Result<()> {
    let http_listener = tokio::net::TcpListener::bind(http).await?;
    let app = Router::new()
        .route("/oauth2/introspect", post(http_echo))
        .route("/oauth2/token", post(token_echo));
    let http_server = async move { axum::serve(http_listener, app).await };
    let grpc_server = tonic::transport::Server::builder()
        .add_service(IntrospectionServer::new(Echo(answer())))
        .serve(grpc);
    tokio::select! {
        result = http_server => result?,
        result = grpc_server => result?,
    }
    Ok(())
}
