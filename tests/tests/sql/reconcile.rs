//! Reconciliation: the whole-table pass with writers waiting, and the online
//! pass that checks topics without a lock and holds only the drifted ones.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_proxy::store::forums::REPLY_CREATE;
use veritable_tests::{FreshDb, connect, sqlstate};

/// Drift of every kind on topics 1–8 (and reply 1's topic): what only a
/// write with triggers disabled, or a bug, could leave. Returns the rows it
/// made wrong (each one a reconcile pass changes back) and their topics.
async fn make_drift(client: &Client) -> (i64, Vec<i64>) {
    client
        .batch_execute(
            "UPDATE forum_topic_stats SET reply_count = reply_count + 5 WHERE topic_id = 3;
             UPDATE forum_topic_stats SET last_activity_at = '2000-01-01' WHERE topic_id = 4;
             DELETE FROM forum_topic_participants WHERE topic_id = 1 AND user_id = (SELECT min(user_id) FROM forum_topic_participants WHERE topic_id = 1);
             UPDATE forum_replies SET child_count = 42 WHERE id = 1;
             UPDATE forum_topic_participants SET reply_count = reply_count + 3
              WHERE (topic_id, user_id) = (SELECT topic_id, user_id FROM forum_topic_participants WHERE topic_id = 5 ORDER BY user_id LIMIT 1);
             INSERT INTO forum_topic_participants (topic_id, user_id, reply_count)
             SELECT 2, u.id, 1 FROM users u
              WHERE NOT EXISTS (SELECT 1 FROM forum_replies r WHERE r.topic_id = 2 AND r.author_id = u.id AND NOT r.is_deleted)
              ORDER BY u.id LIMIT 1;
             UPDATE forum_topics SET tag_names = '{not-a-tag}' WHERE id = 6;
             UPDATE forum_topic_stats SET is_pinned = NOT is_pinned WHERE topic_id = 7;
             DELETE FROM forum_topic_stats WHERE topic_id = 8",
        )
        .await
        .expect("drift");
    let reply_topic: i64 =
        client.query_one("SELECT topic_id FROM forum_replies WHERE id = 1", &[]).await.expect("reply 1").get(0);
    let mut topics: Vec<i64> = (1..=8).chain([reply_topic]).collect();
    topics.sort_unstable();
    topics.dedup();
    // A topic's counters, its activity time, a child count, a participant
    // missing, miscounted and invented, a topic's tag names, the page
    // order's copy of a pin, and a missing stats row.
    (9, topics)
}

async fn reconcile(client: &Client) -> i64 {
    client.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("reconcile").get(0)
}

async fn drifted(client: &Client) -> Vec<i64> {
    client.query_one("SELECT veritable.drifted_topics(NULL)", &[]).await.expect("drifted_topics").get(0)
}

/// One online pass with these arguments (`p_step => 2`): (rows fixed, topics
/// left busy), or the error.
async fn try_reconcile_online(client: &Client, arguments: &str) -> Result<(i64, Vec<i64>), tokio_postgres::Error> {
    let row = client.query_one(&format!("CALL veritable.reconcile_topic_stats_online({arguments})"), &[]).await?;
    Ok((row.get(0), row.get(1)))
}

async fn reconcile_online(client: &Client, arguments: &str) -> (i64, Vec<i64>) {
    try_reconcile_online(client, arguments).await.expect("the online pass")
}

#[tokio::test]
async fn reconcile_finds_and_fixes_drift() {
    let (db, client) = FreshDb::seeded("reconcile_drift", &Shape::of(Scale::Small), 7).await;
    assert_eq!(reconcile(&client).await, 0, "the seed's derived data is exact");
    let (rows, _) = make_drift(&client).await;
    assert_eq!(reconcile(&client).await, rows);
    assert_eq!(reconcile(&client).await, 0, "fixed");
    db.drop_db().await;
}

