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

/// Series a proxy exports only with replicas configured (one per replica):
/// checked by the replica tests instead of the plain proxy's.
pub const REPLICA_SERIES: &[&str] = &["veritable_replica_lag_seconds", "veritable_replica_in_rotation"];

/// The `veritable_` metric names `text` mentions (an alert file, dashboard
/// queries), histogram suffixes stripped.
pub fn named_in(text: &str) -> std::collections::BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("veritable_"))
        .map(|word| {
            ["_bucket", "_sum", "_count"].iter().fold(word, |word, suffix| {
                if word.ends_with("_total") { word } else { word.strip_suffix(suffix).unwrap_or(word) }
            })
        })
        .collect()
}
