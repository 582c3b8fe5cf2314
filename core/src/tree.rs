//! Bounded, iterative depth-first walks over reply trees.
//!
//! Display order is depth-first with siblings by id (ids are assigned in
//! insert order). The walk keeps an explicit stack (never the Rust call
//! stack), stops after `max_rows` rows or once the rows hold `max_bytes`
//! (bodies can be large: a page of huge ones stops early and continues like
//! any other), and does not descend below `max_depth` levels, so a
//! 10,000-deep chain costs what a 10-deep one does.
//! A visited set makes a cycle in corrupt `parent_id` data harmless.
//!
//! It is generic over where rows come from ([`Source`]): the extension reads
//! them with SPI, the tests from memory.

use std::collections::{HashSet, VecDeque};

/// What the walk needs to know about a row.
pub trait TreeRow {
    fn id(&self) -> i64;
    fn parent_id(&self) -> Option<i64>;
    /// Direct children of any state (a walk only asks for children when > 0).
    fn child_count(&self) -> i64;
    fn is_deleted(&self) -> bool;
    /// Bytes the row adds to a result (its body), for the byte budget.
    fn size(&self) -> usize {
        0
    }
}

pub trait Source {
    type Row: TreeRow;
    type Error;
    /// Children of `parent` (`None`: the topic's top-level replies) with
    /// id > `after`, ascending by id, at most `limit`.
    fn children(
        &mut self,
        parent: Option<i64>,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Self::Row>, Self::Error>;
    /// One row of the walk's topic, if it exists there.
    fn get(&mut self, id: i64) -> Result<Option<Self::Row>, Self::Error>;
}

/// Where a walk starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// All top-level replies of the topic.
    Topic,
    /// One reply and its descendants.
    Reply(i64),
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Levels returned: depth 0 .. max_depth-1 relative to the walk's root level.
    pub max_depth: u32,
    pub max_rows: usize,
    /// The rows' [`TreeRow::size`] in all; the row that would pass it ends
    /// the page (the first row always fits, however large).
    pub max_bytes: usize,
}

/// One row of the result, in display order.
#[derive(Debug)]
pub struct Visit<R> {
    pub row: R,
    /// Level relative to the walk's root level (0 = top-level reply, or the subtree root).
    pub depth: u32,
    /// Fixed-width ids from the walk's root down to this row, `/`-separated:
    /// sorting by it gives display order, across continuation pages too.
    pub path: String,
    /// The row has children that the depth cap kept out.
    pub children_cut: bool,
}

