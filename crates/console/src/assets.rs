//! The console's files, compiled into the binary.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Its name under `/console/` (the index is served at `/`).
    pub(crate) name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// A hash of the body computed at compile time: the file changes only
    /// with the binary, so a browser revalidates cheaply with `If-None-Match`.
    hash: u64,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $name)),
            hash: fnv1a(include_bytes!(concat!("../assets/", $name))),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself.
pub(crate) static INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything under `/console/`.
static FILES: &[Asset] = &[
    asset!("console/style.css", "text/css; charset=utf-8"),
    asset!("console/app.js", JS),
    asset!("console/api.js", JS),
    asset!("console/dom.js", JS),
    asset!("console/validate.js", JS),
    asset!("console/signin.js", JS),
    asset!("console/projects.js", JS),
    asset!("console/project.js", JS),
    asset!("console/credential.js", JS),
    asset!("console/dialogs.js", JS),
    asset!("console/activity.js", JS),
];

/// The file served at `/console/<name>`, if there is one.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    FILES
        .iter()
        .find(|asset| asset.name.strip_prefix("console/") == Some(name))
}

impl Asset {
    /// The file, or `304 Not Modified` when the browser holds this version.
    pub(crate) fn respond(&'static self, request: &HeaderMap) -> Response {
        let etag = format!("\"{:016x}\"", self.hash);
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static(self.content_type)),
            // Names carry no version: always revalidate, so a new binary's
            // files are used at once; the ETag keeps that a 304.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                ETAG,
                HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            ),
        ];
        let matches = request
            .get(IF_NONE_MATCH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
        if matches {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, self.body).into_response()
    }
}

/// FNV-1a, 64 bits: a compile-time fingerprint for the ETag, not security.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        index += 1;
    }
    hash
}

#[cfg(test)]
pub(crate) fn all() -> impl Iterator<Item = &'static Asset> {
    FILES.iter()
}
