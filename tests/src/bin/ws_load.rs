//! WebSocket load for `bench/realtime.sh`: many sockets against one proxy on
//! 127.0.0.1, bounded in count and time.
//!
//!   ws-load idle ADDR TOKEN CONNS SECS           CONNS sockets, 3 rooms each, held SECS seconds
//!   ws-load cycles ADDR TOKEN COUNT PARALLEL     COUNT connect/subscribe/close cycles
//!   ws-load fanout ADDR TOKEN CONNS ROOM DB_URL RATE SECS
//!                                                CONNS sockets in ROOM; RATE replies/s written
//!                                                to it for SECS; commit→client latency
//!                                                (ADDR may list several, comma-separated:
//!                                                sockets open on each in turn)
//!
//! Prints one line of results per run. Exits non-zero on any refused socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn arg(args: &[String], n: usize, what: &str) -> String {
    args.get(n).cloned().unwrap_or_else(|| {
        eprintln!("missing {what}; see the header of tests/src/bin/ws_load.rs");
        std::process::exit(2)
    })
}

fn number<T: std::str::FromStr>(args: &[String], n: usize, what: &str) -> T {
    arg(args, n, what).parse().unwrap_or_else(|_| {
        eprintln!("{what} must be a number");
        std::process::exit(2)
    })
}

async fn open(addr: &str, token: &str) -> anyhow::Result<Socket> {
    let mut request = format!("ws://{addr}/api/v1/ws").into_client_request()?;
    request.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    Ok(tokio_tungstenite::connect_async_with_config(request, None, true).await?.0)
}

/// Subscribes and waits for `subscribed` (and the presence snapshot).
async fn subscribe(socket: &mut Socket, room: &str) -> anyhow::Result<()> {
    let frame = serde_json::json!({ "op": "subscribe", "room": room, "since": null }).to_string();
    socket.send(Message::Text(frame.into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await? {
            Some(Ok(Message::Text(text))) if text.as_str().contains("\"presence\"") => return Ok(()),
            Some(Ok(Message::Text(text))) if text.as_str().contains("\"error\"") => anyhow::bail!("refused: {text}"),
            Some(Ok(_)) => {}
            other => anyhow::bail!("socket ended while subscribing: {other:?}"),
        }
    }
}

/// Live rooms to use: `BENCH_TOPIC_IDS` (comma-separated topic ids), `BENCH_WIKI` (a slug).
fn rooms() -> (Vec<String>, String) {
    let topics = std::env::var("BENCH_TOPIC_IDS").unwrap_or_else(|_| "1".into());
    let topics = topics.split(',').map(|t| format!("topic:{}", t.trim())).collect();
    (topics, format!("wiki:{}", std::env::var("BENCH_WIKI").unwrap_or_else(|_| "home".into())))
}

async fn idle(args: &[String]) -> anyhow::Result<()> {
    let (addr, token) = (arg(args, 2, "ADDR"), arg(args, 3, "TOKEN"));
    let (conns, secs): (usize, u64) = (number(args, 4, "CONNS"), number(args, 5, "SECS"));
    let (topics, wiki) = rooms();
    let started = Instant::now();
    // Opened 64 at a time.
    let mut sockets = Vec::with_capacity(conns);
    for chunk in (0..conns).collect::<Vec<_>>().chunks(64) {
        let opening: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let (addr, token) = (addr.clone(), token.clone());
                let rooms = [topics[i % topics.len()].clone(), format!("category:{}", 1 + i % 10), wiki.clone()];
                tokio::spawn(async move {
                    let mut socket = open(&addr, &token).await?;
                    for room in rooms {
                        subscribe(&mut socket, &room).await?;
                    }
                    anyhow::Ok(socket)
                })
            })
            .collect();
        for socket in opening {
            sockets.push(socket.await??);
        }
    }
    println!("ready: {conns} sockets, 3 rooms each, opened in {:.1} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    for mut socket in sockets {
        let _ = socket.close(None).await;
    }
    Ok(())
}

