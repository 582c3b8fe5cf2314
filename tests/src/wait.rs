//! Waiting on conditions, never on the clock alone.

use std::time::Duration;

/// Awaits a condition that other tasks or processes make true: `check` is
/// asked every 25 ms for at most 10 s; past that the test fails with `what`.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
