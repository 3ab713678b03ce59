//! `latchkey dev` as a newcomer runs it: one command, both services, a
//! token issued over HTTP with the printed recipe.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;

use crate::common::{Running, free_ports};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_runs_both_services_and_issues_a_token() {
    let directory = tempfile::tempdir().unwrap();
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
    let child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .current_dir(directory.path())
        .args([
            "dev",
            "--registry-addr",
            &format!("127.0.0.1:{registry}"),
            "--issuer-addr",
            &format!("127.0.0.1:{issuer}"),
            "--http-addr",
            &format!("127.0.0.1:{http}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
            "--issuer-admin-addr",
            &format!("127.0.0.1:{issuer_admin}"),
            "--registry-internal-addr",
            &format!("127.0.0.1:{registry_internal}"),
            "--issuer-internal-addr",
            &format!("127.0.0.1:{issuer_internal}"),
            "--api-addr",
            &format!("127.0.0.1:{api}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    // The first start prints the platform admin's credentials, once.
    let stdout = running.0.stdout.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if lines_sender.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = String::new();
    let (mut admin_id, mut admin_secret) = (None, None);
    while admin_secret.is_none() {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the admin credentials are printed");
        if let Some(value) = line.trim().strip_prefix("export ADMIN_ID=") {
            admin_id = Some(value.to_owned());
        }
        if let Some(value) = line.trim().strip_prefix("export ADMIN_SECRET=") {
            admin_secret = Some(value.to_owned());
        }
        printed.push_str(&line);
        printed.push('\n');
    }
    let (admin_id, admin_secret) = (admin_id.unwrap(), admin_secret.unwrap());
    // The banner names both admin listeners (metrics and probes).
    assert!(
        printed.contains(&format!(
            "http://127.0.0.1:{metrics}, http://127.0.0.1:{issuer_admin} (/metrics, /livez, /readyz)"
        )),
        "the banner names the admin listeners:\n{printed}"
    );
    // ... and keeps them in the data directory, readable only by its user, as
    // the lines the README's walkthrough sources.
    let admin_env = directory.path().join("latchkey-data/admin.env");
    let kept = std::fs::read_to_string(&admin_env).unwrap();
    assert!(
        kept.contains(&format!(
            "\nexport ADMIN_ID={admin_id}\nexport ADMIN_SECRET={admin_secret}\n"
        )),
        "{kept}"
    );
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&admin_env).unwrap().permissions()
        ) & 0o777,
        0o600
    );

    // A management token for the admin, as the printed recipe does it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let http_client = reqwest::Client::new();
    let admin_token = loop {
        let response = http_client
            .post(format!("http://127.0.0.1:{http}/oauth2/token"))
            .basic_auth(&admin_id, Some(&admin_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await;
        if let Ok(response) = response
            && response.status().is_success()
        {
            let body: serde_json::Value = response.json().await.unwrap();
            break body["access_token"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no admin token after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {admin_token}").parse().unwrap();

    let mut admin = loop {
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "latchkey dev exited"
        );
        if let Ok(channel) =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{registry}"))
                .unwrap()
                .connect()
                .await
        {
            let bearer = bearer.clone();
            break CredentialRegistryClient::with_interceptor(
                channel,
                move |mut request: tonic::Request<()>| {
                    request
                        .metadata_mut()
                        .insert("authorization", bearer.clone());
                    Ok(request)
                },
            );
        }
        assert!(Instant::now() < deadline, "registry not up after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    admin
        .create_project(pb::CreateProjectRequest {
            project_id: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let created = admin
        .create_credential(pb::CreateCredentialRequest {
            project_id: "demo".into(),
            owner: "me".into(),
            allowed_apis: vec!["demo.read".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let credential = created.credential.unwrap();
    assert_eq!(
        credential.token_endpoint,
        format!("http://127.0.0.1:{http}/oauth2/token")
    );

    let token: serde_json::Value = loop {
        let response = http_client
            .post(&credential.token_endpoint)
            .basic_auth(&credential.client_id, Some(&created.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await;
        if let Ok(response) = response {
            assert_eq!(response.status().as_u16(), 200);
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "issuer not up after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(token["scope"], "demo.read");
    let introspection: serde_json::Value = http_client
        .post(format!("http://127.0.0.1:{http}/oauth2/introspect"))
        .basic_auth(&admin_id, Some(&admin_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}&client_ip=127.0.0.1",
            token["access_token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true);
    assert!(directory.path().join("latchkey-data/registry.db").exists());

    // The same API over HTTP/JSON on the printed address...
    let api_url = format!("http://127.0.0.1:{api}");
    assert!(printed.contains(&api_url), "{printed}");
    let projects: serde_json::Value = http_client
        .post(format!(
            "{api_url}/latchkey.registry.v1.CredentialRegistry/ListProjects"
        ))
        .bearer_auth(&admin_token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        projects["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|project| project["id"] == "demo"),
        "{projects}"
    );
    // ... whose pages may sign in at the token endpoint from the browser.
    let preflight = http_client
        .request(
            reqwest::Method::OPTIONS,
            format!("http://127.0.0.1:{http}/oauth2/token"),
        )
        .header("origin", &api_url)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok()),
        Some(api_url.as_str())
    );

    // SIGTERM stops both services and the process exits cleanly.
    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        printed.push_str(&line);
        printed.push('\n');
    }
    assert!(
        printed.contains("oauth2/token"),
        "the getting-started recipe is printed: {printed}"
    );
    assert!(
        printed.contains("authorization: Bearer"),
        "with the management token: {printed}"
    );
}
