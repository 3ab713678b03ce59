//! The `latchkey` CLI against the production stack: the real
//! `credential-registry` binary on PostgreSQL (a schema of its own) and the
//! real `token-issuer` binary on Redis (a key prefix of its own), as an
//! operator runs them apart. The same user story as the CLI's tests on
//! `latchkey dev` (`services/latchkey/tests/cli.rs`): log in, create, list,
//! issue and introspect a token, rotate, delete by typed name.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use latchkey_secrets::HashKey;
use latchkey_tests::binaries::{
    Running, binary, bootstrap, command, free_ports, log_path, wait_until_serving,
};
use latchkey_tests::{TestRedis, TestSchema, postgres_url, redis_url};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::Value;

/// Both services on PostgreSQL and Redis, and where the CLI keeps its
/// profile.
struct Production {
    registry_url: String,
    token_url: String,
    admin_id: String,
    admin_secret: String,
    config_dir: std::path::PathBuf,
    _registry: Running,
    _issuer: Running,
    schema: TestSchema,
    redis: TestRedis,
    _directory: tempfile::TempDir,
}

impl Production {
    async fn start() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let (registry_dir, issuer_dir) = (directory.path().join("r"), directory.path().join("i"));
        std::fs::create_dir_all(&registry_dir).unwrap();
        std::fs::create_dir_all(&issuer_dir).unwrap();
        let schema = TestSchema::create().await;
        let redis = TestRedis::new();
        let internal_key = HashKey::generate().to_hex();
        let [
            registry_port,
            registry_internal,
            issuer_port,
            issuer_internal,
            http_port,
        ] = free_ports();
        let address = |port: u16| format!("127.0.0.1:{port}");
        let database = |command: &mut Command| {
            command
                .env("LATCHKEY_DATABASE__URL", postgres_url())
                .env("LATCHKEY_DATABASE__SCHEMA", schema.name())
                .env("LATCHKEY_DATABASE__MAX_CONNECTIONS", "4");
        };
        // The secrets' hash key: bootstrap-admin and the registry share it.
        let registry_hash_key = HashKey::generate().to_hex();
        let (admin_id, admin_secret) = bootstrap(&registry_dir, "ops", |bootstrap| {
            database(bootstrap);
            bootstrap
                .env("LATCHKEY_HASH_KEY", &registry_hash_key)
                .env("LATCHKEY_INTERNAL_KEY", &internal_key);
        });
        let mut registry = command("credential-registry", &registry_dir);
        database(&mut registry);
        registry
            .env("LATCHKEY_HASH_KEY", &registry_hash_key)
            .env("LATCHKEY_INTERNAL_KEY", &internal_key)
            .env("LATCHKEY_LISTEN_ADDR", address(registry_port))
            .env("LATCHKEY_INTERNAL_LISTEN_ADDR", address(registry_internal))
            .env("LATCHKEY_METRICS_LISTEN_ADDR", "127.0.0.1:0")
            .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
            .env(
                "LATCHKEY_TOKEN_ISSUER_URL",
                format!("http://{}", address(issuer_internal)),
            )
            .env(
                "LATCHKEY_TOKEN_ENDPOINT",
                format!("http://{}/oauth2/token", address(http_port)),
            );
        let mut registry = Running(registry.spawn().unwrap());
        let mut issuer = command("token-issuer", &issuer_dir);
        issuer
            .env("LATCHKEY_REDIS__URL", redis_url())
            .env("LATCHKEY_REDIS__KEY_PREFIX", redis.prefix())
            .env("LATCHKEY_HASH_KEY", HashKey::generate().to_hex())
            .env("LATCHKEY_INTERNAL_KEY", &internal_key)
            .env("LATCHKEY_LISTEN_ADDR", address(issuer_port))
            .env("LATCHKEY_INTERNAL_LISTEN_ADDR", address(issuer_internal))
            .env("LATCHKEY_HTTP_LISTEN_ADDR", address(http_port))
            .env(
                "LATCHKEY_PUBLIC_URL",
                format!("http://{}", address(http_port)),
            )
            .env(
                "LATCHKEY_REGISTRY_URL",
                format!("http://{}", address(registry_internal)),
            );
        let mut issuer = Running(issuer.spawn().unwrap());
        wait_until_serving(
            registry_port,
            &mut registry.0,
            &log_path("credential-registry", &registry_dir),
        )
        .await;
        wait_until_serving(
            issuer_port,
            &mut issuer.0,
            &log_path("token-issuer", &issuer_dir),
        )
        .await;
        Self {
            registry_url: format!("http://{}", address(registry_port)),
            token_url: format!("http://{}/oauth2/token", address(http_port)),
            admin_id,
            admin_secret,
            config_dir: directory.path().join("config"),
            _registry: registry,
            _issuer: issuer,
            schema,
            redis,
            _directory: directory,
        }
    }

    /// Names of the credentials in the PostgreSQL schema, read directly:
    /// the registry really stores them there.
    async fn stored_names(&self) -> Vec<String> {
        let mut options = sea_orm::ConnectOptions::new(postgres_url());
        options.set_schema_search_path(self.schema.name().to_owned());
        let connection = Database::connect(options).await.unwrap();
        connection
            .query_all(Statement::from_string(
                connection.get_database_backend(),
                "SELECT name FROM credentials ORDER BY name",
            ))
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    /// How many keys the issuer holds under its Redis prefix.
    fn redis_keys(&self) -> usize {
        let client = redis::Client::open(redis_url()).unwrap();
        let mut connection = client.get_connection().unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis.prefix()))
            .query(&mut connection)
            .unwrap();
        keys.len()
    }

    /// `latchkey ARGS` with `stdin`, with the profile file only (no
    /// `LATCHKEY_*` variables but where the profile lives).
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(binary("latchkey"));
        for (key, _) in std::env::vars() {
            if key.starts_with("LATCHKEY_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .env("LATCHKEY_CONFIG_DIR", &self.config_dir)
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
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_administers_the_production_stack() {
    let stack = Production::start().await;

    let login = stack.cli(
        &[
            "login",
            "--registry-url",
            &stack.registry_url,
            "--token-url",
            &stack.token_url,
            "--client-id",
            &stack.admin_id,
            "--secret-stdin",
        ],
        &format!("{}\n", stack.admin_secret),
    );
    assert!(login.status.success(), "{}", text(&login.stderr));
    assert_eq!(mode(&stack.config_dir.join("config.toml")), 0o600);

    let project = stack.cli(&["projects", "create", "shop"], "");
    assert!(project.status.success(), "{}", text(&project.stderr));
    let created = json(&stack.cli(
        &[
            "credentials",
            "create",
            "--project",
            "shop",
            "--owner",
            "orders",
            "--name",
            "orders reader",
            "--allowed-api",
            "inventory.read",
            "-o",
            "json",
        ],
        "",
    ));
    let id = created["credential"]["id"].as_str().unwrap().to_owned();
    let client_id = created["credential"]["clientId"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = created["clientSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("lks_"));

    // Listed (from PostgreSQL), for people and as JSON, without the secret.
    let table = stack.cli(&["credentials", "list", "--project", "shop"], "");
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    let row = table
        .lines()
        .find(|line| line.starts_with("orders reader"))
        .unwrap_or_else(|| panic!("{table}"));
    for cell in [id.as_str(), client_id.as_str(), "never", "active"] {
        assert!(row.contains(cell), "{cell:?} in {row:?}");
    }
    let listed = json(&stack.cli(
        &["credentials", "list", "--project", "shop", "-o", "json"],
        "",
    ));
    assert_eq!(listed["credentials"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    assert!(
        stack
            .stored_names()
            .await
            .contains(&"orders reader".to_owned())
    );

    // A token from the issuer (Redis), introspected by the admin.
    let issue = |secret: &str| {
        stack.cli(
            &[
                "tokens",
                "issue",
                "--client-id",
                &client_id,
                "--secret-stdin",
                "-o",
                "json",
            ],
            &format!("{secret}\n"),
        )
    };
    let introspect = |token: &str| {
        json(&stack.cli(
            &[
                "tokens",
                "introspect",
                "--client-ip",
                "127.0.0.1",
                "-o",
                "json",
            ],
            &format!("{token}\n"),
        ))
    };
    let issued = json(&issue(&secret));
    let token = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(issued["scope"], "inventory.read");
    let active = introspect(&token);
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["owner"], "orders");
    assert_eq!(active["project"], "shop", "{active}");
    assert!(stack.redis_keys() > 0, "the token lives in Redis");

    // Rotate: the new secret gets tokens, the old one no longer does.
    let rotated = json(&stack.cli(&["credentials", "rotate", &id, "-o", "json"], ""));
    let new_secret = rotated["clientSecret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("lks_") && new_secret != secret);
    assert_eq!(
        issue(&secret).status.code(),
        Some(4),
        "the old secret is refused"
    );
    let renewed = json(&issue(&new_secret));
    let new_token = renewed["access_token"].as_str().unwrap().to_owned();

    // Delete: a wrong name typed deletes nothing; the right one does, and
    // its tokens go with it.
    let wrong = stack.cli(&["credentials", "delete", &id], "orders\n");
    assert_eq!(wrong.status.code(), Some(5), "{}", text(&wrong.stderr));
    assert!(text(&wrong.stderr).contains("nothing deleted"));
    assert_eq!(introspect(&new_token)["active"], true);
    let deleted = stack.cli(&["credentials", "delete", &id], "orders reader\n");
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let gone = stack.cli(&["credentials", "get", &id], "");
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone.stderr));
    assert_eq!(introspect(&new_token)["active"], false);
    assert!(
        !stack
            .stored_names()
            .await
            .contains(&"orders reader".to_owned())
    );
    assert_eq!(issue(&new_secret).status.code(), Some(4));
}
