//! Shared helpers for the integration tests. They run against the private
//! cluster that `cargo xtask test` starts and prepares (database
//! `veritable_test`, migrated, with `small` seed data), and start the real
//! proxy on `127.0.0.1:0`.
//!
//! `db` (databases and connections), `server` (the proxy), `api` (its HTTP
//! API), `ws` (its WebSockets), `metrics` (its `/metrics`), `wait` (`until`).

pub mod api;
pub mod db;
pub mod metrics;
pub mod server;
pub mod wait;
pub mod ws;

pub use api::Api;
pub use db::{FreshDb, connect, database_url, sqlstate};
pub use server::{TestServer, closed_port, proxy_bin, serve_config};
pub use wait::until;
