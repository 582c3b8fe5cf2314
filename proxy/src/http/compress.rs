//! Cached response bodies compressed once, when they are cached: a read the
//! cache answers costs no compression, whatever the client accepts. The
//! other responses are compressed per request by tower-http's layer
//! (`routes.rs`), which leaves these alone (they carry `Content-Encoding`).

use std::io::Write;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Bodies smaller than this are sent as they are.
const SMALLEST: usize = 256;
/// gzip level 6 (zlib's default) and brotli quality 5 with a 4 MiB window:
/// most of each one's gain for a few milliseconds per 100 KB, paid once a fill.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW: u32 = 22;

/// A JSON body and, past [`SMALLEST`], its gzip and brotli encodings.
#[derive(Clone)]
pub struct Prepared {
    json: Bytes,
    gzip: Option<Bytes>,
    br: Option<Bytes>,
}

/// What a client accepts, in the order we prefer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Br,
    Gzip,
    Identity,
}

impl Prepared {
    pub fn new(json: impl Into<Bytes>) -> Self {
        let json = json.into();
        if json.len() < SMALLEST {
            return Self { json, gzip: None, br: None };
        }
        Self { gzip: gzip(&json), br: brotli(&json), json }
    }

    /// The JSON alone, for a response that is not kept: tower-http's layer
    /// compresses it per request if the client asks.
    pub fn plain(json: impl Into<Bytes>) -> Self {
        Self { json: json.into(), gzip: None, br: None }
    }

    /// Bytes held, every encoding counted (the cache's weigher).
    pub fn len(&self) -> usize {
        self.json.len() + self.gzip.as_ref().map_or(0, Bytes::len) + self.br.as_ref().map_or(0, Bytes::len)
    }

    pub fn is_empty(&self) -> bool {
        self.json.is_empty()
    }

    /// A 200 with the encoding the request accepts best.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        self.respond_as(request, HeaderValue::from_static("application/json"))
    }

    /// [`Prepared::respond`] for a body of another type (the web page's files).
    pub fn respond_as(&self, request: &HeaderMap, content_type: HeaderValue) -> Response {
        let (encoding, body) = match negotiate(request) {
            Encoding::Br if self.br.is_some() => (Some("br"), self.br.clone()),
            Encoding::Br | Encoding::Gzip if self.gzip.is_some() => (Some("gzip"), self.gzip.clone()),
            _ => (None, None),
        };
        if encoding.is_none() && self.gzip.is_none() {
            // Not prepared: left to the compression layer.
            let mut response = self.json.clone().into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            return response;
        }
        let mut response = body.unwrap_or_else(|| self.json.clone()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
    }
}

fn gzip(json: &[u8]) -> Option<Bytes> {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(json.len() / 4), flate2::Compression::new(GZIP_LEVEL));
    encoder.write_all(json).ok()?;
    encoder.finish().ok().map(Bytes::from)
}

fn brotli(json: &[u8]) -> Option<Bytes> {
    let mut encoder =
        brotli::CompressorWriter::new(Vec::with_capacity(json.len() / 4), 4096, BROTLI_QUALITY, BROTLI_WINDOW);
    encoder.write_all(json).ok()?;
    encoder.flush().ok()?;
    Some(Bytes::from(encoder.into_inner()))
}

/// The best encoding `Accept-Encoding` allows (RFC 9110 §12.5.3): the
/// highest q-value among br and gzip (`*` stands for either when not named),
/// br on a tie; identity when neither is acceptable or the header is absent.
pub fn negotiate(request: &HeaderMap) -> Encoding {
    let mut br: Option<f32> = None;
    let mut gzip: Option<f32> = None;
    let mut any: Option<f32> = None;
    for value in request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()) {
        for item in value.split(',') {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match name.as_str() {
                "br" => br = Some(q),
                "gzip" | "x-gzip" => gzip = Some(q),
                "*" => any = Some(q),
                _ => {}
            }
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Br
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Encoding {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).expect("a header value"));
        negotiate(&headers)
    }

    #[test]
    fn the_best_accepted_encoding_wins_and_q_zero_refuses() {
        assert_eq!(negotiate(&HeaderMap::new()), Encoding::Identity);
        assert_eq!(accept("gzip, deflate, br"), Encoding::Br);
        assert_eq!(accept("gzip"), Encoding::Gzip);
        assert_eq!(accept("br;q=0.5, gzip;q=0.8"), Encoding::Gzip);
        assert_eq!(accept("br;q=0, gzip;q=0"), Encoding::Identity);
        assert_eq!(accept("*"), Encoding::Br);
        assert_eq!(accept("*;q=0.1, br;q=0"), Encoding::Gzip);
        assert_eq!(accept("identity"), Encoding::Identity);
        assert_eq!(accept("GZIP;Q=1"), Encoding::Gzip);
        assert_eq!(accept("br;q=nonsense"), Encoding::Br);
    }

    #[test]
    fn each_encoding_decodes_to_the_json() {
        use std::io::Read;
        let json = format!("{{\"items\":[{}]}}", vec!["{\"id\":1,\"body_html\":\"<p>hello</p>\"}"; 200].join(","));
        let prepared = Prepared::new(json.clone());
        let mut from_gzip = String::new();
        flate2::read::GzDecoder::new(prepared.gzip.as_deref().expect("gzip"))
            .read_to_string(&mut from_gzip)
            .expect("gunzip");
        assert_eq!(from_gzip, json);
        let mut from_br = String::new();
        brotli::Decompressor::new(prepared.br.as_deref().expect("br"), 4096)
            .read_to_string(&mut from_br)
            .expect("unbrotli");
        assert_eq!(from_br, json);
        assert!(prepared.len() < json.len() * 2, "both encodings are far smaller than the JSON");
        let small = Prepared::new("{\"items\":[]}");
        assert!(small.gzip.is_none() && small.br.is_none());
    }
}
