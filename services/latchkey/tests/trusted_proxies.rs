//! `latchkey dev --trusted-proxy`: behind a proxy (the README's NGINX
//! recipe), the issuer judges a request by the address the proxy forwards,
//! and only when the request comes from a trusted proxy. The proxy here is
//! 127.0.0.2 (a loopback address of its own); 127.0.0.1 is anyone else.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;

use crate::common::{Running, free_ports};

const PROXY: &str = "127.0.0.2";
const STRANGER: &str = "127.0.0.1";
/// The client's own address, which only the proxy knows.
const CLIENT: &str = "203.0.113.7";

/// An HTTP client whose connections come from `source`.
fn from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A started `latchkey dev`.
struct Dev {
    /// The issuer's HTTP port.
    http: u16,
    /// The registry's gRPC port.
    registry: u16,
    /// The registry's HTTP port (JSON API and console).
    api: u16,
    admin_id: String,
    admin_secret: String,
    /// What it printed up to the admin's secret.
    printed: Vec<String>,
    running: Running,
}

/// Starts `latchkey dev` with `extra` arguments.
fn start(directory: &std::path::Path, extra: &[&str]) -> Dev {
    let [
        registry,
        issuer,
        http,
        metrics,
        registry_internal,
        issuer_internal,
        api,
        issuer_admin,
    ] = free_ports();
    let address = |port: u16| format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(directory)
        .args(["dev", "--registry-addr", &address(registry)])
        .args(["--issuer-addr", &address(issuer)])
        .args(["--http-addr", &address(http)])
        .args(["--metrics-addr", &address(metrics)])
        .args(["--issuer-admin-addr", &address(issuer_admin)])
        .args(["--registry-internal-addr", &address(registry_internal)])
        .args(["--issuer-internal-addr", &address(issuer_internal)])
        .args(["--api-addr", &address(api)])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    // Read on a thread of its own until the process ends, so the process
    // never writes to a closed pipe.
    let stdout = running.0.stdout.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = lines_sender.send(line);
        }
    });
    let (mut id, mut secret, mut printed) = (None, None, Vec::new());
    while secret.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the admin credentials are printed");
        if let Some(value) = line.trim().strip_prefix("export ADMIN_ID=") {
            id = Some(value.to_owned());
        }
        if let Some(value) = line.trim().strip_prefix("export ADMIN_SECRET=") {
            secret = Some(value.to_owned());
        }
        printed.push(line);
    }
    Dev {
        http,
        registry,
        api,
        admin_id: id.expect("the admin's client ID is printed"),
        admin_secret: secret.expect("the admin's secret is printed"),
        printed,
        running,
    }
}

