//! A `redis-server` of one test's own, on a free port, that the test may
//! flush, restart empty or make a replica of another: what a shared server
//! other tests use cannot go through.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private Redis, killed when dropped.
pub(crate) struct PrivateRedis {
    port: u16,
    replica_of: Option<u16>,
    process: Option<Child>,
    /// Its working directory: a replica writes the snapshot it receives.
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    /// A standalone server.
    pub(crate) async fn start() -> Self {
        Self::launch(None).await
    }

    /// A replica of `primary`.
    pub(crate) async fn replica_of(primary: &PrivateRedis) -> Self {
        Self::launch(Some(primary.port)).await
    }

    async fn launch(replica_of: Option<u16>) -> Self {
        // Below the ephemeral range: the port must still be free when the
        // server binds it, and again after a restart.
        let port = latchkey_tests::binaries::free_ports::<1>()[0];
        let mut redis = Self {
            port,
            replica_of,
            process: None,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.resume().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A connection of the test's own.
    pub(crate) async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Starts the server again (empty: nothing is kept on disk) and waits
    /// until it answers.
    pub(crate) async fn resume(&mut self) {
        let port = self.port.to_string();
        let dir = self.dir.path().to_str().unwrap().to_owned();
        let mut args = vec![
            "--dir",
            &dir,
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        let primary_port = self.replica_of.map(|port| port.to_string());
        if let Some(primary_port) = &primary_port {
            args.extend(["--replicaof", "127.0.0.1", primary_port]);
        }
        self.process = Some(
            Command::new("redis-server")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed: run scripts/test, which installs it"),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (as `kill` names it, e.g. `-STOP`, `-CONT`) to the
    /// server: a paused Redis holds its connections open and answers
    /// nothing, as a stalled primary does.
    #[allow(dead_code)] // The fault tests' only.
    pub(crate) fn signal(&self, signal: &str) {
        let process = self.process.as_ref().expect("the server is running");
        let sent = Command::new("kill")
            .args([signal, &process.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill {signal}");
    }

    /// Kills the server.
    pub(crate) fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Waits until this replica has synchronised with its primary.
    pub(crate) async fn await_sync(&self) {
        let mut connection = self.connection().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut connection)
                .await
                .unwrap();
            if info.contains("master_link_status:up") {
                return;
            }
            assert!(Instant::now() < deadline, "the replica never synchronised");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
