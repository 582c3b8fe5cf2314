//! The TCP edge under idle and slow clients: connections that send no
//! complete request head in time are closed (slowloris, idle keep-alive),
//! connections past the cap are told 503 and closed, and a server holding
//! thousands of idle and slow connections keeps serving everyone else.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use veritable_tests::{TestServer, database_url, serve_config};

/// Reads until the peer closes; returns what it sent.
async fn read_to_close(tcp: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), tcp.read_to_end(&mut out)).await.expect("closed within 15 s");
    out
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_at_the_header_timeout() {
    let mut config = serve_config(&database_url());
    config.header_timeout_secs = 1;
    let server = TestServer::start_with(config).await;

    // Says nothing.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    assert!(read_to_close(&mut silent).await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the timeout: {:?}", started.elapsed());

    // Trickles a header line every 200 ms and never ends the head.
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let (mut read, mut write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(format!("X-Slow-{i}: y\r\n").as_bytes()).await.is_err() {
                return i;
            }
        }
        50
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), read.read_to_end(&mut answer)).await.expect("closed");
    assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "no answer to an unfinished head");
    let lines = trickle.await.expect("task");
    assert!(lines < 50, "closed while still trickling ({lines} lines sent)");

    // One request, then idle on keep-alive.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let answer = read_to_close(&mut idle).await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "answered, then closed when idle");
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn connections_past_the_cap_are_told_503_and_closed() {
    let mut config = serve_config(&database_url());
    config.max_connections = 5;
    let server = TestServer::start_with(config).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        // A request proves the connection holds a slot before the next one.
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let mut buf = [0u8; 12];
        tcp.read_exact(&mut buf).await.expect("an answer");
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(tcp);
    }
    let mut sixth = TcpStream::connect(server.addr).await.expect("the kernel accepts");
    let answer = String::from_utf8_lossy(&read_to_close(&mut sixth).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1") && answer.contains("\"code\":\"busy\""), "{answer}");
    let metrics_seen = held.pop().expect("one");
    drop(metrics_seen);
    // Once a slot is free again, a new connection is served.
    veritable_tests::until("a slot frees up", || async {
        let Ok(response) = reqwest::get(server.url("/healthz")).await else { return false };
        response.status() == 200
    })
    .await;
    server.stop().await.expect("stop");
}

/// 5,000 idle and slow connections held open; another client is served
/// throughout (its latency, idle and loaded, is in BENCHMARKS.md).
#[tokio::test]
async fn thousands_of_idle_and_slow_connections_do_not_stop_other_clients() {
    veritable_proxy::server::raise_open_files_limit();
    let server = TestServer::start_with(serve_config(&database_url())).await;
    let mut held = Vec::with_capacity(5_000);
    for i in 0..5_000 {
        let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
        if i % 2 == 0 {
            tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.expect("half a head");
        }
        held.push(tcp);
    }
    let http = reqwest::Client::new();
    for _ in 0..200 {
        let response = http.get(server.url("/api/v1/forums/categories")).send().await.expect("served");
        assert_eq!(response.status(), 200);
    }
    drop(held);
    server.stop().await.expect("stop");
}
