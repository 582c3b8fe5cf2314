//! Every statement is served by an index: on 200,000+ replies, after
//! ANALYZE, no plan of a statement the proxy runs (`store::ALL`, the very
//! constants the code executes), of a hot query inside the extension
//! (`veritable.hot_queries()`), or of a lookup inside the triggers scans a
//! large table sequentially.

use tokio_postgres::types::Type;
use veritable_proxy::seed::Shape;
use veritable_proxy::store;
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

/// A value of each parameter type the statements use; under a generic plan
/// the values do not matter, only that they have the type.
fn sample(ty: &Type) -> &'static str {
    match ty.name() {
        "int8" | "int4" | "int2" | "float8" => "1",
        "text" => "'x'",
        "bool" => "false",
        "bytea" => "'\\x00'::bytea",
        "_int8" => "'{1}'",
        "_text" => "'{x}'",
        other => panic!("add a sample value for parameters of type {other}"),
    }
}

/// (name, statement to PREPARE, arguments for EXECUTE) of every statement
/// the proxy runs through the pool.
fn proxy_statements() -> Vec<(String, String, String)> {
    store::ALL
        .iter()
        .map(|sql| {
            let types: Vec<&str> = sql.types.iter().map(Type::name).collect();
            let prepare = sql.text.to_owned();
            let args: Vec<&str> = sql.types.iter().map(sample).collect();
            let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
            (format!("proxy {} ({})", sql.name, types.join(", ")), prepare, args)
        })
        .collect()
}

/// Lookups the trigger functions of sql/functions make per write (their
/// text restated here; the functions themselves are PL/pgSQL).
fn trigger_lookups() -> Vec<(String, String, String)> {
    [
        ("participants of a topic", "SELECT user_id FROM forum_topic_participants WHERE topic_id = $1 LIMIT 50", "(1)"),
        (
            "newest live reply of a topic",
            "SELECT max(created_at) FROM forum_replies WHERE topic_id = $1 AND NOT is_deleted",
            "(1)",
        ),
        ("user by name", "SELECT id FROM users WHERE lower(username) = $1", "('admin')"),
        (
            "mentions of a user",
            "SELECT id FROM mentions WHERE mentioned_user_id = $1 ORDER BY id DESC LIMIT 20",
            "(42)",
        ),
    ]
    .into_iter()
    .map(|(a, b, c)| (format!("trigger {a}"), b.to_owned(), c.to_owned()))
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

    let mut queries = proxy_statements();
    assert_eq!(queries.len(), store::ALL.len());
    queries.extend(trigger_lookups());
    for row in client.query("SELECT name, sql FROM veritable.hot_queries()", &[]).await.unwrap() {
        let name: String = row.get(0);
        let args = extension_args(&name).to_owned();
        queries.push((name, row.get(1), args));
    }
    // Kept SPI plans become generic plans: check those, not custom ones.
    client.batch_execute("SET plan_cache_mode = force_generic_plan").await.unwrap();
    let mut failures = Vec::new();
    for (i, (name, sql, args)) in queries.iter().enumerate() {
        let types = store::ALL.get(i).filter(|_| i < store::ALL.len()).map(|sql| sql.types);
        let types = types.map(|t| t.iter().map(Type::name).collect::<Vec<_>>().join(", ")).unwrap_or_default();
        let types = if types.is_empty() { String::new() } else { format!(" ({types})") };
        client.batch_execute(&format!("PREPARE q{i}{types} AS {sql}")).await.unwrap_or_else(|e| panic!("{name}: {e}"));
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
