//! Plain-Rust logic of veritable, testable without PostgreSQL. The extension
//! wraps it in SQL functions; the proxy uses the same constants and parsers.
#![forbid(unsafe_code)]

pub mod cursor;
pub mod mentions;
pub mod rules;
pub mod sanitize;
pub mod tree;
