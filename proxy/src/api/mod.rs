//! One file per resource: its handlers (each with its `#[utoipa::path]`,
//! from which the route table takes method and path), request types and rules.

pub mod activity;
pub mod auth;
pub mod categories;
pub mod health;
pub mod notifications;
pub mod preferences;
pub mod preview;
pub mod replies;
pub mod search;
pub mod topics;
pub mod wiki;
