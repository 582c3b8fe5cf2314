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
//! - `stats`     — HDR histograms per kind of request, failures by kind.
//! - `resources` — CPU, RSS and connections of proxy, PostgreSQL and tool.
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
pub mod http;
pub mod report;
pub mod resources;
pub mod sessions;
pub mod sockets;
pub mod stats;
pub mod target;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::args::Args;
use crate::drive::{Load, Step};
use crate::report::{Endpoint, Latency, Recovery, Report, Resources, Sample, Settings};
use crate::resources::Probe;
use crate::stats::{Kind, Recorder, ms};

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
    let sockets = args.socket_count();
    let http_users = args.http_users();
    let target = target::Target::discover(&db, http_users.max(sockets), args.topics, &mut rng).await?;
    let http = http::Http::new(&args.target)?;
    eprintln!(
        "veritable-load: {} users with sessions, {} topics, {} wiki pages; {http_users} HTTP users, {sockets} sockets",
        target.usernames.len(),
        target.topics.len(),
        target.wiki_slugs.len()
    );
    let tokens = sessions::sign_in(&http, &target.usernames, &args.password, args.sessions.as_deref()).await?;
    let probe = Arc::new(Probe::new(db, args.proxy_pid).await);

    // Sockets first, all subscribed, so every reply acknowledged later is owed to them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let ws_url = format!("{}/api/v1/ws", args.target.replacen("http", "ws", 1).trim_end_matches('/'));
    let mut socket_tasks = JoinSet::new();
    let mut socket_logs = Vec::with_capacity(sockets);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    for n in 0..sockets {
        let rooms = target.rooms(args.rooms_per_socket, &mut rng);
        let log = Arc::new(Mutex::new(sockets::SocketLog::default()));
        socket_logs.push((rooms.clone(), log.clone()));
        let token = tokens[n % tokens.len()].clone();
        let (url, stop, ready) = (ws_url.clone(), stop_rx.clone(), ready_tx.clone());
        socket_tasks.spawn(sockets::run(url, token, rooms, log, stop, ready));
    }
    drop(ready_tx);
    let opening = ProgressBar::new(sockets as u64).with_style(
        ProgressStyle::with_template("  opening sockets {pos}/{len} {wide_bar}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    for _ in 0..sockets {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(())) => opening.inc(1),
            _ => {
                let why: Vec<String> =
                    socket_logs.iter().filter_map(|(_, l)| lock(l).last_close.clone()).take(3).collect();
                anyhow::bail!(
                    "only {} of {sockets} sockets subscribed within 120 s; last closes: {why:?}",
                    opening.position()
                )
            }
        }
    }
    opening.finish_and_clear();

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
    let total_secs = if args.ramp { 0 } else { args.duration.as_secs() };
    let bar = ProgressBar::new(total_secs).with_style(
        ProgressStyle::with_template("{elapsed:>4} {bar:20} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (sampler_stop, sampler_rx) = watch::channel(false);
    let sampler =
        tokio::spawn(sample(load.clone(), probe.clone(), args.sample, bar.clone(), sampler_rx, socket_logs.clone()));
    let cpu_start = probe.cpu();

    let mut steps = Vec::new();
    let mut recovery = None;
    let model = match (args.ramp, args.rate) {
        (_, None) => {
            drive::closed(&load, http_users, started + args.duration, args.seed).await;
            "closed"
        }
        (false, Some(rate)) => {
            let slots = Arc::new(Semaphore::new(args.max_in_flight));
            let mut tasks = JoinSet::new();
            let step = Step::new(rate, started, args.duration);
            drive::open(&load, &step, args.duration, &slots, &mut tasks, args.seed).await;
            while tasks.join_next().await.is_some() {}
            "open"
        }
        (true, Some(rate)) => {
            let slots = Arc::new(Semaphore::new(args.max_in_flight));
            let mut tasks = JoinSet::new();
            let mut offered = rate;
            let mut start = started;
            let mut knee = None;
            loop {
                let step = Step::new(offered, start, args.step_time);
                drive::open(&load, &step, args.step_time, &slots, &mut tasks, args.seed ^ offered.to_bits()).await;
                let summary = step.summary();
                bar.println(format!(
                    "  step {offered:>7.0}/s: {:>7.0} 2xx/s, p99 {:>7.1} ms, 503 {}, errors {:.2}%, > 1 s {:.2}%",
                    summary.ok_per_sec,
                    summary.p99_ms,
                    summary.shed,
                    summary.error_share * 100.0,
                    summary.slow_share * 100.0
                ));
                steps.push(step);
                start += args.step_time;
                if summary.overloaded() && knee.is_none() {
                    knee = Some(steps.len());
                }
                let past = knee.is_some_and(|k| steps.len() - k >= args.past_knee);
                if past || offered + args.ramp_step > args.ramp_max {
                    break;
                }
                offered += args.ramp_step;
            }
            // Drop back and watch the system recover, second by second.
            let step = Step::new(rate, start, args.recovery);
            drive::open(&load, &step, args.recovery, &slots, &mut tasks, args.seed ^ 0x5EED).await;
            while tasks.join_next().await.is_some() {}
            let seconds = step.seconds();
            let clean = seconds.iter().position(|(errors, p99)| *errors == 0 && *p99 <= RECOVERED_P99_MS);
            recovery = Some(Recovery {
                rate,
                seconds_to_recover: clean.map(|s| s as u64),
                target_p99_ms: RECOVERED_P99_MS,
                summary: step.summary(),
            });
            "ramp"
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
    let rooms: Vec<Vec<i64>> = socket_logs.iter().map(|(r, _)| r.clone()).collect();
    let owed = delivery::owed(&acked, &rooms);
    let drain_started = Instant::now();
    let drain_until = drain_started + args.drain;
    loop {
        let received: u64 = socket_logs.iter().map(|(_, l)| lock(l).received() as u64).sum();
        if received >= owed || Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    while socket_tasks.join_next().await.is_some() {}
    db_task.abort();

    let logs: Vec<_> = socket_logs.iter().map(|(r, l)| (r.clone(), lock(l))).collect();
    let views: Vec<(Vec<i64>, &sockets::SocketLog)> = logs.iter().map(|(r, l)| (r.clone(), &**l)).collect();
    let delivery = (sockets > 0).then(|| delivery::Delivery { drain_secs, ..delivery::check(&acked, &views) });
    drop(views);
    drop(logs);

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
        latency: Latency {
            p50_ms: ms(&all.admitted, 50.0),
            p95_ms: ms(&all.admitted, 95.0),
            p99_ms: ms(&all.admitted, 99.0),
            max_ms: ms(&all.admitted, 100.0),
        },
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
        steps: steps.iter().map(|s| s.summary()).collect(),
        recovery,
        samples,
    };
    let passed = report.ok > 0 && report.delivery.as_ref().is_none_or(delivery::Delivery::passed);
    Ok(Outcome { report, passed })
}

/// One `Sample` per period until `stop`; also keeps the progress line current.
async fn sample(
    load: Arc<Load>,
    probe: Arc<Probe>,
    period: Duration,
    bar: ProgressBar,
    mut stop: watch::Receiver<bool>,
    sockets: Vec<(Vec<i64>, sockets::Shared)>,
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
        let events: usize = sockets.iter().map(|(_, l)| lock(l).received()).sum();
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