/// The online pass finds the same drift without a lock, names its topics,
/// and fixes exactly what the whole-table pass would have.
#[tokio::test]
async fn the_online_pass_fixes_what_the_whole_table_pass_fixes() {
    let (db, client) = FreshDb::seeded("reconcile_online", &Shape::of(Scale::Small), 7).await;
    assert_eq!(drifted(&client).await, Vec::<i64>::new(), "the seed's derived data is exact");
    let (rows, topics) = make_drift(&client).await;
    assert_eq!(drifted(&client).await, topics);
    // Two topics a step: the pass crosses many transactions.
    assert_eq!(reconcile_online(&client, "p_step => 2").await, (rows, vec![]));
    assert_eq!(drifted(&client).await, Vec::<i64>::new());
    assert_eq!(reconcile(&client).await, 0, "nothing left for the whole-table pass");
    assert_eq!(reconcile_online(&client, "p_duty => 0.5").await, (0, vec![]), "a second pass changes nothing");

    for bad in ["p_step => 0", "p_step => 100001", "p_step => NULL", "p_duty => 0", "p_duty => 0.0099", "p_duty => 1.5"]
    {
        assert_eq!(sqlstate(try_reconcile_online(&client, bad).await), SqlState::INVALID_PARAMETER_VALUE.code());
    }
    // The time inside PostgreSQL is the caller's to bound: a pass that rests
    // 99% of the time (seconds here) stops at the statement timeout.
    client.batch_execute("SET statement_timeout = '100ms'").await.expect("statement_timeout");
    let slow = try_reconcile_online(&client, "p_step => 1, p_duty => 0.01").await;
    assert_eq!(sqlstate(slow), SqlState::QUERY_CANCELED.code());
    client.batch_execute("RESET statement_timeout").await.expect("reset");
    let bad = client.query_one("SELECT veritable.reconcile_topics(NULL)", &[]).await;
    assert_eq!(sqlstate(bad), SqlState::NULL_VALUE_NOT_ALLOWED.code());
    db.drop_db().await;
}

/// Fixing one topic holds that topic's writers only: a post elsewhere goes
/// through, a post to it in a batch is held back for the proxy to post alone,
/// and a DBA's insert into it waits. The whole-table pass stops every writer.
#[tokio::test]
async fn fixing_a_topic_holds_only_that_topics_writers() {
    let (db, mut client) = FreshDb::seeded("reconcile_holds", &Shape::of(Scale::Small), 7).await;
    let writer = connect(&db.url).await;
    writer.batch_execute("SET lock_timeout = '100ms'").await.expect("lock_timeout");
    let insert = "INSERT INTO forum_replies (topic_id, author_id, body) VALUES ($1, 4, 'while reconciling')";

    let fixing = client.transaction().await.expect("begin");
    let fixed: i64 =
        fixing.query_one("SELECT veritable.reconcile_topics(ARRAY[1])", &[]).await.expect("reconcile_topics").get(0);
    assert_eq!(fixed, 0);
    writer.execute(insert, &[&2_i64]).await.expect("another topic's writer does not wait");
    assert_eq!(sqlstate(writer.execute(insert, &[&1_i64]).await), SqlState::LOCK_NOT_AVAILABLE.code());
    let rows = writer
        .query(
            REPLY_CREATE.text,
            &[
                &vec![1_i64, 2],
                &vec![None::<i64>, None],
                &vec![4_i64, 5],
                &vec!["to the topic held", "to another"],
                &vec!["test:reconcile:4", "test:reconcile:5"],
                &1_000_000_i32,
                &true,
            ],
        )
        .await
        .expect("a batch");
    let outcome: Vec<(bool, bool)> =
        rows.iter().map(|row| (row.get::<_, bool>(5), row.get::<_, Option<String>>(3).is_some())).collect();
    assert_eq!(outcome, [(true, false), (false, true)], "(held, written) of each post");
    fixing.commit().await.expect("commit");
    writer.execute(insert, &[&1_i64]).await.expect("the topic's writer goes on once it commits");

    let whole = client.transaction().await.expect("begin");
    assert_eq!(
        whole.query_one("SELECT veritable.reconcile_topic_stats()", &[]).await.expect("reconcile").get::<_, i64>(0),
        0
    );
    assert_eq!(sqlstate(writer.execute(insert, &[&2_i64]).await), SqlState::LOCK_NOT_AVAILABLE.code());
    whole.rollback().await.expect("rollback");
    db.drop_db().await;
}

