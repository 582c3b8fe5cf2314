//! `cargo xtask faults`: a write load through the proxy, WebSocket readers
//! resuming by `since`, and one fault in the middle of it (RELIABILITY.md).
//! A run passes only with every acknowledged reply found in the database by
//! id, no post written twice, 0 events missed by the readers, no 5xx but 503
//! (each 503 answered within its bound), and the fault's own condition:
//! recovery after a restart, throughput of the posts a lock does not touch.
//!
//! The bench runs (`cargo xtask faults FAULT --runs 10`) use the release
//! build on `default` data; `cargo xtask test` runs each fault once, short,
//! on the test database with the debug build ([`short`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;

use crate::cluster::Cluster;
use crate::haproxy::Haproxy;
use crate::load;
use crate::pgbouncer::Pgbouncer;
use crate::proxy::ProxyUnderTest;
use crate::run::{self, Profile};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// `kill -9` of the postmaster and every backend, restarted `down` s later.
    PgKill,
    /// `pg_terminate_backend` of 2 random pool connections and of the
    /// realtime listener, every 2 s for `down` s.
    Terminate,
    /// One of the hot topics held `FOR UPDATE` by another transaction for
    /// `down` s (past the role's 5 s lock_timeout).
    Lock,
    /// `kill -9` of pgbouncer (the proxy in pgbouncer mode behind it),
    /// started again `down` s later.
    PgbouncerRestart,
    /// `kill -9` of one of two proxies behind haproxy; the clients post with
    /// idempotency keys and send again on an unknown outcome.
    ProxyKill,
    /// A rolling restart of two proxies behind haproxy: each in turn sent
    /// SIGTERM (it drains: stops accepting, finishes its requests, closes
    /// its sockets with 1001) and started again on its address.
    RollingRestart,
    /// Every PostgreSQL process stopped (SIGSTOP) for `down` s, three
    /// times 2 s apart, under an open arrival rate of posts: a disk or
    /// machine stall shorter than the posts' 200 ms bound, which must
    /// refuse nobody before that bound (it is not overload).
    Stall,
    /// `kill -9` of a streaming replica the proxy reads from (a mix of
    /// topic reads and posts), started again `down` s later: its reads go
    /// to the primary, none fails, and it serves again once caught up.
    ReplicaKill,
    /// The replica promoted (`pg_promote()`) under the same load: it no
    /// longer follows the primary, leaves rotation, and no read fails.
    ReplicaPromote,
    /// A forced `CHECKPOINT` under an open arrival rate of posts, with a
    /// bulk load's pages dirty (1 GiB, 128 MiB with `--debug`, written
    /// just before the load) and `at` s of posts': the posts' p99 while it
    /// runs may be at most twice their p99 before it (the seed's WAL
    /// checkpoint stalls).
    Checkpoint,
    /// The same with a timed checkpoint, spread as PostgreSQL's own are
    /// (paced by `checkpoint_completion_target`), `checkpoint_timeout` set to
    /// `down` s (default 30) for the run: the settings file's 15 min would
    /// pace it 30 times slower than the default here.
    CheckpointSpread,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::PgKill,
        Fault::Terminate,
        Fault::Lock,
        Fault::PgbouncerRestart,
        Fault::ProxyKill,
        Fault::RollingRestart,
        Fault::Stall,
        Fault::ReplicaKill,
        Fault::ReplicaPromote,
        Fault::Checkpoint,
        Fault::CheckpointSpread,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::PgKill => "pg-kill",
            Fault::Terminate => "terminate",
            Fault::Lock => "lock",
            Fault::PgbouncerRestart => "pgbouncer-restart",
            Fault::ProxyKill => "proxy-kill",
            Fault::RollingRestart => "rolling-restart",
            Fault::Stall => "stall",
            Fault::ReplicaKill => "replica-kill",
            Fault::ReplicaPromote => "replica-promote",
            Fault::Checkpoint => "checkpoint",
            Fault::CheckpointSpread => "checkpoint-spread",
        }
    }

    /// The load's mix: posts, and with a replica mostly topic reads (not
    /// cached by the proxy, so they reach the replica).
    fn mix(self) -> &'static str {
        match self {
            Fault::ReplicaKill | Fault::ReplicaPromote => "posts=20,topic=80",
            _ => "posts=100",
        }
    }

    /// Seconds the fault lasts unless told otherwise.
    fn default_down(self) -> f64 {
        match self {
            Fault::PgKill | Fault::Terminate | Fault::ReplicaKill => 4.0,
            Fault::Lock => 8.0,
            Fault::PgbouncerRestart => 2.0,
            Fault::ProxyKill | Fault::RollingRestart | Fault::ReplicaPromote | Fault::Checkpoint => 0.0,
            Fault::CheckpointSpread => 30.0,
            Fault::Stall => 0.15,
        }
    }
}

