//! The TCP edge: accepts connections and serves HTTP on each with hyper,
//! bounded in number and in time.
//!
//! - At most `max_connections` HTTP connections are open at once; past that
//!   a new connection is answered `503` with `Retry-After` and closed, so an
//!   idle flood cannot use up the process's file descriptors. (A WebSocket
//!   leaves this count when it is upgraded; it has limits of its own, per
//!   user and per address.)
//! - A connection that does not send a complete request head within
//!   `header_timeout` is closed: that covers a slowloris client trickling
//!   headers and an idle keep-alive connection alike (hyper starts the
//!   timer whenever it waits for the next request head). HTTP/1.1 only.
//!
//! axum's own `serve` sets no timer, so neither bound applied before.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::IntCounter;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The bounds of the edge (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// What a connection past the cap is told before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
Connection: close\r\nContent-Length: 91\r\n\r\n\
{\"error\":{\"code\":\"busy\",\"message\":\"too many open connections; retry shortly\",\"field\":null}}";

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets each connection finish its request in flight (idle
/// ones close at once) and returns when all have.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: Edge,
    refused: IntCounter,
    shutdown: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(edge.max_connections.max(1)));
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most often: wait rather than spin.
                    tracing::warn!(%error, "accept failed; retrying in 50 ms");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small frames and responses go out at once: with Nagle's algorithm,
        // a second small write waited for the peer's delayed ACK (40 ms per
        // subscribe, measured with WebSockets).
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused.inc();
            connections.spawn(refuse(tcp));
            continue;
        };
        let router = router.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let _slot = slot;
            serve_one(tcp, peer, router, edge.header_timeout, stop).await;
        });
    }
    stop.cancel();
    connections.close();
    connections.wait().await;
}

async fn serve_one(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move { Ok::<_, Infallible>(router.oneshot(request).await.unwrap_or_else(|never| match never {})) }
    });
    // HTTP/1.1 only: hyper's version sniffing for HTTP/2 reads the first
    // bytes with no timer, so a silent connection would never be closed.
    // (A TLS-terminating balancer in front speaks HTTP/2 to browsers.)
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(connection);
    let outcome = tokio::select! {
        outcome = connection.as_mut() => outcome,
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(%peer, %error, "connection ended");
    }
}

/// Tells a connection past the cap to come back, and closes it.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(FULL)).await;
    let _ = tcp.shutdown().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_is_a_well_formed_response() {
        let text = std::str::from_utf8(super::FULL).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("a length");
        assert_eq!(length, body.len());
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(json["error"]["code"], "busy");
    }
}