async fn token_request(
    client: &reqwest::Client,
    http: u16,
    id: &str,
    secret: &str,
    forwarded: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = client
        .post(format!("http://127.0.0.1:{http}/oauth2/token"))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials");
    if let Some((name, value)) = forwarded {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

/// `/auth/check` as a gateway asks it: authenticated with `gateway`'s
/// client ID and secret (the admin's, which holds `tokens:introspect`).
async fn check(
    client: &reqwest::Client,
    http: u16,
    gateway: (&str, &str),
    token: &str,
    real_ip: &str,
) -> u16 {
    use base64::Engine;
    let (id, secret) = gateway;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    client
        .get(format!("http://127.0.0.1:{http}/auth/check"))
        .bearer_auth(token)
        .header("latchkey-gateway-authorization", format!("Basic {basic}"))
        .header("x-real-ip", real_ip)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_are_believed_from_a_trusted_proxy_only() {
    let directory = tempfile::tempdir().unwrap();
    let Dev {
        http,
        registry,
        admin_id,
        admin_secret,
        mut running,
        ..
    } = start(directory.path(), &["--trusted-proxy", PROXY]);

    let deadline = Instant::now() + Duration::from_secs(30);
    let stranger = from(STRANGER);
    let proxy = from(PROXY);
    let admin_token = loop {
        if let Ok(response) = tokio::time::timeout(
            Duration::from_secs(5),
            stranger
                .post(format!("http://127.0.0.1:{http}/oauth2/token"))
                .basic_auth(&admin_id, Some(&admin_secret))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("the token request hung"))
            && response.status().is_success()
        {
            let body: serde_json::Value = response.json().await.unwrap();
            break body["access_token"].as_str().unwrap().to_owned();
        }
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "latchkey dev exited"
        );
        assert!(Instant::now() < deadline, "no admin token after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {admin_token}").parse().unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{registry}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = CredentialRegistryClient::with_interceptor(
        channel,
        move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        },
    );
    admin
        .create_project(pb::CreateProjectRequest {
            project_id: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Bound to the client's network, which neither loopback address is in.
    let created = admin
        .create_credential(pb::CreateCredentialRequest {
            project_id: "demo".into(),
            owner: "me".into(),
            allowed_apis: vec!["demo.read".into()],
            allowed_ips: vec!["203.0.113.0/24".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let id = created.credential.unwrap().client_id;
    let secret = created.client_secret;

    // Through the trusted proxy, the forwarded address is the caller's.
    for header in [
        ("x-forwarded-for", CLIENT.to_owned()),
        ("forwarded", format!("for={CLIENT}")),
    ] {
        let response = token_request(&proxy, http, &id, &secret, Some((header.0, &header.1))).await;
        assert_eq!(response.status().as_u16(), 200, "{header:?}");
    }
    let response = token_request(
        &proxy,
        http,
        &id,
        &secret,
        Some(("x-forwarded-for", CLIENT)),
    )
    .await;
    let token: serde_json::Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    // The same headers from anyone else are not believed: the caller is
    // 127.0.0.1, outside the allowlist.
    let response = token_request(
        &stranger,
        http,
        &id,
        &secret,
        Some(("x-forwarded-for", CLIENT)),
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // And the proxy itself, forwarding nothing, is not the client.
    let response = token_request(&proxy, http, &id, &secret, None).await;
    assert_eq!(response.status().as_u16(), 401);

    // NGINX's auth_request (`X-Real-IP $remote_addr`) on /auth/check.
    let gateway = (admin_id.as_str(), admin_secret.as_str());
    assert_eq!(check(&proxy, http, gateway, &token, CLIENT).await, 200);
    assert_eq!(
        check(&proxy, http, gateway, &token, "198.51.100.1").await,
        403
    );
    assert_eq!(
        check(&stranger, http, gateway, &token, CLIENT).await,
        403,
        "X-Real-IP from an untrusted address is ignored"
    );
}

#[test]
fn a_malformed_trusted_proxy_is_refused_before_anything_starts() {
    let directory = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(directory.path())
        .args(["dev", "--trusted-proxy", "10.0.0.0/33"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--trusted-proxy"), "{stderr}");
    assert!(
        !directory.path().join("latchkey-data").exists(),
        "nothing was created"
    );
}

/// `--auth-proxy-*`: the registry's `[auth_proxy]` on the embedded stack.
/// The console's browser story behind it is `tests/console/auth_proxy.mjs`;
/// here, what `latchkey dev` prints and that the header counts from the
/// trusted address only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_proxy_is_turned_on_by_flags() {
    let directory = tempfile::tempdir().unwrap();
    let dev = start(
        directory.path(),
        &[
            "--auth-proxy-trusted",
            PROXY,
            "--auth-proxy-project",
            "acme",
            "--auth-proxy-header",
            "x-sso-user",
        ],
    );
    assert!(
        dev.printed
            .iter()
            .any(|line| line.split_whitespace().collect::<Vec<_>>().join(" ")
                == "console sign-in proxy x-sso-user from 127.0.0.2/32 signs in members of acme"),
        "{:#?}",
        dev.printed
    );
    let config = |client: reqwest::Client| {
        let url = format!("http://127.0.0.1:{}/console/config.json", dev.api);
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(response) = client.get(&url).header("x-sso-user", "alice").send().await {
                    assert_eq!(response.status(), 200);
                    return response.json::<serde_json::Value>().await.unwrap();
                }
                assert!(Instant::now() < deadline, "no console after 30 s");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let proxied = config(from(PROXY)).await;
    assert_eq!(
        proxied["signedInByProxy"],
        serde_json::json!({"user": "alice", "project": "acme"})
    );
    let stranger = config(from(STRANGER)).await;
    assert!(stranger.get("signedInByProxy").is_none(), "{stranger}");
    drop(dev.running);
}

#[test]
fn the_sign_in_proxy_flags_are_checked_before_anything_starts() {
    let refused = |extra: &[&str]| {
        let directory = tempfile::tempdir().unwrap();
        let [
            registry,
            issuer,
            http,
            metrics,
            registry_internal,
            issuer_internal,
            api,
        ] = free_ports();
        let address = |port: u16| format!("127.0.0.1:{port}");
        let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .current_dir(directory.path())
            .args(["dev", "--registry-addr", &address(registry)])
            .args(["--issuer-addr", &address(issuer)])
            .args(["--http-addr", &address(http)])
            .args(["--metrics-addr", &address(metrics)])
            .args(["--registry-internal-addr", &address(registry_internal)])
            .args(["--issuer-internal-addr", &address(issuer_internal)])
            .args(["--api-addr", &address(api)])
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(
            !directory.path().join("latchkey-data").exists(),
            "nothing was created for {extra:?}"
        );
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // Half a configuration is a usage error naming the missing flag.
    let (code, stderr) = refused(&["--auth-proxy-trusted", "127.0.0.1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--auth-proxy-project"), "{stderr}");
    let (code, stderr) = refused(&["--auth-proxy-project", "acme"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--auth-proxy-trusted"), "{stderr}");
    // A header that carries credentials of its own, or a project ID that
    // cannot be one, is refused by the registry's own check.
    let (code, stderr) = refused(&[
        "--auth-proxy-trusted",
        "127.0.0.1",
        "--auth-proxy-project",
        "acme",
        "--auth-proxy-header",
        "authorization",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("auth_proxy.user_header"), "{stderr}");
    let (code, stderr) = refused(&[
        "--auth-proxy-trusted",
        "127.0.0.1",
        "--auth-proxy-project",
        "Not A Project",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("auth_proxy.project"), "{stderr}");
}
