//! Realtime over real WebSockets: delivery, order, resume with `since`
//! across proxies, commit-order safety, two-proxy fan-out, refusals, slow
//! consumers, cleanup to empty, listener recovery, shutdown.

mod events;
mod limits;
mod presence;

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
