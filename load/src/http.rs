//! The HTTP side of a virtual user: one request of the mix, classified.

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
}

impl Http {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            // Below the proxy's 10 s idle limit (VERITABLE_HEADER_TIMEOUT_SECS):
            // reusing a connection the server is closing at that moment fails
            // the request (6 "connection" errors in an hour's soak at 30 s).
            .pool_idle_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { client, base: base.trim_end_matches('/').to_owned() })
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
        let (request, topic) = match kind {
            Kind::Lists => (self.client.get(self.url(&target.list_path(rng))), None),
            Kind::Wiki => (self.client.get(self.url(&target.wiki_path(rng))), None),
            Kind::Posts => {
                let topic = target.topic(rng);
                let body = json!({ "body": REPLY_BODY });
                (self.client.post(self.url(&format!("/api/v1/forums/topics/{topic}/replies"))).json(&body), Some(topic))
            }
        };
        let exchange = async {
            let response = request.bearer_auth(token).send().await?;
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
