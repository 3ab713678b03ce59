//! The `latchkey` CLI driven as a user drives it, against a real
//! `latchkey dev`: a profile saved by `login`, credentials created, listed,
//! renamed, rotated and deleted, and the exit codes of each refusal.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Running, free_ports};

/// A `latchkey dev` on free ports, and where the CLI keeps its profiles.
struct Stack {
    _running: Running,
    _directory: tempfile::TempDir,
    config_dir: PathBuf,
    registry_url: String,
    token_url: String,
    admin_id: String,
    admin_secret: String,
}

impl Stack {
    fn start() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let ports: [u16; 8] = free_ports();
        let flags = [
            "--registry-addr",
            "--issuer-addr",
            "--http-addr",
            "--metrics-addr",
            "--issuer-admin-addr",
            "--registry-internal-addr",
            "--issuer-internal-addr",
            "--api-addr",
        ];
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command.current_dir(directory.path()).arg("dev");
        for (flag, port) in flags.iter().zip(ports) {
            command.arg(flag).arg(format!("127.0.0.1:{port}"));
        }
        let log = std::fs::File::create(directory.path().join("dev.log")).unwrap();
        let child = command.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        let running = Running(child);
        let admin_env = directory.path().join("latchkey-data/admin.env");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !admin_env.exists() {
            assert!(Instant::now() < deadline, "no admin.env after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        let exports = std::fs::read_to_string(&admin_env).unwrap();
        let value = |key: &str| {
            exports
                .lines()
                .find_map(|line| line.strip_prefix(&format!("export {key}=")))
                .unwrap()
                .to_owned()
        };
        let stack = Self {
            config_dir: directory.path().join("config"),
            registry_url: format!("http://127.0.0.1:{}", ports[0]),
            token_url: format!("http://127.0.0.1:{}/oauth2/token", ports[2]),
            admin_id: value("ADMIN_ID"),
            admin_secret: value("ADMIN_SECRET"),
            _running: running,
            _directory: directory,
        };
        // Ready when the CLI itself gets an answer (exit 6 until then).
        loop {
            let output = stack.env_cli(&["projects", "list"], "");
            if output.status.success() {
                break;
            }
            assert_eq!(output.status.code(), Some(6), "{}", text(&output.stderr));
            assert!(Instant::now() < deadline, "not serving after 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        stack
    }

    /// `latchkey ARGS` with the profile file only (no `LATCHKEY_*` variables).
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        run(self.base_command(), args, stdin)
    }

    /// `latchkey ARGS` with the admin's profile from the environment.
    fn env_cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = self.base_command();
        command
            .env("LATCHKEY_REGISTRY_URL", &self.registry_url)
            .env("LATCHKEY_TOKEN_URL", &self.token_url)
            .env("LATCHKEY_CLIENT_ID", &self.admin_id)
            .env("LATCHKEY_CLIENT_SECRET", &self.admin_secret);
        run(command, args, stdin)
    }

    fn base_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        for (key, _) in std::env::vars() {
            if key.starts_with("LATCHKEY_") {
                command.env_remove(key);
            }
        }
        command.env("LATCHKEY_CONFIG_DIR", &self.config_dir);
        command
    }

    fn login(&self, profile: &str, secret: &str) -> Output {
        self.cli(
            &[
                "--profile",
                profile,
                "login",
                "--registry-url",
                &self.registry_url,
                "--token-url",
                &self.token_url,
                "--client-id",
                &self.admin_id,
                "--secret-stdin",
            ],
            &format!("{secret}\n"),
        )
    }
}

