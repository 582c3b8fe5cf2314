//! The database on its own: migrations and function files, the schema's
//! constraints, triggers, the extension's walks and pages, the seed, and the
//! plans of every statement, and the settings the cluster runs with.

mod explain;
mod migrations;
mod reconcile;
mod reply_tree;
mod schema;
mod seed;
mod settings;
mod topic_page;
mod triggers;
