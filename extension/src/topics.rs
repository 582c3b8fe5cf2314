//! `veritable.topic_page`: one index-ordered query per page (pinned first,
//! then last activity), stats read from the counters the triggers keep, and
//! keyset pagination so page 1,000 costs what page 1 costs.

use pgrx::prelude::*;
use pgrx::spi::{SpiResult, SpiTupleTable};
use pgrx::{PgBuiltInOids, PgOid};
use veritable_core::cursor::TopicKey;

use crate::errors;
use crate::plans::with_plan;

pub use veritable_core::rules::{PAGE_SIZE_DEFAULT as DEFAULT_PAGE_SIZE, PAGE_SIZE_MAX as MAX_PAGE_SIZE};

pub struct TopicRow {
    pub id: i64,
    pub title: String,
    pub author_id: i64,
    pub author_name: String,
    pub author_display_name: String,
    pub category_id: i64,
    pub category_name: String,
    pub reply_count: i32,
    pub view_count: i64,
    pub participant_count: i32,
    pub last_reply_at: Option<TimestampWithTimeZone>,
    pub last_activity_at: TimestampWithTimeZone,
    pub created_at: TimestampWithTimeZone,
    pub is_pinned: bool,
    pub is_locked: bool,
    pub tags: Vec<String>,
}

/// One select list; the filter differs for one category or all of them.
///
/// The page is cut from `forum_topic_stats` alone (ORDER BY + LIMIT over its
/// page index, which stops after page_size + 1 entries) before anything is
/// joined: with the joins inside, the planner misjudged the keyset
/// condition's selectivity on deep pages and hashed and sorted every older
/// topic (measured 112 ms for page 1,000). Tag names come from the topic row
/// (`tag_names`, kept by the triggers of migration 016): looking them up per
/// topic was a fifth of the call.
macro_rules! page_query {
    ($filter:literal) => {
        concat!(
            "SELECT t.id, t.title, t.author_id, u.username, u.display_name, t.category_id, c.name,
                    s.reply_count, t.view_count, s.participant_count, s.last_reply_at, s.last_activity_at,
                    t.created_at, s.is_pinned, t.is_locked, t.tag_names
               FROM (SELECT s.topic_id, s.is_pinned, s.reply_count, s.participant_count, s.last_reply_at,
                            s.last_activity_at
                       FROM public.forum_topic_stats s
                      WHERE NOT s.is_deleted AND ",
            $filter,
            "           AND (s.is_pinned, s.last_activity_at, s.topic_id) < ($2, $3, $4)
                      ORDER BY s.is_pinned DESC, s.last_activity_at DESC, s.topic_id DESC
                      LIMIT $5) s
               JOIN public.forum_topics t ON t.id = s.topic_id
               JOIN public.users u ON u.id = t.author_id
               JOIN public.forum_categories c ON c.id = t.category_id
              ORDER BY s.is_pinned DESC, s.last_activity_at DESC, s.topic_id DESC"
        )
    };
}

const IN_CATEGORY: &str = page_query!("s.category_id = $1");
const ALL_CATEGORIES: &str = page_query!("($1::bigint IS NULL)");

/// (name, sql) of every query here, for `veritable.hot_queries()`.
pub const QUERIES: &[(&str, &str)] = &[("topic_page.category", IN_CATEGORY), ("topic_page.all", ALL_CATEGORIES)];

fn read(table: SpiTupleTable<'_>) -> SpiResult<Vec<TopicRow>> {
    let mut out = Vec::with_capacity(table.len());
    for row in table {
        out.push(TopicRow {
            id: row.get(1)?.unwrap_or_default(),
            title: row.get(2)?.unwrap_or_default(),
            author_id: row.get(3)?.unwrap_or_default(),
            author_name: row.get(4)?.unwrap_or_default(),
            author_display_name: row.get(5)?.unwrap_or_default(),
            category_id: row.get(6)?.unwrap_or_default(),
            category_name: row.get(7)?.unwrap_or_default(),
            reply_count: row.get(8)?.unwrap_or_default(),
            view_count: row.get(9)?.unwrap_or_default(),
            participant_count: row.get(10)?.unwrap_or_default(),
            last_reply_at: row.get(11)?,
            last_activity_at: row.get(12)?.unwrap_or_else(TimestampWithTimeZone::negative_infinity),
            created_at: row.get(13)?.unwrap_or_else(TimestampWithTimeZone::negative_infinity),
            is_pinned: row.get(14)?.unwrap_or_default(),
            is_locked: row.get(15)?.unwrap_or_default(),
            tags: row.get::<Vec<String>>(16)?.unwrap_or_default(),
        });
    }
    Ok(out)
}

pub fn key_of(row: &TopicRow) -> TopicKey {
    TopicKey { pinned: row.is_pinned, last_activity_micros: row.last_activity_at.into(), id: row.id }
}

/// One page and the cursor of the next (None on the last page).
pub fn page(category_id: Option<i64>, cursor: Option<&str>, page_size: Option<i32>) -> (Vec<TopicRow>, Option<String>) {
    let size = page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        errors::invalid_parameter(format!("page_size must be between 1 and {MAX_PAGE_SIZE}, got {size}"));
    }
    // Before the first row: past every real key in the descending order.
    let after = match cursor {
        None => TopicKey { pinned: true, last_activity_micros: i64::MAX, id: i64::MAX },
        Some(text) => TopicKey::decode(text).unwrap_or_else(|e| errors::invalid_parameter(e.to_string())),
    };
    let at = TimestampWithTimeZone::try_from(after.last_activity_micros)
        .unwrap_or_else(|_| TimestampWithTimeZone::positive_infinity());
    let sql = if category_id.is_some() { IN_CATEGORY } else { ALL_CATEGORIES };
    let int8 = PgOid::BuiltIn(PgBuiltInOids::INT8OID);
    let args =
        [int8, PgOid::BuiltIn(PgBuiltInOids::BOOLOID), PgOid::BuiltIn(PgBuiltInOids::TIMESTAMPTZOID), int8, int8];
    // One row more than asked says whether a next page exists.
    let fetch = i64::from(size) + 1;
    let fetched = Spi::connect(|client| {
        with_plan(client, sql, &args, |plan| {
            read(client.select(
                plan,
                None,
                &[category_id.into(), after.pinned.into(), at.into(), after.id.into(), fetch.into()],
            )?)
        })
    });
    let mut rows = fetched.unwrap_or_else(|e| errors::internal(format!("topic page query failed: {e}")));
    let next = if rows.len() > size as usize {
        rows.truncate(size as usize);
        rows.last().map(|row| key_of(row).encode())
    } else {
        None
    };
    (rows, next)
}