#[derive(Debug)]
pub struct Walk<R> {
    pub rows: Vec<Visit<R>>,
    /// More rows follow: continue with `after` = the last row's id.
    pub more: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WalkError<E> {
    #[error("continuation reply {0} is not a row of this walk")]
    NotInWalk(i64),
    #[error("reply {0} does not exist in this topic")]
    NoSuchRoot(i64),
    #[error(transparent)]
    Source(E),
}

/// Children fetched per query; small enough not to over-read a page.
const BATCH: usize = 128;
struct Frame<R> {
    parent: Option<i64>,
    path: String,
    depth: u32,
    after: Option<i64>,
    buffer: VecDeque<R>,
    exhausted: bool,
}

impl<R> Frame<R> {
    fn new(parent: Option<i64>, path: String, depth: u32, after: Option<i64>) -> Self {
        Self { parent, path, depth, after, buffer: VecDeque::new(), exhausted: false }
    }
}

fn child_path(parent: &str, id: i64) -> String {
    if parent.is_empty() { format!("{id:019}") } else { format!("{parent}/{id:019}") }
}

/// Walks from `root` in display order. With `after` = the last row of a
/// previous page (same root and limits), it continues right after that row.
pub fn walk<S: Source>(
    source: &mut S,
    root: Root,
    limits: Limits,
    after: Option<i64>,
) -> Result<Walk<S::Row>, WalkError<S::Error>> {
    let mut rows: Vec<Visit<S::Row>> = Vec::new();
    let mut visited: HashSet<i64> = HashSet::new();
    let mut stack: Vec<Frame<S::Row>> = Vec::new();
    if limits.max_depth == 0 || limits.max_rows == 0 {
        return Ok(Walk { rows, more: false });
    }

    match after {
        Some(last) => resume(source, root, limits, last, &mut stack)?,
        None => match root {
            Root::Topic => stack.push(Frame::new(None, String::new(), 0, None)),
            Root::Reply(id) => {
                let row = source.get(id).map_err(WalkError::Source)?.ok_or(WalkError::NoSuchRoot(id))?;
                let path = child_path("", id);
                let expandable = row.child_count() > 0;
                let cut = expandable && limits.max_depth <= 1;
                visited.insert(id);
                if expandable && !cut {
                    stack.push(Frame::new(Some(id), path.clone(), 1, None));
                }
                rows.push(Visit { row, depth: 0, path, children_cut: cut });
            }
        },
    }

    let mut more = false;
    let mut bytes = rows.iter().map(|v| v.row.size()).sum::<usize>();
    while let Some(frame) = stack.last_mut() {
        let Some(row) = frame.buffer.pop_front() else {
            if frame.exhausted {
                stack.pop();
                continue;
            }
            let limit = BATCH.min(limits.max_rows.saturating_sub(rows.len()) + 1);
            let fetched = source.children(frame.parent, frame.after, limit).map_err(WalkError::Source)?;
            frame.exhausted = fetched.len() < limit;
            if let Some(last) = fetched.last() {
                frame.after = Some(last.id());
            }
            frame.buffer.extend(fetched);
            continue;
        };
        let id = row.id();
        // A cycle or a row seen through a corrupt parent link: never twice.
        if !visited.insert(id) {
            continue;
        }
        // Deleted rows stay as tombstones only where they hold children.
        if row.is_deleted() && row.child_count() == 0 {
            continue;
        }
        if rows.len() == limits.max_rows || (!rows.is_empty() && bytes.saturating_add(row.size()) > limits.max_bytes) {
            more = true;
            break;
        }
        bytes = bytes.saturating_add(row.size());
        let depth = frame.depth;
        let path = child_path(&frame.path, id);
        let expandable = row.child_count() > 0;
        let cut = expandable && depth + 1 >= limits.max_depth;
        if expandable && !cut {
            stack.push(Frame::new(Some(id), path.clone(), depth + 1, None));
        }
        rows.push(Visit { row, depth, path, children_cut: cut });
    }
    Ok(Walk { rows, more })
}

/// Rebuilds the stack of a walk that stopped right after row `last`: each
/// ancestor level continues after the ancestor on the way down, and `last`
/// itself continues with its first child.
fn resume<S: Source>(
    source: &mut S,
    root: Root,
    limits: Limits,
    last: i64,
    stack: &mut Vec<Frame<S::Row>>,
) -> Result<(), WalkError<S::Error>> {
    // Walk up from `last`; a continuation is never deeper than max_depth.
    let mut chain: Vec<S::Row> = Vec::new();
    let mut seen = HashSet::new();
    let mut current = Some(last);
    let top = loop {
        let Some(id) = current else { break None };
        if !seen.insert(id) || chain.len() > limits.max_depth as usize {
            return Err(WalkError::NotInWalk(last));
        }
        let row = source.get(id).map_err(WalkError::Source)?.ok_or(WalkError::NotInWalk(last))?;
        current = row.parent_id();
        let reached_root = root == Root::Reply(id);
        chain.push(row);
        if reached_root {
            break Some(id);
        }
    };
    chain.reverse(); // from the walk's root level down to `last`
    // (parent, its path, depth of its children) of the level being rebuilt.
    let (mut parent, mut path, mut depth, levels) = match (root, top) {
        (Root::Topic, None) => (None, String::new(), 0, &chain[..]),
        // chain[0] is the subtree root: it has no siblings to continue.
        (Root::Reply(id), Some(_)) => (Some(id), child_path("", id), 1, &chain[1..]),
        _ => return Err(WalkError::NotInWalk(last)),
    };
    for row in levels {
        stack.push(Frame::new(parent, path.clone(), depth, Some(row.id())));
        parent = Some(row.id());
        path = child_path(&path, row.id());
        depth += 1;
    }
    // `depth` is now the level of the last row's children.
    if depth > limits.max_depth {
        return Err(WalkError::NotInWalk(last));
    }
    let expandable = chain.last().is_some_and(|tail| tail.child_count() > 0);
    if expandable && depth < limits.max_depth {
        stack.push(Frame::new(parent, path, depth, None));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[derive(Debug, Clone)]
    struct Row {
        id: i64,
        parent: Option<i64>,
        children: i64,
        deleted: bool,
        /// The body's bytes, for the byte budget.
        bytes: usize,
    }

    impl TreeRow for Row {
        fn id(&self) -> i64 {
            self.id
        }
        fn parent_id(&self) -> Option<i64> {
            self.parent
        }
        fn child_count(&self) -> i64 {
            self.children
        }
        fn is_deleted(&self) -> bool {
            self.deleted
        }
        fn size(&self) -> usize {
            self.bytes
        }
    }

    /// An in-memory topic that counts its queries.
    #[derive(Default)]
    struct Memory {
        rows: HashMap<i64, Row>,
        queries: usize,
    }

    impl Memory {
        fn from_parents(parents: &[(i64, Option<i64>)]) -> Self {
            let mut memory = Memory::default();
            for &(id, parent) in parents {
                memory.rows.insert(id, Row { id, parent, children: 0, deleted: false, bytes: 0 });
            }
            for &(_, parent) in parents {
                if let Some(p) = parent.and_then(|p| memory.rows.get_mut(&p)) {
                    p.children += 1;
                }
            }
            memory
        }
    }

    impl Source for Memory {
        type Row = Row;
        type Error = ();
        fn children(&mut self, parent: Option<i64>, after: Option<i64>, limit: usize) -> Result<Vec<Row>, ()> {
            self.queries += 1;
            let mut out: Vec<Row> =
                self.rows.values().filter(|r| r.parent == parent && after.is_none_or(|a| r.id > a)).cloned().collect();
            out.sort_by_key(|r| r.id);
            out.truncate(limit);
            Ok(out)
        }
        fn get(&mut self, id: i64) -> Result<Option<Row>, ()> {
            self.queries += 1;
            Ok(self.rows.get(&id).cloned())
        }
    }

    fn ids<R: TreeRow>(walk: &Walk<R>) -> Vec<i64> {
        walk.rows.iter().map(|v| v.row.id()).collect()
    }

    const WIDE: Limits = Limits { max_depth: 100, max_rows: 1000, max_bytes: usize::MAX };

    fn sample() -> Memory {
        // 1 ─ 2 ─ 4
        //   └ 3
        // 5 ─ 6
        Memory::from_parents(&[(1, None), (2, Some(1)), (3, Some(1)), (4, Some(2)), (5, None), (6, Some(5))])
    }

    #[test]
    fn depth_first_with_siblings_in_id_order() {
        let walk = walk(&mut sample(), Root::Topic, WIDE, None).unwrap();
        assert_eq!(ids(&walk), vec![1, 2, 4, 3, 5, 6]);
        let depths: Vec<u32> = walk.rows.iter().map(|v| v.depth).collect();
        assert_eq!(depths, vec![0, 1, 2, 1, 0, 1]);
        let mut paths: Vec<&str> = walk.rows.iter().map(|v| v.path.as_str()).collect();
        let display = paths.clone();
        paths.sort_unstable();
        assert_eq!(paths, display, "sorting by path gives display order");
        assert!(!walk.more);
    }

    #[test]
    fn depth_cap_marks_cut_children() {
        let walk =
            walk(&mut sample(), Root::Topic, Limits { max_depth: 2, max_rows: 100, max_bytes: usize::MAX }, None)
                .unwrap();
        assert_eq!(ids(&walk), vec![1, 2, 3, 5, 6]);
        let cut: Vec<i64> = walk.rows.iter().filter(|v| v.children_cut).map(|v| v.row.id).collect();
        assert_eq!(cut, vec![2]);
    }

    #[test]
    fn a_byte_budget_ends_pages_early_and_they_continue_like_any_other() {
        let mut memory = sample();
        for (id, row) in &mut memory.rows {
            row.bytes = if *id == 4 { 1_000 } else { 10 };
        }
        let limits = Limits { max_depth: 100, max_rows: 100, max_bytes: 25 };
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = walk(&mut memory, Root::Topic, limits, after).unwrap();
            assert!(!page.rows.is_empty(), "every page makes progress");
            let bytes: usize = page.rows.iter().map(|v| v.row.bytes).sum();
            assert!(bytes <= 25 || page.rows.len() == 1, "over budget only with one huge row: {bytes}");
            pages.push(ids(&page));
            if !page.more {
                break;
            }
            after = page.rows.last().map(|v| v.row.id);
        }
        assert_eq!(pages, vec![vec![1, 2], vec![4], vec![3, 5], vec![6]], "row 4 alone is over the budget");
    }

    #[test]
    fn pages_continue_after_the_last_row_without_gaps_or_duplicates() {
        let mut memory = sample();
        for size in 1..=6 {
            let limits = Limits { max_depth: 100, max_rows: size, max_bytes: usize::MAX };
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = walk(&mut memory, Root::Topic, limits, after).unwrap();
                seen.extend(ids(&page));
                if !page.more {
                    break;
                }
                after = page.rows.last().map(|v| v.row.id);
            }
            assert_eq!(seen, vec![1, 2, 4, 3, 5, 6], "page size {size}");
        }
    }

