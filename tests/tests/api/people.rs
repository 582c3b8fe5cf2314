//! Notifications, activity, preferences and search over real HTTP.

use serde_json::json;
use veritable_proxy::config::Scale;
use veritable_proxy::seed::Shape;
use veritable_tests::{Api, FreshDb, TestServer};

#[tokio::test]
async fn notifications_activity_preferences_and_search() {
    let (db, client) = FreshDb::seeded("api_people", &Shape::of(Scale::Small), 11).await;
    let server = TestServer::start(&db.url).await;
    let anonymous = Api::new(&server);
    let demo = Api::signed_in(&server, "demo").await;
    let moderator = Api::signed_in(&server, "moderator").await;

    // Mentions notify: three replies by demo mentioning the moderator.
    let mut mention_ids = Vec::new();
    for i in 0..3 {
        let (status, reply) = demo
            .call(
                "POST",
                "/api/v1/forums/topics/4/replies",
                Some(json!({ "body": format!("ping {i} @moderator zebracorn") })),
            )
            .await;
        assert_eq!(status, 201, "{reply}");
        mention_ids.push(reply["id"].as_i64().expect("id"));
    }
    assert_eq!(anonymous.get("/api/v1/notifications").await.0, 401);
    let (status, unread) = moderator.get("/api/v1/notifications?unread=true&limit=2").await;
    assert_eq!(status, 200, "{unread}");
    assert_eq!(unread["items"].as_array().expect("items").len(), 2);
    assert_eq!(unread["items"][0]["kind"], "mention");
    assert_eq!(unread["items"][0]["actor"]["username"], "demo");
    assert_eq!(unread["items"][0]["reply_id"], mention_ids[2]);
    let first_id = unread["items"][0]["id"].as_i64().expect("id");

    // Mark one read; another user's ids are not theirs to mark.
    let (status, marked) = demo.call("POST", "/api/v1/notifications/read", Some(json!({ "ids": [first_id] }))).await;
    assert_eq!((status, marked["marked"].as_i64()), (200, Some(0)));
    let (_, marked) = moderator.call("POST", "/api/v1/notifications/read", Some(json!({ "ids": [first_id] }))).await;
    assert_eq!(marked["marked"], 1);
    let (_, unread_after) = moderator.get("/api/v1/notifications?unread=true&limit=100").await;
    assert!(unread_after["items"].as_array().expect("items").iter().all(|n| n["id"] != first_id));
    for bad in [json!({}), json!({ "ids": [1], "all": true }), json!({ "ids": "x" })] {
        assert_eq!(moderator.call("POST", "/api/v1/notifications/read", Some(bad)).await.0, 422);
    }
    let (_, all) = moderator.call("POST", "/api/v1/notifications/read", Some(json!({ "all": true }))).await;
    assert!(all["marked"].as_i64().expect("count") >= 2);
    let (_, none_left) = moderator.get("/api/v1/notifications?unread=true").await;
    assert_eq!(none_left["items"], json!([]));
    assert!(none_left["next_cursor"].is_null());

    // Every notification, paged to the end without repeats.
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM notifications WHERE user_id = (SELECT id FROM users WHERE username = 'moderator')",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    let mut seen = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = moderator.get(&format!("/api/v1/notifications?limit=3{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        for item in page["items"].as_array().expect("items") {
            assert!(seen.insert(item["id"].as_i64().expect("id")), "repeated {item}");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(i64::try_from(seen.len()).expect("small"), total);
    assert_eq!(moderator.get("/api/v1/notifications?cursor=-4").await.0, 400);
    assert_eq!(moderator.get("/api/v1/notifications?limit=1000").await.0, 400);

    // Activity: public, newest first.
    let demo_id: i64 = client.query_one("SELECT id FROM users WHERE username = 'demo'", &[]).await.expect("q").get(0);
    let (status, activity) = anonymous.get(&format!("/api/v1/users/{demo_id}/activity?limit=3")).await;
    assert_eq!(status, 200, "{activity}");
    let kinds: Vec<&str> =
        activity["items"].as_array().expect("items").iter().filter_map(|a| a["kind"].as_str()).collect();
    assert_eq!(kinds, ["reply_created"; 3]);
    assert_eq!(activity["items"][0]["reply_id"], mention_ids[2]);
    assert!(activity["items"][0]["topic_title"].is_string());
    assert!(activity["next_cursor"].is_string());
    assert_eq!(anonymous.get("/api/v1/users/99999999/activity").await.0, 404);
    assert_eq!(anonymous.get("/api/v1/users/x/activity").await.0, 400);

    // Preferences: cold data, replaced whole, bounded.
    assert_eq!(anonymous.get("/api/v1/me/preferences").await.0, 401);
    let (status, prefs) = demo.get("/api/v1/me/preferences").await;
    assert_eq!((status, prefs.is_object()), (200, true));
    let wanted = json!({ "theme": "dark", "digest": { "weekly": true } });
    let (status, saved) = demo.call("PUT", "/api/v1/me/preferences", Some(wanted.clone())).await;
    assert_eq!((status, &saved), (200, &wanted));
    assert_eq!(demo.get("/api/v1/me/preferences").await.1, wanted);
    assert_eq!(demo.call("PUT", "/api/v1/me/preferences", Some(json!([1, 2]))).await.0, 422);
    let huge = json!({ "blob": "x".repeat(20_000) });
    let (status, answer) = demo.call("PUT", "/api/v1/me/preferences", Some(huge)).await;
    assert_eq!((status, answer["error"]["field"].as_str()), (422, Some("body")));
    assert_eq!(demo.get("/api/v1/me/preferences").await.1, wanted, "a refused write changes nothing");

    // Search: ranked hits from replies, topics and the wiki; bounded input.
    let (status, page) = demo
        .call(
            "PUT",
            "/api/v1/wiki/pages/zebracorn-care",
            Some(json!({ "title": "Zebracorn care", "body": "zebracorns", "base_revision": 0 })),
        )
        .await;
    assert_eq!(status, 201, "{page}");
    let (status, hits) = anonymous.get("/api/v1/search?q=zebracorn&limit=2").await;
    assert_eq!(status, 200, "{hits}");
    assert_eq!(hits["items"].as_array().expect("items").len(), 2);
    let mut kinds = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    let mut count = 0;
    loop {
        let (_, page) = anonymous.get(&format!("/api/v1/search?q=zebracorn&limit=2{cursor}")).await;
        for hit in page["items"].as_array().expect("items") {
            kinds.insert(hit["kind"].as_str().expect("kind").to_owned());
            count += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(count, 4, "three replies and one wiki page");
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["reply", "wiki"]);
    assert_eq!(anonymous.get("/api/v1/search?q=").await.0, 400);
    assert_eq!(anonymous.get("/api/v1/search").await.0, 400);
    assert_eq!(anonymous.get(&format!("/api/v1/search?q={}", "a".repeat(201))).await.0, 400);
    let (status, nothing) = anonymous.get("/api/v1/search?q=%22%20%26%20%7C%20!").await;
    assert_eq!((status, &nothing["items"]), (200, &json!([])), "operators alone match nothing");

    server.stop().await.expect("stop");
    db.drop_db().await;
}
