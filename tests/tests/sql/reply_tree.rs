//! `veritable.reply_tree` / `reply_subtree` over real data: caps,
//! continuation, tombstones, deep chains and cycles.

use tokio_postgres::{Client, Row};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::{connect, database_url, sqlstate};

const HOT_TOPIC: i64 = 1;

fn chain_topic() -> i64 {
    Shape::of(Scale::Small).hot_topics.len() as i64 + 1
}

struct Visit {
    id: i64,
    depth: i32,
    path: String,
    children_cut: bool,
    is_deleted: bool,
    body_html: Option<String>,
    has_more: bool,
}

fn visits(rows: Vec<Row>) -> Vec<Visit> {
    rows.iter()
        .map(|r| Visit {
            id: r.get("id"),
            depth: r.get("depth"),
            path: r.get("path"),
            children_cut: r.get("children_cut"),
            is_deleted: r.get("is_deleted"),
            body_html: r.get("body_html"),
            has_more: r.get("has_more"),
        })
        .collect()
}

async fn tree(client: &Client, topic: i64, depth: Option<i32>, rows: Option<i32>, after: Option<i64>) -> Vec<Visit> {
    visits(
        client
            .query("SELECT * FROM veritable.reply_tree($1, $2, $3, $4)", &[&topic, &depth, &rows, &after])
            .await
            .expect("reply_tree"),
    )
}

