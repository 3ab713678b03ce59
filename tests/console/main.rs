//! The console in a real browser: each seed platform's story
//! (`tests/console/<story>.mjs`) walked through with `playwright-core`
//! driving Debian's `chromium` headless, against the real `latchkey dev`
//! binary on ephemeral ports, signed in as the admin it prints.
//!
//! Needs `node`, `tests/console/node_modules` (`npm ci` there) and
//! `/usr/bin/chromium` (or `LATCHKEY_CHROMIUM`); `scripts/test` installs
//! all three. Missing, the test fails and says so; it never skips.
//! Screenshots of every page go to `<target>/tmp/console-screenshots/`.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_tests::binaries::{Running, binary, free_ports};

/// The embedded stack on free ports, its console's URL and its admin.
struct Dev {
    _process: Running,
    log: PathBuf,
    console_url: String,
    admin_id: String,
    admin_secret: String,
    _directory: tempfile::TempDir,
}

impl Dev {
    /// `latchkey dev` with `extra` arguments.
    async fn start(extra: &[&str]) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let [
            registry,
            issuer,
            registry_internal,
            issuer_internal,
            http,
            metrics,
            registry_http,
            issuer_admin,
        ] = free_ports::<8>();
        let address = |port: u16| format!("127.0.0.1:{port}");
        let log = directory.path().join("latchkey.log");
        let stdout = directory.path().join("latchkey.out");
        let child = Command::new(binary("latchkey"))
            .current_dir(directory.path())
            .env_remove("RUST_LOG")
            .args(["dev", "--data-dir", "latchkey-data"])
            .args(["--registry-addr", &address(registry)])
            .args(["--issuer-addr", &address(issuer)])
            .args(["--registry-internal-addr", &address(registry_internal)])
            .args(["--issuer-internal-addr", &address(issuer_internal)])
            .args(["--http-addr", &address(http)])
            .args(["--metrics-addr", &address(metrics)])
            .args(["--issuer-admin-addr", &address(issuer_admin)])
            .args(["--api-addr", &address(registry_http)])
            .args(extra)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start latchkey dev");
        let mut process = Running(child);
        let console_url = format!("http://127.0.0.1:{registry_http}");
        wait_for_console(&console_url, &mut process.0, &log).await;
        let printed = wait_for_output(&stdout, "console (browser)", &mut process.0, &log);
        // What `latchkey dev` prints is what a user signs in with.
        assert!(
            printed.contains(&format!("{console_url}/")),
            "latchkey dev does not print the console's URL:\n{printed}"
        );
        let exports = std::fs::read_to_string(directory.path().join("latchkey-data/admin.env"))
            .expect("latchkey dev keeps the admin in latchkey-data/admin.env");
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("no {name} in admin.env"))
                .to_owned()
        };
        let (admin_id, admin_secret) = (value("ADMIN_ID"), value("ADMIN_SECRET"));
        assert!(
            printed.contains(&admin_id),
            "latchkey dev does not print the admin's client ID:\n{printed}"
        );
        Self {
            _process: process,
            log,
            console_url,
            admin_id,
            admin_secret,
            _directory: directory,
        }
    }
}

/// Polls `GET /` until the console answers; panics with the log when the
/// process exits first or after 30 s.
async fn wait_for_console(url: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    loop {
        if child.try_wait().ok().flatten().is_some() {
            panic!(
                "latchkey dev exited during start-up:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(response) = client.get(format!("{url}/")).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the console did not answer within 30 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What `latchkey dev` printed, once it holds `marker`.
fn wait_for_output(path: &Path, marker: &str, child: &mut Child, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let printed = std::fs::read_to_string(path).unwrap_or_default();
        if printed.contains(marker) {
            return printed;
        }
        assert!(
            child.try_wait().ok().flatten().is_none() && Instant::now() < deadline,
            "latchkey dev printed no {marker:?}:\n{printed}\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stories_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// One story at a time: each runs a whole Latchkey and a chromium, and
/// several at once on a small machine only race their own timeouts.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `node <story>.mjs <console URL>` and fails with its output.
async fn story(name: &str) {
    story_on(name, &[]).await;
}

/// [`story`] against a `latchkey dev` started with `extra` arguments.
async fn story_on(name: &str, extra: &[&str]) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let directory = stories_directory();
    assert!(
        directory.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in {} (scripts/test does)",
        directory.display()
    );
    let dev = Dev::start(extra).await;
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let screenshots = screenshots.join(name);
    let node = std::env::var("LATCHKEY_TEST_NODE").unwrap_or_else(|_| "node".to_owned());
    let script = directory.join(format!("{name}.mjs"));
    let output = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg(script)
            .arg(&dev.console_url)
            .current_dir(stories_directory())
            .env("LATCHKEY_ADMIN_ID", &dev.admin_id)
            .env("LATCHKEY_ADMIN_SECRET", &dev.admin_secret)
            .env("LATCHKEY_SCREENSHOTS", &screenshots)
            .stdin(Stdio::null())
            .output()
            .map(|output| (output, dev))
    })
    .await
    .unwrap();
    let (output, dev) = output.expect("run node (install Node.js; scripts/test needs it too)");
    assert!(
        output.status.success(),
        "story {name} failed:\n{}\n{}\n--- latchkey dev log ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&dev.log).unwrap_or_default()
    );
}

#[tokio::test]
async fn timescale_create_secret_once_rename_delete_by_name() {
    story("timescale").await;
}

#[tokio::test]
async fn celerdata_descriptions_order_and_a_member_sees_only_their_keys() {
    story("celerdata").await;
}

#[tokio::test]
async fn tiber_two_per_user_quota_message_and_regenerate() {
    story("tiber").await;
}

#[tokio::test]
async fn cloudops_last_use_endpoint_errors_and_deleted_key_refused() {
    story("cloudops").await;
}

#[tokio::test]
async fn operations_allowed_apis_and_ips_disable_enable_audit_usage() {
    story("operations").await;
}

/// Behind a sign-in proxy (`--auth-proxy-*`, here trusting this machine's
/// 127.0.0.1): the member the header names opens the console signed in;
/// a browser without the header gets the sign-in form.
#[tokio::test]
async fn auth_proxy_member_signed_in_without_a_secret_sees_only_their_keys() {
    story_on(
        "auth_proxy",
        &[
            "--auth-proxy-trusted",
            "127.0.0.1",
            "--auth-proxy-project",
            "acme",
        ],
    )
    .await;
}

/// The console and the JSON API on one listener: the page with its own
/// strict policy, the API's answers and unknown paths with the API's.
#[tokio::test]
async fn the_console_and_the_api_share_the_listener_each_with_its_headers() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dev = Dev::start(&[]).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/", dev.console_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        policy.starts_with("default-src 'self'; script-src 'self'; style-src 'self';")
            && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let unknown = client
        .get(format!("{}/nothing/here", dev.console_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
    let call = client
        .post(format!(
            "{}/latchkey.registry.v1.CredentialRegistry/ListProjects",
            dev.console_url
        ))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 401, "no token, no answer");
    let policy = call.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
}