fn run(mut command: Command, args: &[&str], stdin: &str) -> Output {
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_credential_from_login_to_delete() {
    let stack = Stack::start();

    // A wrong secret: no profile is written, exit 4.
    let refused = stack.login("default", "lks_wrong");
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
    assert!(!stack.config_dir.join("config.toml").exists());

    // The secret comes on stdin, never in argv; the file is 0600.
    let login = stack.login("default", &stack.admin_secret);
    assert!(login.status.success(), "{}", text(&login.stderr));
    let config = stack.config_dir.join("config.toml");
    #[cfg(unix)]
    assert_eq!(mode(&config), 0o600);
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains("[profiles.default]") && saved.contains(&stack.admin_id));

    let created = stack.cli(&["projects", "create", "demo"], "");
    assert!(created.status.success(), "{}", text(&created.stderr));

    // Create as JSON: the secret is there, once.
    let reader = json(&stack.cli(
        &[
            "credentials",
            "create",
            "--project",
            "demo",
            "--owner",
            "alice",
            "--name",
            "reader",
            "--allowed-api",
            "demo.read",
            "--output",
            "json",
        ],
        "",
    ));
    let reader_id = reader["credential"]["id"].as_str().unwrap().to_owned();
    let reader_secret = reader["clientSecret"].as_str().unwrap().to_owned();
    assert_eq!(reader["credential"]["name"], "reader");
    assert_eq!(reader["credential"]["allowedApis"][0], "demo.read");
    assert_eq!(reader["credential"]["state"], "CREDENTIAL_STATE_ACTIVE");
    assert!(!reader_secret.is_empty());

    // Create for people: the secret with a warning on stderr.
    let writer = stack.cli(
        &[
            "credentials",
            "create",
            "--project",
            "demo",
            "--owner",
            "alice",
            "--name",
            "writer",
            "--description",
            "nightly import",
        ],
        "",
    );
    assert!(writer.status.success(), "{}", text(&writer.stderr));
    assert!(text(&writer.stdout).contains("Client secret:  lks_"));
    assert!(text(&writer.stderr).contains("shown only this once"));

    // The table: the consoles' columns, and no secret anywhere.
    let list = stack.cli(&["credentials", "list", "--project", "demo"], "");
    assert!(list.status.success(), "{}", text(&list.stderr));
    let table = text(&list.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("LAST USED"),
        "{table}"
    );
    assert_eq!(lines.len(), 3, "{table}");
    let reader_row = lines
        .iter()
        .find(|line| line.starts_with("reader"))
        .unwrap();
    for cell in ["-", "just now", "never", "active", reader_id.as_str()] {
        assert!(reader_row.contains(cell), "{cell:?} in {reader_row:?}");
    }
    assert!(table.contains("nightly import"));
    assert!(!table.contains(&reader_secret));
    let listed = json(&stack.cli(
        &["credentials", "list", "--project", "demo", "-o", "json"],
        "",
    ));
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&reader_secret));
    assert!(listed["credentials"][0].get("clientSecret").is_none());

    // Get, human and JSON.
    let got = stack.cli(&["credentials", "get", &reader_id], "");
    assert!(
        text(&got.stdout).contains("Allowed APIs:   demo.read"),
        "{}",
        text(&got.stdout)
    );
    let got = json(&stack.cli(&["credentials", "get", &reader_id, "-o", "json"], ""));
    assert_eq!(
        got["credential"]["clientId"],
        reader["credential"]["clientId"]
    );

    // A token for the new credential, and its introspection by the admin.
    let issued = stack.cli(
        &[
            "tokens",
            "issue",
            "--client-id",
            reader["credential"]["clientId"].as_str().unwrap(),
            "--secret-stdin",
            "-o",
            "json",
        ],
        &format!("{reader_secret}\n"),
    );
    let issued = json(&issued);
    let token = issued["access_token"].as_str().unwrap();
    assert_eq!(issued["scope"], "demo.read");
    let introspected = json(&stack.cli(
        &[
            "tokens",
            "introspect",
            "--client-ip",
            "127.0.0.1",
            "-o",
            "json",
        ],
        &format!("{token}\n"),
    ));
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["owner"], "alice");
    // Revoked by its own credential, it is inactive.
    let revoked = stack.cli(
        &[
            "tokens",
            "revoke",
            "--client-id",
            reader["credential"]["clientId"].as_str().unwrap(),
            "--secret-stdin",
        ],
        &format!("{token}\n{reader_secret}\n"),
    );
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let introspected = stack.cli(
        &["tokens", "introspect", "--client-ip", "127.0.0.1"],
        &format!("{token}\n"),
    );
    assert!(
        text(&introspected.stdout).contains("active:        false"),
        "{}",
        text(&introspected.stdout)
    );
    let refused = stack.cli(
        &[
            "tokens",
            "issue",
            "--client-id",
            reader["credential"]["clientId"].as_str().unwrap(),
            "--secret-stdin",
        ],
        "lks_wrong\n",
    );
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
    // The table shows where it was last used, once the issuer has flushed
    // its usage to the registry (every second).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = text(
            &stack
                .cli(&["credentials", "list", "--project", "demo"], "")
                .stdout,
        );
        let row = list
            .lines()
            .find(|line| line.starts_with("reader"))
            .unwrap()
            .to_owned();
        if row.contains("just now from 127.0.0.1") {
            break;
        }
        assert!(Instant::now() < deadline, "no last use after 15 s: {list}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Rename, disable, enable, rotate.
    let renamed = json(&stack.cli(
        &[
            "credentials",
            "rename",
            &reader_id,
            "reader-2",
            "-o",
            "json",
        ],
        "",
    ));
    assert_eq!(renamed["credential"]["name"], "reader-2");
    let disabled = json(&stack.cli(&["credentials", "disable", &reader_id, "-o", "json"], ""));
    assert_eq!(disabled["credential"]["state"], "CREDENTIAL_STATE_DISABLED");
    let enabled = stack.cli(&["credentials", "enable", &reader_id], "");
    assert!(text(&enabled.stdout).contains("State:          active"));
    let updated = json(&stack.cli(
        &[
            "credentials",
            "update",
            &reader_id,
            "--description",
            "reads",
            "-o",
            "json",
        ],
        "",
    ));
    assert_eq!(updated["credential"]["description"], "reads");
    let rotated = json(&stack.cli(&["credentials", "rotate", &reader_id, "-o", "json"], ""));
    let rotated_secret = rotated["clientSecret"].as_str().unwrap();
    assert!(rotated_secret.starts_with("lks_") && rotated_secret != reader_secret);

    // Delete: a wrong name typed deletes nothing.
    let wrong = stack.cli(&["credentials", "delete", &reader_id], "reader\n");
    assert_eq!(wrong.status.code(), Some(5), "{}", text(&wrong.stderr));
    assert!(text(&wrong.stderr).contains("nothing deleted"));
    assert!(
        stack
            .cli(&["credentials", "get", &reader_id], "")
            .status
            .success()
    );
    // The right name deletes it.
    let deleted = stack.cli(&["credentials", "delete", &reader_id], "reader-2\n");
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert!(text(&deleted.stderr).contains("Type its name to confirm"));
    let gone = stack.cli(&["credentials", "get", &reader_id], "");
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
    assert!(text(&gone.stderr).starts_with("error: not found"));
    // Scripts confirm with a flag; a wrong one deletes nothing either.
    let writer_id = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|credential| credential["name"] == "writer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = stack.cli(
        &[
            "credentials",
            "delete",
            &writer_id,
            "--confirm-name",
            "reader",
        ],
        "",
    );
    assert_eq!(wrong.status.code(), Some(5));
    let deleted = stack.cli(
        &[
            "credentials",
            "delete",
            &writer_id,
            "--confirm-name",
            "writer",
        ],
        "",
    );
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let empty = json(&stack.cli(
        &["credentials", "list", "--project", "demo", "-o", "json"],
        "",
    ));
    assert!(
        empty
            .get("credentials")
            .is_none_or(|list| list.as_array().unwrap().is_empty())
    );
}

