//! The shutdown signal for `serve`: Ctrl-C or SIGTERM.

use std::future::Future;

/// Installs the handlers for SIGINT and SIGTERM now and returns the future
/// that completes on the first of them.
///
/// The handlers are installed when this is called, not when the future is
/// first polled: `serve` polls it only from its accept loop, and a SIGTERM
/// arriving before that poll would otherwise take the default action and
/// kill the process without its drain (a balancer's stop right after start).
#[cfg(unix)]
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        tokio::select! {
            () = first(interrupt, "Ctrl-C") => tracing::info!("Ctrl-C received, shutting down"),
            () = first(terminate, "SIGTERM") => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}

/// The first signal of `stream`; never, if its handler could not be installed.
#[cfg(unix)]
async fn first(stream: std::io::Result<tokio::signal::unix::Signal>, name: &str) {
    match stream {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(error) => {
            tracing::error!(%error, "cannot listen for {name}");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received, shutting down");
    }
}
