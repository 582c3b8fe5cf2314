//! Where a browser request came from, for the two checks that need it: the
//! WebSocket upgrade (cross-site WebSocket hijacking) and cookie-signed
//! writes (CSRF). Bearer tokens are not sent by browsers on their own, so
//! only the cookie needs this.

use axum::http::{HeaderMap, Method, header};

/// The request's `Origin` is this proxy's own (same scheme, host and port;
/// the scheme is https when cookies are marked Secure, i.e. behind TLS) or
/// one of `allowed`. No `Origin` at all is a non-browser client: allowed.
pub fn allowed(headers: &HeaderMap, allowed: &[String], secure: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    let scheme = if secure { "https" } else { "http" };
    origin.trim_end_matches('/').eq_ignore_ascii_case(&format!("{scheme}://{host}"))
}

/// A cookie-signed request that changes something must come from this
/// site: `Sec-Fetch-Site` (sent by every current browser) says so, or, where
/// it is missing, `Origin` matches as in [`allowed`].
pub fn write_allowed(method: &Method, headers: &HeaderMap, allowed_origins: &[String], secure: bool) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("same-origin" | "none") => allowed(headers, allowed_origins, secure),
        Some(_) => headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(o))),
        None => allowed(headers, allowed_origins, secure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn origin_must_match_scheme_host_and_port() {
        let host = ("host", "forum.test:8080");
        assert!(allowed(&headers(&[host]), &[], false), "no Origin: not a browser");
        assert!(allowed(&headers(&[host, ("origin", "http://forum.test:8080")]), &[], false));
        assert!(!allowed(&headers(&[host, ("origin", "https://forum.test:8080")]), &[], false), "scheme differs");
        assert!(allowed(&headers(&[host, ("origin", "https://forum.test:8080")]), &[], true));
        assert!(!allowed(&headers(&[host, ("origin", "http://forum.test:8081")]), &[], false), "port differs");
        assert!(!allowed(&headers(&[host, ("origin", "http://forum.test:8080.evil")]), &[], false));
        assert!(!allowed(&headers(&[host, ("origin", "null")]), &[], false));
        let app = vec!["https://app.test".to_owned()];
        assert!(allowed(&headers(&[host, ("origin", "https://app.test")]), &app, false));
    }

    #[test]
    fn cookie_writes_need_the_same_site() {
        let host = ("host", "forum.test");
        let post = Method::POST;
        assert!(write_allowed(&Method::GET, &headers(&[host, ("sec-fetch-site", "cross-site")]), &[], false));
        assert!(!write_allowed(&post, &headers(&[host, ("sec-fetch-site", "cross-site")]), &[], false));
        assert!(!write_allowed(&post, &headers(&[host, ("sec-fetch-site", "same-site")]), &[], false));
        assert!(write_allowed(
            &post,
            &headers(&[host, ("sec-fetch-site", "same-origin"), ("origin", "http://forum.test")]),
            &[],
            false
        ));
        assert!(!write_allowed(&post, &headers(&[host, ("origin", "http://evil.test")]), &[], false));
        assert!(write_allowed(&post, &headers(&[host]), &[], false), "curl with a cookie: no browser, no CSRF");
        let app = vec!["https://app.test".to_owned()];
        assert!(write_allowed(
            &post,
            &headers(&[host, ("sec-fetch-site", "cross-site"), ("origin", "https://app.test")]),
            &app,
            false
        ));
    }
}
