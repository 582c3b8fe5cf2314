//! Realtime over real WebSockets: delivery, order, resume with `since`
//! across proxies, commit-order safety, two-proxy fan-out, refusals, slow
//! consumers, cleanup to empty, listener recovery, shutdown.

mod events;
mod limits;
mod presence;

use serde_json::json;
use veritable_tests::Api;

pub async fn reply(api: &Api, topic: i64, body: &str) -> i64 {
    let (status, reply) =
        api.call("POST", &format!("/api/v1/forums/topics/{topic}/replies"), Some(json!({ "body": body }))).await;
    assert_eq!(status, 201, "{reply}");
    reply["id"].as_i64().expect("id")
}

pub fn server_config(url: &str) -> veritable_proxy::config::ServeConfig {
    let mut config = veritable_tests::serve_config(url);
    config.posts_per_minute = 10_000;
    // The listener reads PostgreSQL directly, even in the pgbouncer suite.
    config.listen_url = Some(url.parse().expect("url"));
    // Most tests read presence on anonymous sockets too (the `subscribe`
    // helper expects the snapshot); the default, off, has its own test.
    config.ws_anonymous_presence = true;
    config
}
