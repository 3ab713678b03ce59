//! The admin listeners (issue 17): each service serves `/metrics`, `/livez`
//! and `/readyz` on a listener of its own, never on a public port. `/readyz`
//! follows the store, as gRPC health does: 503 while the token store (issuer)
//! or the database (registry) does not answer, 200 again once it does,
//! without a restart; `/livez` stays 200 throughout, so an orchestrator
//! routes around the replica instead of restarting it.

use std::collections::BTreeSet;
use std::time::Duration;

use latchkey_tests::{Backend, Stack, StackBackend, TcpRelay, TokenBackend};

use crate::store_outage::PrivateRedis;
use crate::support::{
    credential, eventually, introspect, issue, post_form, project_with_client, sample, scrape,
};

/// `GET url`: the status and the body.
async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Polls `url` until it answers `status`, for at most `timeout`.
async fn answers(url: &str, status: u16, timeout: Duration) -> bool {
    eventually(timeout, || async {
        reqwest::get(url)
            .await
            .is_ok_and(|response| response.status().as_u16() == status)
    })
    .await
}

async fn probes_and_metrics_are_on_the_admin_listeners_only(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    for (service, admin) in [
        ("registry", stack.registry.admin_url()),
        ("issuer", stack.issuer.admin_url()),
    ] {
        assert_eq!(
            get(&format!("{admin}/livez")).await,
            (200, "live\n".to_owned()),
            "{service} /livez"
        );
        // The fixture waited for gRPC health SERVING: the same rule.
        assert_eq!(
            get(&format!("{admin}/readyz")).await,
            (200, "ready\n".to_owned()),
            "{service} /readyz"
        );
        let metrics = scrape(&format!("{admin}/metrics")).await;
        assert_eq!(
            sample(&metrics, &format!("latchkey_{service}_ready")),
            1.0,
            "{service} ready gauge"
        );
        assert_eq!(get(&format!("{admin}/oauth2/token")).await.0, 404);
    }
    // The public ports serve none of it: metrics are not for clients, and a
    // probe must not depend on what an Ingress in front of them does.
    for public in [stack.issuer.http_url(), stack.registry.http_url()] {
        for path in ["/metrics", "/livez", "/readyz"] {
            let (status, body) = get(&format!("{public}{path}")).await;
            assert_eq!(status, 404, "{public}{path} answered {status}: {body}");
            assert!(!body.contains("latchkey_"), "{public}{path}: {body}");
        }
    }
}

on_both_stacks!(probes_and_metrics_are_on_the_admin_listeners_only);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuers_readyz_follows_redis() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let stack = Stack::start_with(
        Backend::Sqlite,
        TokenBackend::Redis,
        |_| {},
        |issuer| {
            if let Some(store) = issuer.redis.as_mut() {
                store.url = url.clone();
                store.response_timeout_ms = 300;
            }
        },
    )
    .await;
    let admin = stack.issuer.admin_url();
    let readyz = format!("{admin}/readyz");
    assert_eq!(get(&readyz).await.0, 200);

    redis.stop();
    assert!(
        answers(&readyz, 503, Duration::from_secs(5)).await,
        "/readyz still 200 5 s after Redis stopped"
    );
    let (_, body) = get(&readyz).await;
    assert!(body.starts_with("not ready"), "{body}");
    let metrics = scrape(&format!("{admin}/metrics")).await;
    assert_eq!(sample(&metrics, "latchkey_issuer_ready"), 0.0);
    // Alive all the same: restarting it cannot bring Redis back.
    assert_eq!(get(&format!("{admin}/livez")).await.0, 200);
    // The registry does not depend on the issuer's store.
    assert_eq!(
        get(&format!("{}/readyz", stack.registry.admin_url()))
            .await
            .0,
        200
    );

    redis.resume();
    assert!(
        answers(&readyz, 200, Duration::from_secs(10)).await,
        "/readyz not 200 10 s after Redis came back"
    );
    let metrics = scrape(&format!("{admin}/metrics")).await;
    assert_eq!(sample(&metrics, "latchkey_issuer_ready"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registrys_readyz_follows_its_database() {
    let (mut relay, relayed) = TcpRelay::in_front_of_postgres().await;
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::Memory,
        |registry| {
            registry.database.url = relayed.clone();
            registry.database.acquire_timeout_ms = 500;
        },
        |_| {},
    )
    .await;
    let admin = stack.registry.admin_url();
    let readyz = format!("{admin}/readyz");
    assert_eq!(get(&readyz).await.0, 200);

    relay.cut().await;
    assert!(
        answers(&readyz, 503, Duration::from_secs(5)).await,
        "/readyz still 200 5 s after PostgreSQL was cut off"
    );
    let metrics = scrape(&format!("{admin}/metrics")).await;
    assert_eq!(sample(&metrics, "latchkey_registry_ready"), 0.0);
    assert_eq!(get(&format!("{admin}/livez")).await.0, 200);
    // Introspection stays up while PostgreSQL is down: the issuer is ready.
    assert_eq!(
        get(&format!("{}/readyz", stack.issuer.admin_url())).await.0,
        200
    );

    relay.restore().await;
    assert!(
        answers(&readyz, 200, Duration::from_secs(10)).await,
        "/readyz not 200 10 s after PostgreSQL came back"
    );
}

/// The metric families a `/metrics` text declares (`# TYPE name kind`).
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// Every `latchkey_…` metric a file's text names, as its family (without
/// the `_total`, `_bucket`, `_sum` or `_count` of a sample).
fn named_families(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("latchkey_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        // `latchkey_<service>_…` and `latchkey_issuer_*` in comments.
        if name.ends_with('_') {
            continue;
        }
        let family = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
    }
    names
}

/// The dashboard and the alert rules in `deploy/` name only metrics the
/// services really export: a renamed metric would leave a blank panel or an
/// alert that can never fire. Checked on the production stack, where the
/// Redis introspection cache's series exist too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alert_rules_name_only_exported_metrics() {
    let stack = Stack::start(StackBackend::Production).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    let (status, _, _) = post_form(
        &stack,
        "/oauth2/token",
        Some((&client.credential.client_id, "lks_wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    let mut exported = families(&scrape(&stack.issuer.metrics_url()).await);
    exported.extend(families(&scrape(&stack.registry.metrics_url()).await));

    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    for file in [
        "grafana/latchkey.json",
        "prometheus/latchkey-alerts.yml",
        "prometheus/latchkey-alerts.test.yml",
    ] {
        let text = std::fs::read_to_string(format!("{deploy}/{file}")).unwrap();
        let named = named_families(&text);
        assert!(!named.is_empty(), "deploy/{file} names no metric");
        let unknown: Vec<_> = named.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "deploy/{file} names metrics the services do not export: {unknown:?}\nexported: {exported:?}"
        );
    }
}
