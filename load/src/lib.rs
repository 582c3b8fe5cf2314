//! veritable-load: the seed report's load test as a tool of our own.
//!
//! Layout (one concept per file):
//! - `args`      — the command line (mix, think time, topics, models, output).
//! - `target`    — what the users aim at, read once from the database.
//! - `sessions`  — one real session per seeded user, cached between runs.
//! - `http`      — one request of the mix, classified into an `Outcome`.
//! - `drive`     — the closed model, the open model and its ramp steps.
//! - `sockets`   — WebSocket users that resume with `since` and log events.
//! - `delivery`  — acknowledged replies against what each socket received.
//! - `durability`— acknowledged replies against what the database holds.
//! - `stats`     — HDR histograms per kind of request, failures by kind.
//! - `resources` — CPU, RSS and connections of proxy, PostgreSQL and tool.
//! - `sampler`   — one `Sample` per period, and the live progress line.
//! - `report`    — the seed's table, per-endpoint figures, JSON.
//! - `chart`     — the PNG (cliff chart for a ramp, timeline otherwise).
//!
//! A run: discover the target, sign the users in, open the sockets and wait
//! until every one has subscribed, run the load while a sampler records one
//! `Sample` per period, wait for the sockets to drain, check delivery, report.

pub mod args;
pub mod chart;
pub mod delivery;
pub mod drive;
pub mod durability;
pub mod http;
pub mod report;
pub mod resources;
pub mod sampler;
pub mod sessions;
pub mod sockets;
pub mod stats;
pub mod target;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::args::Args;
use crate::drive::Load;
use crate::report::{Endpoint, Latency, Report, Resources, Settings};
use crate::resources::Probe;
use crate::sockets::Fleet;
use crate::stats::{Kind, Recorder};

pub(crate) use crate::stats::lock;

/// The recovery target: a second with no errors and p99 at most this.
const RECOVERED_P99_MS: f64 = 250.0;

/// What a run ends with: its report and whether `--check` holds.
pub struct Outcome {
    pub report: Report,
    pub passed: bool,
}

/// Runs, prints the table, writes `<out>/<label>.json` and `<label>.png`;
/// true unless `--check` was asked for and failed.
pub async fn run_and_report(args: Args) -> anyhow::Result<bool> {
    let (check, out, label, font) = (args.check, args.out.clone(), args.label.clone(), args.font.clone());
    let outcome = run(args).await?;
    println!("{}", outcome.report.table());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = out.join(format!("{label}.json"));
    std::fs::write(&json, serde_json::to_vec_pretty(&outcome.report)?)?;
    println!("report: {}", json.display());
    let png = out.join(format!("{label}.png"));
    match chart::use_font(&font).and_then(|()| chart::draw(&outcome.report, &png)) {
        Ok(()) => println!("chart:  {}", png.display()),
        Err(error) => eprintln!("no chart: {error:#} (pass --font)"),
    }
    if check && !outcome.passed {
        eprintln!(
            "veritable-load: check failed (no request succeeded, or a socket missed, repeated or reordered events)"
        );
    }
    Ok(!check || outcome.passed)
}

