//! `veritable.reply_tree` and `veritable.reply_subtree`: the bounded walk of
//! `veritable_core::tree` over SPI, one kept plan per query shape.

use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError, SpiResult};
use pgrx::{PgBuiltInOids, PgOid};
use std::collections::HashMap;
use std::ffi::CStr;

use veritable_core::tree::{self, Limits, Root, Source, TreeRow, Visit, Walk, WalkError};

use crate::plans::with_plan;
use crate::{errors, gucs};

/// A reply as the walk reads it from the row it visits. Author names are
/// read afterwards, in one query for the authors of the rows shown (reading
/// the replies again by id for their text took half of a 500-row walk).
pub struct Node {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub child_count: i32,
    pub is_deleted: bool,
    pub depth: i32,
    pub author_id: i64,
    pub created_at: TimestampWithTimeZone,
    /// NULL for a deleted reply (a tombstone keeps its place, not its text).
    pub body_html: Option<String>,
}

impl TreeRow for Node {
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
    fn size(&self) -> usize {
        self.body_html.as_ref().map_or(0, String::len)
    }
}

/// One select list for every walk query. The rows come from `forum_replies`
/// alone, in the order of its tree index, and LIMIT stops the scan.
macro_rules! node_query {
    ($filter:literal) => {
        concat!(
            "SELECT r.id, r.parent_id, r.child_count, r.is_deleted, r.depth, r.author_id, r.created_at,
                    CASE WHEN r.is_deleted THEN NULL ELSE r.body_html END
               FROM public.forum_replies r WHERE ",
            $filter
        )
    };
}

// "ORDER BY parent_id, id" (all NULL, so id order) matches the tree index
// exactly; with "ORDER BY id" the generic plan walked (topic_id, id) and
// filtered out every nested reply of a 10,000-reply chain to find its one root.
const TOP_LEVEL: &str =
    node_query!("r.topic_id = $1 AND r.parent_id IS NULL AND r.id > $2 ORDER BY r.parent_id, r.id LIMIT $3");
const CHILDREN: &str = node_query!("r.topic_id = $1 AND r.parent_id = $2 AND r.id > $3 ORDER BY r.id LIMIT $4");
const ONE: &str = node_query!("r.topic_id = $1 AND r.id = $2");
/// Names of the authors of the rows shown.
const AUTHORS: &str = "SELECT u.id, u.username FROM public.users u WHERE u.id = ANY($1)";

/// (name, sql) of every query here, for `veritable.hot_queries()`.
pub const QUERIES: &[(&str, &str)] = &[
    ("reply_tree.top_level", TOP_LEVEL),
    ("reply_tree.children", CHILDREN),
    ("reply_tree.one", ONE),
    ("reply_tree.authors", AUTHORS),
];

const TOPIC_OF: &str = "SELECT topic_id FROM public.forum_replies WHERE id = $1";

const INT8: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT8OID);
const INT8_ARRAY: PgOid = PgOid::BuiltIn(PgBuiltInOids::INT8ARRAYOID);

struct SpiReplies<'a, 'conn> {
    client: &'a SpiClient<'conn>,
    topic_id: i64,
    /// The children of one parent come from here: one index scan, rescanned.
    scan: TreeScan,
}

/// A scan of `forum_replies_tree_idx` (topic_id, parent_id, id), opened
/// once per walk and rescanned for each family: the walk's few hundred
/// "children of X" reads without an executor start, a plan-cache check and
/// a tuple copy each, which were a fifth of a 500-row walk (`perf`). The
/// rows are exactly those of `CHILDREN` / `TOP_LEVEL` (same index, same
/// keys, the statement's snapshot); `hot_queries()` still shows them as SQL.
struct TreeScan {
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    scan: pg_sys::IndexScanDesc,
    slot: *mut pg_sys::TupleTableSlot,
    /// Heap attribute numbers of the [`Node`] fields, in their order.
    columns: [i32; 8],
}

const TABLE: &CStr = c"forum_replies";
const TREE_INDEX: &CStr = c"forum_replies_tree_idx";
const KEYS: usize = 3;