#[test]
fn exit_codes_tell_the_kind_of_error() {
    let stack = Stack::start();
    assert!(
        stack
            .env_cli(&["projects", "create", "codes"], "")
            .status
            .success()
    );

    // Invalid argument: 5, with the server's message.
    let invalid = stack.env_cli(
        &[
            "credentials",
            "create",
            "--project",
            "codes",
            "--owner",
            "a",
            "--name",
            "!bad!",
        ],
        "",
    );
    assert_eq!(invalid.status.code(), Some(5), "{}", text(&invalid.stderr));
    assert!(text(&invalid.stderr).starts_with("error: invalid argument: "));
    // Not found: 3.
    let missing = stack.env_cli(&["projects", "get", "no-such-project"], "");
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing.stderr));
    // A wrong secret from the environment: 4, and the secret is not echoed.
    let mut command = stack.base_command();
    command
        .env("LATCHKEY_REGISTRY_URL", &stack.registry_url)
        .env("LATCHKEY_TOKEN_URL", &stack.token_url)
        .env("LATCHKEY_CLIENT_ID", &stack.admin_id)
        .env("LATCHKEY_CLIENT_SECRET", "lks_not_the_secret");
    let refused = run(command, &["projects", "list"], "");
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused.stderr));
    assert!(!text(&refused.stderr).contains("lks_not_the_secret"));
    // No profile at all: 64.
    let unconfigured = stack.cli(&["projects", "list"], "");
    assert_eq!(
        unconfigured.status.code(),
        Some(64),
        "{}",
        text(&unconfigured.stderr)
    );
    // Usage: 2, from clap or from the CLI's own checks.
    let ownerless = stack.env_cli(&["credentials", "create", "--project", "codes"], "");
    assert_eq!(
        ownerless.status.code(),
        Some(2),
        "{}",
        text(&ownerless.stderr)
    );
    let usage = stack.cli(&["credentials", "frobnicate"], "");
    assert_eq!(usage.status.code(), Some(2));
    // Unavailable: 6.
    let mut command = stack.base_command();
    command
        .env("LATCHKEY_REGISTRY_URL", "http://127.0.0.1:1")
        .env("LATCHKEY_TOKEN_URL", "http://127.0.0.1:1/oauth2/token")
        .env("LATCHKEY_CLIENT_ID", &stack.admin_id)
        .env("LATCHKEY_CLIENT_SECRET", &stack.admin_secret);
    assert_eq!(
        run(command, &["projects", "list"], "").status.code(),
        Some(6)
    );
    // On behalf of a member who does not exist: permission denied, 4.
    let stranger = stack.env_cli(
        &[
            "--on-behalf-of",
            "codes/nobody",
            "credentials",
            "list",
            "--project",
            "codes",
        ],
        "",
    );
    assert_eq!(
        stranger.status.code(),
        Some(4),
        "{}",
        text(&stranger.stderr)
    );
    // The help documents the exit codes.
    let help = stack.cli(&["--help"], "");
    assert!(text(&help.stdout).contains("64  configuration error"));
}

