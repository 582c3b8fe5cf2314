//! Streaming replicas for read-only requests, with read-your-writes.
//!
//! Every `VERITABLE_REPLICA_CHECK_MS` (100 ms) one task samples the
//! primary's WAL insert position with the primary's own clock, then asks
//! each replica how far it has replayed. A replica is in rotation while it
//! answers, is still in recovery (a promoted one is not: it no longer
//! follows this primary) and is at most `VERITABLE_REPLICA_MAX_LAG_MS`
//! behind; its lag is the age of the oldest primary sample it has not
//! replayed, and grows as well while the primary cannot be sampled.
//!
//! Read-your-writes: a successful write answers with a marker, the primary's
//! clock at that moment rounded up (a cookie for browsers, and remembered in
//! this proxy for the session that wrote). A read carrying a marker goes to a
//! replica only once the replica has replayed the first primary sample taken
//! at or after that clock reading; before such a sample exists, to the
//! primary. The marker is in the primary's clock, so any proxy of the
//! deployment can honour it, whatever its own clock says.
//!
//! A read that loses its replica connection (the replica died, or canceled
//! the statement for a recovery conflict) runs again on the primary, and the
//! replica leaves rotation until its next good check.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool, PoolError};
use prometheus::{Gauge, IntGauge};
use tokio_util::sync::CancellationToken;