/// One series of runs.
pub struct Plan {
    pub profile: Profile,
    pub db: String,
    pub secs: u64,
    /// Seconds into the load when the fault starts.
    pub at: f64,
    /// Seconds the fault lasts (None: the fault's default).
    pub down: Option<f64>,
    pub users: u32,
    pub sockets: u32,
    /// Posts per second for the stall fault (None: by profile).
    pub rate: Option<f64>,
    /// Another proxy binary than the profile's.
    pub proxy_bin: Option<PathBuf>,
}

impl Plan {
    /// The stall fault's arrival rate: the soak's posts (1,200/s) on the
    /// release build, what the debug build takes easily otherwise.
    fn stall_rate(&self) -> f64 {
        self.rate.unwrap_or(match self.profile {
            Profile::Release => 1_200.0,
            Profile::Debug => 200.0,
        })
    }
}

/// What one run found.
struct Run {
    acknowledged: u64,
    lost: u64,
    doubled: Option<u64>,
    retried: u64,
    owed: u64,
    missed: u64,
    /// Socket reconnections (each resumed with `since`) and resyncs.
    reconnects: u64,
    resyncs: u64,
    /// 5xx answers other than 503 (a 502 of the load balancer included).
    server_errors: u64,
    refused: u64,
    slowest_refusal_ms: f64,
    quickest_refusal_ms: f64,
    /// Seconds from the first with an error or without a 2xx to the last one.
    degraded: u64,
    /// From the restart command to the restarted part accepting connections.
    ready_after: Option<f64>,
    /// From then to the first second without an error.
    clean_after: Option<f64>,
    /// 2xx per second before the fault and while it lasted.
    ok_before: f64,
    ok_during: f64,
    /// Mean of the per-second p99 of the answers before the fault and
    /// while it lasted (the tool samples every second).
    p99_before_ms: f64,
    p99_during_ms: f64,
    /// With a replica: the proxy's reads on it before the fault and after
    /// the fault ended, and reads that failed there and ran on the primary.
    replica: Option<ReplicaReads>,
}

#[derive(Clone, Copy, Default)]
struct ReplicaReads {
    before: f64,
    primary_before: f64,
    after: f64,
    fallbacks: f64,
}

impl ReplicaReads {
    fn describe(&self) -> String {
        let share = 100.0 * self.before / (self.before + self.primary_before).max(1.0);
        format!("{:.0} ({share:.0}%) / {:.0} / {:.0}", self.before, self.after, self.fallbacks)
    }
}

/// The slowest a refusal may be: an outage is answered at once, a lock
/// waited out up to the role's lock_timeout (5 s).
fn refusal_bound_ms(fault: Fault) -> f64 {
    if fault == Fault::Lock { 6_000.0 } else { 1_000.0 }
}

/// The proxy's default `VERITABLE_POST_WAIT_MS`: a post refused sooner was
/// refused for a standing queue (overload), not for its own wait.
const POST_WAIT_MS: f64 = 200.0;

impl Run {
    /// Why the run failed, if it did.
    fn failures(&self, fault: Fault) -> Vec<String> {
        let mut why = Vec::new();
        if self.acknowledged == 0 {
            why.push("no reply was acknowledged".to_owned());
        }
        if self.lost > 0 {
            why.push(format!("{} acknowledged replies lost", self.lost));
        }
        if self.doubled.unwrap_or(0) > 0 {
            why.push(format!("{} posts written twice", self.doubled.unwrap_or(0)));
        }
        if self.missed > 0 {
            why.push(format!("{} events missed", self.missed));
        }
        if self.server_errors > 0 {
            why.push(format!("{} answers 5xx other than 503", self.server_errors));
        }
        if self.slowest_refusal_ms > refusal_bound_ms(fault) {
            why.push(format!("a 503 took {:.0} ms", self.slowest_refusal_ms));
        }
        match fault {
            Fault::PgKill | Fault::PgbouncerRestart => match (self.ready_after, self.clean_after) {
                (Some(ready), Some(clean)) if ready + clean <= 5.0 + 1.0 => {}
                (ready, clean) => why.push(format!("not clean within 5 s of the restart ({ready:?} + {clean:?} s)")),
            },
            Fault::RollingRestart if self.refused > 0 => {
                why.push(format!("{} answers 503 during a rolling restart", self.refused))
            }
            Fault::Stall if self.refused > 0 && self.quickest_refusal_ms < POST_WAIT_MS => why.push(format!(
                "{} posts refused, the quickest in {:.0} ms: before the posts' {POST_WAIT_MS} ms bound: refused early for a stall",
                self.refused, self.quickest_refusal_ms
            )),
            Fault::ReplicaKill | Fault::ReplicaPromote => {
                if self.refused > 0 {
                    why.push(format!("{} answers 503 while a replica failed", self.refused));
                }
                match self.replica {
                    Some(reads) if reads.before > 0.0 => {}
                    _ => why.push("no read went to the replica before the fault".to_owned()),
                }
                if fault == Fault::ReplicaKill && !self.replica.is_some_and(|r| r.after > 0.0) {
                    why.push("no read went to the replica after its restart".to_owned());
                }
            }
            // The target is the p99's; refusals show in the table.
            Fault::Checkpoint | Fault::CheckpointSpread if self.p99_during_ms > 2.0 * self.p99_before_ms => {
                why.push(format!(
                    "p99 {:.1} ms during the checkpoint, over twice the {:.1} ms before it",
                    self.p99_during_ms, self.p99_before_ms
                ))
            }
            Fault::Lock if self.ok_during < self.ok_before / 2.0 => why.push(format!(
                "2xx/s fell from {:.0} to {:.0} while one topic was locked",
                self.ok_before, self.ok_during
            )),
            _ => {}
        }
        why
    }
}

