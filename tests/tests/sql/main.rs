//! The database on its own: migrations and function files, the schema's
//! constraints, triggers, the extension's walks and pages, the seed, and the
//! plans of every statement.

mod explain;
mod migrations;
mod reply_tree;
mod schema;
mod seed;
mod topic_page;
mod triggers;
