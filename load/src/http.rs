//! The HTTP side of a virtual user: one request of the mix, classified.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::time::Instant;

use crate::stats::{Kind, Outcome};
use crate::target::Target;

/// A reply the proxy acknowledged (201): the socket check expects its event.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub topic: i64,
    pub reply: i64,
}

const REPLY_BODY: &str =
    "A reply of ordinary length, with *some* emphasis and a [link](https://example.test/x). It asks about latency?";

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    /// Keyed posts: the run's key prefix and the tries after the first.
    keyed: Option<Keyed>,
}

#[derive(Clone)]
struct Keyed {
    /// `load-<random>`: every key of the run starts with it, and so does the
    /// tag each keyed post carries in its body (see [`Http::key_tag`]).
    prefix: String,
    retries: u32,
    next: Arc<AtomicU64>,
    /// Posts sent again after an unknown outcome.
    retried: Arc<AtomicU64>,
}

/// Outcomes after which a keyed post is sent again: whether it was written
/// is unknown (the connection broke, the load balancer lost the server, the
/// proxy lost its database connection) or it was refused unwritten (busy).
fn unknown(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::Connection | Outcome::Status(502..=504))
}

/// Pause between tries of a keyed post.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

impl Http {
    /// A client of `base`; `retry_writes` > 0 keys every post (see the flag).
    pub fn new(base: &str, retry_writes: u32) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            // Below the proxy's 10 s idle limit (VERITABLE_HEADER_TIMEOUT_SECS):
            // reusing a connection the server is closing at that moment fails
            // the request (6 "connection" errors in an hour's soak at 30 s).
            .pool_idle_timeout(Duration::from_secs(5))
            .build()?;
        let keyed = (retry_writes > 0).then(|| Keyed {
            prefix: format!("load-{:016x}", rand::random::<u64>()),
            retries: retry_writes,
            next: Arc::new(AtomicU64::new(0)),
            retried: Arc::new(AtomicU64::new(0)),
        });
        Ok(Self { client, base: base.trim_end_matches('/').to_owned(), keyed })
    }

    /// What every keyed post of this run carries in its body (`[load-…-`),
    /// for the durability check's count of posts written twice.
    pub fn key_tag(&self) -> Option<String> {
        self.keyed.as_ref().map(|k| format!("[{}-", k.prefix))
    }

    /// Keyed posts sent again after an unknown outcome.
    pub fn retried(&self) -> u64 {
        self.keyed.as_ref().map_or(0, |k| k.retried.load(Ordering::Relaxed))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends one request of `kind` as the user with `token`, answered (or
    /// timed out) by `deadline`.
    pub async fn send(
        &self,
        kind: Kind,
        token: &str,
        target: &Target,
        rng: &mut impl Rng,
        deadline: Instant,
    ) -> (Outcome, Option<Ack>) {
        let (mut request, topic, tries) = match kind {
            Kind::Lists => (self.client.get(self.url(&target.list_path(rng))), None, 1),
            Kind::Wiki => (self.client.get(self.url(&target.wiki_path(rng))), None, 1),
            Kind::Topic => {
                let url = self.url(&format!("/api/v1/forums/topics/{}", target.topic(rng)));
                (self.client.get(url), None, 1)
            }
            Kind::Posts => {
                let topic = target.topic(rng);
                let url = self.url(&format!("/api/v1/forums/topics/{topic}/replies"));
                match &self.keyed {
                    None => (self.client.post(url).json(&json!({ "body": REPLY_BODY })), Some(topic), 1),
                    Some(keyed) => {
                        let key = format!("{}-{}", keyed.prefix, keyed.next.fetch_add(1, Ordering::Relaxed));
                        let body = json!({ "body": format!("{REPLY_BODY} [{key}]") });
                        let request = self.client.post(url).header("Idempotency-Key", key).json(&body);
                        (request, Some(topic), 1 + keyed.retries)
                    }
                }
            }
        };
        let mut tries_left = tries;
        loop {
            tries_left -= 1;
            let again = if tries_left > 0 { request.try_clone() } else { None };
            let answer = self.exchange(request, kind, topic, token, deadline).await;
            match again {
                Some(next) if unknown(answer.0) && Instant::now() + RETRY_PAUSE < deadline => {
                    if let Some(keyed) = &self.keyed {
                        keyed.retried.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                    request = next;
                }
                _ => return answer,
            }
        }
    }

    /// One try of a request, classified.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        kind: Kind,
        topic: Option<i64>,
        token: &str,
        deadline: Instant,
    ) -> (Outcome, Option<Ack>) {
        let exchange = async {
            // Topic pages are read by visitors who are not signed in (and
            // so carry no write of their own to wait for).
            let request = if kind == Kind::Topic { request } else { request.bearer_auth(token) };
            let response = request.send().await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Err(_) => (Outcome::Timeout, None),
            Ok(Err(_)) => (Outcome::Connection, None),
            Ok(Ok((status, _))) if !status.is_success() => (Outcome::Status(status.as_u16()), None),
            Ok(Ok((_, bytes))) => {
                let ack = topic.and_then(|topic| {
                    let reply = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["id"].as_i64()?;
                    Some(Ack { topic, reply })
                });
                match (kind, ack) {
                    // A 201 without the stored reply's id is not an acknowledgement.
                    (Kind::Posts, None) => (Outcome::Malformed, None),
                    (_, ack) => (Outcome::Ok, ack),
                }
            }
        }
    }
}