#[tokio::test]
async fn default_caps_bound_a_deep_chain_and_mark_the_cut() {
    let client = connect(&database_url()).await;
    let rows = tree(&client, chain_topic(), None, None, None).await;
    assert_eq!(rows.len(), 10, "veritable.max_reply_depth = 10 levels");
    assert_eq!(rows.iter().map(|v| v.depth).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
    assert!(rows[9].children_cut, "the deepest returned row says its children were cut");
    assert!(rows[..9].iter().all(|v| !v.children_cut));
    assert!(!rows[9].has_more, "the depth cap is not a row cap");

    // The subtree continuation goes on below the cut, with absolute depths.
    let below =
        visits(client.query("SELECT * FROM veritable.reply_subtree($1)", &[&rows[9].id]).await.expect("reply_subtree"));
    assert_eq!(below.len(), 10);
    assert_eq!(below[0].id, rows[9].id);
    assert_eq!(below.iter().map(|v| v.depth).collect::<Vec<_>>(), (9..19).collect::<Vec<_>>());
    assert!(below[0].path.ends_with(&format!("{:019}", rows[9].id)));
}

#[tokio::test]
async fn settings_change_the_defaults() {
    let client = connect(&database_url()).await;
    client.batch_execute("SET veritable.max_reply_depth = 3; SET veritable.max_reply_rows = 2").await.unwrap();
    let rows = tree(&client, chain_topic(), None, None, None).await;
    assert_eq!(rows.len(), 2);
    assert!(rows[1].has_more);
    let rows = tree(&client, chain_topic(), None, Some(100), None).await;
    assert_eq!(rows.len(), 3);
}

#[tokio::test]
async fn paging_with_after_reply_id_equals_one_big_walk() {
    let client = connect(&database_url()).await;
    let whole = tree(&client, HOT_TOPIC, Some(1000), Some(10_000), None).await;
    assert!(!whole.is_empty());
    assert!(!whole.last().unwrap().has_more);
    let mut paths: Vec<&str> = whole.iter().map(|v| v.path.as_str()).collect();
    let display: Vec<&str> = paths.clone();
    paths.sort_unstable();
    assert_eq!(paths, display, "sorting by path gives display order");

    let mut paged: Vec<Visit> = Vec::new();
    let mut after = None;
    loop {
        let page = tree(&client, HOT_TOPIC, Some(1000), Some(97), after).await;
        assert!(page.len() <= 97);
        let more = page.last().is_some_and(|v| v.has_more);
        after = page.last().map(|v| v.id);
        paged.extend(page);
        if !more {
            break;
        }
    }
    assert_eq!(paged.len(), whole.len());
    for (a, b) in paged.iter().zip(&whole) {
        assert_eq!((a.id, &a.path, a.depth), (b.id, &b.path, b.depth));
    }

    // Every live reply is there once; deleted ones only as tombstones with children.
    let live: i64 = client
        .query_one("SELECT count(*) FROM forum_replies WHERE topic_id = $1 AND NOT is_deleted", &[&HOT_TOPIC])
        .await
        .unwrap()
        .get(0);
    let shown_live = whole.iter().filter(|v| !v.is_deleted).count() as i64;
    assert_eq!(shown_live, live);
    for v in whole.iter().filter(|v| v.is_deleted) {
        assert!(v.body_html.is_none(), "a tombstone keeps its place, not its text");
    }
}

#[tokio::test]
async fn bad_arguments_get_clear_errors() {
    let client = connect(&database_url()).await;
    let cases = [
        ("SELECT * FROM veritable.reply_tree(1, 0, 10)", "22023"),
        ("SELECT * FROM veritable.reply_tree(1, 1001, 10)", "22023"),
        ("SELECT * FROM veritable.reply_tree(1, 10, 0)", "22023"),
        ("SELECT * FROM veritable.reply_tree(1, 10, 10001)", "22023"),
        ("SELECT * FROM veritable.reply_subtree(-1)", "P0002"),
    ];
    for (sql, code) in cases {
        assert_eq!(sqlstate(client.query(sql, &[]).await), code, "{sql}");
    }
    // A continuation id from another topic is not a row of this walk.
    let other: i64 = client
        .query_one("SELECT id FROM forum_replies WHERE topic_id <> $1 LIMIT 1", &[&HOT_TOPIC])
        .await
        .unwrap()
        .get(0);
    let result = client.query("SELECT * FROM veritable.reply_tree($1, 10, 10, $2)", &[&HOT_TOPIC, &other]).await;
    assert_eq!(sqlstate(result), "22023");
    // NULL topic: STRICT-like, no rows.
    let rows = client.query("SELECT * FROM veritable.reply_tree(NULL)", &[]).await.unwrap();
    assert!(rows.is_empty());
    // A topic without replies.
    let rows = tree(&client, 999_999, None, None, None).await;
    assert!(rows.is_empty());
}

#[tokio::test]
async fn a_ten_thousand_deep_chain_and_a_cycle_return_bounded_results() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    // Loading 10,000 replies through their triggers is set-up, not a request:
    // on a busy machine it outlasts the role's 10 s statement timeout (seen in CI).
    tx.batch_execute("SET LOCAL statement_timeout = 0").await.unwrap();
    let topic: i64 = tx
        .query_one(
            "INSERT INTO forum_topics (category_id, author_id, title, body) VALUES (1, 1, 'deep', 'deep') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // 10,000 replies, each answering the previous one, in one statement.
    let first: i64 =
        tx.query_one("SELECT nextval(pg_get_serial_sequence('forum_replies', 'id'))", &[]).await.unwrap().get(0);
    tx.execute("SELECT setval(pg_get_serial_sequence('forum_replies', 'id'), $1::bigint + 10000)", &[&first])
        .await
        .unwrap();
    tx.execute(
        "INSERT INTO forum_replies (id, topic_id, parent_id, author_id, body)
         SELECT g, $1, CASE WHEN g = $2 THEN NULL ELSE g - 1 END, 1, 'step ' || g
           FROM generate_series($2::bigint, $2::bigint + 9999) AS g ORDER BY g",
        &[&topic, &first],
    )
    .await
    .unwrap();
    let deepest: i32 =
        tx.query_one("SELECT max(depth) FROM forum_replies WHERE topic_id = $1", &[&topic]).await.unwrap().get(0);
    assert_eq!(deepest, 9_999, "depths kept by the trigger");

    let rows = tx.query("SELECT * FROM veritable.reply_tree($1)", &[&topic]).await.unwrap();
    assert_eq!(rows.len(), 10);
    let rows = tx.query("SELECT * FROM veritable.reply_tree($1, 1000, 10000)", &[&topic]).await.unwrap();
    assert_eq!(rows.len(), 1000, "the depth ceiling bounds even a maximal request");
    let last: i64 = first + 9_999;
    let rows = tx.query("SELECT depth FROM veritable.reply_subtree($1)", &[&last]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i32>(0), 9_999);

    // Corrupt data: the first two replies point at each other.
    tx.execute("UPDATE forum_replies SET parent_id = $2 WHERE id = $1", &[&first, &(first + 1)]).await.unwrap();
    let from_topic = tx.query("SELECT * FROM veritable.reply_tree($1, 1000, 10000)", &[&topic]).await.unwrap();
    assert!(from_topic.is_empty(), "no top-level reply is left");
    let from_cycle = tx.query("SELECT id FROM veritable.reply_subtree($1, 1000, 10000)", &[&first]).await.unwrap();
    assert_eq!(from_cycle.len(), 1000, "the walk ends: the cycle is visited once, then the depth cap holds");
    tx.rollback().await.unwrap();
}

/// A page also ends at `veritable.max_reply_bytes` of body HTML (the first
/// row always fits), and continuing after its last row gives the same walk.
#[tokio::test]
async fn a_byte_budget_ends_pages_early_without_gaps() {
    let client = connect(&database_url()).await;
    let whole = tree(&client, HOT_TOPIC, Some(1000), Some(300), None).await;
    let size = |v: &Visit| v.body_html.as_ref().map_or(0, String::len);
    let budget = whole.iter().map(size).max().unwrap_or(1) * 3;
    client.batch_execute(&format!("SET veritable.max_reply_bytes = {budget}")).await.expect("set");
    let mut paged: Vec<Visit> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    while paged.len() < whole.len() {
        let page = tree(&client, HOT_TOPIC, Some(1000), Some(300), after).await;
        assert!(!page.is_empty(), "every page makes progress");
        assert!(page.iter().map(size).sum::<usize>() <= budget, "within {budget} bytes");
        assert!(page.last().is_some_and(|v| v.has_more) || paged.len() + page.len() >= whole.len());
        after = page.last().map(|v| v.id);
        paged.extend(page);
        pages += 1;
    }
    assert!(pages > 1, "the budget split the walk ({pages} pages)");
    for (a, b) in paged.iter().zip(&whole) {
        assert_eq!((a.id, &a.path), (b.id, &b.path));
    }
    assert!(veritable_tests::sqlstate(client.batch_execute("SET veritable.max_reply_bytes = 0").await) == "22023");
}
