//! The HTTP API over real TCP against the real proxy and PostgreSQL: one
//! module per resource, plus the authorization matrix and adversarial input.
//! `cargo xtask test` runs this binary twice: directly, and with the proxy
//! behind pgbouncer in transaction mode.

mod adversarial;
mod auth;
mod authz;
mod forums;
mod idempotency;
mod limits;
mod page;
mod people;
mod replies;
mod topics;
mod wiki;
