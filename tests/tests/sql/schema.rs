//! The schema refuses bad rows with a fitting SQLSTATE, whoever writes them.

use veritable_tests::{connect, database_url, sqlstate};

const CHECK_VIOLATION: &str = "23514";
const FOREIGN_KEY_VIOLATION: &str = "23503";
const UNIQUE_VIOLATION: &str = "23505";

#[tokio::test]
async fn every_table_of_the_issue_exists() {
    let client = connect(&database_url()).await;
    for table in [
        "users",
        "sessions",
        "forum_categories",
        "forum_topics",
        "forum_replies",
        "forum_tags",
        "forum_topic_tags",
        "wiki_pages",
        "wiki_revisions",
        "notifications",
        "mentions",
        "unified_activity",
        "events",
    ] {
        let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.unwrap().get(0);
        assert!(exists, "table {table} exists");
    }
}

#[tokio::test]
async fn bad_rows_are_refused_with_the_constraint_sqlstate() {
    let client = connect(&database_url()).await;
    let cases: &[(&str, &str)] = &[
        ("INSERT INTO forum_topics (category_id, author_id, title, body) VALUES (1, 1, '', 'b')", CHECK_VIOLATION),
        ("INSERT INTO forum_topics (category_id, author_id, title, body) VALUES (1, 1, ' ', 'b')", CHECK_VIOLATION),
        ("INSERT INTO forum_topics (category_id, author_id, title, body) VALUES (1, 1, 't', '')", CHECK_VIOLATION),
        (
            "INSERT INTO forum_topics (category_id, author_id, title, body) VALUES (999999, 1, 't', 'b')",
            FOREIGN_KEY_VIOLATION,
        ),
        (
            "INSERT INTO users (username, display_name, email, password_hash) VALUES ('a b', 'A', 'a@b.c', 'h')",
            CHECK_VIOLATION,
        ),
        (
            "INSERT INTO users (username, display_name, email, password_hash) VALUES ('ab', 'A', 'a@b.c', 'h')",
            CHECK_VIOLATION,
        ),
        (
            "INSERT INTO users (username, display_name, email, password_hash) VALUES ('ADMIN', 'A', 'x@b.c', 'h')",
            UNIQUE_VIOLATION,
        ),
        (
            "INSERT INTO users (username, display_name, email, password_hash, role) VALUES ('zz_role', 'A', 'zz@b.c', 'h', 'god')",
            CHECK_VIOLATION,
        ),
        (
            "INSERT INTO users (username, display_name, email, password_hash) VALUES ('zz_mail', 'A', 'not-an-email', 'h')",
            CHECK_VIOLATION,
        ),
        (
            "INSERT INTO sessions (user_id, token_hash, expires_at) VALUES (1, '\\x00', now() + interval '1 day')",
            CHECK_VIOLATION,
        ),
        ("INSERT INTO wiki_pages (slug, title, author_id) VALUES ('Not A Slug', 't', 1)", CHECK_VIOLATION),
        ("INSERT INTO events (room, kind) VALUES ('nowhere:1', 'x')", CHECK_VIOLATION),
        (
            "INSERT INTO events (room, kind, payload) VALUES ('topic:1', 'x', jsonb_build_object('big', repeat('x', 5000)))",
            CHECK_VIOLATION,
        ),
        ("INSERT INTO notifications (user_id, kind) VALUES (1, 'nonsense')", CHECK_VIOLATION),
        ("INSERT INTO forum_tags (name) VALUES ('Has Space')", CHECK_VIOLATION),
    ];
    for (sql, expected) in cases {
        assert_eq!(&sqlstate(client.execute(*sql, &[]).await), expected, "{sql}");
    }
}

#[tokio::test]
async fn a_reply_parent_must_be_in_the_same_topic_and_not_itself() {
    let client = connect(&database_url()).await;
    // Reply 1 belongs to some topic; pick a different topic for the child.
    let row = client.query_one("SELECT id, topic_id FROM forum_replies ORDER BY id LIMIT 1", &[]).await.unwrap();
    let (parent, topic): (i64, i64) = (row.get(0), row.get(1));
    let other: i64 =
        client.query_one("SELECT id FROM forum_topics WHERE id <> $1 LIMIT 1", &[&topic]).await.unwrap().get(0);
    let result = client
        .execute(
            "INSERT INTO forum_replies (topic_id, parent_id, author_id, body) VALUES ($1, $2, 1, 'x')",
            &[&other, &parent],
        )
        .await;
    assert_eq!(sqlstate(result), FOREIGN_KEY_VIOLATION);
    let result = client.execute("UPDATE forum_replies SET parent_id = id WHERE id = $1", &[&parent]).await;
    assert_eq!(sqlstate(result), CHECK_VIOLATION);
}

#[tokio::test]
async fn events_carry_the_writing_transaction_id() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let row = tx
        .query_one(
            "INSERT INTO events (room, kind, payload) VALUES ('topic:1', 'test.ping', '{}')
             RETURNING xid::text = pg_current_xact_id()::text, seq IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "xid is the writer's transaction");
    assert!(row.get::<_, bool>(1), "seq is stamped later, by the sequencer");
    tx.rollback().await.unwrap();
}

