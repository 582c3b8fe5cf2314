//! The triggers: sanitized HTML on every path, counters ±1, participants,
//! mentions, activity and the outbox, all in the writer's transaction.

use tokio_postgres::{Client, Transaction};
use veritable_proxy::seed;
use veritable_tests::{FreshDb, connect, database_url, sqlstate};

/// reply_count, participant_count, last_reply_at (text) of a topic.
async fn stats(tx: &Transaction<'_>, topic: i64) -> (i32, i32, Option<String>) {
    let row = tx
        .query_one(
            "SELECT reply_count, participant_count, last_reply_at::text FROM forum_topic_stats WHERE topic_id = $1",
            &[&topic],
        )
        .await
        .expect("topic stats");
    (row.get(0), row.get(1), row.get(2))
}

async fn new_topic(tx: &Transaction<'_>) -> i64 {
    tx.query_one(
        "INSERT INTO forum_topics (category_id, author_id, title, body) VALUES (1, 3, 'T', 'b') RETURNING id",
        &[],
    )
    .await
    .expect("insert a topic")
    .get(0)
}

async fn reply(tx: &Transaction<'_>, topic: i64, author: i64, parent: Option<i64>, body: &str) -> i64 {
    tx.query_one(
        "INSERT INTO forum_replies (topic_id, author_id, parent_id, body) VALUES ($1, $2, $3, $4) RETURNING id",
        &[&topic, &author, &parent, &body],
    )
    .await
    .expect("insert a reply")
    .get(0)
}