impl TreeScan {
    /// Opens the table and its tree index (AccessShareLock, held to the end
    /// of the transaction as the executor would) and checks that the index
    /// still has the columns the keys assume.
    fn open() -> Self {
        // SAFETY: called inside a function call, in a transaction, with a
        // snapshot pushed by the calling query; every pointer comes from
        // PostgreSQL and is used before `close`.
        unsafe {
            let public = pg_sys::get_namespace_oid(c"public".as_ptr(), false);
            let table = pg_sys::get_relname_relid(TABLE.as_ptr(), public);
            let index = pg_sys::get_relname_relid(TREE_INDEX.as_ptr(), public);
            if table == pg_sys::InvalidOid || index == pg_sys::InvalidOid {
                errors::internal("public.forum_replies or its index forum_replies_tree_idx is missing".to_owned());
            }
            let attnum = |name: &CStr| i32::from(pg_sys::get_attnum(table, name.as_ptr()));
            let key_columns = [attnum(c"topic_id"), attnum(c"parent_id"), attnum(c"id")];
            let columns = [
                attnum(c"id"),
                attnum(c"parent_id"),
                attnum(c"child_count"),
                attnum(c"is_deleted"),
                attnum(c"depth"),
                attnum(c"author_id"),
                attnum(c"created_at"),
                attnum(c"body_html"),
            ];
            if key_columns.iter().chain(&columns).any(|attnum| *attnum <= 0) {
                errors::internal("public.forum_replies lacks a column the reply tree reads".to_owned());
            }
            if !pg_sys::ActiveSnapshotSet() {
                errors::internal("reply_tree needs a snapshot: call it from a query".to_owned());
            }
            let heap = pg_sys::table_open(table, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let index = pg_sys::index_open(index, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            let info = &*(*index).rd_index;
            let indexed = info.indkey.values.as_slice(info.indnatts as usize);
            if info.indnkeyatts < KEYS as i16 || indexed.iter().take(KEYS).map(|a| i32::from(*a)).ne(key_columns) {
                errors::internal("forum_replies_tree_idx is not on (topic_id, parent_id, id)".to_owned());
            }
            let scan = pg_sys::index_beginscan(heap, index, pg_sys::GetActiveSnapshot(), KEYS as i32, 0);
            let slot = pg_sys::table_slot_create(heap, std::ptr::null_mut());
            Self { heap, index, scan, slot, columns }
        }
    }

    /// Children of `parent` (None: top level) in `topic`, id > `after`, by id.
    fn children(&mut self, topic: i64, parent: Option<i64>, after: i64, limit: usize) -> Vec<Node> {
        // Once per family: a walk of thousands of rows stays cancellable.
        crate::render::interrupts();
        let mut out = Vec::new();
        // SAFETY: the scan and slot are open (see `open`); the keys are
        // copied by index_rescan; values are read while the slot holds the row.
        unsafe {
            let mut keys: [pg_sys::ScanKeyData; KEYS] = std::mem::zeroed();
            let int8 = |key: &mut pg_sys::ScanKeyData, column: i16, strategy: u32, function: u32, value: i64| {
                pg_sys::ScanKeyInit(
                    key,
                    column,
                    strategy as u16,
                    pg_sys::Oid::from(function),
                    pg_sys::Datum::from(value),
                );
            };
            int8(&mut keys[0], 1, pg_sys::BTEqualStrategyNumber, pg_sys::F_INT8EQ, topic);
            match parent {
                Some(parent) => int8(&mut keys[1], 2, pg_sys::BTEqualStrategyNumber, pg_sys::F_INT8EQ, parent),
                None => pg_sys::ScanKeyEntryInitialize(
                    &mut keys[1],
                    (pg_sys::SK_ISNULL | pg_sys::SK_SEARCHNULL) as i32,
                    2,
                    0, // InvalidStrategy: an IS NULL key has no operator
                    pg_sys::InvalidOid,
                    pg_sys::InvalidOid,
                    pg_sys::InvalidOid,
                    pg_sys::Datum::from(0),
                ),
            }
            int8(&mut keys[2], 3, pg_sys::BTGreaterStrategyNumber, pg_sys::F_INT8GT, after);
            pg_sys::index_rescan(self.scan, keys.as_mut_ptr(), KEYS as i32, std::ptr::null_mut(), 0);
            while out.len() < limit
                && pg_sys::index_getnext_slot(self.scan, pg_sys::ScanDirection::ForwardScanDirection, self.slot)
            {
                let value = |column: i32| {
                    let mut null = false;
                    let datum = pg_sys::slot_getattr(self.slot, column, &mut null);
                    (!null).then_some(datum)
                };
                let [id, parent_id, child_count, is_deleted, depth, author_id, created_at, body_html] = self.columns;
                let is_deleted = value(is_deleted).is_some_and(|d| d.value() != 0);
                out.push(Node {
                    id: value(id).map_or(0, |d| d.value() as i64),
                    parent_id: value(parent_id).map(|d| d.value() as i64),
                    child_count: value(child_count).map_or(0, |d| d.value() as i32),
                    is_deleted,
                    depth: value(depth).map_or(0, |d| d.value() as i32),
                    author_id: value(author_id).map_or(0, |d| d.value() as i64),
                    created_at: value(created_at)
                        .and_then(|d| TimestampWithTimeZone::from_datum(d, false))
                        .unwrap_or_else(TimestampWithTimeZone::negative_infinity),
                    // Copied out of the row (detoasted) while the slot holds it.
                    body_html: if is_deleted {
                        None
                    } else {
                        value(body_html).and_then(|d| String::from_datum(d, false))
                    },
                });
            }
        }
        out
    }

    /// Ends the scan; the locks stay until the transaction ends. On an
    /// error PostgreSQL's abort releases all of it instead.
    fn close(self) {
        // SAFETY: opened in `open`, closed once (this consumes self).
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::index_endscan(self.scan);
            pg_sys::index_close(self.index, pg_sys::NoLock as pg_sys::LOCKMODE);
            pg_sys::table_close(self.heap, pg_sys::NoLock as pg_sys::LOCKMODE);
        }
    }
}

fn read(table: pgrx::spi::SpiTupleTable<'_>) -> SpiResult<Vec<Node>> {
    let mut out = Vec::with_capacity(table.len());
    for row in table {
        out.push(Node {
            id: row.get(1)?.unwrap_or_default(),
            parent_id: row.get(2)?,
            child_count: row.get(3)?.unwrap_or_default(),
            is_deleted: row.get(4)?.unwrap_or_default(),
            depth: row.get(5)?.unwrap_or_default(),
            author_id: row.get(6)?.unwrap_or_default(),
            created_at: row.get(7)?.unwrap_or_else(TimestampWithTimeZone::negative_infinity),
            body_html: row.get(8)?,
        });
    }
    Ok(out)
}

/// Usernames of `authors`, by id.
fn author_names(client: &SpiClient<'_>, mut authors: Vec<i64>) -> SpiResult<HashMap<i64, String>> {
    authors.sort_unstable();
    authors.dedup();
    with_plan(client, AUTHORS, &[INT8_ARRAY], |plan| {
        let table = client.select(plan, None, &[authors.into()])?;
        let mut out = HashMap::with_capacity(table.len());
        for row in table {
            out.insert(row.get::<i64>(1)?.unwrap_or_default(), row.get::<String>(2)?.unwrap_or_default());
        }
        Ok(out)
    })
}

impl Source for SpiReplies<'_, '_> {
    type Row = Node;
    type Error = SpiError;