    #[test]
    fn continuation_paths_match_the_single_walk() {
        let mut memory = sample();
        let whole = walk(&mut memory, Root::Topic, WIDE, None).unwrap();
        let first = walk(&mut memory, Root::Topic, Limits { max_depth: 100, max_rows: 3, max_bytes: usize::MAX }, None)
            .unwrap();
        let rest =
            walk(&mut memory, Root::Topic, Limits { max_depth: 100, max_rows: 10, max_bytes: usize::MAX }, Some(4))
                .unwrap();
        let paged: Vec<String> = first.rows.iter().chain(rest.rows.iter()).map(|v| v.path.clone()).collect();
        let single: Vec<String> = whole.rows.iter().map(|v| v.path.clone()).collect();
        assert_eq!(paged, single);
    }

    #[test]
    fn subtree_walks_and_continues() {
        let mut memory = sample();
        let sub = walk(&mut memory, Root::Reply(1), WIDE, None).unwrap();
        assert_eq!(ids(&sub), vec![1, 2, 4, 3]);
        assert_eq!(sub.rows[0].depth, 0);
        let page =
            walk(&mut memory, Root::Reply(1), Limits { max_depth: 100, max_rows: 2, max_bytes: usize::MAX }, None)
                .unwrap();
        assert_eq!(ids(&page), vec![1, 2]);
        assert!(page.more);
        let rest =
            walk(&mut memory, Root::Reply(1), Limits { max_depth: 100, max_rows: 2, max_bytes: usize::MAX }, Some(2))
                .unwrap();
        assert_eq!(ids(&rest), vec![4, 3]);
        let after_root = walk(&mut memory, Root::Reply(1), WIDE, Some(1)).unwrap();
        assert_eq!(ids(&after_root), vec![2, 4, 3]);
        assert_eq!(walk(&mut memory, Root::Reply(99), WIDE, None).unwrap_err(), WalkError::NoSuchRoot(99));
        assert_eq!(walk(&mut memory, Root::Reply(1), WIDE, Some(6)).unwrap_err(), WalkError::NotInWalk(6));
    }

