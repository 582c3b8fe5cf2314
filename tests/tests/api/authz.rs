//! The authorization matrix: every write operation × anonymous, the author,
//! another member, a moderator and an admin, on open, locked and deleted
//! targets. Only the allowed combinations succeed; the others get the
//! status that says why (401 no session, 403 not yours, 409 locked, 404 gone).

use serde_json::{Value, json};
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::{Api, FreshDb, TestServer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Anonymous,
    Author,
    Other,
    Moderator,
    Admin,
}

const ACTORS: [Actor; 5] = [Actor::Anonymous, Actor::Author, Actor::Other, Actor::Moderator, Actor::Admin];

/// What each operation answers each actor, in `ACTORS` order.
const MATRIX: &[(&str, [u16; 5])] = &[
    ("create topic", [401, 201, 201, 201, 201]),
    ("edit open topic", [401, 200, 403, 200, 200]),
    ("pin topic", [401, 403, 403, 200, 200]),
    ("move topic", [401, 403, 403, 200, 200]),
    ("edit locked topic", [401, 409, 403, 200, 200]),
    ("edit deleted topic", [401, 404, 404, 404, 404]),
    ("reply to open topic", [401, 201, 201, 201, 201]),
    ("reply to locked topic", [401, 409, 409, 409, 409]),
    ("reply to deleted topic", [401, 404, 404, 404, 404]),
    ("edit reply", [401, 200, 403, 200, 200]),
    ("edit reply in locked topic", [401, 409, 403, 200, 200]),
    ("edit deleted reply", [401, 404, 404, 404, 404]),
    ("delete reply", [401, 204, 403, 204, 204]),
    ("delete reply in locked topic", [401, 409, 403, 204, 204]),
    ("save new wiki page", [401, 201, 201, 201, 201]),
    ("save existing wiki page", [401, 200, 200, 200, 200]),
    ("save preferences", [401, 200, 200, 200, 200]),
    ("mark notifications read", [401, 200, 200, 200, 200]),
    ("log out", [401, 204, 204, 204, 204]),
];

async fn created_id(api: &Api, path: &str, body: Value) -> i64 {
    let (status, answer) = api.call("POST", path, Some(body)).await;
    assert_eq!(status, 201, "{path}: {answer}");
    answer["id"].as_i64().expect("id")
}

/// Targets made fresh for each actor, so one actor's change never decides
/// another's outcome.
struct Targets {
    open: i64,
    locked: i64,
    deleted: i64,
    reply: i64,
    locked_reply: i64,
    deleted_reply: i64,
    page: String,
}

