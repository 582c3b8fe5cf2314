//! The real proxy over real TCP: health, metrics, errors, shutdown, and what
//! happens when the database or the address is not there.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use veritable_tests::{TestServer, closed_port, database_url, proxy_bin};

#[tokio::test]
async fn healthz_is_ok_when_the_database_answers() {
    let server = TestServer::start(&database_url()).await;
    let response = reqwest::get(server.url("/healthz")).await.expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn healthz_is_503_with_retry_after_when_the_database_is_down() {
    let url = format!("postgres://veritable@127.0.0.1:{}/veritable_test", closed_port().await);
    let server = TestServer::start(&url).await;
    let response = reqwest::get(server.url("/healthz")).await.expect("the proxy serves without a database");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "database_unavailable");
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["field"].is_null());
    assert!(!body.to_string().contains("refused"), "the cause stays in the logs: {body}");
    server.stop().await.expect("clean shutdown without a database");
}

/// The pool is open before the first request is accepted: a proxy started
/// into load does not make its first requests wait for new backends.
#[tokio::test]
async fn the_pool_is_open_before_the_first_request() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!("warm-{}-{nanos}", std::process::id());
    let url = format!("{}?application_name={name}", database_url());
    let mut config = veritable_tests::serve_config(&url);
    config.db.pool_size = 6;
    let server = TestServer::start_with(config).await;
    // Answered only once the listener accepts, that is after the warm-up
    // (and without a query, so each backend's last statement is the warm-up's).
    let response = reqwest::get(server.url("/metrics")).await.expect("request");
    assert_eq!(response.status(), 200);
    let db = veritable_tests::connect(&database_url()).await;
    let backends: Vec<(String, String)> = db
        .query("SELECT state, query FROM pg_stat_activity WHERE application_name = $1", &[&name])
        .await
        .expect("pg_stat_activity")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(backends.len(), 6, "every pooled connection open after one request");
    // Each backend ran the post function (PL/pgSQL compiled it there) and
    // ended its transaction: none is left idle in one. The proxy's own
    // background work (presence, the events) may have used a connection
    // since, or be using one now, so one or two show a later statement.
    assert!(backends.iter().all(|(state, _)| !state.starts_with("idle in transaction")), "{backends:?}");
    let ran = backends.iter().filter(|(_, query)| query.as_str() == veritable_proxy::store::WARM_UP).count();
    assert!(ran >= 4, "{ran} of 6 backends show the warm-up as their last statement: {backends:?}");
    server.stop().await.expect("stop");
}

/// The warm-up writes nothing: the post function refuses its two posts
/// (no topic 0) and its transaction is rolled back; before the rollback it
/// holds no transaction id, so it wrote and locked no row.
#[tokio::test]
async fn the_warm_up_writes_nothing() {
    let db = veritable_tests::connect(&database_url()).await;
    let probe = veritable_proxy::store::WARM_UP
        .replace("ROLLBACK;", "SELECT pg_current_xact_id_if_assigned() IS NULL AS unwritten; ROLLBACK;");
    assert_ne!(probe, veritable_proxy::store::WARM_UP, "the warm-up ends with its rollback");
    let messages = db.simple_query(&probe).await.expect("the warm-up runs");
    let answers: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    // The list page's count, the refused posts' count (two rows of outcome), unwritten.
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[1], "2", "one outcome per post");
    assert_eq!(answers[2], "t", "the warm-up took no transaction id: {answers:?}");
}

/// A flood of probes costs the database one query a second, not one each.
#[tokio::test]
async fn healthz_probes_the_database_at_most_once_a_second() {
    let server = TestServer::start(&database_url()).await;
    let started = std::time::Instant::now();
    let http = reqwest::Client::new();
    let calls = (0..200).map(|_| http.get(server.url("/healthz")).send());
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.expect("request").status(), 200);
    }
    let seconds = started.elapsed().as_secs();
    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    let probes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("veritable_health_probes_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the probe counter");
    assert!((1..=seconds + 1).contains(&probes), "{probes} probes for 200 calls in {seconds} s");
    server.stop().await.expect("stop");
}

