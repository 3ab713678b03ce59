//! The rollup flush against a registry that fails: a batch is sent again
//! whole, under the same batch ID, until it is taken; a batch refused as
//! invalid is dropped and counted.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::usage_sink_server::{UsageSink, UsageSinkServer};
use latchkey_runtime::{LimitedListener, ListenerLimits, Metrics, Shutdown, TracedChannel};
use latchkey_token::{UsageKind, UsageRollups};
use latchkey_token_grpc::UsageReporter;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Request, Response, Status};

use crate::metrics::IssuerMetrics;

/// One `Record` call as the registry saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    batch_id: String,
    rollups: usize,
    tokens: i64,
}

/// A registry's `UsageSink` answering each call with the next scripted
/// code (then OK), noting every call.
#[derive(Debug, Clone, Default)]
struct ScriptedSink {
    answers: Arc<Mutex<VecDeque<Code>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[tonic::async_trait]
impl UsageSink for ScriptedSink {
    async fn record(
        &self,
        request: Request<registry_pb::RecordRequest>,
    ) -> Result<Response<registry_pb::RecordResponse>, Status> {
        let request = request.into_inner();
        assert!(
            request.uses.is_empty(),
            "rollups travel in calls of their own"
        );
        self.seen.lock().unwrap().push(Seen {
            batch_id: request.batch_id,
            rollups: request.rollups.len(),
            tokens: request.rollups.iter().map(|rollup| rollup.count).sum(),
        });
        match self.answers.lock().unwrap().pop_front() {
            None | Some(Code::Ok) => Ok(Response::new(registry_pb::RecordResponse {})),
            Some(code) => Err(Status::new(code, "scripted")),
        }
    }
}

impl ScriptedSink {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `sink` on a free loopback port; a reporter to it.
async fn serve(sink: ScriptedSink, shutdown: &Shutdown) -> UsageReporter {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let incoming = LimitedListener::new(listener, &ListenerLimits::default()).into_incoming();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        Server::builder()
            .add_service(UsageSinkServer::new(sink))
            .serve_with_incoming_shutdown(incoming, async move { stop.wait().await })
            .await
            .unwrap();
    });
    let endpoint = Endpoint::from_shared(format!("http://{address}")).unwrap();
    UsageReporter::new(TracedChannel::lazy(&endpoint))
}

/// Waits until `sink` has seen `calls` calls.
async fn until_seen(sink: &ScriptedSink, calls: usize) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = sink.seen();
        if seen.len() >= calls {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {seen:?} after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn record(rollups: &UsageRollups, credential: &str, times: usize) {
    let ip = IpAddr::from([10, 0, 0, 1]);
    for _ in 0..times {
        rollups.record(credential, "acme", UsageKind::Issued, SystemTime::now(), ip);
    }
}

#[tokio::test]
async fn a_failed_batch_is_sent_again_with_its_id_and_an_invalid_one_is_dropped() {
    let shutdown = Shutdown::new();
    // The registry outlives the issuer's last flush.
    let registry_stopped = Shutdown::new();
    let sink = ScriptedSink::default();
    sink.answers
        .lock()
        .unwrap()
        .extend([Code::Unavailable, Code::Ok, Code::InvalidArgument]);
    let reporter = serve(sink.clone(), &registry_stopped).await;
    let rollups = Arc::new(UsageRollups::default());
    let metrics = Arc::new(IssuerMetrics::register(&mut Metrics::new("issuer")));
    let flush = tokio::spawn(super::flush_rollups(
        rollups.clone(),
        reporter,
        schedule(Duration::from_secs(5)),
        metrics.clone(),
        shutdown.clone(),
    ));

    record(&rollups, "credential-a", 3);
    let seen = until_seen(&sink, 2).await;
    // Refused as unavailable, then the very same batch again: taken.
    assert_eq!(seen[0], seen[1]);
    assert_eq!((seen[0].rollups, seen[0].tokens), (1, 3));
    assert!(uuid_v7(&seen[0].batch_id), "{seen:?}");

    // The next batch is refused as invalid: dropped, never sent again.
    record(&rollups, "credential-b", 2);
    let seen = until_seen(&sink, 3).await;
    assert_ne!(seen[2].batch_id, seen[0].batch_id);
    assert_eq!(seen[2].tokens, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.seen().len(), 3, "nothing sent again");
    assert_eq!(rollups.dropped(), 2);
    assert_eq!(rollups.pending(), 0);

    // What is counted before shutdown goes out in the last flush.
    record(&rollups, "credential-c", 1);
    shutdown.trigger();
    flush.await.unwrap();
    let seen = sink.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen[3].tokens, 1);
    registry_stopped.trigger();
}

fn schedule(final_flush: Duration) -> super::Schedule {
    super::Schedule {
        interval: Duration::from_millis(50),
        final_flush,
    }
}

#[tokio::test]
async fn the_last_flush_is_retried_until_the_registry_takes_it() {
    let shutdown = Shutdown::new();
    let registry_stopped = Shutdown::new();
    let sink = ScriptedSink::default();
    let reporter = serve(sink.clone(), &registry_stopped).await;
    let rollups = Arc::new(UsageRollups::default());
    let metrics = Arc::new(IssuerMetrics::register(&mut Metrics::new("issuer")));
    let flush = tokio::spawn(super::flush_rollups(
        rollups.clone(),
        reporter,
        schedule(Duration::from_secs(10)),
        metrics,
        shutdown.clone(),
    ));
    // The registry is stopping too: its first three answers are refusals.
    sink.answers
        .lock()
        .unwrap()
        .extend([Code::Unavailable, Code::Unavailable, Code::Unavailable]);
    record(&rollups, "credential-a", 4);
    shutdown.trigger();
    flush.await.unwrap();
    let seen = sink.seen();
    assert_eq!(seen.len(), 4, "three refusals, then taken: {seen:?}");
    assert!(
        seen.iter().all(|call| call == &seen[0]),
        "the same batch: {seen:?}"
    );
    assert_eq!(seen[3].tokens, 4);
    assert_eq!(rollups.pending(), 0);
    registry_stopped.trigger();
}

#[tokio::test]
async fn the_last_flush_gives_up_after_its_deadline() {
    let shutdown = Shutdown::new();
    // Nothing listens here: every report fails at once.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = Endpoint::from_shared(format!("http://{address}")).unwrap();
    let reporter = UsageReporter::new(TracedChannel::lazy(&endpoint));
    let rollups = Arc::new(UsageRollups::default());
    let metrics = Arc::new(IssuerMetrics::register(&mut Metrics::new("issuer")));
    let flush = tokio::spawn(super::flush_rollups(
        rollups.clone(),
        reporter,
        schedule(Duration::from_millis(700)),
        metrics,
        shutdown.clone(),
    ));
    record(&rollups, "credential-a", 2);
    let stopped_at = tokio::time::Instant::now();
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), flush)
        .await
        .expect("the last flush ends after its deadline")
        .unwrap();
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(300),
        "it retried"
    );
    assert_eq!(rollups.pending(), 1, "the rollup it could not deliver");
}

fn uuid_v7(text: &str) -> bool {
    // 8-4-4-4-12 hex digits with version 7.
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|group| group.bytes().all(|b| b.is_ascii_hexdigit()))
        && groups[2].starts_with('7')
}