async fn targets(author: &Api, moderator: &Api, client: &tokio_postgres::Client, n: usize) -> Targets {
    let topic = |title: &str| json!({"category_id": 1, "title": title, "body": "matrix"});
    let open = created_id(author, "/api/v1/forums/topics", topic("open")).await;
    let locked = created_id(author, "/api/v1/forums/topics", topic("locked")).await;
    let deleted = created_id(author, "/api/v1/forums/topics", topic("deleted")).await;
    let reply = created_id(author, &format!("/api/v1/forums/topics/{open}/replies"), json!({"body": "r"})).await;
    let locked_reply =
        created_id(author, &format!("/api/v1/forums/topics/{locked}/replies"), json!({"body": "r"})).await;
    let deleted_reply =
        created_id(author, &format!("/api/v1/forums/topics/{open}/replies"), json!({"body": "r"})).await;
    assert_eq!(author.call("DELETE", &format!("/api/v1/forums/replies/{deleted_reply}"), None).await.0, 204);
    assert_eq!(
        moderator.call("PATCH", &format!("/api/v1/forums/topics/{locked}"), Some(json!({"is_locked": true}))).await.0,
        200
    );
    // Topics have no delete endpoint: an administrator's soft delete in SQL.
    client.execute("UPDATE forum_topics SET is_deleted = true WHERE id = $1", &[&deleted]).await.expect("soft delete");
    let page = format!("matrix-{n}");
    let (status, answer) = author
        .call(
            "PUT",
            &format!("/api/v1/wiki/pages/{page}"),
            Some(json!({"title": "m", "body": "m", "base_revision": 0})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    Targets { open, locked, deleted, reply, locked_reply, deleted_reply, page }
}

async fn attempt(api: &Api, operation: &str, t: &Targets, n: usize) -> u16 {
    let reply_to = |topic: i64| format!("/api/v1/forums/topics/{topic}/replies");
    let (method, path, body) = match operation {
        "create topic" => {
            ("POST", "/api/v1/forums/topics".to_owned(), json!({"category_id": 1, "title": "t", "body": "b"}))
        }
        "edit open topic" => ("PATCH", format!("/api/v1/forums/topics/{}", t.open), json!({"title": "edited"})),
        "pin topic" => ("PATCH", format!("/api/v1/forums/topics/{}", t.open), json!({"is_pinned": true})),
        "move topic" => ("PATCH", format!("/api/v1/forums/topics/{}", t.open), json!({"category_id": 2})),
        "edit locked topic" => ("PATCH", format!("/api/v1/forums/topics/{}", t.locked), json!({"title": "edited"})),
        "edit deleted topic" => ("PATCH", format!("/api/v1/forums/topics/{}", t.deleted), json!({"title": "edited"})),
        "reply to open topic" => ("POST", reply_to(t.open), json!({"body": "r"})),
        "reply to locked topic" => ("POST", reply_to(t.locked), json!({"body": "r"})),
        "reply to deleted topic" => ("POST", reply_to(t.deleted), json!({"body": "r"})),
        "edit reply" => ("PATCH", format!("/api/v1/forums/replies/{}", t.reply), json!({"body": "edited"})),
        "edit reply in locked topic" => {
            ("PATCH", format!("/api/v1/forums/replies/{}", t.locked_reply), json!({"body": "e"}))
        }
        "edit deleted reply" => ("PATCH", format!("/api/v1/forums/replies/{}", t.deleted_reply), json!({"body": "e"})),
        "delete reply" => ("DELETE", format!("/api/v1/forums/replies/{}", t.reply), Value::Null),
        "delete reply in locked topic" => ("DELETE", format!("/api/v1/forums/replies/{}", t.locked_reply), Value::Null),
        "save new wiki page" => (
            "PUT",
            format!("/api/v1/wiki/pages/matrix-new-{n}-{}", api.token.as_deref().map_or("anon", |t| &t[..8])),
            json!({"title": "n", "body": "n", "base_revision": 0}),
        ),
        "save existing wiki page" => {
            ("PUT", format!("/api/v1/wiki/pages/{}", t.page), json!({"title": "e", "body": "e", "base_revision": 1}))
        }
        "save preferences" => ("PUT", "/api/v1/me/preferences".to_owned(), json!({"theme": "dark"})),
        "mark notifications read" => ("POST", "/api/v1/notifications/read".to_owned(), json!({"all": true})),
        "log out" => ("POST", "/api/v1/auth/logout".to_owned(), Value::Null),
        other => panic!("no such operation {other}"),
    };
    let body = (!body.is_null()).then_some(body);
    api.call(method, &path, body).await.0
}

#[tokio::test]
async fn only_the_allowed_writes_succeed() {
    let (db, client) = FreshDb::seeded("authz_matrix", &Shape::of(Scale::Small), 33).await;
    let mut config = veritable_tests::serve_config(&db.url);
    config.posts_per_minute = 100_000;
    config.login_per_account = 100_000;
    config.login_per_ip = 100_000;
    let server = TestServer::start_with(config).await;
    let moderator = Api::signed_in(&server, "moderator").await;
    let register = |name: String| {
        let server = &server;
        async move {
            let mut api = Api::new(server);
            let password = veritable_proxy::seed::DEMO_PASSWORD;
            let body = json!({"username": name, "email": format!("{name}@x.test"), "password": password});
            let (status, answer) = api.call("POST", "/api/v1/auth/register", Some(body)).await;
            assert_eq!(status, 201, "{answer}");
            api.token = Some(answer["token"].as_str().expect("token").to_owned());
            api
        }
    };
    // One account of each kind; a fresh session only where the operation
    // ends it (log out). Targets are fresh per cell: deleting and editing
    // change what the next cell would see.
    let author = register("author".to_owned()).await;
    let other = register("other".to_owned()).await;
    let admin = Api::signed_in(&server, "admin").await;
    let sign_in = |name: &'static str| Api::signed_in(&server, name);
    let mut failures = Vec::new();
    for (row, &(operation, expected)) in MATRIX.iter().enumerate() {
        for (actor, want) in ACTORS.iter().zip(expected) {
            let n = row * 10 + *actor as usize;
            let t = targets(&author, &moderator, &client, n).await;
            let fresh = operation == "log out";
            let api = match (actor, fresh) {
                (Actor::Anonymous, _) => Api::new(&server),
                (Actor::Author, false) => author.clone(),
                (Actor::Author, true) => sign_in("author").await,
                (Actor::Other, false) => other.clone(),
                (Actor::Other, true) => sign_in("other").await,
                (Actor::Moderator, false) => moderator.clone(),
                (Actor::Moderator, true) => sign_in("moderator").await,
                (Actor::Admin, false) => admin.clone(),
                (Actor::Admin, true) => sign_in("admin").await,
            };
            let got = attempt(&api, operation, &t, n).await;
            if got != want {
                failures.push(format!("{operation} as {actor:?}: {got}, expected {want}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    server.stop().await.expect("stop");
    db.drop_db().await;
}