pub async fn run(args: Args) -> anyhow::Result<Outcome> {
    // Thousands of sockets need thousands of descriptors (the hard limit is the ceiling).
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (db, connection) = tokio_postgres::connect(&args.database_url, tokio_postgres::NoTls)
        .await
        .with_context(|| "connecting to --database-url")?;
    let db_task = tokio::spawn(connection);
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (sockets, http_users) = (args.socket_count(), args.http_users());
    let target = target::Target::discover(&db, http_users.max(sockets), args.topics, &mut rng).await?;
    let http = http::Http::new(&args.target, args.retry_writes)?;
    eprintln!(
        "veritable-load: {} users with sessions, {} topics, {} wiki pages; {http_users} HTTP users, {sockets} sockets",
        target.usernames.len(),
        target.topics.len(),
        target.wiki_slugs.len()
    );
    let tokens = sessions::sign_in(&http, &target.usernames, &args.password, args.sessions.as_deref()).await?;
    let probe = Arc::new(Probe::new(db, args.proxy_pid).await);
    let ws_url = format!("{}/api/v1/ws", args.target.replacen("http", "ws", 1).trim_end_matches('/'));
    let rooms = (0..sockets).map(|_| target.rooms(args.rooms_per_socket, &mut rng)).collect();
    let fleet = Arc::new(Fleet::open(&ws_url, &tokens, rooms).await?);

    let started = Instant::now();
    let load = Arc::new(Load {
        http,
        target,
        tokens,
        mix: args.mix,
        think: args.think,
        timeout: args.timeout,
        recorder: Recorder::new(started.into_std()),
        acks: Mutex::new(Vec::new()),
    });
    let bar = ProgressBar::new(if args.ramp { 0 } else { args.duration.as_secs() }).with_style(
        ProgressStyle::with_template("{elapsed:>4} {bar:20} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (sampler_stop, sampler_rx) = watch::channel(false);
    let sampler =
        tokio::spawn(sampler::sample(load.clone(), probe.clone(), args.sample, bar.clone(), sampler_rx, fleet.clone()));
    let cpu_start = probe.cpu();

    let (model, steps, recovery) = match (args.ramp, args.rate) {
        (_, None) => {
            drive::closed(&load, http_users, started + args.duration, args.seed).await;
            ("closed", Vec::new(), None)
        }
        (false, Some(rate)) => {
            drive::steady(&load, rate, started, args.duration, args.max_in_flight, args.seed).await;
            ("open", Vec::new(), None)
        }
        (true, Some(rate)) => {
            let plan = drive::Ramp {
                from: rate,
                step: args.ramp_step,
                max: args.ramp_max,
                step_time: args.step_time,
                past_knee: args.past_knee,
                recovery: args.recovery,
                recovered_p99_ms: RECOVERED_P99_MS,
            };
            let say = |s: &drive::StepSummary| {
                bar.println(format!(
                    "  step {:>7.0}/s: {:>7.0} 2xx/s, p99 {:>7.1} ms, 503 {}, errors {:.2}%, > 1 s {:.2}%",
                    s.offered,
                    s.ok_per_sec,
                    s.p99_ms,
                    s.shed,
                    s.error_share * 100.0,
                    s.slow_share * 100.0
                ));
            };
            let (steps, recovery) = drive::ramp(&load, &plan, started, args.max_in_flight, args.seed, say).await;
            ("ramp", steps, Some(recovery))
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let cpu_end = probe.cpu();
    let _ = sampler_stop.send(true);
    let samples = sampler.await.unwrap_or_default();
    bar.finish_and_clear();

    // Sockets get until --drain to receive what they are owed.
    let acks = std::mem::take(&mut *lock(&load.acks));
    let acked = delivery::by_topic(&acks);
    let drain_secs = fleet.drain(&acked, args.drain).await;
    let fleet = Arc::into_inner(fleet).context("the sampler still holds the sockets")?;
    let logs = fleet.close().await;
    db_task.abort();
    let delivery = (sockets > 0).then(|| delivery::Delivery { drain_secs, ..delivery::check(&acked, &logs) });
    let writes =
        durability::check(&args.database_url, &acks, load.http.key_tag().as_deref(), load.http.retried()).await;

    let cores = |f: fn(&resources::Cpu) -> Option<f64>| {
        f(&cpu_end).zip(f(&cpu_start)).map(|(end, start)| (end - start) / seconds.max(0.001))
    };
    let resources = Resources::from_samples(&samples, cores(|c| c.proxy), cores(|c| c.postgres), cores(|c| c.tool));
    let all = load.recorder.all();
    let report = Report {
        label: args.label.clone(),
        finished_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        settings: Settings {
            target: args.target.clone(),
            model,
            users: http_users + sockets,
            http_users,
            sockets,
            mix: args.mix,
            think_ms: args.think.as_millis(),
            topics: args.topics,
            rate: args.rate,
            limits: args.limits,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
        },
        seconds,
        requests: all.total(),
        ok: all.ok,
        ok_per_sec: all.ok as f64 / seconds.max(0.001),
        latency: Latency::of(&all),
        shed_latency: Latency::of_shed(&all),
        errors: all.errors(),
        error_rate: all.errors() as f64 / all.total().max(1) as f64,
        failures: all.failures.clone(),
        limited: all.limited(),
        first_failure: load
            .recorder
            .first_failure()
            .map(|(after, what)| report::FirstFailure { after_secs: after.as_secs_f64(), what }),
        endpoints: Kind::ALL
            .iter()
            .map(|k| Endpoint::of(*k, &load.recorder.kind(*k), seconds))
            .filter(|e| e.requests > 0)
            .collect(),
        resources,
        delivery,
        writes,
        steps,
        recovery,
        samples,
    };
    let passed = report.ok > 0
        && report.delivery.as_ref().is_none_or(delivery::Delivery::passed)
        && report.writes.as_ref().is_none_or(durability::Writes::passed);
    Ok(Outcome { report, passed })
}
