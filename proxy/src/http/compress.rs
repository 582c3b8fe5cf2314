//! Cached response bodies compressed at most once per encoding: when a
//! client first asks for it, then kept with the entry. A read the cache
//! answers costs no compression after that, and an encoding nobody asks
//! for is never made (the load tool, like many API clients, asks for none;
//! making both at every fill cost the seed's mix 0.2 of the proxy's cores
//! under writes, BENCHMARKS.md). The other responses are compressed per
//! request by tower-http's layer (`routes.rs`), which leaves these alone
//! (they carry `Content-Encoding`).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// Bodies smaller than this are sent as they are.
const SMALLEST: usize = 256;
/// gzip level 6 (zlib's default) and brotli quality 5 with a 4 MiB window:
/// most of each one's gain for a few milliseconds per 100 KB, paid once an
/// entry per encoding asked for.
const GZIP_LEVEL: u32 = 6;
const BROTLI_QUALITY: u32 = 5;
const BROTLI_WINDOW: u32 = 22;

/// A JSON body and, past [`SMALLEST`], its gzip and brotli encodings once
/// asked for. Clones share one body and its encodings.
#[derive(Clone)]
pub struct Prepared(Arc<Body>);

struct Body {
    json: Bytes,
    /// `None`: sent as it is (small, or not kept: the compression layer's).
    encoded: Option<Encoded>,
}

/// Each encoding, made at the first request for it; `None` inside when it
/// failed or saved nothing (then the JSON is sent, and nothing is kept).
struct Encoded {
    gzip: OnceLock<Option<Bytes>>,
    br: OnceLock<Option<Bytes>>,
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
        let encoded = (json.len() >= SMALLEST).then(|| Encoded { gzip: OnceLock::new(), br: OnceLock::new() });
        Self(Arc::new(Body { json, encoded }))
    }

    /// The JSON alone, for a response that is not kept: tower-http's layer
    /// compresses it per request if the client asks.
    pub fn plain(json: impl Into<Bytes>) -> Self {
        Self(Arc::new(Body { json: json.into(), encoded: None }))
    }

    /// Bytes the body holds (the cache's weigher): the JSON and each
    /// encoding made so far. The read cache weighs an entry again when
    /// [`Prepared::prepare`] made one.
    pub fn len(&self) -> usize {
        let made = |lock: &OnceLock<Option<Bytes>>| lock.get().and_then(Option::as_ref).map_or(0, Bytes::len);
        self.0.json.len() + self.0.encoded.as_ref().map_or(0, |e| made(&e.gzip) + made(&e.br))
    }

    /// Makes the encoding that [`Prepared::respond`] would answer `request`
    /// with, if this body keeps encodings and that one is not made yet:
    /// whether [`Prepared::len`] grew.
    pub fn prepare(&self, request: &HeaderMap) -> bool {
        let Some(encoded) = &self.0.encoded else {
            return false;
        };
        let before = self.len();
        let _ = self.encoding(encoded, negotiate(request));
        self.len() != before
    }

    /// Whether both are the same body (clones of one).
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.json.is_empty()
    }

    /// The JSON itself, unencoded (tests).
    #[cfg(test)]
    pub(crate) fn json(&self) -> &[u8] {
        &self.0.json
    }

    /// A 200 with the encoding the request accepts best.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        self.respond_as(request, HeaderValue::from_static("application/json"))
    }

    /// [`Prepared::respond`] for a body of another type (the web page's files).
    pub fn respond_as(&self, request: &HeaderMap, content_type: HeaderValue) -> Response {
        let Some(encoded) = &self.0.encoded else {
            // Not prepared: left to the compression layer.
            let mut response = self.0.json.clone().into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, content_type);
            return response;
        };
        let (encoding, body) = match self.encoding(encoded, negotiate(request)) {
            Some((encoding, body)) => (Some(encoding), body),
            None => (None, self.0.json.clone()),
        };
        let mut response = body.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        response
    }

    /// The `Content-Encoding` and bytes to answer a client that accepts
    /// `accepted` best, each encoding made at its first use; `None`: the JSON.
    fn encoding(&self, encoded: &Encoded, accepted: Encoding) -> Option<(&'static str, Bytes)> {
        let json = &self.0.json;
        let gzip = || encoded.gzip.get_or_init(|| gzip(json).filter(|b| b.len() < json.len())).clone();
        let br = || encoded.br.get_or_init(|| brotli(json).filter(|b| b.len() < json.len())).clone();
        match accepted {
            Encoding::Br => br().map(|b| ("br", b)).or_else(|| gzip().map(|b| ("gzip", b))),
            Encoding::Gzip => gzip().map(|b| ("gzip", b)),
            Encoding::Identity => None,
        }
    }

    /// The encodings made so far (tests).
    #[cfg(test)]
    fn made(&self) -> (Option<Bytes>, Option<Bytes>) {
        let encoded = self.0.encoded.as_ref();
        let get = |lock: Option<&OnceLock<Option<Bytes>>>| lock.and_then(|l| l.get().cloned().flatten());
        (get(encoded.map(|e| &e.gzip)), get(encoded.map(|e| &e.br)))
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
        negotiate(&request(value))
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

    fn request(accept: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(accept).expect("a header value"));
        headers
    }

    #[test]
    fn each_encoding_is_made_when_first_asked_for_and_decodes_to_the_json() {
        use std::io::Read;
        let json = format!("{{\"items\":[{}]}}", vec!["{\"id\":1,\"body_html\":\"<p>hello</p>\"}"; 200].join(","));
        let prepared = Prepared::new(json.clone());
        assert_eq!(prepared.len(), json.len(), "the weight is what is held: the JSON alone");

        let identity = prepared.respond(&HeaderMap::new());
        assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(prepared.made(), (None, None), "identity makes no encoding");

        assert!(prepared.prepare(&request("gzip")), "a new encoding makes the weight grow");
        assert!(!prepared.prepare(&request("gzip")), "once");
        let gzipped = prepared.clone().respond(&request("gzip"));
        assert_eq!(gzipped.headers()[header::CONTENT_ENCODING], "gzip");
        let (gzip, br) = prepared.made();
        assert!(br.is_none(), "only the encoding asked for is made");
        let gzip = gzip.expect("gzip made, and shared by the clones");
        let mut from_gzip = String::new();
        flate2::read::GzDecoder::new(&gzip[..]).read_to_string(&mut from_gzip).expect("gunzip");
        assert_eq!(from_gzip, json);

        assert_eq!(prepared.respond(&request("gzip, deflate, br")).headers()[header::CONTENT_ENCODING], "br");
        let br = prepared.made().1.expect("br made");
        let mut from_br = String::new();
        brotli::Decompressor::new(&br[..], 4096).read_to_string(&mut from_br).expect("unbrotli");
        assert_eq!(from_br, json);
        assert_eq!(prepared.len(), json.len() + gzip.len() + br.len(), "the weight counts each encoding made");

        let small = Prepared::new("{\"items\":[]}");
        assert!(small.respond(&request("br")).headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(small.len(), "{\"items\":[]}".len());
    }

    #[test]
    fn an_encoding_that_saves_nothing_is_not_kept() {
        // Bytes a compressor cannot shrink.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..65_536)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        let prepared = Prepared::new(noise.clone());
        for accept in ["gzip", "br"] {
            assert!(!prepared.prepare(&request(accept)), "{accept}: nothing kept");
            let response = prepared.respond(&request(accept));
            assert!(response.headers().get(header::CONTENT_ENCODING).is_none(), "{accept}: the bytes as they are");
        }
        assert_eq!(prepared.len(), noise.len(), "the weight is the bytes alone");
    }
}
