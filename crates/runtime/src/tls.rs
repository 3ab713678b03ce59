//! Optional TLS on gRPC listeners, and mutual TLS between the services.
//!
//! With `client_ca_file` set, a listener asks every client for a
//! certificate but accepts clients without one (gateways and management
//! clients authenticate with tokens); the internal services
//! (`ClientAuthentication`, `UsageSink`, `AuditSink`, `TokenAdmin`) are
//! wrapped in [`RequireClientCertificate`], which refuses any call that did
//! not present a certificate the CA signed, with `UNAUTHENTICATED` and the
//! reason `CLIENT_CERTIFICATE_REQUIRED`.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use serde::Deserialize;
use tonic::body::Body;
use tonic::codegen::http::{Request as HttpRequest, Response as HttpResponse};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

use crate::config::ConfigError;

/// TLS on a listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// PEM certificate chain of the server.
    pub cert_file: PathBuf,
    /// PEM private key of the server.
    pub key_file: PathBuf,
    /// PEM CA whose client certificates are accepted (mutual TLS); the
    /// internal services then require one.
    pub client_ca_file: Option<PathBuf>,
}

/// TLS towards another Latchkey service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM CA that signed the server's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate chain (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// PEM client private key (mutual TLS).
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry, when it differs from
    /// the URL's host.
    pub domain_name: Option<String>,
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|error| ConfigError::new(format!("{key}: {}: {error}", path.display())))
}

impl ServerTls {
    /// Whether clients are asked for certificates.
    pub fn is_mutual(&self) -> bool {
        self.client_ca_file.is_some()
    }

    /// Reads the files into tonic's configuration.
    pub fn load(&self) -> Result<ServerTlsConfig, ConfigError> {
        let identity = Identity::from_pem(
            read("tls.cert_file", &self.cert_file)?,
            read("tls.key_file", &self.key_file)?,
        );
        let mut config = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &self.client_ca_file {
            config = config
                .client_ca_root(Certificate::from_pem(read("tls.client_ca_file", ca)?))
                .client_auth_optional(true);
        }
        Ok(config)
    }
}

impl ClientTls {
    /// Reads the files into tonic's configuration.
    pub fn load(&self, key: &str) -> Result<ClientTlsConfig, ConfigError> {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(
            &format!("{key}.ca_file"),
            &self.ca_file,
        )?));
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(private_key)) => {
                config = config.identity(Identity::from_pem(
                    read(&format!("{key}.cert_file"), cert)?,
                    read(&format!("{key}.key_file"), private_key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::new(format!(
                    "{key}: cert_file and key_file go together"
                )));
            }
        }
        if let Some(domain) = &self.domain_name {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}

/// The peer address of a request, over plain TCP or TLS.
pub fn peer_address<B>(request: &HttpRequest<B>) -> Option<std::net::SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
}

/// An internal service that only answers clients with a verified
/// certificate (when `required`).
#[derive(Debug, Clone)]
pub struct RequireClientCertificate<S> {
    inner: S,
    required: bool,
}

impl<S> RequireClientCertificate<S> {
    /// Wraps `inner`; `required` is whether the listener does mutual TLS.
    pub fn new(inner: S, required: bool) -> Self {
        Self { inner, required }
    }
}

impl<S: NamedService> NamedService for RequireClientCertificate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<HttpRequest<Body>> for RequireClientCertificate<S>
where
    S: Service<HttpRequest<Body>, Response = HttpResponse<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: HttpRequest<Body>) -> Self::Future {
        let presented = request
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(TlsConnectInfo::peer_certs)
            .is_some_and(|certificates| !certificates.is_empty());
        if self.required && !presented {
            tracing::warn!("internal call without a client certificate refused");
            // The reason tells a caller that its own configuration is
            // wrong, not the client it asked about (a wrong secret).
            let status = crate::status::status_with_reason(
                tonic::Code::Unauthenticated,
                "this internal service requires a client certificate",
                crate::status::reason::CLIENT_CERTIFICATE_REQUIRED,
                [],
            );
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let mut inner = crate::grpc::take_ready(&mut self.inner);
        Box::pin(async move { inner.call(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner service that answers OK: reached only if the guard lets
    /// the call through.
    #[derive(Clone)]
    struct Answers;

    impl Service<HttpRequest<Body>> for Answers {
        type Response = HttpResponse<Body>;
        type Error = Infallible;
        type Future = BoxFuture<Self::Response, Self::Error>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: HttpRequest<Body>) -> Self::Future {
            Box::pin(async { Ok(HttpResponse::new(Body::empty())) })
        }
    }

    fn call(required: bool) -> HttpResponse<Body> {
        let mut guard = RequireClientCertificate::new(Answers, required);
        let request = HttpRequest::new(Body::empty());
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(guard.call(request))
            .unwrap()
    }

    #[test]
    fn a_call_without_a_certificate_is_refused_with_its_own_reason() {
        let response = call(true);
        let status = tonic::Status::from_header_map(response.headers()).expect("a status");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let (reason, _) = crate::status::status_reason(&status).expect("a reason");
        assert_eq!(reason, crate::status::reason::CLIENT_CERTIFICATE_REQUIRED);

        let passed = call(false);
        assert!(tonic::Status::from_header_map(passed.headers()).is_none());
    }
}