/// `cargo xtask faults FAULT --runs N`: the release build on `veritable_<scale>`,
/// a Markdown table of the runs on stdout; fails if any run failed.
pub fn bench(fault: Fault, runs: u32, plan: &Plan) -> anyhow::Result<()> {
    let cluster = Cluster::locate()?;
    cluster.ensure_running()?;
    if !cluster.has_database(&plan.db)? {
        bail!("database {} is missing: run `cargo xtask seed default` first", plan.db);
    }
    run::build(plan.profile, load::BINARIES)?;
    run::proxy(plan.profile, &["migrate"], &cluster.database_url(&plan.db))?;
    let down = plan.down.unwrap_or(fault.default_down());
    println!(
        "# {}: {runs} runs of {} s, the fault at {} s for {down} s, {} users, {} sockets, {}",
        fault.name(),
        plan.secs,
        plan.at,
        plan.users,
        plan.sockets,
        run::utc_now()
    );
    println!(
        "| run | acknowledged | lost | written twice (retried) | events owed | missed | socket reconnects / resyncs | \
         5xx but 503 | 503s | slowest 503 | s degraded | ready after restart | clean after ready | 2xx/s (mean p99 per second) before / during | \
         replica reads before (share) / after / fallbacks | passed |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = 0;
    for n in 1..=runs {
        let label = format!("fault-{}-{n}", fault.name());
        let outcome = once(&cluster, fault, plan, &label)?;
        let why = outcome.failures(fault);
        let secs = |s: Option<f64>| s.map_or_else(|| "—".to_owned(), |s| format!("{s:.1} s"));
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {:.0} ms | {} | {} | {} | {:.0} ({:.1} ms) / {:.0} ({:.1} ms) | {} | {} |",
            outcome.acknowledged,
            outcome.lost,
            outcome.doubled.map_or_else(|| "—".to_owned(), |d| format!("{d} ({})", outcome.retried)),
            outcome.owed,
            outcome.missed,
            outcome.reconnects,
            outcome.resyncs,
            outcome.server_errors,
            outcome.refused,
            outcome.slowest_refusal_ms,
            outcome.degraded,
            secs(outcome.ready_after),
            secs(outcome.clean_after),
            outcome.ok_before,
            outcome.p99_before_ms,
            outcome.ok_during,
            outcome.p99_during_ms,
            outcome.replica.map_or_else(|| "—".to_owned(), |r| r.describe()),
            if why.is_empty() { "yes".to_owned() } else { why.join("; ") }
        );
        std::io::stdout().flush()?;
        failed += u32::from(!why.is_empty());
    }
    if failed > 0 {
        bail!("{failed} of {runs} runs failed");
    }
    Ok(())
}

