//! `veritable-proxy seed`: deterministic demo and scale data, loaded with
//! binary COPY inside one transaction (all or nothing).
//!
//! The tables' triggers are off while the seed loads (one transaction, so
//! nobody sees that): what they would derive row by row is computed
//! set-based instead. Topic counters and tag names, participants and the
//! activity feed come from SQL after the base rows are in, the way
//! `veritable.reconcile_topic_stats()` would; reply depths and child counts come from the generator; bodies are
//! plain paragraphs whose HTML the generator writes exactly as
//! `veritable.render_markdown` renders it (an integration test checks this),
//! so rows carry the current policy version.

mod generate;
mod shape;
mod text;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::pin_mut;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

pub use self::generate::username_of;
pub use self::shape::Shape;
use crate::config::SeedArgs;
use crate::store;

/// The password of every demo account (`admin`, `moderator`, `demo`, and the generated users).
pub const DEMO_PASSWORD: &str = "veritable-demo";

/// Tables the seed fills, children first (the order TRUNCATE and checks use).
pub const SEEDED_TABLES: &[&str] = &[
    "unified_activity",
    "mentions",
    "notifications",
    "wiki_revisions",
    "wiki_pages",
    "forum_topic_stats",
    "forum_topic_participants",
    "forum_topic_tags",
    "forum_replies",
    "forum_topics",
    "forum_tags",
    "forum_categories",
    "sessions",
    "users",
];

/// Tables whose row triggers the seed replaces with set-based work.
const TRIGGERED_TABLES: &[&str] =
    &["forum_topics", "forum_topic_tags", "forum_replies", "wiki_revisions", "notifications"];

#[derive(Debug, Default)]
pub struct Summary {
    pub rows: Vec<(&'static str, u64)>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn count(&self, table: &str) -> u64 {
        self.rows.iter().filter(|(t, _)| *t == table).map(|(_, n)| n).sum()
    }
}

/// `veritable-proxy seed`.
pub async fn run_cli(args: &SeedArgs) -> anyhow::Result<()> {
    let mut conn = store::connect(&args.db).await?;
    if args.if_empty && has_users(&conn.client).await? {
        println!("seed: the database already holds users; nothing to do (--if-empty)");
        return Ok(());
    }
    let shape = Shape::of(args.scale);
    println!("seed: loading {:?} scale (rng seed {:#x})", args.scale, args.rng_seed);
    let summary = seed(&mut conn.client, &shape, args.rng_seed, args.replace, true).await?;
    println!("seed: done in {:.1} s", summary.elapsed.as_secs_f64());
    Ok(())
}

async fn has_users(client: &Client) -> anyhow::Result<bool> {
    Ok(client.query_one("SELECT EXISTS (SELECT 1 FROM users)", &[]).await?.get(0))
}