    #[test]
    fn a_ten_thousand_deep_chain_is_bounded() {
        let parents: Vec<(i64, Option<i64>)> = (1..=10_000).map(|id| (id, (id > 1).then(|| id - 1))).collect();
        let mut memory = Memory::from_parents(&parents);
        let walk = walk(&mut memory, Root::Topic, Limits { max_depth: 10, max_rows: 500, max_bytes: usize::MAX }, None)
            .unwrap();
        assert_eq!(ids(&walk), (1..=10).collect::<Vec<_>>());
        assert!(walk.rows[9].children_cut);
        assert!(memory.queries <= 12, "{} queries", memory.queries);
        // Even with the depth cap lifted, the row cap bounds the walk.
        let deep = super::walk(
            &mut memory,
            Root::Topic,
            Limits { max_depth: 20_000, max_rows: 10_000, max_bytes: usize::MAX },
            None,
        )
        .unwrap();
        assert_eq!(deep.rows.len(), 10_000);
    }

    #[test]
    fn cycles_end() {
        // 2 and 3 point at each other (corrupt data); 1 is a normal root.
        let mut memory = Memory::from_parents(&[(1, None), (2, Some(3)), (3, Some(2))]);
        let from_topic = walk(&mut memory, Root::Topic, WIDE, None).unwrap();
        assert_eq!(ids(&from_topic), vec![1]);
        let from_cycle = walk(&mut memory, Root::Reply(2), WIDE, None).unwrap();
        assert_eq!(ids(&from_cycle), vec![2, 3]);
        assert!(walk(&mut memory, Root::Reply(2), WIDE, Some(3)).is_ok(), "continuation terminates too");
    }

