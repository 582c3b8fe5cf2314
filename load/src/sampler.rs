//! The sampler: one `Sample` per period (throughput, p99 and failures of
//! the answers that arrived in it; CPU, RSS and connections), which is also
//! the live progress line.

use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::drive::Load;
use crate::report::Sample;
use crate::resources::{self, Probe};
use crate::sockets::Fleet;
use crate::stats::ms;

/// One `Sample` per period until `stop`; also keeps the progress line current.
pub async fn sample(
    load: Arc<Load>,
    probe: Arc<Probe>,
    period: Duration,
    bar: ProgressBar,
    mut stop: watch::Receiver<bool>,
    fleet: Arc<Fleet>,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut last = (Instant::now(), probe.cpu());
    let mut ticker = tokio::time::interval_at(started + period, period);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let window = load.recorder.take_window();
        let now = (Instant::now(), probe.cpu());
        let secs = now.0.duration_since(last.0).as_secs_f64().max(0.001);
        let rate = |f: fn(&resources::Cpu) -> Option<f64>| f(&now.1).zip(f(&last.1)).map(|(b, a)| (b - a) / secs);
        let connections = probe.connections().await;
        let s = Sample {
            t_secs: started.elapsed().as_secs_f64(),
            ok_per_sec: window.ok as f64 / secs,
            errors_per_sec: window.errors() as f64 / secs,
            limited_per_sec: window.limited() as f64 / secs,
            p99_ms: ms(&window.admitted, 99.0),
            proxy_rss_mib: probe.proxy_rss_kib().map(|k| k as f64 / 1024.0),
            proxy_cores: rate(|c| c.proxy),
            postgres_cores: rate(|c| c.postgres),
            tool_cores: rate(|c| c.tool),
            db_active: connections.map(|c| c.active),
            db_total: connections.map(|c| c.total),
        };
        let events = fleet.received();
        bar.set_position(s.t_secs as u64);
        bar.set_message(format!(
            "{:>7.0} 2xx/s  p99 {:>7.1} ms  errors/s {:>5.0}  429/s {:>5.0}  CPU proxy {} pg {}  ws events {events}",
            s.ok_per_sec,
            s.p99_ms,
            s.errors_per_sec,
            s.limited_per_sec,
            s.proxy_cores.map_or("n/a".into(), |c| format!("{c:.2}")),
            s.postgres_cores.map_or("n/a".into(), |c| format!("{c:.2}")),
        ));
        samples.push(s);
        last = now;
    }
    samples
}
