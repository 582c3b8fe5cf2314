//! What the users aim at, read once from the proxy's database: the seeded
//! users, the open topics (all, or a hot set), the categories and wiki pages.

use anyhow::Context;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use tokio_postgres::Client;
use tokio_postgres::types::{FromSqlOwned, ToSql};

use crate::args::Topics;

#[derive(Debug)]
pub struct Target {
    pub usernames: Vec<String>,
    /// Topics to list, post to and watch.
    pub topics: Vec<i64>,
    pub categories: Vec<i64>,
    pub wiki_slugs: Vec<String>,
}

impl Target {
    pub async fn discover(db: &Client, users: usize, topics: Topics, rng: &mut impl Rng) -> anyhow::Result<Self> {
        let limit = i64::try_from(users).unwrap_or(i64::MAX);
        let usernames: Vec<String> = column(
            db,
            "SELECT username FROM users WHERE role = 'member' ORDER BY id LIMIT $1",
            &[&limit],
            "the seeded users",
        )
        .await?;
        let mut open: Vec<i64> = column(
            db,
            "SELECT id FROM forum_topics WHERE NOT is_locked AND NOT is_deleted ORDER BY id",
            &[],
            "the topics",
        )
        .await?;
        let categories = column(db, "SELECT id FROM forum_categories ORDER BY id", &[], "the categories").await?;
        let wiki_slugs: Vec<String> =
            column(db, "SELECT slug FROM wiki_pages WHERE NOT is_deleted ORDER BY id", &[], "the wiki pages").await?;
        anyhow::ensure!(!usernames.is_empty(), "no seeded users: run `cargo xtask seed small` (or larger)");
        anyhow::ensure!(!open.is_empty(), "no open topics to post to");
        anyhow::ensure!(!wiki_slugs.is_empty(), "no wiki pages to read");
        if let Topics::Hot(n) = topics {
            open.shuffle(rng);
            open.truncate(n);
            open.sort_unstable();
        }
        Ok(Self { usernames, topics: open, categories, wiki_slugs })
    }

    pub fn topic(&self, rng: &mut impl Rng) -> i64 {
        *self.topics.choose(rng).unwrap_or(&1)
    }

    /// A topic list: the front page (all categories) one time in four, else
    /// one category's first page.
    pub fn list_path(&self, rng: &mut impl Rng) -> String {
        match self.categories.choose(rng) {
            Some(category) if rng.random_range(0..4) > 0 => format!("/api/v1/forums/topics?category={category}"),
            _ => "/api/v1/forums/topics".to_owned(),
        }
    }

    pub fn wiki_path(&self, rng: &mut impl Rng) -> String {
        format!("/api/v1/wiki/pages/{}", self.wiki_slugs.choose(rng).map_or("", String::as_str))
    }

    /// `n` distinct topics to watch (fewer when the target has fewer).
    pub fn rooms(&self, n: usize, rng: &mut impl Rng) -> Vec<i64> {
        self.topics.choose_multiple(rng, n).copied().collect()
    }
}

/// The first column of every row of `sql`.
async fn column<T: FromSqlOwned>(
    db: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    what: &str,
) -> anyhow::Result<Vec<T>> {
    let rows = db.query(sql, params).await.with_context(|| format!("reading {what}"))?;
    rows.iter().map(|r| r.try_get(0).with_context(|| format!("reading {what}"))).collect()
}