/// Stored HTML is bounded by a CHECK that follows from the source limit
/// (8 × the 1,000,000-byte ceiling), even for a writer that bypasses the
/// render trigger; the constraints are validated, not just declared.
#[tokio::test]
async fn stored_html_has_a_size_bound() {
    let (db, client) = veritable_tests::FreshDb::migrated("html_bound").await;
    let validated: i64 = client
        .query_one("SELECT count(*) FROM pg_constraint WHERE conname LIKE '%_body_html_size' AND convalidated", &[])
        .await
        .expect("q")
        .get(0);
    assert_eq!(validated, 3, "topics, replies and wiki revisions");
    client
        .batch_execute(
            "INSERT INTO users (username, display_name, email, password_hash) VALUES ('html_bound', 'H', 'h@b.test', 'h');
             INSERT INTO forum_categories (slug, name) VALUES ('c', 'C');
             ALTER TABLE forum_topics DISABLE TRIGGER forum_topics_render",
        )
        .await
        .expect("setup");
    let insert = "INSERT INTO forum_topics (category_id, author_id, title, body, body_html)
                  SELECT c.id, u.id, 't', 'b', repeat('x', $1) FROM forum_categories c, users u";
    client.execute(insert, &[&8_000_000i32]).await.expect("at the bound");
    assert_eq!(sqlstate(client.execute(insert, &[&8_000_001i32]).await), CHECK_VIOLATION);
    db.drop_db().await;
}

/// The proxy's checks (`veritable_core::rules`) and the schema's CHECK
/// constraints agree: what the proxy accepts the table takes, and what it
/// refuses the table would refuse too (so a refusal is a clear 422, never a
/// CHECK failure).
#[tokio::test]
async fn core_rules_agree_with_the_check_constraints() {
    use veritable_core::rules;
    let client = connect(&database_url()).await;
    let check = |sql: &'static str| {
        let client = &client;
        move |text: String| async move { client.query_one(sql, &[&text]).await.expect("check").get::<_, bool>(0) }
    };
    let fixed = ["rust", "rust-async", "a1-b2-c3", "", "-a", "a-", "a--b", "Rust", "a_b", "ä", "a b"];
    let sized = ["x".repeat(32), "x".repeat(33), "y".repeat(64), "y".repeat(65), "z".repeat(200), "z".repeat(201)];
    for text in fixed.iter().map(|s| (*s).to_owned()).chain(sized) {
        let tag = check("SELECT $1 ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length($1) <= 32")(text.clone()).await;
        assert_eq!(tag, rules::is_slug(&text, rules::TAG_MAX_CHARS), "tag {text:?}");
        let category = check("SELECT $1 ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length($1) <= 64")(text.clone()).await;
        assert_eq!(category, rules::is_slug(&text, rules::CATEGORY_SLUG_MAX_CHARS), "category slug {text:?}");
        let wiki = check("SELECT $1 ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length($1) <= 200")(text.clone()).await;
        assert_eq!(wiki, rules::is_slug(&text, rules::WIKI_SLUG_MAX_CHARS), "wiki slug {text:?}");
    }
    for name in
        ["demo", "ab", "abc", "with_underscore_9", "with space", "dash-ed", "ünï", &"n".repeat(32), &"n".repeat(33)]
    {
        let table = check("SELECT $1 ~ '^[A-Za-z0-9_]{3,32}$'")(name.to_owned()).await;
        assert_eq!(table, rules::is_username(name), "username {name:?}");
    }
    for email in ["a@b", "demo@example.test", "a@b@c", "@b", "a@", "a b@c", "ab", &format!("{}@x", "l".repeat(252))] {
        let table =
            check("SELECT char_length($1) BETWEEN 3 AND 254 AND $1 ~ '^[^@\\s]+@[^@\\s]+$'")(email.to_owned()).await;
        assert_eq!(table, rules::is_email(email), "email {email:?}");
    }
    // The sizes the proxy uses are the ones the tables hold.
    let body: String = client
        .query_one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'forum_replies_body_length'",
            &[],
        )
        .await
        .expect("constraint")
        .get(0);
    assert!(body.contains(&rules::CONTENT_BYTES_CEILING.to_string()), "{body}");
}

/// Migration 019 rewrote the room and kind CHECKs without bounded
/// repetitions (27 µs per room in PostgreSQL's regex engine): the same rows
/// pass and fail as under the patterns they replace.
#[tokio::test]
async fn the_cheaper_room_and_kind_checks_keep_the_rules() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let long = |n: usize| "a".repeat(n);
    let rooms = [
        "topic:1".to_owned(),
        "wiki:a-b_C9".to_owned(),
        "user:".to_owned(),
        "topic::1".to_owned(),
        "topic:1:2".to_owned(),
        "Topic:1".to_owned(),
        "nowhere:1".to_owned(),
        "topic:é".to_owned(),
        "topic:1 ".to_owned(),
        format!("category:{}", long(200)),
        format!("category:{}", long(201)),
        format!("wiki:{}", long(200)),
        format!("wiki:{}", long(201)),
    ];
    let (k64, k65) = (long(64), long(65));
    let kinds = ["reply.created", "a", "", "_a", "Reply", "a.b_c", k64.as_str(), k65.as_str()];
    for (i, room) in rooms.iter().enumerate() {
        for kind in kinds {
            let before: bool = tx
                .query_one(
                    "SELECT $1 ~ '^(topic|category|wiki|user):[A-Za-z0-9_-]{1,200}$' AND $2 ~ '^[a-z][a-z_.]{0,63}$'",
                    &[room, &kind],
                )
                .await
                .unwrap()
                .get(0);
            tx.execute(&format!("SAVEPOINT s{i}"), &[]).await.unwrap();
            let stored = tx.execute("INSERT INTO events (room, kind) VALUES ($1, $2)", &[room, &kind]).await.is_ok();
            tx.execute(&format!("ROLLBACK TO SAVEPOINT s{i}"), &[]).await.unwrap();
            assert_eq!(stored, before, "room {room:?}, kind {kind:?}");
        }
    }
    tx.rollback().await.unwrap();
}
