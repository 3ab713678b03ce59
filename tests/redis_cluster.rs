//! A Redis Cluster of a test's own: masters started from `redis-server` on
//! free loopback ports and joined with `redis-cli --cluster create`, whose
//! processes the test may kill (SIGKILL) and start again. Every process is
//! killed when the fixture drops. The shared cluster of `scripts/test` is
//! never touched, so tests that kill nodes run in parallel with the others.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

/// How long a node may stay silent before the others mark it failed.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// Slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// One `redis-server` of the cluster.
#[derive(Debug)]
struct Node {
    port: u16,
    process: Option<Child>,
}

/// A running cluster of masters without replicas, serving the slots of a
/// lost master nowhere (`cluster-require-full-coverage no` keeps the others
/// serving theirs).
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// `(first slot, last slot, node index)` as created.
    slots: Vec<(u16, u16, usize)>,
    dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 whose cluster bus port (`port + 10000`) is free
/// too, not among `taken`.
fn free_port_pair(taken: &[u16]) -> u16 {
    for _ in 0..200 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("address").port();
        let Some(bus) = port.checked_add(10_000) else {
            continue;
        };
        if taken.contains(&port) || taken.contains(&bus) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", bus)).is_ok() {
            return port;
        }
    }
    panic!("no free pair of ports (port, port + 10000) on 127.0.0.1");
}

fn log_path(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("redis-{port}.log"))
}

fn spawn_node(dir: &Path, port: u16) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &format!("nodes-{port}.conf"),
            "--cluster-node-timeout",
            &NODE_TIMEOUT_MS.to_string(),
            "--cluster-require-full-coverage",
            "no",
            "--appendonly",
            "no",
            "--save",
            "",
            "--dir",
            dir.to_str().expect("UTF-8 temporary directory"),
            "--logfile",
            log_path(dir, port).to_str().expect("UTF-8 path"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed: run scripts/test, which installs it")
}

