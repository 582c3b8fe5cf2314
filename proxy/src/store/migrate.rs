//! The schema in `sql/`, brought up to date under one advisory lock:
//!
//! - `sql/migrations/NNN_*.sql`: tables, indexes and data changes, applied
//!   in order, once each, every one in its own transaction, recorded in
//!   `schema_migrations` with a checksum. An applied migration is never
//!   edited (the runner refuses a changed one) and never defines a function
//!   or trigger.
//! - `sql/functions/NNN_*.sql`: the current definition of every function and
//!   trigger (`CREATE OR REPLACE`), applied after the migrations whenever a
//!   file's text differs from the one recorded in `schema_functions`. A
//!   function has exactly one definition in the tree: change it there.
//!
//! The files are plain SQL without BEGIN/COMMIT, so a DBA can also apply them
//! by hand (`psql -v ON_ERROR_STOP=1 -1 -f FILE`, migrations then functions);
//! only this runner records them.

use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, Transaction};

use crate::config::DbConfig;

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
            sql: include_str!(concat!("../../../sql/migrations/", stringify!($version), "_", $name, ".sql")),
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
    migration!(019, "cheaper_room_checks"),
    migration!(020, "idempotency_keys"),
    migration!(021, "listener_cursors"),
];

/// One file of `sql/functions/`: re-applied whenever its text changes.
pub struct Functions {
    /// The file's name without `.sql`, e.g. `020_replies`.
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! functions {
    ($name:literal) => {
        Functions { name: $name, sql: include_str!(concat!("../../../sql/functions/", $name, ".sql")) }
    };
}

/// In the order they are applied (a trigger after its function, an SQL
/// function after what it calls).
pub const FUNCTIONS: &[Functions] = &[
    functions!("010_render"),
    functions!("020_replies"),
    functions!("030_topics"),
    functions!("040_wiki"),
    functions!("050_notifications"),
    functions!("060_rate_limits"),
    functions!("070_events"),
    functions!("080_presence"),
    functions!("090_accounts"),
    functions!("100_tag_names"),
    functions!("110_reconcile"),
    functions!("120_idempotency"),
];

/// Checksums (SHA-256, hex) a database may have recorded for migrations
/// whose text has since changed without changing what they did to tables and
/// indexes: the texts from before the 2026-12 restructure, which moved every
/// function and trigger out of the migrations into `sql/functions/`, and the
/// first texts of 011 (without its `SET LOCAL search_path`), 016 and 017
/// (function bodies edited in place after they were applied, which the
/// runner then refused). A database that recorded one of these has the
/// same tables; the runner records the current checksum instead, and the
/// function files bring every function and trigger to its current text.
/// Any other difference is still refused.
pub const SUPERSEDED: &[(i32, &str)] = &[
    (6, "2e875d4f68adfbeec61d770d23fe2068b31bdd6f8947813a8d9be37a04de457d"),
    (8, "92d1a12481932838274d7ab69d4e8d7b15be1636b2261283140e99db020df9be"),
    (9, "108e83a618ef2ce251936421ae029d287115d5360e89cd93b37c7dd69c936479"),
    (11, "a47bc16c9157d5bf24b5b9749aba3414ddd8b24d83e7224f3a47edbd22494f0d"),
    (12, "f4b3e1a85acae4f18c163b6b750344185d06c5f1c51e5dc21eae909c2ade0340"),
    (13, "2ebeb1d987bf4b417d48841e8ea09c090bb575653d31ae21ecaaecf00c7c6561"),
    (14, "804bcecb834329f782d76281b8476ba171e5478cb21d62382f6912f7b0988600"),
    (15, "5bb87aa0d7b75024caa3d3115c365aa2f19338775d0291be7414fb00473a706c"),
    (16, "9ed8c4feeae89c7137d6c3d17a6ea0e6cf285f69d1f9f2271506799dbb688799"),
    (16, "deaf2cdb5ccf4aa7a3f9f0d527d4107b3d2efcb577b62416a412540978beab87"),
    (17, "ae0bc8dec4aa4278737ccf2954ff0545bb0cf06220d363accedd0696b247a463"),
    (17, "d1317d5263d746f9c5023ecd0aebc0fdbcffb45ec328eb28d24895e7df0e2d8b"),
];

impl Migration {
    pub fn file_name(&self) -> String {
        format!("{:03}_{}.sql", self.version, self.name)
    }

    fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }

    fn supersedes(&self, recorded: &[u8]) -> bool {
        let recorded = hex::encode(recorded);
        SUPERSEDED.iter().any(|(version, sum)| *version == self.version && *sum == recorded)
    }
}

impl Functions {
    pub fn file_name(&self) -> String {
        format!("{}.sql", self.name)
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
    #[error(
        "the database has migration {version} applied, which this binary does not know: it is older than the schema"
    )]
    Unknown { version: i32 },
    #[error("function file {file} failed and was rolled back: {source}")]
    FunctionsFailed { file: String, source: tokio_postgres::Error },
    #[error("database error while migrating: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: Vec<String>,
    pub already: usize,
    /// Migrations whose recorded checksum was a superseded one, now updated.
    pub rechecked: Vec<String>,
    /// Function files applied because their text was new or changed.
    pub functions: Vec<String>,
}

/// Serializes concurrent migrators (two proxies starting at once).
const LOCK_KEY: i64 = 0x7665_7269_7461; // "verita"

/// A transaction holding the migration lock until it ends.
async fn locked(client: &mut Client) -> Result<Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
    Ok(tx)
}

/// What `sql` defines with `CREATE [OR REPLACE] FUNCTION|TRIGGER|PROCEDURE`, as
/// `function veritable.name` or `trigger name`, lower case, in order.
pub fn definitions(sql: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in sql.lines() {
        let upper = line.trim_start().to_uppercase();
        let Some(rest) = upper.strip_prefix("CREATE ") else { continue };
        let rest = rest.strip_prefix("OR REPLACE ").unwrap_or(rest);
        let Some((kind, tail)) = rest.split_once(' ') else { continue };
        if !matches!(kind, "FUNCTION" | "TRIGGER" | "PROCEDURE") {
            continue;
        }
        let name: String = tail.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.').collect();
        names.push(format!("{} {}", kind.to_lowercase(), name.to_lowercase()));
    }
    names
}

/// Brings the database up to date: [`MIGRATIONS`], then [`FUNCTIONS`].
pub async fn all(client: &mut Client) -> Result<Report, MigrateError> {
    apply(client, MIGRATIONS, FUNCTIONS).await
}