/// Unknown methods fold into one label: a client cannot grow /metrics.
#[tokio::test]
async fn metrics_labels_stay_bounded() {
    let server = TestServer::start(&database_url()).await;
    let http = reqwest::Client::new();
    for i in 0..20 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).expect("a token");
        http.request(method, server.url(&format!("/no/such/path/{i}"))).send().await.expect("request");
    }
    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(!text.contains("BREW"), "raw methods leak into labels");
    assert!(!text.contains("/no/such"), "raw paths leak into labels");
    assert!(text.contains(r#"method="other",route="unmatched""#), "{text}");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn unknown_routes_get_a_json_404() {
    let server = TestServer::start(&database_url()).await;
    let response = reqwest::get(server.url("/no/such/thing")).await.expect("request");
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.expect("JSON error");
    assert_eq!(body["error"]["code"], "not_found");
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let server = TestServer::start(&database_url()).await;
    for _ in 0..3 {
        reqwest::get(server.url("/healthz")).await.expect("request");
    }
    reqwest::get(server.url("/no/such/thing")).await.expect("request");
    let response = reqwest::get(server.url("/metrics")).await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"].to_str().unwrap_or("").starts_with("text/plain"),
        "Prometheus text format"
    );
    let text = response.text().await.expect("text");
    assert!(text.contains(r#"veritable_http_requests_total{method="GET",route="/healthz",status="200"} 3"#), "{text}");
    assert!(text.contains(r#"veritable_http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
    assert!(
        text.contains(r#"veritable_http_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.005"}"#)
    );
    assert!(!text.contains("/no/such/thing"), "raw paths never become labels");
    for gauge in ["veritable_db_pool_max_connections 16", "veritable_db_pool_connections", "veritable_database_up"] {
        assert!(text.contains(gauge), "{gauge} in {text}");
    }
    assert!(text.contains("process_resident_memory_bytes"), "process RSS is exported");
    server.stop().await.expect("clean shutdown");
}

/// Query durations by statement, session-cache counters and bytes, and the
/// runtime's busy share and scheduling delay are exported; every response
/// carries a request id.
#[tokio::test]
async fn metrics_cover_queries_caches_and_the_runtime() {
    let server = TestServer::start(&database_url()).await;
    let demo = veritable_tests::Api::signed_in(&server, "demo").await;
    for _ in 0..3 {
        assert_eq!(demo.get("/api/v1/me").await.0, 200);
    }
    let response = reqwest::get(server.url("/api/v1/forums/topics")).await.expect("request");
    let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("a request id").to_owned();
    assert!(!id.is_empty());
    let chosen = reqwest::Client::new()
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("request");
    assert_eq!(chosen.headers()["x-request-id"], "trace-me-42", "a client's id is kept");

    // The runtime probe samples every second: wait for its first sample.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = reqwest::get(server.url("/metrics")).await.expect("request").text().await.expect("text");
        if text.contains("veritable_tokio_scheduling_delay_seconds_count 1")
            || text.contains("veritable_tokio_scheduling_delay_seconds_count 2")
        {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "no runtime sample in 10 s: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for needle in [
        r#"veritable_db_query_duration_seconds_count{statement="topic_page"} 1"#,
        r#"veritable_db_query_duration_seconds_count{statement="session_lookup"}"#,
        "veritable_session_cache_hits_total",
        "veritable_session_cache_misses_total",
        "veritable_session_cache_evictions_total 0",
        "veritable_session_cache_bytes",
        "veritable_tokio_busy_ratio",
        "veritable_tokio_alive_tasks",
        "veritable_http_requests_shed_total 0",
        "veritable_topic_views_dropped_total 0",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    // Every veritable metric the shipped alerts use is exported.
    let alerts = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/prometheus/alerts.yml"))
        .expect("alerts.yml");
    let used = veritable_tests::metrics::named_in(&alerts);
    assert!(used.len() >= 8, "{used:?}");
    for metric in used.iter().filter(|m| !veritable_tests::metrics::REPLICA_SERIES.contains(m)) {
        assert!(text.contains(&format!("\n{metric}")), "alerts.yml uses {metric}, which /metrics does not export");
    }
    // And every one the Grafana dashboard's panels plot.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker/grafana/veritable.json"))
            .expect("the dashboard"),
    )
    .expect("the dashboard is JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .filter_map(|target| target["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 16, "{exprs:?}");
    let queries = exprs.join("\n");
    let plotted = veritable_tests::metrics::named_in(&queries);
    assert!(plotted.len() >= 20, "{plotted:?}");
    for metric in plotted.iter().filter(|m| !veritable_tests::metrics::REPLICA_SERIES.contains(m)) {
        assert!(
            text.contains(&format!("\n{metric}")) || text.contains(&format!("# TYPE {metric} ")),
            "the dashboard plots {metric}, which /metrics does not export"
        );
    }
    let hits: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("veritable_session_cache_hits_total "))
        .and_then(|v| v.parse().ok())
        .expect("hits");
    assert!(hits >= 2.0, "the second and third /me are cache hits: {hits}");
    server.stop().await.expect("clean shutdown");
}

/// Past `max_in_flight` requests, more are answered 503 + Retry-After at
/// once (not queued); health checks still answer.
#[tokio::test]
async fn requests_past_the_in_flight_limit_are_shed_with_503() {
    use tokio::io::AsyncWriteExt;
    let mut config = veritable_tests::serve_config(&database_url());
    config.max_in_flight = 1;
    let server = TestServer::start_with(config).await;
    // One request held in flight: its body has not finished arriving.
    let mut held = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    held.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 60\r\n\r\n{",
    )
    .await
    .expect("write");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let response = reqwest::get(server.url("/api/v1/forums/categories")).await.expect("request");
        if response.status() == 503 {
            break response;
        }
        assert!(tokio::time::Instant::now() < deadline, "never shed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "busy");
    assert_eq!(reqwest::get(server.url("/healthz")).await.expect("request").status(), 200, "health is exempt");
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reqwest::get(server.url("/api/v1/forums/categories")).await.expect("request").status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the permit came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_waits_for_nothing_and_returns_promptly() {
    let server = TestServer::start(&database_url()).await;
    reqwest::get(server.url("/healthz")).await.expect("request");
    let addr = server.addr;
    server.stop().await.expect("run returns Ok after the shutdown signal");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

/// Spawns the binary with its stderr piped, so tests can wait for log lines.
fn spawn_proxy(args: &[&str], database_url: &str) -> tokio::process::Child {
    Command::new(proxy_bin())
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the proxy binary starts")
}

/// Reads stderr lines until one contains `needle` (at most `limit`).
async fn wait_for_line(child: &mut tokio::process::Child, needle: &str, limit: Duration) -> Vec<String> {
    let stderr = child.stderr.as_mut().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(limit, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "no line containing {needle:?} within {limit:?}; saw:\n{}", seen.join("\n"));
    seen
}

#[tokio::test]
async fn the_binary_refuses_an_address_in_use_with_one_clear_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let child = spawn_proxy(&["serve", "--addr", &addr], &database_url());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits promptly")
        .expect("output");
    assert!(!out.status.success(), "exit code is not 0");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on {addr}")), "{stderr}");
    assert!(stderr.to_lowercase().contains("address already in use"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn the_binary_starts_without_a_database_logs_why_and_stops_on_sigterm() {
    let port = closed_port().await;
    let addr = format!("127.0.0.1:{}", closed_port().await);
    let url = format!("postgres://veritable@127.0.0.1:{port}/veritable_test");
    let mut child = spawn_proxy(&["serve", "--addr", &addr], &url);
    let lines = wait_for_line(&mut child, "database unreachable", Duration::from_secs(20)).await;
    let logged = lines.join("\n");
    assert!(logged.contains(&format!("127.0.0.1:{port}/veritable_test")), "names the database: {logged}");
    assert!(logged.contains("retry_in_ms"), "says when it retries: {logged}");

    let response = reqwest::get(format!("http://{addr}/healthz")).await.expect("serving");
    assert_eq!(response.status(), 503);

    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs");
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(10), child.wait()).await.expect("stops promptly").expect("status");
    assert!(status.success(), "graceful shutdown exits 0: {status}");
}

/// On SIGTERM a proxy first leaves its balancer's rotation: `/healthz`
/// answers 503 `draining` while other requests are still served, for
/// `VERITABLE_DRAIN_DELAY_MS`; then the listener closes and it exits 0.
#[tokio::test]
async fn on_sigterm_healthz_says_draining_while_requests_are_still_served() {
    let addr = format!("127.0.0.1:{}", closed_port().await);
    let mut child = Command::new(proxy_bin())
        .args(["serve", "--addr", &addr])
        .env("DATABASE_URL", database_url())
        .env("RUST_LOG", "info")
        .env("VERITABLE_DRAIN_DELAY_MS", "3000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the proxy binary starts");
    wait_for_line(&mut child, "veritable-proxy listening", Duration::from_secs(20)).await;
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("http://{addr}/healthz")).send().await.expect("serving").status(), 200);

    let pid = child.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs").success());
    wait_for_line(&mut child, "draining", Duration::from_secs(5)).await;
    let health = client.get(format!("http://{addr}/healthz")).send().await.expect("still listening");
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "draining");
    let read = client.get(format!("http://{addr}/api/v1/forums/categories")).send().await.expect("still serving");
    assert_eq!(read.status(), 200, "requests are served while draining");

    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("stops after the delay")
        .expect("status");
    assert!(status.success(), "graceful shutdown exits 0: {status}");
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "the listener is closed");
}

/// A SIGTERM that arrives while the proxy is still starting (its first log
/// line, before the pool is warm and the listener serves) is caught, not
/// the default action that kills the process: it drains and exits 0. The
/// handlers used to be installed at the accept loop's first poll, and a
/// balancer's stop in that window (or a CI machine's slow thread) killed it.
#[tokio::test]
async fn a_sigterm_while_starting_still_drains_and_exits_0() {
    let addr = format!("127.0.0.1:{}", closed_port().await);
    let mut child = spawn_proxy(&["serve", "--addr", &addr], &database_url());
    wait_for_line(&mut child, "open files limit", Duration::from_secs(20)).await;
    let pid = child.id().expect("running").to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().await.expect("kill runs").success());
    wait_for_line(&mut child, "draining", Duration::from_secs(20)).await;
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("stops promptly").expect("status");
    assert!(status.success(), "a SIGTERM while starting is a graceful shutdown: {status}");
}

/// The OpenAPI document lists every route the router serves, with the
/// request schemas and the error shape.
#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let server = TestServer::start(&database_url()).await;
    let response = reqwest::get(server.url("/api/v1/openapi.json")).await.expect("request");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    let routes = [
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/me/preferences"),
        ("put", "/api/v1/me/preferences"),
        ("get", "/api/v1/notifications"),
        ("post", "/api/v1/notifications/read"),
        ("get", "/api/v1/users/{id}/activity"),
        ("get", "/api/v1/forums/categories"),
        ("get", "/api/v1/forums/topics"),
        ("post", "/api/v1/forums/topics"),
        ("get", "/api/v1/forums/topics/{id}"),
        ("patch", "/api/v1/forums/topics/{id}"),
        ("get", "/api/v1/forums/topics/{id}/replies"),
        ("post", "/api/v1/forums/topics/{id}/replies"),
        ("patch", "/api/v1/forums/replies/{id}"),
        ("delete", "/api/v1/forums/replies/{id}"),
        ("get", "/api/v1/forums/replies/{id}/replies"),
        ("post", "/api/v1/preview"),
        ("get", "/api/v1/wiki/pages"),
        ("get", "/api/v1/wiki/pages/{slug}"),
        ("put", "/api/v1/wiki/pages/{slug}"),
        ("get", "/api/v1/wiki/pages/{slug}/revisions"),
        ("get", "/api/v1/search"),
    ];
    for (method, path) in routes {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is documented");
    }
    let documented: usize =
        doc["paths"].as_object().expect("paths").values().map(|p| p.as_object().map_or(0, |m| m.len())).sum();
    assert_eq!(documented, routes.len(), "no route is documented twice or missing from this list");
    for schema in [
        "NewReply",
        "NewTopic",
        "TopicChange",
        "Edit",
        "Register",
        "Login",
        "MarkRead",
        "Preview",
        "Error",
        "ErrorDetail",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(
        doc["components"]["schemas"]["NewReply"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&Value::from("body")))
    );
    server.stop().await.expect("clean shutdown");
}

/// Every shipped alert links to its entry in the runbook, and the entry exists.
#[test]
fn every_alert_has_a_runbook_entry() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let alerts = std::fs::read_to_string(format!("{root}/docker/prometheus/alerts.yml")).expect("alerts.yml");
    let runbook = std::fs::read_to_string(format!("{root}/docs/RUNBOOK.md")).expect("RUNBOOK.md");
    let names: Vec<&str> = alerts.lines().filter_map(|line| line.trim().strip_prefix("- alert: ")).collect();
    assert!(names.len() >= 16, "{names:?}");
    for name in names {
        assert!(runbook.contains(&format!("\n## {name}\n")), "docs/RUNBOOK.md has no entry for the alert {name}");
        let link = format!("runbook_url: \"docs/RUNBOOK.md#{}\"", name.to_lowercase());
        assert!(alerts.contains(&link), "the alert {name} does not link to its entry ({link})");
    }
}