#[test]
fn on_behalf_of_a_member_is_confined_to_them() {
    let stack = Stack::start();
    assert!(
        stack
            .env_cli(&["projects", "create", "team"], "")
            .status
            .success()
    );
    let member = stack.env_cli(
        &[
            "members",
            "create",
            "--project",
            "team",
            "bob",
            "--api",
            "team.read",
        ],
        "",
    );
    assert!(member.status.success(), "{}", text(&member.stderr));
    assert!(text(&member.stdout).contains("bob"));
    let carol = json(&stack.env_cli(
        &[
            "credentials",
            "create",
            "--project",
            "team",
            "--owner",
            "carol",
            "--name",
            "carols",
            "-o",
            "json",
        ],
        "",
    ));
    let as_bob = |args: &[&str]| {
        let mut all = vec!["--on-behalf-of", "team/bob"];
        all.extend_from_slice(args);
        stack.env_cli(&all, "")
    };
    // Bob's credential is his, within his ceiling.
    let bobs = json(&as_bob(&[
        "credentials",
        "create",
        "--project",
        "team",
        "--name",
        "bobs",
        "--allowed-api",
        "team.read",
        "-o",
        "json",
    ]));
    assert_eq!(bobs["credential"]["owner"], "bob");
    let beyond = as_bob(&[
        "credentials",
        "create",
        "--project",
        "team",
        "--allowed-api",
        "team.write",
    ]);
    assert_eq!(beyond.status.code(), Some(4), "{}", text(&beyond.stderr));
    assert!(text(&beyond.stderr).contains("beyond the API ceiling"));
    // He sees only his own; Carol's is not found for him.
    let listed = json(&as_bob(&[
        "credentials",
        "list",
        "--project",
        "team",
        "-o",
        "json",
    ]));
    let names: Vec<&str> = listed["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|credential| credential["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bobs"]);
    let carols = carol["credential"]["id"].as_str().unwrap();
    let hidden = as_bob(&["credentials", "delete", carols, "--confirm-name", "carols"]);
    assert_eq!(hidden.status.code(), Some(3), "{}", text(&hidden.stderr));
    assert!(
        stack
            .env_cli(&["credentials", "get", carols], "")
            .status
            .success()
    );
    // Suspended, his credentials are refused; resumed, they work again.
    let suspended = json(&stack.env_cli(
        &[
            "members",
            "update",
            "--project",
            "team",
            "bob",
            "--suspend",
            "-o",
            "json",
        ],
        "",
    ));
    assert_eq!(suspended["member"]["state"], "MEMBER_STATE_SUSPENDED");
    let suspended_self = as_bob(&["credentials", "list", "--project", "team"]);
    assert_eq!(
        suspended_self.status.code(),
        Some(4),
        "{}",
        text(&suspended_self.stderr)
    );
    let resumed = stack.env_cli(
        &["members", "update", "--project", "team", "bob", "--resume"],
        "",
    );
    assert!(
        text(&resumed.stdout).contains("active"),
        "{}",
        text(&resumed.stderr)
    );
    // Project changes.
    let policy = json(&stack.env_cli(
        &[
            "projects",
            "policy",
            "team",
            "--token-ttl-seconds",
            "600",
            "-o",
            "json",
        ],
        "",
    ));
    assert_eq!(policy["project"]["policy"]["tokenTtlSeconds"], 600);
    let renamed = stack.env_cli(
        &["projects", "update", "team", "--display-name", "The Team"],
        "",
    );
    assert!(
        text(&renamed.stdout).contains("The Team"),
        "{}",
        text(&renamed.stderr)
    );
    // He manages no members.
    let members = as_bob(&["members", "list", "--project", "team"]);
    assert_eq!(members.status.code(), Some(4), "{}", text(&members.stderr));
}

#[test]
fn completions_for_the_usual_shells() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success());
        assert!(text(&output.stdout).contains("credentials"), "{shell}");
    }
}