/// Applies `migrations` not yet recorded, then the `functions` files whose
/// text changed (see [`apply_functions`]). Each migration runs in its own transaction
/// under a transaction-level advisory lock, so a failure rolls that migration
/// back completely and leaves earlier ones in place. Works through pgbouncer
/// in transaction mode (no session state is used).
pub async fn apply(
    client: &mut Client,
    migrations: &[Migration],
    functions: &[Functions],
) -> Result<Report, MigrateError> {
    {
        let tx = locked(client).await?;
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
        let tx = locked(client).await?;
        if let Some(row) = tx
            .query_opt("SELECT checksum FROM public.schema_migrations WHERE version = $1", &[&migration.version])
            .await?
        {
            let recorded: Vec<u8> = row.get(0);
            if recorded != migration.checksum() {
                if !migration.supersedes(&recorded) {
                    return Err(MigrateError::Changed { file });
                }
                tx.execute(
                    "UPDATE public.schema_migrations SET checksum = $2 WHERE version = $1",
                    &[&migration.version, &migration.checksum()],
                )
                .await?;
                tx.commit().await?;
                tracing::info!(migration = %file, "recorded the current checksum in place of a superseded one");
                report.rechecked.push(file);
            }
            report.already += 1;
            continue;
        }
        let started = Instant::now();
        // Index builds on big tables outlast the role's statement timeout (011).
        tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0").await?;
        tx.batch_execute(migration.sql).await.map_err(|source| MigrateError::Failed { file: file.clone(), source })?;
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
    report.functions = apply_functions(client, functions).await?;
    Ok(report)
}

/// Applies the function files whose text differs from the one recorded, all
/// in one transaction under the migration lock, and returns their names. A
/// failure rolls every one of them back.
pub async fn apply_functions(client: &mut Client, files: &[Functions]) -> Result<Vec<String>, MigrateError> {
    let tx = locked(client).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.schema_functions (
             name       text        PRIMARY KEY,
             checksum   bytea       NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0",
    )
    .await?;
    let mut applied = Vec::new();
    for file in files {
        let recorded: Option<Vec<u8>> = tx
            .query_opt("SELECT checksum FROM public.schema_functions WHERE name = $1", &[&file.name])
            .await?
            .map(|row| row.get(0));
        if recorded.as_deref() == Some(file.checksum().as_slice()) {
            continue;
        }
        tx.batch_execute(file.sql)
            .await
            .map_err(|source| MigrateError::FunctionsFailed { file: file.file_name(), source })?;
        tx.execute(
            "INSERT INTO public.schema_functions (name, checksum) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
            &[&file.name, &file.checksum()],
        )
        .await?;
        applied.push(file.file_name());
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(files = %applied.join(", "), "applied function files");
    }
    Ok(applied)
}

/// `veritable-proxy migrate`.
pub async fn run_cli(config: &DbConfig) -> anyhow::Result<()> {
    let mut conn = super::connect(config).await?;
    let report = all(&mut conn.client).await?;
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
    if !report.rechecked.is_empty() {
        println!("migrate: recorded current checksums for {}", report.rechecked.join(", "));
    }
    if !report.functions.is_empty() {
        println!("migrate: applied function files {}", report.functions.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_files(dir: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql").join(dir);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("sql/ exists in the source tree")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        files
    }

    /// Every file in sql/migrations is in MIGRATIONS, in order, and nothing else is.
    #[test]
    fn migrations_match_the_sql_directory() {
        let listed: Vec<String> = MIGRATIONS.iter().map(Migration::file_name).collect();
        assert_eq!(sql_files("migrations"), listed);
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        let expected: Vec<i32> = (1..=i32::try_from(MIGRATIONS.len()).expect("few migrations")).collect();
        assert_eq!(versions, expected, "versions are 1, 2, 3, ... without gaps");
    }

    /// Every file in sql/functions is in FUNCTIONS, in name order.
    #[test]
    fn functions_match_the_sql_directory() {
        let listed: Vec<String> = FUNCTIONS.iter().map(Functions::file_name).collect();
        assert_eq!(sql_files("functions"), listed);
    }

    fn all_sql() -> impl Iterator<Item = (String, &'static str)> {
        MIGRATIONS.iter().map(|m| (m.file_name(), m.sql)).chain(FUNCTIONS.iter().map(|f| (f.file_name(), f.sql)))
    }

    #[test]
    fn files_pin_their_search_path() {
        for (file, sql) in all_sql() {
            assert!(
                sql.contains("\nSET LOCAL search_path = public;\n"),
                "{file} must start with SET LOCAL search_path = public;"
            );
        }
    }

    /// The SQL outside the bodies of functions and procedures (`$$ … $$`;
    /// the files use no other quote tags).
    fn outside_bodies(sql: &str) -> String {
        sql.split("$$").step_by(2).collect::<Vec<_>>().join(" ")
    }

    /// A procedure may commit as it goes (the online reconcile does); a file
    /// may not: `migrate` applies each in a transaction of its own.
    #[test]
    fn files_do_not_manage_their_own_transactions() {
        let procedure = "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;\nCOMMIT;";
        assert_eq!(outside_bodies(procedure).matches("COMMIT;").count(), 1, "only the file's own COMMIT counts");
        for (file, sql) in all_sql() {
            let upper = outside_bodies(sql).to_uppercase();
            for word in ["BEGIN;", "COMMIT;", "ROLLBACK;"] {
                assert!(!upper.contains(word), "{file} contains {word}");
            }
        }
    }

    /// A function or trigger has exactly one definition in the tree, in
    /// sql/functions, and the function files are re-creatable.
    #[test]
    fn every_function_and_trigger_is_defined_once_in_the_function_files() {
        for migration in MIGRATIONS {
            assert_eq!(definitions(migration.sql), Vec::<String>::new(), "{} defines functions", migration.file_name());
        }
        let mut seen = std::collections::BTreeMap::new();
        for file in FUNCTIONS {
            for name in definitions(file.sql) {
                if let Some(other) = seen.insert(name.clone(), file.file_name()) {
                    panic!("{name} is defined in {other} and {}", file.file_name());
                }
            }
            for line in file.sql.lines() {
                let upper = line.trim_start().to_uppercase();
                if upper.starts_with("CREATE ") && !upper.starts_with("CREATE OR REPLACE ") {
                    panic!("{}: not re-creatable: {line}", file.file_name());
                }
            }
        }
        assert!(seen.len() > 40, "{} definitions", seen.len());
    }

    #[test]
    fn superseded_checksums_are_of_known_migrations_and_not_current() {
        for (version, sum) in SUPERSEDED {
            let migration = MIGRATIONS.iter().find(|m| m.version == *version).expect("a known migration");
            assert_ne!(hex::encode(migration.checksum()), *sum, "{}", migration.file_name());
            assert_eq!(sum.len(), 64);
        }
    }
}
