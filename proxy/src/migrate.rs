//! The schema migrations in `sql/`, applied in order, once each, every one in
//! its own transaction, recorded in `schema_migrations` with a checksum.
//!
//! The files are plain SQL without BEGIN/COMMIT, so a DBA can also apply them
//! by hand (`psql -v ON_ERROR_STOP=1 -1 -f sql/NNN_name.sql`); only this runner
//! records them.

use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::config::DbConfig;
use crate::db;

pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../sql/", stringify!($version), "_", $name, ".sql")),
        }
    };
}

// Three-digit file prefixes: `stringify!(001)` keeps the leading zeros.
#[allow(clippy::zero_prefixed_literal)]
pub const MIGRATIONS: &[Migration] = &[
    migration!(001, "extension"),
    migration!(002, "users_sessions"),
    migration!(003, "forums"),
    migration!(004, "wiki"),
    migration!(005, "notifications_activity"),
    migration!(006, "events"),
    migration!(007, "reply_tree_and_indexes"),
    migration!(008, "triggers"),
    migration!(009, "rate_limits"),
    migration!(010, "search"),
    migration!(011, "role_timeouts"),
    migration!(012, "realtime"),
    migration!(013, "presence"),
    migration!(014, "account_events"),
    migration!(015, "reconcile_by_difference"),
    migration!(016, "topic_tag_names"),
    migration!(017, "topic_stats"),
    migration!(018, "body_html_bound"),
];

impl Migration {
    pub fn file_name(&self) -> String {
        format!("{:03}_{}.sql", self.version, self.name)
    }

    fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {file} failed and was rolled back: {source}")]
    Failed { file: String, source: tokio_postgres::Error },
    #[error(
        "migration {file} was changed after it was applied (checksum differs); \
         add a new migration instead of editing an applied one"
    )]
    Changed { file: String },
    #[error("the database has migration {version} applied, which this binary does not know: it is older than the schema")]
    Unknown { version: i32 },
    #[error("database error while migrating: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<String>,
    pub already: usize,
}

/// Serializes concurrent migrators (two proxies starting at once).
const LOCK_KEY: i64 = 0x7665_7269_7461; // "verita"

/// Applies `migrations` not yet recorded. Each runs in its own transaction
/// under a transaction-level advisory lock, so a failure rolls that migration
/// back completely and leaves earlier ones in place. Works through pgbouncer
/// in transaction mode (no session state is used).
pub async fn apply(client: &mut Client, migrations: &[Migration]) -> Result<Report, MigrateError> {
    {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations (
                 version     integer     PRIMARY KEY,
                 name        text        NOT NULL,
                 checksum    bytea       NOT NULL,
                 applied_at  timestamptz NOT NULL DEFAULT now(),
                 duration_ms integer     NOT NULL
             )",
        )
        .await?;
        tx.commit().await?;
    }

    let mut report = Report::default();
    let known_max = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    for migration in migrations {
        let file = migration.file_name();
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        if let Some(row) = tx
            .query_opt("SELECT checksum FROM public.schema_migrations WHERE version = $1", &[&migration.version])
            .await?
        {
            let recorded: Vec<u8> = row.get(0);
            if recorded != migration.checksum() {
                return Err(MigrateError::Changed { file });
            }
            report.already += 1;
            continue;
        }
        let started = Instant::now();
        // Index builds on big tables outlast the role's statement timeout (011).
        tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0").await?;
        tx.batch_execute(migration.sql)
            .await
            .map_err(|source| MigrateError::Failed { file: file.clone(), source })?;
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO public.schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
            &[&migration.version, &migration.name, &migration.checksum(), &duration_ms],
        )
        .await?;
        tx.commit().await.map_err(|source| MigrateError::Failed { file: file.clone(), source })?;
        tracing::info!(migration = %file, duration_ms, "applied");
        report.applied.push(file);
    }

    let newest: Option<i32> = client.query_one("SELECT max(version) FROM public.schema_migrations", &[]).await?.get(0);
    if let Some(version) = newest.filter(|v| *v > known_max) {
        return Err(MigrateError::Unknown { version });
    }
    Ok(report)
}

/// `veritable-proxy migrate`.
pub async fn run_cli(config: &DbConfig) -> anyhow::Result<()> {
    let mut conn = db::connect(config).await?;
    let report = apply(&mut conn.client, MIGRATIONS).await?;
    if report.applied.is_empty() {
        println!("migrate: schema is up to date ({} migrations already applied)", report.already);
    } else {
        println!(
            "migrate: applied {} ({} already applied): {}",
            report.applied.len(),
            report.already,
            report.applied.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in sql/ is in MIGRATIONS, in order, and nothing else is.
    #[test]
    fn migrations_match_the_sql_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("sql/ exists in the source tree")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(Migration::file_name).collect();
        assert_eq!(files, listed);
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i32> = (1..=i32::try_from(MIGRATIONS.len()).expect("few migrations")).collect();
        assert_eq!(versions, expected, "versions are 1, 2, 3, ... without gaps");
    }

    #[test]
    fn migrations_pin_their_search_path() {
        for migration in MIGRATIONS {
            assert!(
                migration.sql.contains("\nSET LOCAL search_path = public;\n"),
                "{} must start with SET LOCAL search_path = public;",
                migration.file_name()
            );
        }
    }

    #[test]
    fn migrations_do_not_manage_their_own_transactions() {
        for migration in MIGRATIONS {
            let upper = migration.sql.to_uppercase();
            for word in ["BEGIN;", "COMMIT;", "ROLLBACK;"] {
                assert!(!upper.contains(word), "{} contains {word}", migration.file_name());
            }
        }
    }
}
