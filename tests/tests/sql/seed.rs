//! `veritable-proxy seed`: the shape, consistency and determinism of the data.

use veritable_proxy::config::Scale;
use veritable_proxy::seed::{self, Shape};
use veritable_proxy::store::migrate;
use veritable_tests::{FreshDb, connect, database_url};

/// The test database holds `small` data (loaded by `cargo xtask test`).
#[tokio::test]
async fn small_data_has_the_planned_shape() {
    let client = connect(&database_url()).await;
    let shape = Shape::of(Scale::Small);
    let count = |table: &'static str| {
        let client = &client;
        async move { client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get::<_, i64>(0) }
    };
    // Other tests (the API ones) register users of their own: count the seeded ids.
    let seeded_users: i64 =
        client.query_one("SELECT count(*) FROM users WHERE id <= $1", &[&i64::from(shape.users)]).await.unwrap().get(0);
    assert_eq!(seeded_users, i64::from(shape.users));
    assert_eq!(count("forum_categories").await, i64::from(shape.categories));
    assert_eq!(count("forum_topics").await, i64::from(shape.topics));
    assert_eq!(count("forum_replies").await, shape.replies as i64);
    assert_eq!(count("wiki_pages").await, i64::from(shape.wiki_pages));
    assert!(count("wiki_revisions").await >= i64::from(shape.wiki_pages));
    assert!(count("notifications").await > 0);
    assert!(count("mentions").await > 0);
    assert!(count("forum_topic_tags").await > 0);
    // Every topic, reply and wiki revision has its activity row.
    let activity = count("unified_activity").await;
    let sources = count("forum_topics").await + count("forum_replies").await + count("wiki_revisions").await;
    assert_eq!(activity, sources);

    // The named demo accounts.
    let roles: Vec<(String, String)> = client
        .query("SELECT username, role FROM users WHERE id <= 3 ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        roles,
        [("admin", "admin"), ("moderator", "moderator"), ("demo", "member")]
            .map(|(u, r)| (u.to_owned(), r.to_owned()))
            .to_vec()
    );
}

#[tokio::test]
async fn small_data_is_skewed_with_a_deep_chain() {
    let client = connect(&database_url()).await;
    let shape = Shape::of(Scale::Small);
    let biggest: i32 = client.query_one("SELECT max(reply_count) FROM forum_topic_stats", &[]).await.unwrap().get(0);
    assert!(i64::from(biggest) >= i64::from(shape.hot_topics[0]) * 9 / 10, "a hot topic: {biggest}");
    let median: f64 = client
        .query_one("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY reply_count) FROM forum_topic_stats", &[])
        .await
        .unwrap()
        .get(0);
    assert!(median < 30.0, "most topics are small: median {median}");
    // Depth of the deepest chain (bounded walk: this is a test on small data).
    let depth: i32 = client
        .query_one(
            "WITH RECURSIVE walk(id, depth) AS (
                 SELECT id, 1 FROM forum_replies WHERE parent_id IS NULL AND topic_id = $1
                 UNION ALL
                 SELECT r.id, w.depth + 1 FROM forum_replies r JOIN walk w ON r.parent_id = w.id WHERE w.depth < 5000
             ) SELECT max(depth) FROM walk",
            &[&(shape.hot_topics.len() as i64 + 1)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(depth, shape.chains[0] as i32, "the chain topic is one reply chain");
}

#[tokio::test]
async fn derived_stats_match_the_replies() {
    let client = connect(&database_url()).await;
    let drift: i64 = client
        .query_one(
            "SELECT count(*) FROM forum_topics t
             LEFT JOIN forum_topic_stats k ON k.topic_id = t.id
             LEFT JOIN (SELECT topic_id, count(*) AS n, count(DISTINCT author_id) AS p, max(created_at) AS last
                        FROM forum_replies WHERE NOT is_deleted GROUP BY topic_id) s ON s.topic_id = t.id
             WHERE k.topic_id IS NULL
                OR (k.category_id, k.is_pinned, k.is_deleted) <> (t.category_id, t.is_pinned, t.is_deleted)
                OR k.reply_count <> coalesce(s.n, 0)
                OR k.participant_count <> coalesce(s.p, 0)
                OR k.last_reply_at IS DISTINCT FROM s.last
                OR k.last_activity_at <> greatest(t.created_at, s.last)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(drift, 0, "topics whose counters disagree with their replies");
    let parents_in_other_topics: i64 = client
        .query_one(
            "SELECT count(*) FROM forum_replies c JOIN forum_replies p ON p.id = c.parent_id
             WHERE p.topic_id <> c.topic_id OR p.created_at > c.created_at",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(parents_in_other_topics, 0);
}

/// A digest of every seeded table's content.
async fn fingerprint(client: &tokio_postgres::Client) -> Vec<String> {
    let mut digests = Vec::new();
    for table in seed::SEEDED_TABLES {
        let digest: String = client
            .query_one(
                &format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {table} t"),
                &[],
            )
            .await
            .expect("every seeded table can be read")
            .get(0);
        digests.push(format!("{table}:{digest}"));
    }
    digests
}

#[tokio::test]
async fn seeding_is_deterministic_refuses_to_mix_and_replaces_on_request() {
    let db = FreshDb::create("seed_determinism").await;
    let mut client = connect(&db.url).await;
    migrate::all(&mut client).await.expect("migrate");
    let shape = Shape::of(Scale::Small);

    seed::seed(&mut client, &shape, 42, false, false).await.expect("first seed");
    let first = fingerprint(&client).await;

    let refused = seed::seed(&mut client, &shape, 42, false, false).await.expect_err("data already there");
    assert!(refused.to_string().contains("--replace"), "{refused}");

    seed::seed(&mut client, &shape, 42, true, false).await.expect("replace");
    assert_eq!(first, fingerprint(&client).await, "same seed, same data");

    // Identity sequences continue after the seeded ids.
    let next: i64 = client
        .query_one("INSERT INTO forum_categories (slug, name) VALUES ('after-seed', 'After seed') RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, i64::from(shape.categories) + 1);

    seed::seed(&mut client, &shape, 43, true, false).await.expect("another seed");
    assert_ne!(first, fingerprint(&client).await, "another seed, other data");
    db.drop_db().await;
}