/// Each field of `ProjectPolicy` has its flag on `projects create` and
/// `projects policy`, and `projects get` shows it.
#[test]
fn every_project_policy_field_is_settable_and_shown() {
    let stack = Stack::start();
    // Lines of a human answer, with runs of spaces as one.
    let lines = |output: &Output| -> Vec<String> {
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout)
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let created = lines(&stack.env_cli(
        &[
            "projects",
            "create",
            "limits",
            "--max-credentials",
            "5",
            "--max-credentials-per-owner",
            "2",
            "--max-tokens-per-credential",
            "3",
            "--token-ttl-seconds",
            "120",
            "--on-token-limit",
            "evict-oldest",
        ],
        "",
    ));
    for shown in [
        "Max credentials: 5",
        "Per owner: 2",
        "Tokens each: 3",
        "Token lifetime: 120 s",
        "On token limit: evict-oldest",
    ] {
        assert!(
            created.iter().any(|line| line == shown),
            "{shown}: {created:?}"
        );
    }

    // Only the given field changes.
    let changed = json(&stack.env_cli(
        &[
            "projects",
            "policy",
            "limits",
            "--on-token-limit",
            "reject",
            "-o",
            "json",
        ],
        "",
    ));
    let policy = &changed["project"]["policy"];
    assert_eq!(policy["onTokenLimit"], "ON_TOKEN_LIMIT_REJECT", "{policy}");
    assert_eq!(policy["maxCredentials"], 5, "{policy}");
    assert_eq!(policy["maxCredentialsPerOwner"], 2, "{policy}");
    assert_eq!(policy["maxTokensPerCredential"], 3, "{policy}");
    assert_eq!(policy["tokenTtlSeconds"], 120, "{policy}");
    let got = lines(&stack.env_cli(&["projects", "get", "limits"], ""));
    assert!(
        got.iter().any(|line| line == "On token limit: reject"),
        "{got:?}"
    );

    // The configuration file's spelling is accepted too.
    let evicting = json(&stack.env_cli(
        &[
            "projects",
            "policy",
            "limits",
            "--on-token-limit",
            "evict_oldest",
            "-o",
            "json",
        ],
        "",
    ));
    assert_eq!(
        evicting["project"]["policy"]["onTokenLimit"],
        "ON_TOKEN_LIMIT_EVICT_OLDEST"
    );
    // Anything else is a usage error naming the choices, and changes nothing.
    let wrong = stack.env_cli(
        &["projects", "policy", "limits", "--on-token-limit", "drop"],
        "",
    );
    assert_eq!(wrong.status.code(), Some(2));
    let message = text(&wrong.stderr);
    assert!(
        message.contains("reject") && message.contains("evict-oldest"),
        "{message}"
    );
    let unchanged = json(&stack.env_cli(&["projects", "get", "limits", "-o", "json"], ""));
    assert_eq!(
        unchanged["project"]["policy"]["onTokenLimit"],
        "ON_TOKEN_LIMIT_EVICT_OLDEST"
    );
}