use crate::sessions::TokenHash;
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The primary's clock (µs since the epoch) and WAL insert position, clock
/// first: the position is read after the clock, so it covers every commit
/// acknowledged before that clock reading.
const SAMPLE: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint, \
                      (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint";

/// Whether the server is still a standby, and how far it has replayed.
const CHECK: &str = "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint";

/// Samples kept: a minute at the default interval, enough to place any
/// marker still alive and any lag worth measuring.
const SAMPLES_KEPT: usize = 600;

/// Writers remembered in this proxy (bounded; the cookie carries the rest).
const WRITERS_KEPT: u64 = 100_000;

/// Added to a marker: clock rates differ a little between machines.
const MARKER_MARGIN_US: i64 = 1_000;

#[derive(Clone, Copy)]
struct Sample {
    /// When the sample was sent (before PostgreSQL read its clock).
    sent: Instant,
    clock_us: i64,
    lsn: i64,
}

pub struct Settings {
    pub max_lag: Duration,
    pub every: Duration,
}

/// One replica: a pool for reads and a one-connection pool for its checks,
/// so a replica busy with reads is still checked on time.
pub struct Replica {
    name: String,
    reads: Pool,
    probe: Pool,
    in_rotation: AtomicBool,
    replayed: AtomicI64,
    lag: Gauge,
    up: IntGauge,
}

impl Replica {
    pub fn new(name: String, reads: Pool, probe: Pool, metrics: &ReplicaMetrics) -> Self {
        Self {
            lag: metrics.lag.with_label_values(&[&name]),
            up: metrics.in_rotation.with_label_values(&[&name]),
            name,
            reads,
            probe,
            in_rotation: AtomicBool::new(false),
            replayed: AtomicI64::new(i64::MIN),
        }
    }

    fn set_rotation(&self, serving: bool, why: &str) {
        if self.in_rotation.swap(serving, Ordering::AcqRel) != serving {
            if serving {
                tracing::info!(replica = %self.name, "replica in rotation");
            } else {
                tracing::warn!(replica = %self.name, why, "replica out of rotation; its reads go to the primary");
            }
        }
        self.up.set(i64::from(serving));
    }
}

pub struct Replicas {
    primary_probe: Pool,
    members: Vec<Replica>,
    samples: Mutex<VecDeque<Sample>>,
    next: AtomicUsize,
    settings: Settings,
    writers: moka::sync::Cache<TokenHash, i64>,
    metrics: ReplicaMetrics,
}

/// A read checked out on a replica: which one, to take it out if it fails.
pub struct OnReplica {
    pub client: Object,
    index: usize,
}

impl OnReplica {
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Replicas {
    pub fn new(primary_probe: Pool, members: Vec<Replica>, settings: Settings, metrics: ReplicaMetrics) -> Self {
        let marker_life = Self::life_of(&settings);
        Self {
            primary_probe,
            members,
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES_KEPT)),
            next: AtomicUsize::new(0),
            settings,
            writers: moka::sync::Cache::builder().max_capacity(WRITERS_KEPT).time_to_live(marker_life).build(),
            metrics,
        }
    }

    /// How long a marker matters: past it, every replica in rotation has
    /// replayed the write (its lag was at most `max_lag` at a check at most
    /// a few intervals old), so reads need no marker.
    fn life_of(settings: &Settings) -> Duration {
        settings.max_lag + settings.every * 3 + Duration::from_secs(1)
    }

    /// The marker's lifetime in whole seconds (the cookie's Max-Age).
    pub fn marker_secs(&self) -> u64 {
        Self::life_of(&self.settings).as_secs_f64().ceil() as u64
    }

    /// The marker of a write that has just been acknowledged: the primary's
    /// clock now, rounded up. Without any sample yet, a marker no sample
    /// will reach soon: the writer's reads go to the primary while it lives.
    pub fn marker_now(&self, writer: Option<&TokenHash>) -> i64 {
        let newest = self.lock_samples().back().copied();
        let marker = match newest {
            Some(s) => {
                let elapsed = i64::try_from(s.sent.elapsed().as_micros()).unwrap_or(i64::MAX / 2);
                s.clock_us.saturating_add(elapsed).saturating_add(MARKER_MARGIN_US)
            }
            None => i64::MAX,
        };
        if let Some(writer) = writer {
            self.writers.insert(*writer, marker);
        }
        marker
    }

    /// The marker a read must respect: the later of the one it carries and
    /// the one this proxy remembers for its session.
    pub fn floor(&self, carried: Option<i64>, reader: Option<&TokenHash>) -> Option<i64> {
        let remembered = reader.and_then(|r| self.writers.get(r));
        carried.max(remembered)
    }

    fn lock_samples(&self) -> std::sync::MutexGuard<'_, VecDeque<Sample>> {
        // A panic while holding it cannot leave the deque inconsistent.
        self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The WAL position a replica must have replayed to show every write
    /// acknowledged before `marker`; None while no sample is that recent.
    fn position_after(&self, marker: i64) -> Option<i64> {
        let samples = self.lock_samples();
        match samples.front() {
            // Older than everything kept: the oldest sample covers it.
            Some(oldest) if oldest.clock_us >= marker => Some(oldest.lsn),
            _ => samples.iter().find(|s| s.clock_us >= marker).map(|s| s.lsn),
        }
    }

    /// A replica connection for a read with this floor, or None: the read
    /// goes to the primary (no replica in rotation has replayed far enough,
    /// or none has a free connection).
    pub async fn checkout(&self, floor: Option<i64>) -> Option<OnReplica> {
        let need = match floor {
            None => i64::MIN,
            Some(marker) => match self.position_after(marker) {
                Some(position) => position,
                None => {
                    self.metrics.reads_primary.inc();
                    return None;
                }
            },
        };
        let count = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for offset in 0..count {
            let index = (start + offset) % count;
            let replica = &self.members[index];
            if !replica.in_rotation.load(Ordering::Acquire) || replica.replayed.load(Ordering::Acquire) < need {
                continue;
            }
            match replica.reads.get().await {
                Ok(client) => {
                    self.metrics.reads_replica.inc();
                    return Some(OnReplica { client, index });
                }
                // Every connection busy: load, not failure; try the next.
                Err(PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => {}
                Err(error) => replica.set_rotation(false, &error.to_string()),
            }
        }
        self.metrics.reads_primary.inc();
        None
    }

    /// A read on `on` failed in a way the primary can answer: the replica
    /// leaves rotation until its next good check.
    pub fn failed(&self, on: usize, error: &tokio_postgres::Error) {
        self.metrics.fallbacks.inc();
        if let Some(replica) = self.members.get(on) {
            replica.set_rotation(false, &error.to_string());
        }
    }

    /// Samples the primary, then checks every replica, each interval, until
    /// `cancel` fires.
    pub async fn watch(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.settings.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.sample_primary().await;
            futures_util::future::join_all(self.members.iter().map(|replica| self.check(replica))).await;
        }
    }

    /// How long one sample or check may take: a server that does not answer
    /// within it counts as not answering.
    fn probe_limit(&self) -> Duration {
        self.settings.every.max(Duration::from_millis(50)) * 2
    }

    async fn sample_primary(&self) {
        let sent = Instant::now();
        let outcome = tokio::time::timeout(self.probe_limit(), async {
            let client = self.primary_probe.get().await.map_err(|e| e.to_string())?;
            // Unnamed (`query_typed`): the primary may be behind pgbouncer.
            let rows = client.query_typed(SAMPLE, &[]).await.map_err(|e| e.to_string())?;
            rows.into_iter().next().ok_or_else(|| "no row".to_owned())
        })
        .await;
        match outcome {
            Ok(Ok(row)) => {
                let sample = Sample { sent, clock_us: row.get(0), lsn: row.get(1) };
                let mut samples = self.lock_samples();
                if samples.len() == SAMPLES_KEPT {
                    samples.pop_front();
                }
                samples.push_back(sample);
            }
            Ok(Err(error)) => tracing::debug!(%error, "cannot sample the primary's WAL position"),
            Err(_) => tracing::debug!("sampling the primary's WAL position timed out"),
        }
    }

    async fn check(&self, replica: &Replica) {
        let outcome = tokio::time::timeout(self.probe_limit(), async {
            let client = replica.probe.get().await.map_err(|e| e.to_string())?;
            let rows = client.query_typed(CHECK, &[]).await.map_err(|e| e.to_string())?;
            let row = rows.into_iter().next().ok_or_else(|| "no row".to_owned())?;
            Ok::<_, String>((row.get::<_, bool>(0), row.get::<_, Option<i64>>(1)))
        })
        .await;
        let (recovering, replayed) = match outcome {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => return replica.set_rotation(false, &error),
            Err(_) => return replica.set_rotation(false, "its check timed out"),
        };
        let Some(replayed) = replayed.filter(|_| recovering) else {
            replica.lag.set(f64::NAN);
            return replica.set_rotation(false, "not in recovery (promoted?)");
        };
        replica.replayed.store(replayed, Ordering::Release);
        let lag = self.lag_of(replayed);
        replica.lag.set(lag.map_or(f64::INFINITY, |l| l.as_secs_f64()));
        match lag {
            Some(lag) if lag <= self.settings.max_lag => replica.set_rotation(true, ""),
            _ => replica.set_rotation(false, "lagging past VERITABLE_REPLICA_MAX_LAG_MS"),
        }
    }

    /// How far behind `replayed` is: the age of the oldest primary sample
    /// it has not replayed (zero when it has them all), and at least how
    /// much longer than usual the primary has gone unsampled (a primary that
    /// cannot be sampled leaves every replica's lag unknown). None before
    /// the first sample.
    fn lag_of(&self, replayed: i64) -> Option<Duration> {
        let samples = self.lock_samples();
        let newest = samples.back()?;
        let behind = samples.iter().find(|s| s.lsn > replayed).map_or(Duration::ZERO, |s| s.sent.elapsed());
        let unsampled = newest.sent.elapsed().saturating_sub(self.settings.every * 2);
        Some(behind.max(unsampled))
    }
}