/// A writer holding a reply of the topic (a soft delete, uncommitted) and
/// about to wait for the topic's counters: the fix gives up (55P03) before a
/// deadlock could be looked for, changes nothing, and the writer commits. The
/// online pass tries such a topic ten times, then names it as left.
#[tokio::test]
async fn a_busy_topic_is_given_up_before_any_deadlock_and_left_for_another_pass() {
    let (db, mut client) = FreshDb::seeded("reconcile_busy", &Shape::of(Scale::Small), 7).await;
    client
        .batch_execute("UPDATE forum_topic_stats SET reply_count = reply_count + 5 WHERE topic_id = 1")
        .await
        .unwrap();
    let fixer = connect(&db.url).await;

    let writing = client.transaction().await.expect("begin");
    writing
        .execute(
            "UPDATE forum_replies SET is_deleted = true
              WHERE id = (SELECT min(id) FROM forum_replies WHERE topic_id = 1 AND NOT is_deleted)",
            &[],
        )
        .await
        .expect("soft delete");
    let busy = fixer.query_one("SELECT veritable.reconcile_topics(ARRAY[1])", &[]).await;
    assert_eq!(sqlstate(busy), SqlState::LOCK_NOT_AVAILABLE.code());
    assert_eq!(reconcile_online(&fixer, "").await, (0, vec![1]), "topic 1 left busy");
    writing.commit().await.expect("the writer was never a deadlock's victim");

    assert_eq!(reconcile_online(&fixer, "").await, (1, vec![]));
    assert_eq!(reconcile(&fixer).await, 0);
    db.drop_db().await;
}

/// Writers on separate connections on three hot topics: the proxy's batches,
/// single inserts with mentions, soft deletes and restores, hard deletes and
/// reparenting. No writer fails for a deadlock or a constraint, and the
/// whole-table pass finds nothing to fix afterwards.
#[tokio::test]
async fn counters_stay_exact_under_concurrent_writers() {
    let (db, client) = FreshDb::seeded("concurrent_counters", &Shape::of(Scale::Small), 7).await;
    for writer in write_concurrently(&db.url) {
        writer.await.expect("task").expect("no writer failed (no deadlock, no constraint error)");
    }
    assert_eq!(reconcile(&client).await, 0, "counters drifted under concurrency");
    db.drop_db().await;
}

/// The online pass run again and again beside those writers, with drift on
/// the hot topics to find: it fixes exactly that drift, adds none, and no
/// writer fails for it.
#[tokio::test]
async fn the_online_pass_beside_concurrent_writers_fixes_the_drift_and_adds_none() {
    let (db, client) = FreshDb::seeded("online_concurrent", &Shape::of(Scale::Small), 7).await;
    client
        .batch_execute(
            "UPDATE forum_topic_stats SET reply_count = reply_count + 5 WHERE topic_id = 1;
             UPDATE forum_topic_participants SET reply_count = reply_count + 3
              WHERE (topic_id, user_id) = (SELECT topic_id, user_id FROM forum_topic_participants WHERE topic_id = 2 ORDER BY user_id LIMIT 1);
             UPDATE forum_replies SET child_count = child_count + 7 WHERE id = (SELECT min(id) FROM forum_replies WHERE topic_id = 3)",
        )
        .await
        .expect("drift");
    let writers = write_concurrently(&db.url);
    let (mut fixed, mut passes_beside_writers) = (0, 0);
    while writers.iter().any(|w| !w.is_finished()) {
        fixed += reconcile_online(&client, "p_step => 2").await.0;
        passes_beside_writers += 1;
    }
    for writer in writers {
        writer.await.expect("task").expect("no writer failed (no deadlock, no constraint error)");
    }
    let (last, unfinished) = reconcile_online(&client, "p_step => 2").await;
    assert!(passes_beside_writers > 0);
    assert_eq!((fixed + last, unfinished), (3, vec![]), "the three rows made wrong, each fixed once");
    assert_eq!(reconcile(&client).await, 0, "no drift added");
    db.drop_db().await;
}

