//! The result of a run: the seed report's table beside its "after fixes"
//! column, the figures per kind of request, the resource split, the delivery
//! check, and (for a ramp) the steps and the recovery. Printed and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::{Limits, Mix, Topics};
use crate::delivery::Delivery;
use crate::drive::{Recovery, StepSummary};
use crate::stats::{Kind, Tally, ms};

/// The seed report's "after fixes" column, where it gave a figure.
pub const SEED_RPS: f64 = 2340.0;
pub const SEED_P95_MS: f64 = 127.0;
pub const SEED_P99_MS: f64 = 341.0;
pub const SEED_ERROR_RATE: f64 = 0.0002;
pub const SEED_USERS: usize = 100;

#[derive(Debug, Serialize)]
pub struct Settings {
    pub target: String,
    pub model: &'static str,
    pub users: usize,
    pub http_users: usize,
    pub sockets: usize,
    pub mix: Mix,
    pub think_ms: u128,
    pub topics: Topics,
    pub rate: Option<f64>,
    pub limits: Limits,
    pub cores: usize,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Of the answers admitted (2xx).
    pub fn of(t: &Tally) -> Self {
        Self::of_histogram(&t.admitted)
    }

    /// Of the 503s (refusals must be quick too: within 1 s in an outage).
    pub fn of_shed(t: &Tally) -> Self {
        Self::of_histogram(&t.shed)
    }

    fn of_histogram(h: &hdrhistogram::Histogram<u64>) -> Self {
        Self { min_ms: ms(h, 0.0), p50_ms: ms(h, 50.0), p95_ms: ms(h, 95.0), p99_ms: ms(h, 99.0), max_ms: ms(h, 100.0) }
    }
}

#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub kind: Kind,
    pub name: &'static str,
    pub requests: u64,
    pub ok: u64,
    pub ok_per_sec: f64,
    pub latency: Latency,
    pub failures: BTreeMap<String, u64>,
}

impl Endpoint {
    pub fn of(kind: Kind, t: &Tally, secs: f64) -> Self {
        Self {
            kind,
            name: kind.name(),
            requests: t.total(),
            ok: t.ok,
            ok_per_sec: t.ok as f64 / secs.max(0.001),
            latency: Latency::of(t),
            failures: t.failures.clone(),
        }
    }
}