    fn children(&mut self, parent: Option<i64>, after: Option<i64>, limit: usize) -> SpiResult<Vec<Node>> {
        Ok(self.scan.children(self.topic_id, parent, after.unwrap_or(0), limit))
    }

    fn get(&mut self, id: i64) -> SpiResult<Option<Node>> {
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
    Limits {
        max_depth: depth.unsigned_abs(),
        max_rows: rows.unsigned_abs() as usize,
        max_bytes: gucs::max_reply_bytes(),
    }
}

/// One row of the result: where the walk put it, what it says, who wrote it.
pub struct Shown {
    pub visit: Visit<Node>,
    pub author_name: String,
}

/// Walks `root` of `topic_id` (or of the root reply's topic when `topic_id`
/// is None). Returns the rows, whether more follow, and the absolute depth of
/// the walk's root level (0 for a topic, the root reply's depth for a subtree).
pub fn walk(topic_id: Option<i64>, root: Root, limits: Limits, after: Option<i64>) -> (Vec<Shown>, bool, i32) {
    let outcome = Spi::connect(|client| -> Result<(Vec<Shown>, bool, i32), WalkError<SpiError>> {
        let topic_id = match (topic_id, root) {
            (Some(id), _) => id,
            (None, Root::Reply(reply)) => with_plan(client, TOPIC_OF, &[INT8], |plan| {
                let table = client.select(plan, None, &[reply.into()])?;
                Ok(table.into_iter().next().map(|row| row.get::<i64>(1)).transpose()?.flatten())
            })
            .map_err(WalkError::Source)?
            .ok_or(WalkError::NoSuchRoot(reply))?,
            (None, Root::Topic) => return Err(WalkError::NoSuchRoot(0)),
        };
        let mut source = SpiReplies { client, topic_id, scan: TreeScan::open() };
        let walked = tree::walk(&mut source, root, limits, after);
        // Depths come out absolute: a subtree's levels count from its root's depth.
        let base = match root {
            Root::Reply(id) if walked.is_ok() => source.get(id).map_err(WalkError::Source)?.map_or(0, |r| r.depth),
            _ => 0,
        };
        source.scan.close();
        let Walk { rows, more } = walked?;
        let names = author_names(client, rows.iter().map(|v| v.row.author_id).collect()).map_err(WalkError::Source)?;
        let shown = rows
            .into_iter()
            .map(|visit| {
                let author_name = names.get(&visit.row.author_id).cloned().unwrap_or_default();
                Shown { visit, author_name }
            })
            .collect();
        Ok((shown, more, base))
    });
    match outcome {
        Ok(done) => done,
        Err(WalkError::Source(error)) => errors::internal(format!("reply tree query failed: {error}")),
        Err(error @ WalkError::NotInWalk(_)) => errors::invalid_parameter(error.to_string()),
        Err(error @ WalkError::NoSuchRoot(_)) => errors::no_data(error.to_string()),
    }
}
