//! `veritable.topic_page`: order, keyset paging to the end, and bad input.

use tokio_postgres::Client;
use veritable_tests::{connect, database_url, sqlstate};

/// (id, pinned, last_activity as text, next_cursor) of one page.
async fn page(
    client: &Client,
    category: Option<i64>,
    cursor: Option<&str>,
    size: i32,
) -> Vec<(i64, bool, String, Option<String>)> {
    client
        .query(
            "SELECT id, is_pinned, last_activity_at::text, next_cursor FROM veritable.topic_page($1, $2, $3)",
            &[&category, &cursor, &size],
        )
        .await
        .expect("topic_page")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

async fn walk_all(client: &Client, category: Option<i64>, size: i32) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let rows = page(client, category, cursor.as_deref(), size).await;
        assert!(rows.len() <= size as usize);
        let next = rows.last().and_then(|r| r.3.clone());
        assert!(rows.iter().all(|r| r.3 == next), "next_cursor is the same on every row");
        ids.extend(rows.iter().map(|r| r.0));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    ids
}

#[tokio::test]
async fn paging_to_the_end_returns_every_live_topic_once_in_order() {
    let client = connect(&database_url()).await;
    for category in [Some(1_i64), Some(2), None] {
        let ids = walk_all(&client, category, 7).await;
        let expected: Vec<i64> = client
            .query(
                "SELECT t.id FROM forum_topics t JOIN forum_topic_stats s ON s.topic_id = t.id
                  WHERE NOT t.is_deleted AND ($1::bigint IS NULL OR t.category_id = $1)
                 ORDER BY t.is_pinned DESC, s.last_activity_at DESC, t.id DESC",
                &[&category],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(ids, expected, "category {category:?}");
    }
}

#[tokio::test]
async fn rows_carry_the_stored_stats_author_category_and_tags() {
    let client = connect(&database_url()).await;
    let rows = client.query("SELECT * FROM veritable.topic_page(NULL, NULL, 100)", &[]).await.unwrap();
    assert_eq!(rows.len(), 100);
    for row in &rows {
        let id: i64 = row.get("id");
        let truth = client
            .query_one(
                "SELECT s.reply_count, s.participant_count, t.view_count, u.username, c.name,
                        ARRAY(SELECT g.name FROM forum_topic_tags tt JOIN forum_tags g ON g.id = tt.tag_id
                              WHERE tt.topic_id = t.id ORDER BY g.name)
                   FROM forum_topics t JOIN forum_topic_stats s ON s.topic_id = t.id
                   JOIN users u ON u.id = t.author_id JOIN forum_categories c ON c.id = t.category_id
                  WHERE t.id = $1",
                &[&id],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>("reply_count"), truth.get::<_, i32>(0));
        assert_eq!(row.get::<_, i32>("participant_count"), truth.get::<_, i32>(1));
        assert_eq!(row.get::<_, i64>("view_count"), truth.get::<_, i64>(2));
        assert_eq!(row.get::<_, String>("author_name"), truth.get::<_, String>(3));
        assert_eq!(row.get::<_, String>("category_name"), truth.get::<_, String>(4));
        assert_eq!(row.get::<_, Vec<String>>("tags"), truth.get::<_, Vec<String>>(5));
    }
    // Pinned topics come first.
    let pinned: Vec<bool> = rows.iter().map(|r| r.get("is_pinned")).collect();
    let first_unpinned = pinned.iter().position(|p| !p).unwrap_or(pinned.len());
    assert!(pinned[first_unpinned..].iter().all(|p| !p));
}

#[tokio::test]
async fn bad_input_gets_22023_and_empty_categories_an_empty_page() {
    let client = connect(&database_url()).await;
    for (sql, code) in [
        ("SELECT * FROM veritable.topic_page(1, 'garbage', 20)", "22023"),
        ("SELECT * FROM veritable.topic_page(1, 't1.1.0.0', 20)", "22023"),
        ("SELECT * FROM veritable.topic_page(1, NULL, 0)", "22023"),
        ("SELECT * FROM veritable.topic_page(1, NULL, 101)", "22023"),
    ] {
        assert_eq!(sqlstate(client.query(sql, &[]).await), code, "{sql}");
    }
    assert!(page(&client, Some(999_999), None, 20).await.is_empty());
    let at_max = client.query("SELECT * FROM veritable.topic_page(NULL, NULL, 100)", &[]).await.unwrap();
    assert_eq!(at_max.len(), 100, "page_size 100 is allowed");
    let default = client.query("SELECT * FROM veritable.topic_page(NULL, NULL)", &[]).await.unwrap();
    assert_eq!(default.len(), 20, "page_size defaults to 20");
}

/// The extension runs its kept plans generic (planned once per backend) by
/// holding `plan_cache_mode` during their execution; the session's own value
/// is back afterwards, also after a call that failed.
#[tokio::test]
async fn the_sessions_plan_cache_mode_survives_the_extensions_calls() {
    let client = connect(&database_url()).await;
    for setting in ["auto", "force_custom_plan"] {
        client.batch_execute(&format!("SET plan_cache_mode = {setting}")).await.unwrap();
        client.query("SELECT * FROM veritable.topic_page(NULL, NULL, 20)", &[]).await.unwrap();
        client.query("SELECT * FROM veritable.reply_subtree((SELECT min(id) FROM forum_replies))", &[]).await.unwrap();
        // A subtree of a reply that does not exist fails after its first kept plan ran.
        assert_eq!(sqlstate(client.query("SELECT * FROM veritable.reply_subtree(-1)", &[]).await), "P0002");
        let now: String = client.query_one("SELECT current_setting('plan_cache_mode')", &[]).await.unwrap().get(0);
        assert_eq!(now, setting);
    }
}
