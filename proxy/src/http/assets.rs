//! The web page: `client/`'s files (HTML, CSS, ES modules; no build step),
//! built into the binary, so a proxy serves the page that matches its API.
//!
//! - `GET /` is `index.html`, `Cache-Control: no-cache` with an `ETag`
//!   (a revalidation costs a 304).
//! - `GET /assets/{version}/{file}`: every other file, under a version that
//!   is a hash of all of them, so a new build has new addresses and the
//!   files are cached for a year (`immutable`). The modules import each
//!   other by relative paths, so they stay within one version. An address
//!   of another version (a page loaded from another build, during a rolling
//!   restart) gets this build's file, `no-cache`, rather than a 404.
//! - Each file is compressed once, when first asked for (gzip and brotli,
//!   as the read cache's bodies: `compress::Prepared`).
//! - Every answer carries a Content-Security-Policy that allows scripts,
//!   styles and connections from this origin only (no inline script, no
//!   `eval`), and `nosniff`: user text that slipped into markup still could
//!   not run.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::compress::Prepared;
use crate::AppError;

const INDEX: &str = "index.html";

/// Where `client/index.html` names the other files; replaced by the
/// versioned path when served.
const DEV_PREFIX: &str = "/assets/dev/";

/// Scripts, styles and connections (the API, the WebSocket) from this
/// origin only; images also from https and data: URLs (a post may link an
/// image; the sanitizer keeps no `<img>` today, the favicon is a data: URL).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: https:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const YEAR: &str = "public, max-age=31536000, immutable";

struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! client_file {
    ($name:literal, $kind:expr) => {
        File { name: $name, content_type: $kind, bytes: include_bytes!(concat!("../../../client/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `client/` that a browser loads (the test below checks the
/// folder holds no other).
const FILES: &[File] = &[
    client_file!("index.html", "text/html; charset=utf-8"), // INDEX, served at `/`
    client_file!("app.css", "text/css; charset=utf-8"),
    client_file!("app.js", JS),
    client_file!("dom.js", JS),
    client_file!("forum.js", JS),
    client_file!("wiki.js", JS),
    client_file!("people.js", JS),
    client_file!("veritable-api.js", JS),
    client_file!("veritable-realtime.js", JS),
];

struct Served {
    name: &'static str,
    content_type: HeaderValue,
    body: Prepared,
}

struct Site {
    version: String,
    etag: HeaderValue,
    index: Prepared,
    files: Vec<Served>,
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for file in FILES {
        hash.update(file.name);
        hash.update([0]);
        hash.update(file.bytes);
    }
    let version = hex::encode(&hash.finalize()[..6]);
    let (pages, others): (Vec<&File>, Vec<&File>) = FILES.iter().partition(|f| f.name == INDEX);
    let page = pages.first().map_or_else(String::new, |f| String::from_utf8_lossy(f.bytes).into_owned());
    let index = Prepared::new(page.replace(DEV_PREFIX, &format!("/assets/{version}/")));
    let files = others
        .into_iter()
        .map(|file| Served {
            name: file.name,
            content_type: HeaderValue::from_static(file.content_type),
            body: Prepared::new(file.bytes),
        })
        .collect();
    let etag =
        HeaderValue::from_str(&format!("W/\"{version}\"")).unwrap_or_else(|_| HeaderValue::from_static("W/\"\""));
    Site { version, etag, index, files }
});

/// The version in the files' addresses (a hash of their contents).
pub fn version() -> &'static str {
    &SITE.version
}

fn secured(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    response
}

fn unchanged(request: &HeaderMap) -> bool {
    request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|tags| {
        tags.split(',').any(|t| t.trim() == SITE.etag.to_str().unwrap_or_default() || t.trim() == "*")
    })
}

fn answer(request: &HeaderMap, body: &Prepared, content_type: HeaderValue, cache: &'static str) -> Response {
    if unchanged(request) {
        let response = (StatusCode::NOT_MODIFIED, [(header::ETAG, SITE.etag.clone())]).into_response();
        return secured(response, cache);
    }
    let mut response = body.respond_as(request, content_type);
    response.headers_mut().insert(header::ETAG, SITE.etag.clone());
    secured(response, cache)
}

/// `GET /`: the page.
pub async fn index(request: HeaderMap) -> Response {
    answer(&request, &SITE.index, HeaderValue::from_static("text/html; charset=utf-8"), "no-cache")
}

/// `GET /assets/{version}/{file}`.
pub async fn file(request: HeaderMap, Path((version, name)): Path<(String, String)>) -> Response {
    let Some(file) = SITE.files.iter().find(|f| f.name == name) else { return AppError::NotFound.into_response() };
    let cache = if version == SITE.version { YEAR } else { "no-cache" };
    answer(&request, &file.body, file.content_type.clone(), cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_client_folder_is_served() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../client");
        let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
            .expect("client/")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // Type declarations are for editors and TypeScript users, not browsers.
            .filter(|name| !name.ends_with(".d.ts"))
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = FILES.iter().map(|f| f.name.to_owned()).collect();
        served.sort();
        assert_eq!(on_disk, served, "client/ and assets::FILES differ");
    }
}