/// Whether a failed read on a replica should run again on the primary: the
/// connection is gone, the server is shutting down or starting, or it
/// canceled the statement for a recovery conflict (40001 on a standby).
pub fn primary_can_answer(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    match error.code() {
        None => true,
        Some(code) => {
            let class = &code.code()[..2];
            // 57014 is this proxy's own cancel (a search past its time): final.
            class == "08"
                || (class == "57" && *code != SqlState::QUERY_CANCELED)
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
        }
    }
}

/// Where reads went and how the replicas keep up (`store::replicas`);
/// registered whether or not replicas are configured.
#[derive(Clone)]
pub struct ReplicaMetrics {
    pub reads_primary: IntCounter,
    pub reads_replica: IntCounter,
    pub fallbacks: IntCounter,
    pub lag: GaugeVec,
    pub in_rotation: IntGaugeVec,
}

impl ReplicaMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reads = IntCounterVec::new(
            Opts::new("db_reads_total", "Read-only requests' connections by where they went (primary or replica)"),
            &["target"],
        )?;
        registry.register(Box::new(reads.clone()))?;
        let fallbacks = IntCounter::new(
            "replica_fallbacks_total",
            "Reads that failed on a replica (connection lost, recovery conflict) and ran again on the primary",
        )?;
        registry.register(Box::new(fallbacks.clone()))?;
        let lag = GaugeVec::new(
            Opts::new(
                "replica_lag_seconds",
                "Age of the oldest sampled primary WAL position the replica has not replayed (0: it has them all)",
            ),
            &["replica"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        let in_rotation =
            IntGaugeVec::new(Opts::new("replica_in_rotation", "1 while the replica serves reads"), &["replica"])?;
        registry.register(Box::new(in_rotation.clone()))?;
        Ok(Self {
            reads_primary: reads.with_label_values(&["primary"]),
            reads_replica: reads.with_label_values(&["replica"]),
            fallbacks,
            lag,
            in_rotation,
        })
    }
}