/// One sampling period.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_secs: f64,
    pub ok_per_sec: f64,
    pub errors_per_sec: f64,
    pub limited_per_sec: f64,
    pub p99_ms: f64,
    pub proxy_rss_mib: Option<f64>,
    pub proxy_cores: Option<f64>,
    pub postgres_cores: Option<f64>,
    pub tool_cores: Option<f64>,
    pub db_active: Option<i64>,
    pub db_total: Option<i64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Resources {
    pub proxy_rss_mib_end: Option<f64>,
    pub proxy_rss_mib_max: Option<f64>,
    /// RSS growth from the end of the first tenth of the run (warm-up) to the end.
    pub proxy_rss_growth_after_warmup: Option<f64>,
    pub proxy_cores: Option<f64>,
    pub postgres_cores: Option<f64>,
    pub tool_cores: Option<f64>,
    pub db_connections_active_max: Option<i64>,
    pub db_connections_active_mean: Option<f64>,
    pub db_connections_total_max: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct FirstFailure {
    pub after_secs: f64,
    pub what: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub finished_unix: u64,
    pub settings: Settings,
    pub seconds: f64,
    pub requests: u64,
    pub ok: u64,
    pub ok_per_sec: f64,
    pub latency: Latency,
    /// Of the 503 answers.
    pub shed_latency: Latency,
    /// Failures other than 429.
    pub errors: u64,
    pub error_rate: f64,
    pub failures: BTreeMap<String, u64>,
    pub limited: u64,
    pub first_failure: Option<FirstFailure>,
    pub endpoints: Vec<Endpoint>,
    pub resources: Resources,
    pub delivery: Option<Delivery>,
    /// Acknowledged replies found in the database at the end.
    pub writes: Option<crate::durability::Writes>,
    pub steps: Vec<StepSummary>,
    pub recovery: Option<Recovery>,
    pub samples: Vec<Sample>,
}

impl Resources {
    pub fn from_samples(samples: &[Sample], proxy: Option<f64>, postgres: Option<f64>, tool: Option<f64>) -> Self {
        let rss: Vec<f64> = samples.iter().filter_map(|s| s.proxy_rss_mib).collect();
        let active: Vec<i64> = samples.iter().filter_map(|s| s.db_active).collect();
        let warm = rss.get(rss.len() / 10).copied();
        Self {
            proxy_rss_mib_end: rss.last().copied(),
            proxy_rss_mib_max: rss.iter().copied().reduce(f64::max),
            proxy_rss_growth_after_warmup: warm.zip(rss.last()).map(|(w, e)| (e - w) / w.max(0.001)),
            proxy_cores: proxy,
            postgres_cores: postgres,
            tool_cores: tool,
            db_connections_active_max: active.iter().copied().max(),
            db_connections_active_mean: (!active.is_empty())
                .then(|| active.iter().sum::<i64>() as f64 / active.len() as f64),
            db_connections_total_max: samples.iter().filter_map(|s| s.db_total).max(),
        }
    }
}

fn thousands(n: f64) -> String {
    let whole = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("n/a".into(), f)
}

impl Report {
    /// The table, as printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let r = &self.resources;
        let _ = writeln!(
            out,
            "\nveritable-load `{}`: {} model, {:.0} s, {} cores shared by tool, proxy and PostgreSQL",
            self.label, s.model, self.seconds, s.cores
        );
        let _ = writeln!(out, "{:<38} {:<40} seed \"after fixes\"", "", "veritable (this run)");
        let mut row = |name: &str, ours: String, seed: String| {
            let _ = writeln!(out, "{name:<38} {ours:<40} {seed}");
        };
        row("requests/s (answered 2xx)", thousands(self.ok_per_sec), thousands(SEED_RPS));
        let users = match s.rate {
            Some(rate) => format!("open model, {} req/s offered; {} WS", thousands(rate), s.sockets),
            None => format!("{} ({} HTTP + {} WS)", s.http_users + s.sockets, s.http_users, s.sockets),
        };
        row("concurrent users", users, SEED_USERS.to_string());
        row("p95 latency (2xx)", format!("{:.1} ms", self.latency.p95_ms), format!("{SEED_P95_MS:.0} ms"));
        row("p99 latency (2xx)", format!("{:.1} ms", self.latency.p99_ms), format!("{SEED_P99_MS:.0} ms"));
        row(
            &format!("proxy memory (RSS) after {:.0} s", self.seconds),
            opt(r.proxy_rss_mib_end, |m| format!("{m:.0} MiB (max {:.0})", r.proxy_rss_mib_max.unwrap_or(m))),
            "not given".into(),
        );
        row(
            "database connections in use",
            match (r.db_connections_active_max, r.db_connections_active_mean, r.db_connections_total_max) {
                (Some(max), Some(mean), Some(open)) => format!("max {max}, mean {mean:.1} active; {open} open"),
                _ => "n/a".into(),
            },
            "not given".into(),
        );
        row(
            "error rate",
            format!(
                "{:.3}% ({} of {})",
                self.error_rate * 100.0,
                thousands(self.errors as f64),
                thousands(self.requests as f64)
            ),
            format!("{:.2}%", SEED_ERROR_RATE * 100.0),
        );
        row(
            "time to first failure",
            self.first_failure.as_ref().map_or("none".into(), |f| format!("{:.1} s ({})", f.after_secs, f.what)),
            "not given".into(),
        );
        let limits = match s.limits {
            Limits::Lifted => "limits lifted",
            Limits::Default => "default limits",
            Limits::Unknown => "limits unknown",
        };
        row("429 (rate limited, not errors)", format!("{} ({limits})", thousands(self.limited as f64)), String::new());
        row(
            "CPU cores: proxy / PostgreSQL / tool",
            format!(
                "{} / {} / {}",
                opt(r.proxy_cores, |c| format!("{c:.2}")),
                opt(r.postgres_cores, |c| format!("{c:.2}")),
                opt(r.tool_cores, |c| format!("{c:.2}"))
            ),
            String::new(),
        );
        if self.shed_latency.max_ms > 0.0 {
            row(
                "503 answers p99 / max",
                format!("{:.1} / {:.1} ms", self.shed_latency.p99_ms, self.shed_latency.max_ms),
                String::new(),
            );
        }
        if let Some(w) = &self.writes {
            row(
                "Acknowledged replies stored",
                format!("{} of {}: {} lost", thousands(w.present as f64), thousands(w.acknowledged as f64), w.lost),
                String::new(),
            );
            if let Some(doubled) = w.doubled {
                row("Keyed posts retried / written twice", format!("{} / {doubled}", w.retried), String::new());
            }
        }
        if let Some(d) = &self.delivery {
            row(
                "WebSocket delivery",
                format!(
                    "{} owed: {} missed, {} dup, {} out of order",
                    thousands(d.expected as f64),
                    d.missed,
                    d.duplicated,
                    d.out_of_order
                ),
                String::new(),
            );
            row(
                "  sockets / reconnects / resyncs",
                format!("{} / {} / {}", d.sockets, d.reconnects, d.resyncs),
                String::new(),
            );
            row(
                "  connection attempts refused",
                format!("{} (retried with backoff)", d.refused_connects),
                String::new(),
            );
            if !d.closes.is_empty() {
                let mut closes: Vec<(&String, &u64)> = d.closes.iter().collect();
                closes.sort_by(|a, b| b.1.cmp(a.1));
                let top: Vec<String> = closes.iter().take(3).map(|(k, v)| format!("{k}: {v}")).collect();
                row("  connections ended by", top.join("; "), String::new());
            }
            row("  last events after the load", format!("{:.2} s", d.drain_secs), String::new());
        }
        let _ = writeln!(
            out,
            "\n{:<16} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}  failures",
            "", "requests", "2xx/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        for e in &self.endpoints {
            let l = &e.latency;
            let failures: Vec<String> = e.failures.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(
                out,
                "{:<16} {:>10} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
                e.name,
                e.requests,
                e.ok_per_sec,
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                l.max_ms,
                if failures.is_empty() { "none".into() } else { failures.join(", ") }
            );
        }
        if !self.steps.is_empty() {
            let _ = writeln!(
                out,
                "\n{:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
                "offered/s", "2xx/s", "p50 ms", "p99 ms", "503 %", "errors %", "> 1 s %", "503 p99 ms"
            );
            for st in &self.steps {
                let pct = |n: u64| if st.issued == 0 { 0.0 } else { n as f64 * 100.0 / st.issued as f64 };
                let _ = writeln!(
                    out,
                    "{:>9.0} {:>9.0} {:>8.1} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>10.1}",
                    st.offered,
                    st.ok_per_sec,
                    st.p50_ms,
                    st.p99_ms,
                    pct(st.shed),
                    st.error_share * 100.0,
                    st.slow_share * 100.0,
                    st.shed_p99_ms
                );
            }
        }
        if let Some(rec) = &self.recovery {
            let _ = writeln!(
                out,
                "recovery at {:.0}/s: {} (p99 {:.1} ms, {} errors over the phase)",
                rec.rate,
                rec.seconds_to_recover.map_or("not within the phase".into(), |s| format!(
                    "{s} s to the first clean second (p99 ≤ {:.0} ms, 0 errors)",
                    rec.target_p99_ms
                )),
                rec.summary.p99_ms,
                rec.summary.errors
            );
        }
        out
    }
}
