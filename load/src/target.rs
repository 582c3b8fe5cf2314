//! What the users aim at, read once from the proxy's database: the seeded
//! users, the open topics (all, or a hot set), the categories and wiki pages.

use anyhow::Context;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use tokio_postgres::Client;

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
        let usernames: Vec<String> = db
            .query("SELECT username FROM users WHERE role = 'member' ORDER BY id LIMIT $1", &[&limit])
            .await
            .context("reading the seeded users")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut open: Vec<i64> = db
            .query("SELECT id FROM forum_topics WHERE NOT is_locked AND NOT is_deleted ORDER BY id", &[])
            .await
            .context("reading the topics")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let categories = db
            .query("SELECT id FROM forum_categories ORDER BY id", &[])
            .await
            .context("reading the categories")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let wiki_slugs: Vec<String> = db
            .query("SELECT slug FROM wiki_pages WHERE NOT is_deleted ORDER BY id", &[])
            .await
            .context("reading the wiki pages")?
            .iter()
            .map(|r| r.get(0))
            .collect();
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
