//! The HTTP surface: the route table, middleware, extractors, errors, the
//! web page's files and the TCP edge.

pub mod assets;
pub mod compress;
pub mod connections;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod middleware;
pub mod openapi;
pub mod origin;
pub mod respond;
mod routes;

pub use routes::{openapi, router};