/// `cargo xtask test`'s short versions: each fault once (but the checkpoint
/// benchmarks), 12 s, on the test database with the debug build, then a clean
/// restart whose shared buffers must be read back; (passed, failed).
pub fn short(cluster: &Cluster, db: &str) -> anyhow::Result<(u64, u64)> {
    let plan = Plan {
        profile: Profile::Debug,
        db: db.to_owned(),
        secs: 12,
        at: 3.0,
        down: None,
        users: 12,
        sockets: 3,
        rate: None,
        proxy_bin: None,
    };
    let (mut passed, mut failed) = (0, 0);
    // The checkpoint runs compare latencies: benchmarks, not for a shared CI machine.
    for fault in Fault::ALL.into_iter().filter(|f| !matches!(f, Fault::Checkpoint | Fault::CheckpointSpread)) {
        let outcome = once(cluster, fault, &plan, &format!("ci-fault-{}", fault.name()))?;
        let why = outcome.failures(fault);
        eprintln!(
            "    {}: {} acknowledged, {} lost, {} of {} events missed, {} × 503 (slowest {:.0} ms), {} × other 5xx, \
             p99 per second {:.1} ms before, {:.1} ms during{}{}",
            fault.name(),
            outcome.acknowledged,
            outcome.lost,
            outcome.missed,
            outcome.owed,
            outcome.refused,
            outcome.slowest_refusal_ms,
            outcome.server_errors,
            outcome.p99_before_ms,
            outcome.p99_during_ms,
            outcome.replica.map_or_else(String::new, |r| format!(
                ", replica reads before (share) / after / fallbacks {}",
                r.describe()
            )),
            if why.is_empty() { String::new() } else { format!(": FAILED ({})", why.join("; ")) }
        );
        if why.is_empty() {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    match prewarm_after_restart(cluster, db) {
        Ok(blocks) => {
            eprintln!("    restart-prewarm: {blocks} blocks read back into the shared buffers after a clean restart");
            passed += 1;
        }
        Err(error) => {
            eprintln!("    restart-prewarm: FAILED ({error:#})");
            failed += 1;
        }
    }
    Ok((passed, failed))
}

/// A clean restart with the settings file's autoprewarm: the blocks the
/// shared buffers held before it are read back, in the background, and the
/// server logs how many (RELIABILITY.md, fault 13; the settings' test checks
/// only that it is configured). The count, once logged; an error if it is
/// not logged within 120 s, or is zero. The line comes when the whole list
/// is read: seconds for the test data, 22 s for a full 6 GB of buffers from
/// the page cache (a developer's cluster that also holds `default`).
fn prewarm_after_restart(cluster: &Cluster, db: &str) -> anyhow::Result<u64> {
    // Some of the test database in the buffers, whatever ran before.
    cluster.superuser(db, "SELECT count(*) FROM forum_replies")?;
    let offset = cluster.log_len();
    // The stop writes the list of buffers (autoprewarm.blocks); the start reads it.
    cluster.stop()?;
    cluster.ensure_running()?;
    run::poll(
        "the server's log to say \"autoprewarm successfully prewarmed\" after the restart",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || match prewarmed(&cluster.log_from(offset)?) {
            Some((0, listed)) => bail!("autoprewarm read back 0 of {listed} blocks"),
            Some((loaded, _)) => Ok(Some(loaded)),
            None => Ok(None),
        },
    )
}

/// `(loaded, listed)` from autoprewarm's line in `log`, if it is there:
/// "autoprewarm successfully prewarmed N of M previously-loaded blocks".
fn prewarmed(log: &str) -> Option<(u64, u64)> {
    let rest = log.split("autoprewarm successfully prewarmed ").nth(1)?;
    // The whole line only, not one the server is still writing.
    let (counts, _) = rest.split_once(" previously-loaded blocks")?;
    let mut words = counts.split_whitespace();
    let loaded = words.next()?.parse().ok()?;
    let listed = words.nth(1)?.parse().ok()?;
    Some((loaded, listed))
}

/// What serves the load in a run: one proxy, a proxy behind pgbouncer, or
/// two proxies behind haproxy.
struct Topology {
    proxies: Vec<ProxyUnderTest>,
    bouncer: Option<Pgbouncer>,
    balancer: Option<Haproxy>,
}

impl Topology {
    fn start(cluster: &Cluster, fault: Fault, plan: &Plan, url: &str) -> anyhow::Result<Self> {
        let binary = plan.proxy_bin.clone().unwrap_or_else(|| plan.profile.proxy_binary());
        match fault {
            Fault::PgbouncerRestart => {
                let bouncer = Pgbouncer::start(cluster)?;
                let (prefix, name) = url.rsplit_once('/').context("a URL with a database name")?;
                let (host, _) = prefix.rsplit_once(':').context("a URL with a port")?;
                let env = [
                    ("DATABASE_URL".to_owned(), format!("{host}:{}/{name}", bouncer.port)),
                    ("VERITABLE_PGBOUNCER".to_owned(), "true".to_owned()),
                    ("VERITABLE_LISTEN_URL".to_owned(), url.to_owned()),
                ];
                let proxy = ProxyUnderTest::start(&binary, url, true, &env)?;
                Ok(Self { proxies: vec![proxy], bouncer: Some(bouncer), balancer: None })
            }
            Fault::ProxyKill | Fault::RollingRestart => {
                let proxies = vec![
                    ProxyUnderTest::start(&binary, url, true, &[])?,
                    ProxyUnderTest::start(&binary, url, true, &[])?,
                ];
                let addrs: Vec<&str> = proxies.iter().map(|p| p.addr.as_str()).collect();
                let balancer = Haproxy::start(&addrs)?;
                Ok(Self { proxies, bouncer: None, balancer: Some(balancer) })
            }
            Fault::ReplicaKill | Fault::ReplicaPromote => {
                let replica = cluster.replica(1);
                replica.ensure_replica_of(cluster)?;
                let env = [("VERITABLE_REPLICA_URLS".to_owned(), replica.database_url(&plan.db))];
                let proxy = ProxyUnderTest::start(&binary, url, true, &env)?;
                // Reads go to the replica once its first check has passed.
                run::until(
                    "the replica to enter rotation",
                    Duration::from_secs(30),
                    Duration::from_millis(50),
                    || Ok(proxy.metric(IN_ROTATION).unwrap_or(0.0) >= 1.0),
                )?;
                // In rotation, it has replayed the run's first checkpoint: a
                // restartpoint there, so that after the kill recovery replays
                // only this run's WAL (else up to checkpoint_timeout's worth,
                // longer than a short run).
                replica.superuser("postgres", "CHECKPOINT")?;
                Ok(Self { proxies: vec![proxy], bouncer: None, balancer: None })
            }
            _ => Ok(Self {
                proxies: vec![ProxyUnderTest::start(&binary, url, true, &[])?],
                bouncer: None,
                balancer: None,
            }),
        }
    }

    /// Where the clients go.
    fn addr(&self) -> String {
        match &self.balancer {
            Some(balancer) => balancer.addr(),
            None => self.proxies[0].addr.clone(),
        }
    }

    /// The proxy whose CPU and memory the tool samples (the one that survives).
    fn sampled(&self) -> &ProxyUnderTest {
        &self.proxies[self.proxies.len() - 1]
    }
}

/// The proxy's metrics of its reads (`store::replicas`): the replica's
/// gauge summed over its labels, as [`ProxyUnderTest::metric`] does.
const IN_ROTATION: &str = "veritable_replica_in_rotation";
const REPLICA_READS: &str = "veritable_db_reads_total{target=\"replica\"}";
const PRIMARY_READS: &str = "veritable_db_reads_total{target=\"primary\"}";
const FALLBACKS: &str = "veritable_replica_fallbacks_total";

/// Buffers written by checkpoints since the statistics were reset.
fn checkpoint_buffers(cluster: &Cluster, db: &str) -> anyhow::Result<i64> {
    let n = cluster.superuser(db, "SELECT buffers_checkpoint FROM pg_stat_bgwriter")?;
    n.trim().parse().context("buffers_checkpoint")
}

/// Samples ending before this many seconds into the load are warm-up.
const WARM_UP_SECS: f64 = 1.5;

/// Wall-clock marks of one run.
struct Marks {
    started: Instant,
    /// When the fault began and when it ended (the lock released, the
    /// restarted part ready, the last termination sent).
    began: Instant,
    restarted: Option<Instant>,
    ready: Option<Instant>,
    ended: Option<Instant>,
    /// Replica and primary reads when the fault began, replica reads when the
    /// restarted replica was ready, and at the end.
    replica: Option<ReplicaReads>,
}

fn once(cluster: &Cluster, fault: Fault, plan: &Plan, label: &str) -> anyhow::Result<Run> {
    let url = cluster.database_url(&plan.db);
    // Crash recovery then replays only this run's WAL.
    cluster.superuser(&plan.db, "CHECKPOINT")?;
    if matches!(fault, Fault::Checkpoint | Fault::CheckpointSpread) {
        // Rows of ~1 KB; an INSERT (not COPY or CREATE TABLE AS, which write
        // through a small ring) leaves its pages dirty in shared buffers.
        // Autovacuum kept off it: its scan of the new gigabyte during the
        // run stalled the posts for 200-280 ms at a time, checkpoint or not.
        let rows = match plan.profile {
            Profile::Release => 1 << 20,
            Profile::Debug => 1 << 17,
        };
        cluster.superuser(
            &plan.db,
            &format!(
                "DROP TABLE IF EXISTS checkpoint_ballast;
                 CREATE TABLE checkpoint_ballast (n int, pad text) WITH (autovacuum_enabled = false);
                 INSERT INTO checkpoint_ballast SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, {rows}) g"
            ),
        )?;
        // The INSERT extended the table by writing zero pages through the
        // page cache, where they stay dirty until the kernel's 30-s expiry
        // writes them back, a gigabyte at once, which stalled every WAL
        // flush for ~300 ms ("the second after a checkpoint begins" of the
        // earlier runs, which began ~30 s after the ballast). Pages dirtied
        // over the minutes between real checkpoints were written back as
        // they aged: sync, so that only the shared buffers stay dirty.
        run::status(&mut Command::new("sync"))?;
    }
    let mut topology = Topology::start(cluster, fault, plan, &url)?;
    let log_path = run::target_dir().join("tmp").join(format!("{label}.log"));
    std::fs::create_dir_all(log_path.parent().context("a log directory")?)?;
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = load::tool_for(plan.profile, &topology.addr(), topology.sampled().pid(), &url, true, &plan.db);
    cmd.args(["--duration", &format!("{}s", plan.secs)])
        .args(["--users", &plan.users.to_string(), "--sockets", &plan.sockets.to_string()])
        .args(["--mix", fault.mix(), "--topics", "hot:8", "--rooms-per-socket", "3", "--label", label])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    if fault == Fault::ProxyKill {
        cmd.args(["--retry-writes", "5"]);
    }
    if matches!(fault, Fault::Stall | Fault::Checkpoint | Fault::CheckpointSpread) {
        cmd.args(["--rate", &plan.stall_rate().to_string()]);
    }

    let mut tool = cmd.spawn().context("starting veritable-load")?;
    let marks = inject(cluster, fault, plan, &mut topology, &mut tool, &log_path);
    let status = tool.wait();
    let mut marks = marks?;
    if let Some(reads) = &mut marks.replica {
        let proxy = topology.sampled();
        // Replica reads since the restarted replica was ready (the fault's end otherwise).
        reads.after = proxy.metric(REPLICA_READS).unwrap_or(0.0) - reads.after.max(reads.before);
        reads.fallbacks = proxy.metric(FALLBACKS).unwrap_or(0.0);
    }
    drop(topology);
    if matches!(fault, Fault::Checkpoint | Fault::CheckpointSpread) {
        cluster.superuser(&plan.db, "DROP TABLE checkpoint_ballast")?;
    }
    if fault == Fault::ReplicaPromote {
        // It follows nobody now: the next run copies the primary afresh.
        cluster.replica(1).remove(cluster)?;
    }
    status?;
    let path = run::target_dir().join("load").join(format!("{label}.json"));
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&path)
            .with_context(|| format!("reading {} (the tool's log: {})", path.display(), log_path.display()))?,
    )?;
    Ok(summarize(&report, &marks))
}