/// Sixteen writers, forty writes each, on topics 1–3 (see above).
fn write_concurrently(url: &str) -> Vec<tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>> {
    (0..16_i64)
        .map(|w| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let client = connect(&url).await;
                // (reply, topic) of this writer's replies.
                let mut mine: Vec<(i64, i64)> = Vec::new();
                for i in 0..40_i64 {
                    let topic = 1 + (w + i) % 3;
                    let author = 4 + (w * 7 + i) % 50;
                    match (i % 5, pair_in_one_topic(&mine)) {
                        // Soft delete, then restore, one of our replies.
                        (3, _) if !mine.is_empty() => {
                            let (id, _) = mine[(i as usize) % mine.len()];
                            client
                                .execute("UPDATE forum_replies SET is_deleted = NOT is_deleted WHERE id = $1", &[&id])
                                .await?;
                        }
                        (4, _) if mine.len() > 1 => {
                            let (id, _) = mine.remove(0);
                            client
                                .execute("DELETE FROM forum_replies WHERE id = $1 AND child_count = 0", &[&id])
                                .await?;
                        }
                        // A newer reply of ours under an older one of ours in its
                        // topic (parents always older: no cycle). A parent hard
                        // deleted meanwhile refuses it (23503): not a failure.
                        (1, Some((child, parent))) => {
                            let moved = client
                                .execute("UPDATE forum_replies SET parent_id = $2 WHERE id = $1", &[&child, &parent])
                                .await;
                            match moved {
                                Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {}
                                other => {
                                    other?;
                                }
                            }
                        }
                        // The proxy's batch statement: four replies over the three topics.
                        _ if i % 2 == 0 => {
                            let topics: Vec<i64> = (0..4).map(|k| 1 + (w + i + k) % 3).collect();
                            let authors: Vec<i64> = (0..4).map(|k| 4 + (w * 7 + i + k) % 50).collect();
                            let bodies: Vec<String> = (0..4).map(|k| format!("batch {w}/{i}/{k} @admin")).collect();
                            let keys: Vec<String> = authors.iter().map(|a| format!("test:concurrent:{a}")).collect();
                            let parents: Vec<Option<i64>> = vec![None; 4];
                            let rows = client
                                .query(
                                    REPLY_CREATE.text,
                                    &[&topics, &parents, &authors, &bodies, &keys, &1_000_000_i32, &true],
                                )
                                .await?;
                            for row in rows {
                                if let Some(json) = row.get::<_, Option<String>>(3) {
                                    let reply: serde_json::Value = serde_json::from_str(&json).expect("json");
                                    let id = reply["id"].as_i64().expect("id");
                                    mine.push((id, reply["topic_id"].as_i64().expect("topic_id")));
                                }
                            }
                        }
                        _ => {
                            let body = if i % 7 == 0 { format!("hey @admin #{i}") } else { format!("reply {w}/{i}") };
                            let row = client
                                .query_one(
                                    "INSERT INTO forum_replies (topic_id, author_id, body) VALUES ($1, $2, $3) RETURNING id",
                                    &[&topic, &author, &body],
                                )
                                .await?;
                            mine.push((row.get(0), topic));
                        }
                    }
                }
                Ok(())
            })
        })
        .collect()
}

/// The newest of `mine` and the oldest other one in the same topic, if any.
fn pair_in_one_topic(mine: &[(i64, i64)]) -> Option<(i64, i64)> {
    let &(child, topic) = mine.iter().max_by_key(|(id, _)| *id)?;
    let parent = mine.iter().filter(|(id, t)| *t == topic && *id != child).map(|(id, _)| *id).min()?;
    Some((child, parent))
}
