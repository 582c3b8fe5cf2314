//! Every hot query is served by an index: on 200,000+ replies, after ANALYZE,
//! no plan of a hot query scans a large table sequentially.

use veritable_proxy::seed::Shape;
use veritable_tests::FreshDb;

/// Big enough for the planner to prefer indexes for real (tables of many pages).
fn medium() -> Shape {
    Shape {
        users: 5_000,
        categories: 20,
        tags: 100,
        topics: 20_000,
        replies: 220_000,
        hot_topics: &[20_000],
        chains: &[2_000],
        max_ordinary_replies: 2_000,
        wiki_pages: 2_000,
        max_revisions: 4,
    }
}

/// (name, statement to PREPARE, arguments for EXECUTE).
fn app_queries() -> Vec<(String, String, String)> {
    [
        ("unread notifications of a user", "SELECT id, kind, topic_id FROM notifications WHERE user_id = $1 AND read_at IS NULL ORDER BY id DESC LIMIT 20", "(42)"),
        ("notifications of a user", "SELECT id, kind FROM notifications WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT 20", "(42, 9223372036854775807)"),
        ("activity of a user", "SELECT id, kind, topic_id, reply_id FROM unified_activity WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT 20", "(42, 9223372036854775807)"),
        ("wiki page by slug", "SELECT p.id, r.body_html FROM wiki_pages p JOIN wiki_revisions r ON r.page_id = p.id AND r.revision_number = p.current_revision WHERE p.slug = $1", "('x-1')"),
        ("wiki revisions of a page", "SELECT id, revision_number FROM wiki_revisions WHERE page_id = $1 ORDER BY revision_number DESC LIMIT 20", "(7)"),
        ("session by token hash", "SELECT user_id, expires_at, revoked_at FROM sessions WHERE token_hash = $1", "('\\x00'::bytea)"),
        ("participants of a topic", "SELECT user_id FROM forum_topic_participants WHERE topic_id = $1 LIMIT 50", "(1)"),
        ("newest live reply of a topic", "SELECT max(created_at) FROM forum_replies WHERE topic_id = $1 AND NOT is_deleted", "(1)"),
        ("user by name", "SELECT id FROM users WHERE lower(username) = $1", "('admin')"),
        ("mentions of a user", "SELECT id FROM mentions WHERE mentioned_user_id = $1 ORDER BY id DESC LIMIT 20", "(42)"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    .collect()
}

fn extension_args(name: &str) -> &'static str {
    match name {
        "reply_tree.top_level" => "(1, 0, 129)",
        "reply_tree.children" => "(1, 5, 0, 129)",
        "reply_tree.one" => "(1, 5)",
        "reply_tree.authors" => "(ARRAY[5, 6, 7]::bigint[])",
        "topic_page.category" => "(3, true, 'infinity', 9223372036854775807, 21)",
        "topic_page.all" => "(NULL, true, 'infinity', 9223372036854775807, 21)",
        other => panic!("add EXECUTE arguments for the new hot query {other}"),
    }
}

#[tokio::test]
async fn no_hot_query_scans_a_large_table() {
    let (db, client) = FreshDb::seeded("explain_hot_queries", &medium(), 11).await;
    client.batch_execute("ANALYZE").await.unwrap();
    let replies: i64 = client.query_one("SELECT count(*) FROM forum_replies", &[]).await.unwrap().get(0);
    assert!(replies >= 200_000);

    // Tables with more than 10,000 rows are "large".
    let large: Vec<String> = client
        .query("SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace AND reltuples > 10000", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(large.contains(&"forum_replies".to_owned()) && large.contains(&"forum_topics".to_owned()));

    let mut queries = app_queries();
    for row in client.query("SELECT name, sql FROM veritable.hot_queries()", &[]).await.unwrap() {
        let name: String = row.get(0);
        let args = extension_args(&name).to_owned();
        queries.push((name, row.get(1), args));
    }
    // Kept SPI plans become generic plans: check those, not custom ones.
    client.batch_execute("SET plan_cache_mode = force_generic_plan").await.unwrap();
    let mut failures = Vec::new();
    for (i, (name, sql, args)) in queries.iter().enumerate() {
        client.batch_execute(&format!("PREPARE q{i} AS {sql}")).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN EXECUTE q{i}{args}"), &[])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        for table in &large {
            if plan.contains(&format!("Seq Scan on {table} ")) || plan.ends_with(&format!("Seq Scan on {table}")) {
                failures.push(format!("{name}: sequential scan of {table}\n{plan}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    db.drop_db().await;
}