/// Waits for the load to start, then brings the fault on.
fn inject(
    cluster: &Cluster,
    fault: Fault,
    plan: &Plan,
    topology: &mut Topology,
    tool: &mut Child,
    log: &Path,
) -> anyhow::Result<Marks> {
    // The tool prints this line just before it signs in and opens its sockets
    // (well under a second with its cached sessions): the load's clock starts then.
    run::until(
        &format!("veritable-load to start (see {})", log.display()),
        Duration::from_secs(120),
        Duration::from_millis(100),
        || {
            if std::fs::read_to_string(log).unwrap_or_default().contains("HTTP users") {
                return Ok(true);
            }
            if tool.try_wait()?.is_some() {
                bail!("veritable-load exited before it started (see {})", log.display());
            }
            Ok(false)
        },
    )?;
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(plan.at));
    let down = Duration::from_secs_f64(plan.down.unwrap_or(fault.default_down()));
    let mut marks = Marks { started, began: Instant::now(), restarted: None, ready: None, ended: None, replica: None };
    let proxy = topology.sampled();
    if matches!(fault, Fault::ReplicaKill | Fault::ReplicaPromote) {
        marks.replica = Some(ReplicaReads {
            before: proxy.metric(REPLICA_READS).unwrap_or(0.0),
            primary_before: proxy.metric(PRIMARY_READS).unwrap_or(0.0),
            ..ReplicaReads::default()
        });
    }
    match fault {
        Fault::PgKill => {
            cluster.kill9()?;
            std::thread::sleep(down);
            marks.restarted = Some(Instant::now());
            cluster.ensure_running()?;
            marks.ready = Some(Instant::now());
        }
        Fault::Terminate => {
            let until = Instant::now() + down;
            while Instant::now() < until {
                cluster.superuser(
                    &plan.db,
                    "SELECT count(pg_terminate_backend(pid)) FROM (
                       (SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                           AND application_name = 'veritable-proxy' ORDER BY random() LIMIT 2)
                       UNION ALL
                       (SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                           AND application_name = 'veritable-listener')) t",
                )?;
                std::thread::sleep(Duration::from_secs(2).min(until.saturating_duration_since(Instant::now())));
            }
        }
        Fault::Lock => {
            // A topic the load posts to: the newest reply's.
            let topic = cluster.superuser(&plan.db, "SELECT topic_id FROM forum_replies ORDER BY id DESC LIMIT 1")?;
            let topic: i64 = topic.trim().parse().context("the newest reply's topic")?;
            cluster.superuser(
                &plan.db,
                &format!(
                    "BEGIN; SELECT 1 FROM forum_topics WHERE id = {topic} FOR UPDATE; SELECT pg_sleep({}); ROLLBACK;",
                    down.as_secs_f64()
                ),
            )?;
        }
        Fault::PgbouncerRestart => {
            let bouncer = topology.bouncer.as_mut().context("pgbouncer runs in this topology")?;
            bouncer.kill9();
            std::thread::sleep(down);
            marks.restarted = Some(Instant::now());
            bouncer.start_again()?;
            marks.ready = Some(Instant::now());
        }
        Fault::RollingRestart => {
            for n in 0..topology.proxies.len() {
                if n > 0 {
                    std::thread::sleep(Duration::from_secs(2));
                }
                let addr = topology.proxies[n].addr.clone();
                marks.restarted = Some(Instant::now());
                // Dropping it sends SIGTERM and waits for it to exit, drained.
                drop(topology.proxies.remove(n));
                let url = cluster.database_url(&plan.db);
                let binary = plan.proxy_bin.clone().unwrap_or_else(|| plan.profile.proxy_binary());
                topology.proxies.insert(n, ProxyUnderTest::start_on(&addr, &binary, &url, true, &[])?);
                marks.ready = Some(Instant::now());
            }
        }
        Fault::Stall => {
            for n in 0..3 {
                if n > 0 {
                    std::thread::sleep(Duration::from_secs(2).saturating_sub(down));
                }
                cluster.pause(down)?;
            }
        }
        Fault::ReplicaKill => {
            let replica = cluster.replica(1);
            replica.kill9()?;
            std::thread::sleep(down);
            marks.restarted = Some(Instant::now());
            replica.ensure_running()?;
            marks.ready = Some(Instant::now());
            if let Some(reads) = &mut marks.replica {
                reads.after = topology.sampled().metric(REPLICA_READS).unwrap_or(0.0);
            }
        }
        Fault::Checkpoint => {
            let before = checkpoint_buffers(cluster, &plan.db)?;
            cluster.superuser(&plan.db, "CHECKPOINT")?;
            eprintln!(
                "    the checkpoint wrote {} buffers in {:.2} s",
                checkpoint_buffers(cluster, &plan.db)? - before,
                marks.began.elapsed().as_secs_f64()
            );
        }
        Fault::CheckpointSpread => {
            // A timed checkpoint, as PostgreSQL's own: no session waits in
            // a transaction for it (one that did would hold back the xmin
            // horizon, and the hot rows' dead versions would pile up).
            let before = checkpoint_buffers(cluster, &plan.db)?;
            let timed = || -> anyhow::Result<i64> {
                let n = cluster.superuser("postgres", "SELECT checkpoints_timed FROM pg_stat_bgwriter")?;
                n.trim().parse().context("checkpoints_timed")
            };
            let timed_before = timed()?;
            // The last completed checkpoint's time (pg_control).
            let completed = || cluster.superuser("postgres", "SELECT checkpoint_time FROM pg_control_checkpoint()");
            let completed_before = completed()?;
            // ALTER SYSTEM runs outside a transaction: its own command.
            let timeout = down.as_secs().max(30);
            cluster.superuser("postgres", &format!("ALTER SYSTEM SET checkpoint_timeout = '{timeout}s'"))?;
            cluster.superuser("postgres", "SELECT pg_reload_conf()")?;
            let deadline = Instant::now() + Duration::from_secs(3 * timeout + 30);
            let left = || deadline.saturating_duration_since(Instant::now());
            let outcome = (|| -> anyhow::Result<()> {
                // It starts (and is counted) at most `timeout` s after the last one began.
                run::until("a timed checkpoint to begin", left(), Duration::from_millis(50), || {
                    Ok(timed()? != timed_before)
                })?;
                marks.began = Instant::now();
                run::until("the timed checkpoint to end", left(), Duration::from_millis(50), || {
                    Ok(completed()? != completed_before)
                })
            })();
            cluster.superuser("postgres", "ALTER SYSTEM RESET checkpoint_timeout")?;
            cluster.superuser("postgres", "SELECT pg_reload_conf()")?;
            outcome?;
            eprintln!(
                "    the timed checkpoint wrote {} buffers in {:.2} s",
                checkpoint_buffers(cluster, &plan.db)? - before,
                marks.began.elapsed().as_secs_f64()
            );
        }
        Fault::ReplicaPromote => {
            let replica = cluster.replica(1);
            replica.superuser("postgres", "SELECT pg_promote()")?;
            anyhow::ensure!(!replica.in_recovery()?, "the replica is still in recovery after pg_promote()");
        }
        Fault::ProxyKill => {
            let victim = topology.proxies.first().context("two proxies in this topology")?;
            run::output(Command::new("kill").args(["-9", &victim.pid().to_string()]))?;
            // The window "during" is the 3 s its clients take to move over.
            std::thread::sleep(Duration::from_secs(3));
        }
    }
    marks.ended = Some(Instant::now());
    Ok(marks)
}