/// `CLUSTER INFO` as `field → value`.
fn parse_info(info: &str) -> std::collections::HashMap<String, String> {
    info.lines()
        .filter_map(|line| line.trim().split_once(':'))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

impl RedisCluster {
    /// Starts `masters` nodes and joins them into one cluster, each master
    /// serving an equal share of the slots. Panics when it cannot.
    pub async fn start(masters: usize) -> Self {
        assert!(
            masters >= 3,
            "redis-cli creates clusters of 3 masters or more"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut taken = Vec::new();
        for _ in 0..masters {
            let port = free_port_pair(&taken);
            taken.extend([port, port + 10_000]);
        }
        let mut cluster = Self {
            nodes: taken
                .chunks(2)
                .map(|pair| Node {
                    port: pair[0],
                    process: None,
                })
                .collect(),
            slots: Vec::new(),
            dir,
        };
        for index in 0..masters {
            cluster.spawn(index);
        }
        for index in 0..masters {
            cluster.wait_until_answering(index).await;
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let created = tokio::task::spawn_blocking(move || {
            Command::new("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .stdin(Stdio::null())
                .output()
        })
        .await
        .expect("redis-cli ran")
        .expect("redis-cli must be installed: run scripts/test, which installs it");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_until_healthy().await;
        cluster.slots = cluster.read_slot_map().await;
        cluster
    }

    fn spawn(&mut self, index: usize) {
        let port = self.nodes[index].port;
        self.nodes[index].process = Some(spawn_node(self.dir.path(), port));
    }

    /// The seed URLs, one per master.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("redis://127.0.0.1:{}", node.port))
            .collect()
    }

    /// How many masters the cluster has.
    pub fn masters(&self) -> usize {
        self.nodes.len()
    }

    /// A direct connection to node `index` (no redirections followed).
    pub async fn node(&self, index: usize) -> redis::RedisResult<MultiplexedConnection> {
        let url = format!("redis://127.0.0.1:{}", self.nodes[index].port);
        redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await
    }

    fn is_running(&mut self, index: usize) -> bool {
        self.nodes[index]
            .process
            .as_mut()
            .is_some_and(|process| process.try_wait().ok().flatten().is_none())
    }

    fn log(&self, index: usize) -> String {
        std::fs::read_to_string(log_path(self.dir.path(), self.nodes[index].port))
            .unwrap_or_default()
    }

    async fn wait_until_answering(&mut self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                self.is_running(index),
                "redis-server on port {} exited:\n{}",
                self.nodes[index].port,
                self.log(index)
            );
            if let Ok(mut node) = self.node(index).await
                && redis::cmd("PING")
                    .query_async::<String>(&mut node)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} does not answer after 10 s",
                self.nodes[index].port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `CLUSTER INFO` of node `index`.
    pub async fn info(
        &self,
        index: usize,
    ) -> redis::RedisResult<std::collections::HashMap<String, String>> {
        let mut node = self.node(index).await?;
        let info: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut node)
            .await?;
        Ok(parse_info(&info))
    }

    /// Whether every node sees every node and every slot served.
    async fn healthy(&self) -> bool {
        for index in 0..self.nodes.len() {
            let Ok(info) = self.info(index).await else {
                return false;
            };
            let field = |name: &str| info.get(name).map(String::as_str);
            let known = self.nodes.len().to_string();
            let slots = SLOTS.to_string();
            if field("cluster_state") != Some("ok")
                || field("cluster_slots_ok") != Some(slots.as_str())
                || field("cluster_known_nodes") != Some(known.as_str())
            {
                return false;
            }
        }
        true
    }

    /// Waits until every node serves and sees the whole cluster.
    pub async fn wait_until_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.healthy().await {
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster is not healthy after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads which node serves which slots (`CLUSTER SLOTS` of node 0).
    async fn read_slot_map(&self) -> Vec<(u16, u16, usize)> {
        let mut node = self.node(0).await.expect("node 0");
        let ranges: Vec<Vec<redis::Value>> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut node)
            .await
            .expect("CLUSTER SLOTS");
        let mut map = Vec::new();
        for range in ranges {
            let first: u16 = redis::from_redis_value(range[0].clone()).expect("first slot");
            let last: u16 = redis::from_redis_value(range[1].clone()).expect("last slot");
            let redis::Value::Array(master) = &range[2] else {
                panic!("unexpected CLUSTER SLOTS entry {range:?}");
            };
            let port: u16 = redis::from_redis_value(master[1].clone()).expect("port");
            let index = self
                .nodes
                .iter()
                .position(|node| node.port == port)
                .expect("a node of this cluster");
            map.push((first, last, index));
        }
        map
    }

    /// The slot of `key`, as the cluster computes it (asked of a live node).
    pub async fn slot_of(&self, key: &[u8]) -> u16 {
        for index in 0..self.nodes.len() {
            if let Ok(mut node) = self.node(index).await
                && let Ok(slot) = redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(key)
                    .query_async::<u16>(&mut node)
                    .await
            {
                return slot;
            }
        }
        panic!("no node of the cluster answers CLUSTER KEYSLOT");
    }

    /// The index of the master that serves `key`'s slot.
    pub async fn owner_of(&self, key: &[u8]) -> usize {
        let slot = self.slot_of(key).await;
        self.slots
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, index)| *index)
            .unwrap_or_else(|| panic!("slot {slot} is served by no node"))
    }

    /// Whether node `index` itself holds `key` (asked directly, so a key of
    /// another node's slot answers a redirection, not "no").
    pub async fn holds(&self, index: usize, key: &[u8]) -> bool {
        let mut node = self.node(index).await.expect("a running node");
        redis::cmd("EXISTS")
            .arg(key)
            .query_async::<i64>(&mut node)
            .await
            .is_ok_and(|count| count == 1)
    }

    /// Kills master `index` with SIGKILL, as a crash would, and waits for
    /// the process to be gone.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut process) = self.nodes[index].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Whether every other node has marked node `index` as failed.
    pub async fn marked_failed(&self, index: usize) -> bool {
        let port = format!("127.0.0.1:{}@", self.nodes[index].port);
        for other in (0..self.nodes.len()).filter(|other| *other != index) {
            let Ok(mut node) = self.node(other).await else {
                return false;
            };
            let Ok(nodes) = redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async::<String>(&mut node)
                .await
            else {
                return false;
            };
            let failed = nodes.lines().any(|line| {
                let mut fields = line.split(' ');
                let address = fields.nth(1).unwrap_or_default();
                let flags = fields.next().unwrap_or_default();
                address.starts_with(&port) && flags.split(',').any(|flag| flag == "fail")
            });
            if !failed {
                return false;
            }
        }
        true
    }

    /// Starts master `index` again on its port with its `nodes.conf`: it
    /// rejoins the cluster with its slots, and (keeping nothing on disk)
    /// without its keys. Returns once the cluster is healthy again.
    pub async fn restart(&mut self, index: usize) {
        self.kill(index);
        self.spawn(index);
        self.wait_until_answering(index).await;
        self.wait_until_healthy().await;
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}