    #[test]
    fn deleted_rows_stay_only_as_tombstones_with_children() {
        let mut memory = sample();
        memory.rows.get_mut(&2).unwrap().deleted = true; // has child 4: tombstone
        memory.rows.get_mut(&3).unwrap().deleted = true; // leaf: hidden
        let walk = walk(&mut memory, Root::Topic, WIDE, None).unwrap();
        assert_eq!(ids(&walk), vec![1, 2, 4, 5, 6]);
    }

    /// A forum-like random tree: a tenth top-level, the rest answering recent
    /// replies, one in twenty deleted.
    fn random_topic(seed: u64, n: i64) -> Memory {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let mut parents = Vec::new();
        for id in 1..=n {
            let parent =
                if id == 1 || next() % 10 == 0 { None } else { Some(id - 1 - (next() as i64 % (id - 1).min(30))) };
            parents.push((id, parent));
        }
        let mut memory = Memory::from_parents(&parents);
        for id in 1..=n {
            if next() % 20 == 0
                && let Some(row) = memory.rows.get_mut(&id)
            {
                row.deleted = true;
            }
        }
        memory
    }

    /// The obvious recursive walk, as the reference (small trees only).
    fn reference(memory: &Memory, parent: Option<i64>, depth: u32, limits: Limits, out: &mut Vec<(i64, u32, bool)>) {
        let mut children: Vec<&Row> = memory.rows.values().filter(|r| r.parent == parent).collect();
        children.sort_by_key(|r| r.id);
        for row in children {
            if out.len() > limits.max_rows {
                return;
            }
            if row.deleted && row.children == 0 {
                continue;
            }
            let cut = row.children > 0 && depth + 1 >= limits.max_depth;
            out.push((row.id, depth, cut));
            if row.children > 0 && !cut {
                reference(memory, Some(row.id), depth + 1, limits, out);
            }
        }
    }

    #[test]
    fn random_topics_match_the_recursive_reference() {
        for seed in 0..30 {
            let mut memory = random_topic(seed, 300);
            for limits in [
                Limits { max_depth: 10, max_rows: 50, max_bytes: usize::MAX },
                Limits { max_depth: 3, max_rows: 500, max_bytes: usize::MAX },
                Limits { max_depth: 100, max_rows: 7, max_bytes: usize::MAX },
            ] {
                let mut expected = Vec::new();
                reference(&memory, None, 0, limits, &mut expected);
                let more = expected.len() > limits.max_rows;
                expected.truncate(limits.max_rows);
                let got = walk(&mut memory, Root::Topic, limits, None).unwrap();
                let got_rows: Vec<(i64, u32, bool)> =
                    got.rows.iter().map(|v| (v.row.id, v.depth, v.children_cut)).collect();
                assert_eq!(got_rows, expected, "seed {seed} {limits:?}");
                assert_eq!(got.more, more, "seed {seed} {limits:?}");
            }
        }
    }

    #[test]
    fn zero_limits_return_nothing() {
        let walk = walk(&mut sample(), Root::Topic, Limits { max_depth: 0, max_rows: 10, max_bytes: usize::MAX }, None)
            .unwrap();
        assert!(walk.rows.is_empty() && !walk.more);
    }
}
