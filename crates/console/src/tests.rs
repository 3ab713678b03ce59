//! The console's answers: files with their types, the security headers on
//! every one, the configuration, revalidation and refusals.

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{ConsoleSettings, assets, router};

fn settings() -> ConsoleSettings {
    ConsoleSettings::new("http://127.0.0.1:8080/oauth2/token").expect("a valid endpoint")
}

async fn get(path: &str) -> axum::response::Response {
    router(settings())
        .oneshot(Request::get(path).body(Body::empty()).expect("a request"))
        .await
        .expect("an answer")
}

fn header<'a>(response: &'a axum::response::Response, name: &axum::http::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    for path in [
        "/",
        "/console/app.js",
        "/console/config.json",
        "/console/nope.js",
    ] {
        let response = get(path).await;
        assert_eq!(
            header(&response, &CONTENT_SECURITY_POLICY),
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self' http://127.0.0.1:8080; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'; object-src 'none'",
            "{path}"
        );
        assert_eq!(header(&response, &X_FRAME_OPTIONS), "DENY", "{path}");
        assert_eq!(
            header(&response, &X_CONTENT_TYPE_OPTIONS),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&response, &REFERRER_POLICY), "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn serves_the_page_and_each_file_with_its_type() {
    let index = get("/").await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(header(&index, &CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&index, &CACHE_CONTROL), "no-cache");
    for asset in assets::all() {
        let response = get(&format!("/{}", asset.name)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
        let expected = if asset.name.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            "text/javascript; charset=utf-8"
        };
        assert_eq!(header(&response, &CONTENT_TYPE), expected, "{}", asset.name);
    }
}

#[tokio::test]
async fn the_page_has_no_inline_script_or_style() {
    // The CSP would block them anyway; this keeps them from being written.
    let body = get("/")
        .await
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let page = String::from_utf8(body.to_vec()).expect("UTF-8");
    assert!(!page.contains("<style"), "inline <style> in index.html");
    assert!(!page.contains("style="), "style attribute in index.html");
    for script in page.split("<script").skip(1) {
        assert!(
            script
                .trim_start()
                .starts_with("type=\"module\" src=\"/console/")
        );
    }
    for asset in assets::all() {
        let response = get(&format!("/{}", asset.name)).await;
        let text = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        let text = String::from_utf8(text.to_vec()).expect("UTF-8");
        // Markup built from strings could turn an API's answer into HTML.
        assert!(!text.contains("innerHTML"), "{} uses innerHTML", asset.name);
        assert!(
            !text.contains("localStorage"),
            "{} uses localStorage",
            asset.name
        );
        assert!(
            !text.contains("sessionStorage"),
            "{} uses sessionStorage",
            asset.name
        );
        assert!(
            !text.contains("document.cookie"),
            "{} uses cookies",
            asset.name
        );
    }
}

#[tokio::test]
async fn config_names_the_token_endpoint_and_is_never_cached() {
    let response = get("/console/config.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, &CONTENT_TYPE),
        "application/json; charset=utf-8"
    );
    assert_eq!(header(&response, &CACHE_CONTROL), "no-store");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    let config: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        config["tokenEndpoint"],
        "http://127.0.0.1:8080/oauth2/token"
    );
    assert_eq!(
        config["apiPrefix"],
        "/latchkey.registry.v1.CredentialRegistry/"
    );
}

#[tokio::test]
async fn a_known_version_is_not_sent_again() {
    let first = get("/console/app.js").await;
    let etag = header(&first, &ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2);
    let again = router(settings())
        .oneshot(
            Request::get("/console/app.js")
                .header(IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("an answer");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn unknown_files_are_not_found() {
    for path in [
        "/console/secret.txt",
        "/console/..%2fCargo.toml",
        "/console/",
    ] {
        let response = get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[test]
fn a_token_endpoint_that_could_bend_the_policy_is_refused() {
    for bad in [
        "",
        "/oauth2/token",
        "ftp://example.com/token",
        "http://",
        "http://a.example; script-src *",
        "http://a.example, b",
        "http://user@a.example/token",
        "http://a.example/token\r\nX: y",
    ] {
        assert!(ConsoleSettings::new(bad).is_err(), "{bad:?} accepted");
    }
    let settings = ConsoleSettings::new("https://auth.example.com:8443/oauth2/token?x=1")
        .expect("a valid endpoint");
    assert_eq!(settings.token_origin(), "https://auth.example.com:8443");
}