fn summarize(report: &serde_json::Value, marks: &Marks) -> Run {
    let count = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let since = |at: Option<Instant>| at.map(|at| at.saturating_duration_since(marks.started).as_secs_f64());
    let failures = report["failures"].as_object();
    let server_errors = failures.map_or(0, |f| {
        f.iter().filter(|(code, _)| code.starts_with('5') && code.as_str() != "503").map(|(_, n)| count(n)).sum()
    });
    let samples: Vec<(f64, f64, f64, f64)> = report["samples"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|s| {
                    let f = |k: &str| s[k].as_f64().unwrap_or(0.0);
                    (f("t_secs"), f("ok_per_sec"), f("errors_per_sec"), f("p99_ms"))
                })
                .collect()
        })
        .unwrap_or_default();
    let bad: Vec<f64> = samples.iter().filter(|(_, ok, errors, _)| *errors > 0.0 || *ok == 0.0).map(|s| s.0).collect();
    let degraded = match (bad.first(), bad.last()) {
        (Some(first), Some(last)) => (last - first + 1.0).round() as u64,
        _ => 0,
    };
    let ready = since(marks.ready);
    let clean_after = ready.and_then(|ready| {
        samples
            .iter()
            .find(|(t, ok, errors, _)| *t > ready && *errors == 0.0 && *ok > 0.0)
            .map(|(t, _, _, _)| (t - ready).max(0.0))
    });
    // 2xx per second before the fault (the first second left out: sockets
    // and connections still opening) and while it lasted.
    let (began, ended) = (since(Some(marks.began)).unwrap_or(0.0), since(marks.ended).unwrap_or(0.0));
    // A sample covers the second before its time: those ending after
    // `from` and by `to`, or, for a window shorter than a second, the one
    // that covers `to`.
    let mean = |from: f64, to: f64, value: fn(&(f64, f64, f64, f64)) -> f64| {
        let mut window: Vec<f64> = samples.iter().filter(|s| s.0 > from && s.0 <= to).map(value).collect();
        if window.is_empty() {
            window.extend(samples.iter().find(|s| s.0 >= to).map(value));
        }
        if window.is_empty() { 0.0 } else { window.iter().sum::<f64>() / window.len() as f64 }
    };
    let writes = &report["writes"];
    let delivery = &report["delivery"];
    Run {
        acknowledged: count(&writes["acknowledged"]),
        lost: writes["lost"].as_u64().unwrap_or(u64::MAX),
        doubled: writes["doubled"].as_u64(),
        retried: count(&writes["retried"]),
        owed: count(&delivery["expected"]),
        missed: delivery["missed"].as_u64().unwrap_or(u64::MAX),
        reconnects: count(&delivery["reconnects"]),
        resyncs: count(&delivery["resyncs"]),
        server_errors,
        refused: failures.and_then(|f| f.get("503")).map_or(0, count),
        slowest_refusal_ms: report["shed_latency"]["max_ms"].as_f64().unwrap_or(0.0),
        quickest_refusal_ms: report["shed_latency"]["min_ms"].as_f64().unwrap_or(0.0),
        degraded,
        ready_after: marks.restarted.zip(marks.ready).map(|(r, ready)| ready.duration_since(r).as_secs_f64()),
        clean_after,
        // Before: the first second left out (connections still opening, and
        // its p99 2-20 times the next ones'). Its sample ends a few
        // milliseconds after 1.0 s, so the bound is 1.5, not 1.0 (which let
        // it in, and the checkpoint runs' "before" with it).
        ok_before: mean(WARM_UP_SECS, began, |s| s.1),
        ok_during: mean(began + 1.0, ended, |s| s.1),
        p99_before_ms: mean(WARM_UP_SECS, began, |s| s.3),
        // The whole seconds the fault touched.
        p99_during_ms: mean(began, ended.ceil(), |s| s.3),
        replica: marks.replica,
    }
}

#[cfg(test)]
mod tests {
    use super::prewarmed;

    #[test]
    fn autoprewarms_line_is_read_for_both_counts() {
        let log = "2026-12-08 01:30:00.100 UTC [12] LOG:  database system is ready to accept connections\n\
                   2026-12-08 01:30:02.400 UTC [13] LOG:  autoprewarm successfully prewarmed 3071 of 3080 previously-loaded blocks\n";
        assert_eq!(prewarmed(log), Some((3071, 3080)));
        assert_eq!(prewarmed("LOG:  database system is ready to accept connections\n"), None);
        // A line cut by a write in progress is not read yet.
        assert_eq!(prewarmed("LOG:  autoprewarm successfully prewarmed 30"), None);
        assert_eq!(prewarmed("LOG:  autoprewarm successfully prewarmed 3071 of 30"), None);
    }
}