async fn cycles(args: &[String]) -> anyhow::Result<()> {
    let (addr, token) = (arg(args, 2, "ADDR"), arg(args, 3, "TOKEN"));
    let (count, parallel): (u64, u64) = (number(args, 4, "COUNT"), number(args, 5, "PARALLEL"));
    let next = Arc::new(AtomicU64::new(0));
    let topics = Arc::new(rooms().0);
    let started = Instant::now();
    let workers: Vec<_> = (0..parallel)
        .map(|_| {
            let (addr, token, next, topics) = (addr.clone(), token.clone(), next.clone(), topics.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let i = next.load(Ordering::Relaxed);
                    let mut socket = open(&addr, &token).await?;
                    subscribe(&mut socket, &topics[usize::try_from(i).unwrap_or(0) % topics.len()]).await?;
                    if i % 2 == 0 {
                        socket.close(None).await?;
                    } // else: dropped without a close frame
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    println!("cycles: {count} connect/subscribe/disconnect in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn fanout(args: &[String]) -> anyhow::Result<()> {
    let (addr, token) = (arg(args, 2, "ADDR"), arg(args, 3, "TOKEN"));
    let conns: usize = number(args, 4, "CONNS");
    let room = arg(args, 5, "ROOM");
    let db_url = arg(args, 6, "DB_URL");
    let (rate, secs): (u64, u64) = (number(args, 7, "RATE"), number(args, 8, "SECS"));
    let topic: i64 =
        room.strip_prefix("topic:").and_then(|t| t.parse().ok()).ok_or_else(|| anyhow::anyhow!("ROOM is topic:ID"))?;

    let committed: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(conns);
    let opened = Instant::now();
    let addrs: Vec<String> = addr.split(',').map(str::to_owned).collect();
    for chunk in (0..conns).collect::<Vec<_>>().chunks(64) {
        let opening: Vec<_> = chunk
            .iter()
            .map(|n| {
                let addr = addrs[n % addrs.len()].clone();
                let (token, room) = (token.clone(), room.clone());
                tokio::spawn(async move {
                    let mut socket = open(&addr, &token).await?;
                    subscribe(&mut socket, &room).await?;
                    anyhow::Ok(socket)
                })
            })
            .collect();
        for socket in opening {
            let mut socket = socket.await??;
            let (committed, latencies, delivered) = (committed.clone(), latencies.clone(), delivered.clone());
            readers.push(tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Text(text) = message else { continue };
                    let Ok(frame) = serde_json::from_str::<serde_json::Value>(text.as_str()) else { continue };
                    if frame["type"] != "event" {
                        continue;
                    }
                    let received = Instant::now();
                    delivered.fetch_add(1, Ordering::Relaxed);
                    let at = frame["data"]["id"].as_i64().and_then(|id| committed.lock().ok()?.get(&id).copied());
                    if let (Some(at), Ok(mut all)) = (at, latencies.lock()) {
                        all.push(received.duration_since(at).as_secs_f64() * 1000.0);
                    }
                }
            }));
        }
    }
    println!("fanout: {conns} sockets in {room}, opened in {:.1} s", opened.elapsed().as_secs_f64());

    let (client, connection) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let insert = client
        .prepare("INSERT INTO forum_replies (topic_id, author_id, body) VALUES ($1, 3, 'fan-out probe') RETURNING id")
        .await?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let start = Instant::now();
    let mut writes = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        // The statement returns after its commit (autocommit).
        let id: i64 = client.query_one(&insert, &[&topic]).await?.get(0);
        if let Ok(mut map) = committed.lock() {
            map.insert(id, Instant::now());
        }
        writes += 1;
    }
    let delivered_during = delivered.load(Ordering::Relaxed);
    let wall = start.elapsed().as_secs_f64();
    // Let the last events drain (bounded).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let expected = writes * conns as u64;
    let total = delivered.load(Ordering::Relaxed);
    let mut all = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    all.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
    };
    println!(
        "fanout: {writes} writes in {wall:.1} s to {conns} subscribers: {total} of {expected} deliveries ({:.0}/s while writing), \
         commit→client p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delivered_during as f64 / wall,
        pct(0.50),
        pct(0.99),
        all.last().copied().unwrap_or(f64::NAN),
    );
    for reader in readers {
        reader.abort();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    veritable_proxy::server::raise_open_files_limit();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("idle") => idle(&args).await,
        Some("cycles") => cycles(&args).await,
        Some("fanout") => fanout(&args).await,
        _ => {
            eprintln!("usage: see the header of tests/src/bin/ws_load.rs");
            std::process::exit(2)
        }
    }
}
