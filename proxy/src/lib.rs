//! veritable-proxy: the thin HTTP/WebSocket service in front of PostgreSQL.
//!
//! `main.rs` only parses the command line; everything here can be driven by
//! tests, which start the real server on `127.0.0.1:0` (see [`server::run`]).
#![forbid(unsafe_code)]

pub mod auth;
pub mod cache;
pub mod config;
pub mod connections;
pub mod db;
pub mod error;
pub mod forums;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod openapi;
pub mod origin;
pub mod params;
pub mod passwords;
pub mod people;
pub mod realtime;
pub mod replies;
pub mod respond;
pub mod search;
pub mod seed;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod telemetry;
pub mod topics;
pub mod wiki;

pub use error::{AppError, AppResult};
