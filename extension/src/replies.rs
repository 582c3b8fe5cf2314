//! `veritable.reply_tree` and `veritable.reply_subtree`: the bounded walk of
//! `veritable_core::tree` over SPI, one kept plan per query shape.

use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError, SpiResult};
use pgrx::{PgBuiltInOids, PgOid};
use veritable_core::tree::{self, Limits, Root, Source, TreeRow, Walk, WalkError};

use crate::plans::with_plan;
use crate::{errors, gucs};

pub struct Reply {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub depth: i32,
    pub child_count: i32,
    pub is_deleted: bool,
    pub author_id: i64,
    pub author_name: String,
    /// NULL for a deleted reply (a tombstone keeps its place, not its text).
    pub body_html: Option<String>,
    pub created_at: TimestampWithTimeZone,
}

impl TreeRow for Reply {
    fn id(&self) -> i64 {
        self.id
    }
    fn parent_id(&self) -> Option<i64> {
        self.parent_id
    }
    fn child_count(&self) -> i64 {
        i64::from(self.child_count)
    }
    fn is_deleted(&self) -> bool {
        self.is_deleted
    }
}

/// One select list for every reply query. The rows are cut from
/// `forum_replies` alone (its tree index gives them in order and LIMIT stops
/// the scan) before author names are joined to those few rows.
macro_rules! reply_query {
    ($filter:literal) => {
        concat!(
            "SELECT r.id, r.parent_id, r.depth, r.child_count, r.is_deleted, r.author_id, u.username,
                    CASE WHEN r.is_deleted THEN NULL ELSE r.body_html END, r.created_at
               FROM (SELECT * FROM public.forum_replies r WHERE ",
            $filter,
            ") r JOIN public.users u ON u.id = r.author_id ORDER BY r.id"
        )
    };
}

const TOP_LEVEL: &str = reply_query!("r.topic_id = $1 AND r.parent_id IS NULL AND r.id > $2 ORDER BY r.id LIMIT $3");
const CHILDREN: &str = reply_query!("r.topic_id = $1 AND r.parent_id = $2 AND r.id > $3 ORDER BY r.id LIMIT $4");
const ONE: &str = reply_query!("r.topic_id = $1 AND r.id = $2");

/// (name, sql) of every query here, for `veritable.hot_queries()`.
pub const QUERIES: &[(&str, &str)] =
    &[("reply_tree.top_level", TOP_LEVEL), ("reply_tree.children", CHILDREN), ("reply_tree.one", ONE)];

const TOPIC_OF: &str = "SELECT topic_id FROM public.forum_replies WHERE id = $1";

const INT8: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT8OID);

struct SpiReplies<'a, 'conn> {
    client: &'a SpiClient<'conn>,
    topic_id: i64,
}

fn read(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<Vec<Reply>> {
    let mut out = Vec::with_capacity(table.len());
    for row in table {
        out.push(Reply {
            id: row.get(1)?.unwrap_or_default(),
            parent_id: row.get(2)?,
            depth: row.get(3)?.unwrap_or_default(),
            child_count: row.get(4)?.unwrap_or_default(),
            is_deleted: row.get(5)?.unwrap_or_default(),
            author_id: row.get(6)?.unwrap_or_default(),
            author_name: row.get(7)?.unwrap_or_default(),
            body_html: row.get(8)?,
            created_at: row.get(9)?.unwrap_or_else(TimestampWithTimeZone::negative_infinity),
        });
    }
    Ok(out)
}

impl Source for SpiReplies<'_, '_> {
    type Row = Reply;
    type Error = SpiError;

    fn children(&mut self, parent: Option<i64>, after: Option<i64>, limit: usize) -> SpiResult<Vec<Reply>> {
        let after = after.unwrap_or(0);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match parent {
            None => with_plan(self.client, TOP_LEVEL, &[INT8, INT8, INT8], |plan| {
                read(self.client.select(plan, None, &[self.topic_id.into(), after.into(), limit.into()])?)
            }),
            Some(parent) => with_plan(self.client, CHILDREN, &[INT8, INT8, INT8, INT8], |plan| {
                read(self.client.select(plan, None, &[self.topic_id.into(), parent.into(), after.into(), limit.into()])?)
            }),
        }
    }

    fn get(&mut self, id: i64) -> SpiResult<Option<Reply>> {
        with_plan(self.client, ONE, &[INT8, INT8], |plan| {
            Ok(read(self.client.select(plan, None, &[self.topic_id.into(), id.into()])?)?.pop())
        })
    }
}

/// The caps of one call: NULL takes the setting; out-of-range values are refused.
pub fn limits(max_depth: Option<i32>, max_rows: Option<i32>) -> Limits {
    let depth = max_depth.unwrap_or_else(|| gucs::MAX_REPLY_DEPTH.get());
    let rows = max_rows.unwrap_or_else(|| gucs::MAX_REPLY_ROWS.get());
    if !(1..=gucs::DEPTH_CEILING).contains(&depth) {
        errors::invalid_parameter(format!("max_depth must be between 1 and {}, got {depth}", gucs::DEPTH_CEILING));
    }
    if !(1..=gucs::ROWS_CEILING).contains(&rows) {
        errors::invalid_parameter(format!("max_rows must be between 1 and {}, got {rows}", gucs::ROWS_CEILING));
    }
    Limits { max_depth: depth.unsigned_abs(), max_rows: rows.unsigned_abs() as usize }
}

/// Walks `root` of `topic_id` (or of the root reply's topic when `topic_id` is None).
pub fn walk(topic_id: Option<i64>, root: Root, limits: Limits, after: Option<i64>) -> (Walk<Reply>, i32) {
    let outcome = Spi::connect(|client| -> Result<(Walk<Reply>, i32), WalkError<SpiError>> {
        let topic_id = match (topic_id, root) {
            (Some(id), _) => id,
            (None, Root::Reply(reply)) => with_plan(&client, TOPIC_OF, &[INT8], |plan| {
                let table = client.select(plan, None, &[reply.into()])?;
                Ok(table.into_iter().next().map(|row| row.get::<i64>(1)).transpose()?.flatten())
            })
            .map_err(WalkError::Source)?
            .ok_or(WalkError::NoSuchRoot(reply))?,
            (None, Root::Topic) => return Err(WalkError::NoSuchRoot(0)),
        };
        let mut source = SpiReplies { client: &client, topic_id };
        // Absolute depth of the walk's root level: 0 for a topic, the stored depth for a subtree.
        let base = match root {
            Root::Topic => 0,
            Root::Reply(id) => source.get(id).map_err(WalkError::Source)?.map_or(0, |r| r.depth),
        };
        Ok((tree::walk(&mut source, root, limits, after)?, base))
    });
    match outcome {
        Ok(done) => done,
        Err(WalkError::Source(error)) => errors::internal(format!("reply tree query failed: {error}")),
        Err(error @ WalkError::NotInWalk(_)) => errors::invalid_parameter(error.to_string()),
        Err(error @ WalkError::NoSuchRoot(_)) => errors::no_data(error.to_string()),
    }
}