/// Loads `shape` in one transaction. Refuses a database that already holds
/// users unless `replace`, which empties the seeded tables first.
pub async fn seed(
    client: &mut Client,
    shape: &Shape,
    rng_seed: u64,
    replace: bool,
    progress: bool,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let tx = client.transaction().await?;
    // Long COPYs must not be cut short by a role-level timeout meant for requests.
    tx.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = '10s'").await?;
    if replace {
        let list = SEEDED_TABLES.join(", ");
        tx.batch_execute(&format!("TRUNCATE {list} RESTART IDENTITY CASCADE")).await?;
    } else if tx.query_one("SELECT EXISTS (SELECT 1 FROM users)", &[]).await?.get::<_, bool>(0) {
        bail!("the database already holds users: use --replace to empty it first, or --if-empty to skip");
    }

    for table in TRIGGERED_TABLES {
        tx.batch_execute(&format!("ALTER TABLE {table} DISABLE TRIGGER USER")).await?;
    }
    let full_text = drop_gin_indexes(&tx).await?;
    let password_hash = generate::password_hash(DEMO_PASSWORD)?;
    let mut load = Loader { tx: &tx, progress, summary: Summary::default() };
    generate::load_all(&mut load, shape, rng_seed, &password_hash).await?;
    derive(&mut load).await?;
    rebuild_indexes(&tx, &full_text, progress).await?;
    reset_sequences(&tx).await?;
    for table in TRIGGERED_TABLES {
        tx.batch_execute(&format!("ALTER TABLE {table} ENABLE TRIGGER USER")).await?;
    }
    let mut summary = load.summary;
    tx.commit().await.context("committing the seed")?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Counters, participants and the activity feed, from the base rows.
async fn derive(load: &mut Loader<'_>) -> anyhow::Result<()> {
    let steps: &[(&'static str, &str)] = &[
        (
            "forum_topic_participants",
            "INSERT INTO forum_topic_participants (topic_id, user_id, reply_count)
             SELECT topic_id, author_id, count(*) FROM forum_replies
             WHERE NOT is_deleted GROUP BY topic_id, author_id",
        ),
        (
            "forum_topic_stats",
            "INSERT INTO forum_topic_stats (topic_id, category_id, is_pinned, is_deleted, reply_count,
                                            participant_count, last_reply_at, last_activity_at)
             SELECT t.id, t.category_id, t.is_pinned, t.is_deleted, coalesce(s.replies, 0),
                    coalesce(s.participants, 0), s.last_reply_at, greatest(t.created_at, s.last_reply_at)
             FROM forum_topics t
             LEFT JOIN (SELECT r.topic_id, count(*) AS replies, max(r.created_at) AS last_reply_at,
                          (SELECT count(*) FROM forum_topic_participants p WHERE p.topic_id = r.topic_id) AS participants
                   FROM forum_replies r WHERE NOT r.is_deleted GROUP BY r.topic_id) s ON s.topic_id = t.id",
        ),
        (
            "forum_topics (tag names)",
            "UPDATE forum_topics t SET tag_names = g.names
             FROM (SELECT tt.topic_id, array_agg(tag.name ORDER BY tag.name) AS names
                   FROM forum_topic_tags tt JOIN forum_tags tag ON tag.id = tt.tag_id GROUP BY tt.topic_id) g
             WHERE g.topic_id = t.id",
        ),
        (
            "unified_activity",
            "INSERT INTO unified_activity (user_id, kind, topic_id, reply_id, wiki_page_id, wiki_revision_id, created_at)
             SELECT user_id, kind, topic_id, reply_id, wiki_page_id, wiki_revision_id, created_at FROM (
                 SELECT author_id AS user_id, 'topic_created' AS kind, id AS topic_id, NULL::bigint AS reply_id,
                        NULL::bigint AS wiki_page_id, NULL::bigint AS wiki_revision_id, created_at
                 FROM forum_topics
                 UNION ALL
                 SELECT author_id, 'reply_created', topic_id, id, NULL, NULL, created_at FROM forum_replies
                 UNION ALL
                 SELECT author_id, 'wiki_revised', NULL, NULL, page_id, id, created_at FROM wiki_revisions
             ) a ORDER BY created_at, kind, topic_id, reply_id, wiki_revision_id",
        ),
    ];
    for (label, sql) in steps {
        let started = Instant::now();
        let rows = load.tx.execute(*sql, &[]).await.with_context(|| format!("deriving {label}"))?;
        if load.progress {
            println!("seed: {label:<26} {rows:>10} rows in {:.1} s", started.elapsed().as_secs_f64());
        }
        load.summary.rows.push((label, rows));
    }
    Ok(())
}

/// Drops the seeded tables' GIN (full-text) indexes for the load and returns
/// their definitions: built once over the loaded rows they cost a fraction
/// of what 1M row-by-row insertions into them do. Inside the seed's
/// transaction, so nobody sees them missing.
async fn drop_gin_indexes(tx: &Transaction<'_>) -> anyhow::Result<Vec<String>> {
    let found = tx
        .query(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
               FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_am am ON am.oid = c.relam
              WHERE am.amname = 'gin' AND i.indrelid::regclass::text = ANY($1)",
            &[&SEEDED_TABLES],
        )
        .await?;
    let mut definitions = Vec::with_capacity(found.len());
    for row in found {
        let name: String = row.get(0);
        tx.batch_execute(&format!("DROP INDEX {name}"))
            .await
            .with_context(|| format!("dropping {name} for the load"))?;
        definitions.push(row.get(1));
    }
    Ok(definitions)
}

/// Builds the indexes `drop_gin_indexes` took away.
async fn rebuild_indexes(tx: &Transaction<'_>, definitions: &[String], progress: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'").await?;
    for definition in definitions {
        tx.batch_execute(definition).await.with_context(|| format!("rebuilding {definition}"))?;
    }
    if progress {
        let label = "full-text indexes (built)";
        println!("seed: {label:<26} {:>10} built in {:.1} s", definitions.len(), started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Identity sequences continue after the ids the seed chose.
async fn reset_sequences(tx: &Transaction<'_>) -> anyhow::Result<()> {
    let with_identity = tx
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'id' AND is_identity = 'YES'
               AND table_name = ANY($1)",
            &[&SEEDED_TABLES],
        )
        .await?;
    for row in with_identity {
        let table: String = row.get(0);
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
            ),
            &[],
        )
        .await
        .with_context(|| format!("resetting the id sequence of {table}"))?;
    }
    Ok(())
}

/// Streams rows into tables with binary COPY and counts them.
pub struct Loader<'a> {
    tx: &'a Transaction<'a>,
    progress: bool,
    summary: Summary,
}

impl Loader<'_> {
    /// COPYs the rows `rows` yields into `table (columns)`; `expected` sizes the progress bar.
    pub async fn copy<I, R>(
        &mut self,
        table: &'static str,
        columns: &[(&str, Type)],
        expected: u64,
        rows: I,
    ) -> anyhow::Result<()>
    where
        I: IntoIterator<Item = R>,
        R: Row,
    {
        let started = Instant::now();
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let types: Vec<Type> = columns.iter().map(|(_, ty)| ty.clone()).collect();
        let sink = self.tx.copy_in(&format!("COPY {table} ({}) FROM STDIN (FORMAT binary)", names.join(", "))).await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        pin_mut!(writer);
        let bar = if self.progress { progress_bar(table, expected) } else { ProgressBar::hidden() };
        let mut count = 0u64;
        for row in rows {
            writer.as_mut().write(&row.values()).await.with_context(|| format!("copying into {table}"))?;
            count += 1;
            if count.is_multiple_of(4096) {
                bar.set_position(count);
            }
        }
        writer.finish().await.with_context(|| format!("finishing the copy into {table}"))?;
        bar.finish_and_clear();
        if self.progress {
            println!("seed: {table:<26} {count:>10} rows in {:.1} s", started.elapsed().as_secs_f64());
        }
        self.summary.rows.push((table, count));
        Ok(())
    }
}

/// One row's values, in the column order given to [`Loader::copy`].
pub trait Row {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)>;
}

fn progress_bar(table: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("seed: {prefix:<26} [{bar:30}] {pos:>10}/{len} {per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(table.to_owned());
    bar
}
