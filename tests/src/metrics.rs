//! Reading the proxy's `/metrics`.

use crate::{TestServer, until};

pub async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(server.url("/metrics")).await.expect("metrics").text().await.expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name}"))
}

pub async fn eventually_metric(server: &TestServer, name: &str, want: f64) {
    until(&format!("{name} = {want}"), || async { (metric(server, name).await - want).abs() < f64::EPSILON }).await;
}