#[tokio::test]
async fn a_dbas_raw_insert_is_sanitized_and_versioned() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let topic = new_topic(&tx).await;
    let row = tx
        .query_one(
            "INSERT INTO forum_replies (topic_id, author_id, body, body_html, render_version)
             VALUES ($1, 1, 'hi <script>alert(1)</script> **there**', '<script>evil()</script>', 99)
             RETURNING body_html, render_version, veritable.policy_version()",
            &[&topic],
        )
        .await
        .unwrap();
    let html: String = row.get(0);
    assert_eq!(html, "<p>hi  <strong>there</strong></p>\n");
    assert_eq!(row.get::<_, i32>(1), row.get::<_, i32>(2));
    // Writing body_html directly re-renders it from the source.
    let rerendered: String = tx
        .query_one("UPDATE forum_replies SET body_html = '<img src=x onerror=alert(1)>' WHERE topic_id = $1 RETURNING body_html", &[&topic])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rerendered, html);
    // After a policy change a DBA re-renders by resetting the version (README).
    let row = tx
        .query_one(
            "UPDATE forum_replies SET render_version = 0 WHERE topic_id = $1
             RETURNING body_html, render_version = veritable.policy_version()",
            &[&topic],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, bool>(1)), (html, true));
    let topic_html: String =
        tx.query_one("SELECT body_html FROM forum_topics WHERE id = $1", &[&topic]).await.unwrap().get(0);
    assert_eq!(topic_html, "<p>b</p>\n");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_22001_and_nothing_is_stored() {
    let client = connect(&database_url()).await;
    client.batch_execute("SET veritable.max_content_bytes = 1000").await.unwrap();
    let result = client
        .execute("INSERT INTO forum_replies (topic_id, author_id, body) VALUES (1, 1, repeat('x', 1001))", &[])
        .await;
    assert_eq!(sqlstate(result), "22001");
    let stored: i64 = client
        .query_one("SELECT count(*) FROM forum_replies WHERE body = repeat('x', 1001)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
    client
        .execute("INSERT INTO forum_replies (topic_id, author_id, body) VALUES (1, 1, repeat('x', 1000))", &[])
        .await
        .expect("exactly at the limit is accepted");
    client.execute("DELETE FROM forum_replies WHERE body = repeat('x', 1000)", &[]).await.unwrap();
}

#[tokio::test]
async fn seeded_html_is_exactly_what_the_extension_renders() {
    let client = connect(&database_url()).await;
    for table in ["forum_topics", "forum_replies", "wiki_revisions"] {
        let differing: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {table}
                     WHERE body_html <> veritable.render_markdown(body) OR render_version <> veritable.policy_version()"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(differing, 0, "{table}");
    }
}

#[tokio::test]
async fn counters_follow_insert_soft_delete_restore_move_and_hard_delete() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let a = new_topic(&tx).await;
    let b = new_topic(&tx).await;
    assert_eq!(stats(&tx, a).await, (0, 0, None));

    let r1 = reply(&tx, a, 10, None, "one").await;
    let r2 = reply(&tx, a, 11, Some(r1), "two").await;
    let r3 = reply(&tx, a, 10, Some(r2), "three").await;
    let (count, participants, last) = stats(&tx, a).await;
    assert_eq!((count, participants), (3, 2));
    assert!(last.is_some());
    let tree: Vec<(i32, i32)> = tx
        .query("SELECT depth, child_count FROM forum_replies WHERE id = ANY($1) ORDER BY id", &[&vec![r1, r2, r3]])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(tree, vec![(0, 1), (1, 1), (2, 0)]);

    tx.execute("UPDATE forum_replies SET is_deleted = true WHERE id = $1", &[&r2]).await.unwrap();
    let (count, participants, _) = stats(&tx, a).await;
    assert_eq!((count, participants), (2, 1), "user 11 left");
    tx.execute("UPDATE forum_replies SET is_deleted = false WHERE id = $1", &[&r2]).await.unwrap();
    let (count, participants, _) = stats(&tx, a).await;
    assert_eq!((count, participants), (3, 2));

    // Move the leaf to topic b.
    tx.execute("UPDATE forum_replies SET topic_id = $2, parent_id = NULL WHERE id = $1", &[&r3, &b]).await.unwrap();
    let (count_a, participants_a, _) = stats(&tx, a).await;
    let (count_b, participants_b, _) = stats(&tx, b).await;
    assert_eq!((count_a, participants_a, count_b, participants_b), (2, 2, 1, 1));
    let r2_children: i32 =
        tx.query_one("SELECT child_count FROM forum_replies WHERE id = $1", &[&r2]).await.unwrap().get(0);
    assert_eq!(r2_children, 0);

    // A reply with children cannot be hard-deleted (it stays as a tombstone instead).
    let code = sqlstate(tx.execute("DELETE FROM forum_replies WHERE id = $1", &[&r1]).await);
    assert_eq!(code, "23503");
    tx.rollback().await.unwrap();

    let tx = client.transaction().await.unwrap();
    let a = new_topic(&tx).await;
    let r1 = reply(&tx, a, 10, None, "one").await;
    let last_before: Option<String> = stats(&tx, a).await.2;
    tx.execute("DELETE FROM forum_replies WHERE id = $1", &[&r1]).await.unwrap();
    assert_eq!(stats(&tx, a).await, (0, 0, None), "hard delete of the newest reply recomputes last_reply_at");
    assert!(last_before.is_some());
    let drift: i64 = tx.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.unwrap().get(0);
    assert_eq!(drift, 0, "the triggers left nothing to fix");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn mentions_activity_and_events_are_written_in_the_same_transaction() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let topic = new_topic(&tx).await;
    let id =
        reply(&tx, topic, 3, None, "hello @Admin and @moderator and @demo and @nobody_here, mail x@admin.test").await;
    let mentioned: Vec<i64> = tx
        .query("SELECT mentioned_user_id FROM mentions WHERE reply_id = $1 ORDER BY 1", &[&id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(mentioned, vec![1, 2], "admin and moderator; never the author (demo) or unknown names");
    let notified: i64 = tx
        .query_one("SELECT count(*) FROM notifications WHERE reply_id = $1 AND kind = 'mention'", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(notified, 2);
    let activity: i64 = tx
        .query_one("SELECT count(*) FROM unified_activity WHERE reply_id = $1 AND kind = 'reply_created'", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(activity, 1);
    let events: Vec<(String, String, bool, i32)> = tx
        .query(
            "SELECT room, kind, xid = pg_current_xact_id(), octet_length(payload::text) FROM events
              WHERE xid = pg_current_xact_id() ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let kinds: Vec<(String, String)> = events.iter().map(|(room, kind, _, _)| (room.clone(), kind.clone())).collect();
    let expected: Vec<(String, String)> = [
        ("category:1".to_owned(), "topic.created"),
        (format!("topic:{topic}"), "reply.created"),
        ("user:1".to_owned(), "notification.created"),
        ("user:2".to_owned(), "notification.created"),
    ]
    .into_iter()
    .map(|(room, kind)| (room, kind.to_owned()))
    .collect();
    assert_eq!(kinds, expected);
    assert!(events.iter().all(|e| e.2 && e.3 <= 4096));
    // A mention list is capped at 20 names per post.
    let many: String = (4..40).map(|n| format!("@{} ", seed::username_of(n))).collect();
    let id = reply(&tx, topic, 1, None, &many).await;
    let count: i64 = tx.query_one("SELECT count(*) FROM mentions WHERE reply_id = $1", &[&id]).await.unwrap().get(0);
    assert_eq!(count, 20);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn wiki_revisions_advance_the_page_and_notify_its_room() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let page: i64 = tx
        .query_one("INSERT INTO wiki_pages (slug, title, author_id) VALUES ('trigger-test', 'T', 1) RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    tx.execute(
        "INSERT INTO wiki_revisions (page_id, revision_number, author_id, title, body) VALUES ($1, 1, 1, 'First', '# Head')",
        &[&page],
    )
    .await
    .unwrap();
    let row = tx.query_one("SELECT current_revision, title FROM wiki_pages WHERE id = $1", &[&page]).await.unwrap();
    assert_eq!((row.get::<_, i32>(0), row.get::<_, String>(1)), (1, "First".to_owned()));
    let html: String =
        tx.query_one("SELECT body_html FROM wiki_revisions WHERE page_id = $1", &[&page]).await.unwrap().get(0);
    assert_eq!(html, "<h1>Head</h1>\n");
    let room: String = tx
        .query_one("SELECT room FROM events WHERE xid = pg_current_xact_id() AND kind = 'wiki.revised'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(room, "wiki:trigger-test");
    // The same revision number twice is refused (optimistic concurrency rests on this).
    let dup = tx
        .execute(
            "INSERT INTO wiki_revisions (page_id, revision_number, author_id, title, body) VALUES ($1, 1, 1, 'x', 'y')",
            &[&page],
        )
        .await;
    assert_eq!(sqlstate(dup), "23505");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn no_trigger_function_calls_pg_notify() {
    let client = connect(&database_url()).await;
    let offenders: Vec<String> = client
        .query(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'veritable' AND (p.prosrc ILIKE '%pg_notify%' OR p.prosrc ~* '\\mnotify\\M')
                -- The sequencer and the presence sync notify, each in its own
                -- transaction; no function on the write path calls them.
                AND p.proname NOT IN ('sequence_events', 'presence_sync')
             UNION ALL
             SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = 'veritable' AND (p.prosrc ILIKE '%sequence_events%' OR p.prosrc ILIKE '%presence_sync%')
                AND p.proname NOT IN ('sequence_events', 'presence_sync')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(offenders.is_empty(), "{offenders:?}");
}

#[tokio::test]
async fn a_topics_stats_row_is_created_with_it_and_follows_its_category_pin_and_deletion() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let topic = new_topic(&tx).await;
    let stats_row = "SELECT s.category_id, s.is_pinned, s.is_deleted, s.last_activity_at = t.created_at
                       FROM forum_topic_stats s JOIN forum_topics t ON t.id = s.topic_id WHERE s.topic_id = $1";
    let row = tx.query_one(stats_row, &[&topic]).await.expect("a new topic has its stats row");
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, bool>(1), row.get::<_, bool>(2), row.get::<_, bool>(3)),
        (1, false, false, true)
    );
    assert_eq!(stats(&tx, topic).await, (0, 0, None));

    tx.execute("UPDATE forum_topics SET category_id = 2, is_pinned = true WHERE id = $1", &[&topic]).await.unwrap();
    let row = tx.query_one(stats_row, &[&topic]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, bool>(1), row.get::<_, bool>(2)), (2, true, false));
    let first: i64 = tx.query_one("SELECT id FROM veritable.topic_page(2, NULL, 1)", &[]).await.unwrap().get(0);
    assert_eq!(first, topic, "pinned and newest: first in its new category");

    tx.execute("UPDATE forum_topics SET is_deleted = true WHERE id = $1", &[&topic]).await.unwrap();
    let row = tx.query_one(stats_row, &[&topic]).await.unwrap();
    assert!(row.get::<_, bool>(2));
    let shown = tx.query("SELECT 1 FROM veritable.topic_page(2, NULL, 100) WHERE id = $1", &[&topic]).await.unwrap();
    assert!(shown.is_empty(), "a deleted topic leaves the pages");
    tx.rollback().await.unwrap();
}

/// The names a topic carries for its page, and the truth from the tag tables.
async fn tag_names(tx: &Transaction<'_>, topic: i64) -> (Vec<String>, Vec<String>) {
    let row = tx
        .query_one("SELECT tag_names, veritable.tag_names_of(id) FROM forum_topics WHERE id = $1", &[&topic])
        .await
        .expect("tag names");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn topic_tag_names_follow_tagging_untagging_renames_and_tag_deletion() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let (a, b) = (new_topic(&tx).await, new_topic(&tx).await);
    let ids: Vec<i64> = tx
        .query("INSERT INTO forum_tags (name) VALUES ('zz-names-b'), ('zz-names-a'), ('zz-names-c') RETURNING id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (tb, ta, tc) = (ids[0], ids[1], ids[2]);
    let name = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Several topics and tags in one statement: each topic refreshed, names in order.
    tx.execute(
        "INSERT INTO forum_topic_tags (topic_id, tag_id) VALUES ($1, $2), ($1, $3), ($4, $3)",
        &[&a, &tb, &ta, &b],
    )
    .await
    .unwrap();
    assert_eq!(tag_names(&tx, a).await, (name(&["zz-names-a", "zz-names-b"]), name(&["zz-names-a", "zz-names-b"])));
    assert_eq!(tag_names(&tx, b).await.0, name(&["zz-names-a"]));

    tx.execute("UPDATE forum_tags SET name = 'zz-names-0' WHERE id = $1", &[&ta]).await.unwrap();
    assert_eq!(tag_names(&tx, a).await.0, name(&["zz-names-0", "zz-names-b"]), "renamed and re-sorted");
    assert_eq!(tag_names(&tx, b).await.0, name(&["zz-names-0"]));

    tx.execute("UPDATE forum_topic_tags SET tag_id = $1 WHERE topic_id = $2 AND tag_id = $3", &[&tc, &a, &tb])
        .await
        .unwrap();
    assert_eq!(tag_names(&tx, a).await.0, name(&["zz-names-0", "zz-names-c"]), "a tag swapped for another");

    tx.execute("DELETE FROM forum_topic_tags WHERE topic_id = $1 AND tag_id = $2", &[&a, &tc]).await.unwrap();
    assert_eq!(tag_names(&tx, a).await.0, name(&["zz-names-0"]));
    tx.execute("DELETE FROM forum_tags WHERE id = $1", &[&ta]).await.unwrap();
    for topic in [a, b] {
        assert_eq!(tag_names(&tx, topic).await, (vec![], vec![]), "a deleted tag leaves its topics");
    }

    // The page shows what the row carries.
    tx.execute("INSERT INTO forum_topic_tags (topic_id, tag_id) VALUES ($1, $2)", &[&b, &tb]).await.unwrap();
    let shown: Vec<String> = tx
        .query_one("SELECT tags FROM veritable.topic_page(1, NULL, 100) WHERE id = $1", &[&b])
        .await
        .expect("the new topic is on the first page of its category")
        .get(0);
    assert_eq!(shown, name(&["zz-names-b"]));
    tx.rollback().await.unwrap();
}

/// Pruning deletes old stamped events only, oldest first, at most a batch per
/// call (stamps are gap-free, as the sequencer makes them), and none that a
/// live listener has not read; a listener silent for longer than the
/// backlog is forgotten.
#[tokio::test]
async fn old_events_are_pruned_in_bounded_batches() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(
        "INSERT INTO events (seq, room, kind, created_at)
         SELECT 9000000000000 + n, 'topic:1', 'test.old', now() - interval '2 hours' FROM generate_series(1, 3) n;
         INSERT INTO events (seq, room, kind) VALUES (9000000000004, 'topic:1', 'test.new');
         INSERT INTO events (room, kind, created_at) VALUES ('topic:1', 'test.unstamped', now() - interval '2 hours')",
    )
    .await
    .unwrap();
    // Only this test's rows are old enough to matter inside its transaction.
    tx.execute("DELETE FROM events WHERE kind NOT LIKE 'test.%' AND created_at < now() - interval '1 hour'", &[])
        .await
        .unwrap();
    // The proxies of other tests hold cursors of their own: only this one counts here.
    tx.batch_execute(
        "DELETE FROM listener_cursors;
         INSERT INTO listener_cursors (listener, seq) VALUES ('test-listener', 9000000000001)",
    )
    .await
    .unwrap();
    let prune = |batch: i32| {
        let tx = &tx;
        async move {
            tx.query_one("SELECT veritable.prune_events(interval '1 hour', $1)", &[&batch])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(prune(2).await, 1, "up to the live listener's cursor only");
    assert_eq!(prune(2).await, 0, "the rest waits for the listener");
    tx.execute("UPDATE listener_cursors SET seen_at = now() - interval '2 hours'", &[]).await.unwrap();
    assert_eq!(prune(2).await, 2, "a listener silent past the backlog holds nothing back");
    assert_eq!(prune(2).await, 0);
    let cursors: i64 = tx.query_one("SELECT count(*) FROM listener_cursors", &[]).await.unwrap().get(0);
    assert_eq!(cursors, 0, "and its row is gone");
    let left: Vec<String> = tx
        .query("SELECT kind FROM events WHERE kind LIKE 'test.%' ORDER BY kind", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, ["test.new", "test.unstamped"], "new and unstamped events stay");
    tx.rollback().await.unwrap();
}

/// The sequencer's cost does not grow with the events pruned and not yet
/// vacuumed: they all sit at the low end of the primary key, and a plan that
/// looked there (costing a merge join reads the true lowest `id`) walked
/// every one of them at each call, 4-14 ms apiece on a database pruning an
/// hour's backlog. Buffers are counted, not time: the count is exact.
///
/// The events are stamped here by hand and the calls measured have nothing
/// to stamp, so no transaction open elsewhere in the cluster (which holds
/// the sequencer back) changes what a call does; each call still plans its
/// stamp.
#[tokio::test]
async fn the_sequencer_does_not_walk_pruned_events() {
    let (db, client) = FreshDb::migrated("seq_pruned").await;
    for step in [
        "INSERT INTO events (room, kind) SELECT 'topic:1', 'test.old' FROM generate_series(1, 100000)",
        "UPDATE events SET seq = id",
        "ANALYZE events",
        // A first call hints the 100,000 old versions the stamp left: once.
        "SELECT veritable.sequence_events()",
    ] {
        client.execute(step, &[]).await.unwrap();
    }
    let before = sequencer_call_buffers(&client).await;
    // As the pruner leaves them: all but the newest stamped event deleted.
    let pruned = client.execute("DELETE FROM events WHERE seq < (SELECT max(seq) FROM events)", &[]).await.unwrap();
    assert_eq!(pruned, 99_999);
    let after = sequencer_call_buffers(&client).await;
    assert!(after <= before + 20, "a call read {before} buffers before 99,999 events were pruned and {after} after");
    db.drop_db().await;
}

/// Buffers read by one call of the sequencer.
async fn sequencer_call_buffers(client: &Client) -> i64 {
    let plan: Vec<String> = client
        .query("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT veritable.sequence_events()", &[])
        .await
        .expect("explain the sequencer")
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The call's node comes first: "Buffers: shared hit=N read=M ...".
    let line = plan.iter().find(|l| l.trim_start().starts_with("Buffers: shared")).expect("a buffers line");
    let count = |key: &str| -> i64 {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .map_or(0, |n| n.parse().unwrap_or_else(|_| panic!("{key} in {line}")))
    };
    count("hit=") + count("read=")
}

/// The proxy's batch statement: many replies in one INSERT, their derived
/// rows written once per statement, each row's outcome apart.
#[tokio::test]
async fn a_batch_of_replies_derives_counters_activity_events_and_mentions_once() {
    use veritable_proxy::store::forums::REPLY_CREATE;
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let (a, b, locked) = (new_topic(&tx).await, new_topic(&tx).await, new_topic(&tx).await);
    tx.execute("UPDATE forum_topics SET is_locked = true WHERE id = $1", &[&locked]).await.unwrap();
    let parent = reply(&tx, a, 3, None, "the parent").await;
    let elsewhere = reply(&tx, b, 3, None, "in another topic").await;
    let rows: [(i64, Option<i64>, i64, &str); 8] = [
        (a, Some(parent), 10, "child of the parent, hi @admin"),
        (b, None, 10, "in b"),
        (a, None, 11, "root in a"),
        (a, None, 10, "another root in a"),
        (a, Some(elsewhere), 12, "a parent from another topic"),
        (999_999_999, None, 12, "no such topic"),
        (locked, None, 12, "a locked topic"),
        (a, None, 10, "the author's fourth post: past the limit of 3"),
    ];
    let topics: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let parents: Vec<Option<i64>> = rows.iter().map(|r| r.1).collect();
    let authors: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let bodies: Vec<&str> = rows.iter().map(|r| r.3).collect();
    let keys: Vec<String> = rows.iter().map(|r| format!("test:batch:{}", r.2)).collect();
    let outcomes = tx
        .query(REPLY_CREATE.text, &[&topics, &parents, &authors, &bodies, &keys, &3_i32, &true])
        .await
        .expect("the batch statement");
    let got: Vec<(bool, Option<bool>, bool, bool)> = outcomes
        .iter()
        .map(|r| (r.get::<_, i32>(0) > 0, r.get(1), r.get(2), r.get::<_, Option<String>>(3).is_some()))
        .collect();
    assert_eq!(
        got,
        vec![
            (false, Some(false), true, true),
            (false, Some(false), true, true),
            (false, Some(false), true, true),
            (false, Some(false), true, true),
            (false, Some(false), false, false),
            (false, None, true, false),
            (false, Some(true), true, false),
            (true, Some(false), true, false),
        ]
    );
    let child: serde_json::Value = serde_json::from_str(&outcomes[0].get::<_, String>(3)).unwrap();
    assert_eq!((child["depth"].as_i64(), child["parent_id"].as_i64()), (Some(1), Some(parent)));

    assert_eq!((stats(&tx, a).await.0, stats(&tx, a).await.1), (4, 3), "a: the parent + 3; authors 3, 10, 11");
    assert_eq!((stats(&tx, b).await.0, stats(&tx, b).await.1), (2, 2), "b: one before, one now");
    let children: i32 =
        tx.query_one("SELECT child_count FROM forum_replies WHERE id = $1", &[&parent]).await.unwrap().get(0);
    assert_eq!(children, 1);
    let ten: i32 = tx
        .query_one("SELECT reply_count FROM forum_topic_participants WHERE topic_id = $1 AND user_id = 10", &[&a])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ten, 2);
    let written: Vec<i64> = outcomes
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(3))
        .map(|json| serde_json::from_str::<serde_json::Value>(&json).unwrap()["id"].as_i64().unwrap())
        .collect();
    let activity: i64 = tx
        .query_one(
            "SELECT count(*) FROM unified_activity WHERE reply_id = ANY($1) AND kind = 'reply_created'",
            &[&written],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(activity, 4);
    let events: Vec<i64> = tx
        .query(
            "SELECT (payload->>'id')::bigint FROM events
              WHERE xid = pg_current_xact_id() AND kind = 'reply.created' AND (payload->>'id')::bigint = ANY($1) ORDER BY id",
            &[&written],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut in_order = written.clone();
    in_order.sort_unstable();
    assert_eq!(events, in_order, "one event per reply, in id order");
    let mentioned: i64 = tx
        .query_one("SELECT count(*) FROM notifications WHERE reply_id = $1 AND user_id = 1", &[&written[0]])
        .await
        .unwrap()
        .get(0);
    assert_eq!(mentioned, 1);
    tx.rollback().await.unwrap();
}

/// A DBA's multi-row INSERT takes the same set-based path.
#[tokio::test]
async fn a_dbas_multi_row_insert_keeps_counters_exact() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let (a, b) = (new_topic(&tx).await, new_topic(&tx).await);
    let parent = reply(&tx, a, 3, None, "p").await;
    tx.execute(
        "INSERT INTO forum_replies (topic_id, parent_id, author_id, body, depth, child_count)
         VALUES ($1, $3, 10, 'x', 7, 9), ($1, $3, 10, 'y', 0, 0), ($2, NULL, 11, 'z', 5, 5), ($2, NULL, 3, 'w', 0, 0)",
        &[&a, &b, &parent],
    )
    .await
    .unwrap();
    let placed: Vec<(i32, i32)> = tx
        .query("SELECT depth, child_count FROM forum_replies WHERE topic_id IN ($1, $2) ORDER BY id", &[&a, &b])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(placed, vec![(0, 2), (1, 0), (1, 0), (0, 0), (0, 0)], "depth and child counts are derived, not taken");
    assert_eq!((stats(&tx, a).await.0, stats(&tx, a).await.1), (3, 2));
    assert_eq!((stats(&tx, b).await.0, stats(&tx, b).await.1), (2, 2));
    tx.rollback().await.unwrap();
}

/// What one scenario of posts left behind, to compare the two paths.
#[derive(Debug, PartialEq)]
struct Posted {
    /// Per post: limited, the topic's lock state, parent fits, written, held.
    outcomes: Vec<(bool, Option<bool>, bool, bool, bool)>,
    /// Per live topic of the scenario: reply_count, participant_count, whether last_reply_at is set.
    stats: Vec<(i32, i32, bool)>,
    /// The parent's child_count, author 10's replies in the first topic.
    parent_children: i32,
    participant_ten: i32,
    /// Activity rows, reply.created events, mention notifications written.
    activity: i64,
    events: i64,
    mentions: i64,
}

/// The scenario of `a_batch_of_replies_derives_counters_activity_events_and_mentions_once`
/// plus a deleted topic and a missing parent, on topics of its own, posted
/// through `veritable.post_replies` as one batch or one reply per call.
async fn post_scenario(tx: &Transaction<'_>, one_at_a_time: bool) -> Posted {
    use veritable_proxy::store::forums::REPLY_CREATE;
    let (a, b, locked, deleted) = (new_topic(tx).await, new_topic(tx).await, new_topic(tx).await, new_topic(tx).await);
    tx.execute("UPDATE forum_topics SET is_locked = true WHERE id = $1", &[&locked]).await.expect("lock a topic");
    tx.execute("UPDATE forum_topics SET is_deleted = true WHERE id = $1", &[&deleted]).await.expect("delete a topic");
    let parent = reply(tx, a, 3, None, "the parent").await;
    let elsewhere = reply(tx, b, 3, None, "in another topic").await;
    let rows: [(i64, Option<i64>, i64, &str); 10] = [
        (a, Some(parent), 10, "child of the parent, hi @admin"),
        (b, None, 10, "in b"),
        (a, None, 11, "root in a"),
        (a, None, 10, "another root in a"),
        (a, Some(elsewhere), 12, "a parent from another topic"),
        (a, Some(999_999_999), 13, "no such parent"),
        (999_999_999, None, 12, "no such topic"),
        (locked, None, 12, "a locked topic"),
        (deleted, None, 13, "a deleted topic"),
        (a, None, 10, "the author's fourth post: past the limit of 3"),
    ];
    let prefix = if one_at_a_time { "test:one" } else { "test:batch" };
    let call = |rows: &[(i64, Option<i64>, i64, &str)]| {
        let topics: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let parents: Vec<Option<i64>> = rows.iter().map(|r| r.1).collect();
        let authors: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let bodies: Vec<String> = rows.iter().map(|r| r.3.to_owned()).collect();
        let keys: Vec<String> = rows.iter().map(|r| format!("{prefix}:{}", r.2)).collect();
        async move {
            tx.query(REPLY_CREATE.text, &[&topics, &parents, &authors, &bodies, &keys, &3_i32, &true])
                .await
                .expect("post_replies")
        }
    };
    let mut answers = Vec::new();
    if one_at_a_time {
        for row in &rows {
            answers.extend(call(std::slice::from_ref(row)).await);
        }
    } else {
        answers = call(&rows).await;
    }
    let outcomes = answers
        .iter()
        .map(|r| (r.get::<_, i32>(0) > 0, r.get(1), r.get(2), r.get::<_, Option<String>>(3).is_some(), r.get(5)))
        .collect();
    let written: Vec<i64> = answers
        .iter()
        .filter_map(|r| r.get::<_, Option<String>>(3))
        .map(|json| serde_json::from_str::<serde_json::Value>(&json).expect("json")["id"].as_i64().expect("id"))
        .collect();
    let mut stats_of = Vec::new();
    for topic in [a, b, locked] {
        let (replies, participants, last) = stats(tx, topic).await;
        stats_of.push((replies, participants, last.is_some()));
    }
    let count = |sql: &'static str, params: Vec<i64>| async move {
        tx.query_one(sql, &[&params]).await.expect(sql).get::<_, i64>(0)
    };
    Posted {
        outcomes,
        stats: stats_of,
        parent_children: tx
            .query_one("SELECT child_count FROM forum_replies WHERE id = $1", &[&parent])
            .await
            .expect("a count")
            .get(0),
        participant_ten: tx
            .query_one("SELECT reply_count FROM forum_topic_participants WHERE topic_id = $1 AND user_id = 10", &[&a])
            .await
            .expect("a count")
            .get(0),
        activity: count("SELECT count(*) FROM unified_activity WHERE reply_id = ANY($1)", written.clone()).await,
        events: count(
            "SELECT count(*) FROM events WHERE kind = 'reply.created' AND (payload->>'id')::bigint = ANY($1)",
            written.clone(),
        )
        .await,
        mentions: count("SELECT count(*) FROM notifications WHERE reply_id = ANY($1)", written).await,
    }
}

/// A reply posted alone takes `post_replies`' one-reply path: it is
/// answered, limited and derived exactly as the same reply in a batch
/// (every refusal included). A held reply alone: `api::replies`'
/// `a_post_stuck_behind_a_lock_fails_alone_at_the_lock_timeout`.
#[tokio::test]
async fn one_reply_per_call_is_answered_and_derived_as_in_a_batch() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.unwrap();
    let batch = post_scenario(&tx, false).await;
    let alone = post_scenario(&tx, true).await;
    assert_eq!(alone, batch);
    assert_eq!(
        batch.outcomes,
        vec![
            (false, Some(false), true, true, false),
            (false, Some(false), true, true, false),
            (false, Some(false), true, true, false),
            (false, Some(false), true, true, false),
            (false, Some(false), false, false, false),
            (false, Some(false), false, false, false),
            (false, None, true, false, false),
            (false, Some(true), true, false, false),
            (false, None, true, false, false),
            (true, Some(false), true, false, false),
        ]
    );
    assert_eq!(batch.stats, vec![(4, 3, true), (2, 2, true), (0, 0, false)]);
    assert_eq!((batch.parent_children, batch.participant_ten), (1, 2));
    assert_eq!((batch.activity, batch.events, batch.mentions), (4, 4, 1));
    tx.rollback().await.unwrap();
}
