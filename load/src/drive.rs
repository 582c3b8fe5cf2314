//! The two load models.
//!
//! Closed: N users, each sends a request, waits for the answer, thinks, and
//! repeats; a slow server slows the load down (as k6's virtual users do).
//! Open: requests start on a fixed schedule whatever the server does; each
//! one's latency counts from its intended start, so time spent waiting for a
//! free slot here or in the server's queue is not hidden (no coordinated
//! omission). The ramp is a series of open steps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::args::Mix;
use crate::http::{Ack, Http};
use crate::stats::{Kind, Outcome, Recorder, Tally, lock, micros, ms};
use crate::target::Target;

/// Latency above which a request counts against the ramp's "p99 passes 1 s".
const SLOW: Duration = Duration::from_secs(1);

/// What every user task shares.
pub struct Load {
    pub http: Http,
    pub target: Target,
    pub tokens: Vec<String>,
    pub mix: Mix,
    pub think: Duration,
    pub timeout: Duration,
    pub recorder: Recorder,
    pub acks: Mutex<Vec<Ack>>,
}

impl Load {
    fn pick(&self, rng: &mut impl Rng) -> Kind {
        let roll = rng.random_range(0..self.mix.http_total().max(1));
        if roll < self.mix.lists {
            Kind::Lists
        } else if roll < self.mix.lists + self.mix.posts {
            Kind::Posts
        } else if roll < self.mix.lists + self.mix.posts + self.mix.wiki {
            Kind::Wiki
        } else {
            Kind::Topic
        }
    }

    /// One request by user `user`, timed from `intended`.
    async fn one(&self, user: usize, rng: &mut StdRng, intended: Instant, step: Option<&Step>) {
        let kind = self.pick(rng);
        let token = &self.tokens[user % self.tokens.len()];
        let (outcome, ack) = self.http.send(kind, token, &self.target, rng, intended + self.timeout).await;
        let latency = intended.elapsed();
        self.recorder.record(kind, outcome, latency);
        if let Some(step) = step {
            step.record(intended, outcome, latency);
        }
        if let Some(ack) = ack {
            lock(&self.acks).push(ack);
        }
    }
}

/// Closed model: `users` users until `until`.
pub async fn closed(load: &Arc<Load>, users: usize, until: Instant, seed: u64) {
    let mut tasks = JoinSet::new();
    for user in 0..users {
        let load = load.clone();
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            // Spread the first requests over one think time, as users arrive.
            pause(&mut rng, load.think, until).await;
            while Instant::now() < until {
                load.one(user, &mut rng, Instant::now(), None).await;
                pause(&mut rng, load.think, until).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Think time: uniform in 0.5–1.5× the mean, cut at `until`.
async fn pause(rng: &mut impl Rng, mean: Duration, until: Instant) {
    if mean.is_zero() {
        return;
    }
    let think = mean.mul_f64(rng.random_range(0.5..1.5));
    tokio::time::sleep_until((Instant::now() + think).min(until)).await;
}

/// One open-model step: its offered rate and what its requests met, each
/// request counted in the step it was scheduled in.
#[derive(Debug)]
pub struct Step {
    pub rate: f64,
    pub start: Instant,
    length: Duration,
    /// Requests scheduled before this instant and still unanswered at the
    /// step's end have taken more than `SLOW`.
    cutoff: Instant,
    tally: Mutex<Tally>,
    /// One coarse tally per second of the step (recovery is read from these).
    seconds: Vec<Mutex<Tally>>,
    issued: AtomicU64,
    early_issued: AtomicU64,
    early_done: AtomicU64,
    slow: AtomicU64,
    /// 2xx answers that arrived before the step ended (its throughput).
    answered_within: AtomicU64,
    /// Arrivals that found every slot busy (they waited, and it counts).
    queued: AtomicU64,
}

impl Step {
    /// A step of `length` from `start`; `per_second` keeps a tally per second
    /// of it too (about 50 KB each: the recovery phase needs them, an hour's
    /// soak does not).
    pub fn new(rate: f64, start: Instant, length: Duration, per_second: bool) -> Arc<Self> {
        let seconds = if per_second { length.as_secs() + 1 } else { 0 };
        let seconds = (0..seconds).map(|_| Mutex::new(Tally::coarse())).collect();
        Arc::new(Self {
            rate,
            start,
            length,
            cutoff: start + length.saturating_sub(SLOW),
            tally: Mutex::new(Tally::coarse()),
            seconds,
            issued: AtomicU64::new(0),
            early_issued: AtomicU64::new(0),
            early_done: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            answered_within: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        })
    }

    fn record(&self, intended: Instant, outcome: Outcome, latency: Duration) {
        lock(&self.tally).record(outcome, micros(latency));
        let second = intended.saturating_duration_since(self.start).as_secs() as usize;
        if let Some(window) = self.seconds.get(second) {
            lock(window).record(outcome, micros(latency));
        }
        if intended < self.cutoff {
            self.early_done.fetch_add(1, Ordering::Relaxed);
        }
        if latency > SLOW {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        if outcome == Outcome::Ok && Instant::now() < self.start + self.length {
            self.answered_within.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The step's figures so far; requests scheduled over `SLOW` before its
    /// end and still unanswered count as slow.
    pub fn summary(&self) -> StepSummary {
        let tally = lock(&self.tally).clone();
        let issued = self.issued.load(Ordering::Relaxed);
        let unanswered =
            self.early_issued.load(Ordering::Relaxed).saturating_sub(self.early_done.load(Ordering::Relaxed));
        let slow = self.slow.load(Ordering::Relaxed) + unanswered;
        let share = |n: u64| if issued == 0 { 0.0 } else { n as f64 / issued as f64 };
        StepSummary {
            offered: self.rate,
            issued,
            ok: tally.ok,
            ok_per_sec: self.answered_within.load(Ordering::Relaxed) as f64 / self.length.as_secs_f64().max(0.001),
            shed: tally.failures.get("503").copied().unwrap_or(0),
            shed_per_sec: tally.failures.get("503").copied().unwrap_or(0) as f64 / self.length.as_secs_f64().max(0.001),
            errors_per_sec: (tally.errors() - tally.failures.get("503").copied().unwrap_or(0)) as f64
                / self.length.as_secs_f64().max(0.001),
            errors: tally.errors(),
            error_share: share(tally.errors()),
            slow_share: share(slow),
            queued: self.queued.load(Ordering::Relaxed),
            p50_ms: ms(&tally.admitted, 50.0),
            p95_ms: ms(&tally.admitted, 95.0),
            p99_ms: ms(&tally.admitted, 99.0),
            shed_p99_ms: ms(&tally.shed, 99.0),
        }
    }

    /// Per-second (errors, admitted p99 in ms) of this step's requests.
    pub fn seconds(&self) -> Vec<(u64, f64)> {
        self.seconds.iter().map(|t| lock(t)).map(|t| (t.errors(), ms(&t.admitted, 99.0))).collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    /// Requests per second scheduled.
    pub offered: f64,
    pub issued: u64,
    pub ok: u64,
    /// 2xx answers per second that arrived while the step ran (its throughput).
    pub ok_per_sec: f64,
    pub shed: u64,
    /// 503s and other errors per second of the step (the chart's red lines).
    pub shed_per_sec: f64,
    pub errors_per_sec: f64,
    pub errors: u64,
    pub error_share: f64,
    /// Share of requests over 1 s (or unanswered after 1 s).
    pub slow_share: f64,
    pub queued: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub shed_p99_ms: f64,
}

impl StepSummary {
    /// The ramp's stop rule: p99 past 1 s, or errors past 1%.
    pub fn overloaded(&self) -> bool {
        self.slow_share > 0.01 || self.error_share > 0.01
    }
}

/// Open model: requests at `step.rate` per second for `length`; returns when
/// the schedule ends (the last requests are still in flight, in `tasks`).
pub async fn open(
    load: &Arc<Load>,
    step: &Arc<Step>,
    length: Duration,
    slots: &Arc<Semaphore>,
    tasks: &mut JoinSet<()>,
    seed: u64,
) {
    let interval = Duration::from_secs_f64(1.0 / step.rate.max(0.001));
    let end = step.start + length;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut next = step.start;
    let mut n: u64 = 0;
    while next < end {
        tokio::time::sleep_until(next).await;
        // Catch up on every arrival already due (the timer ticks in milliseconds).
        let now = Instant::now();
        while next <= now && next < end {
            let (load, step, slots) = (load.clone(), step.clone(), slots.clone());
            let user = rng.random_range(0..load.tokens.len().max(1));
            let mut request_rng = StdRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let intended = next;
            step.issued.fetch_add(1, Ordering::Relaxed);
            if intended < step.cutoff {
                step.early_issued.fetch_add(1, Ordering::Relaxed);
            }
            tasks.spawn(async move {
                let permit = match slots.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        step.queued.fetch_add(1, Ordering::Relaxed);
                        let deadline = intended + load.timeout;
                        match tokio::time::timeout_at(deadline, slots.acquire_owned()).await {
                            Ok(Ok(permit)) => permit,
                            _ => {
                                let kind = load.pick(&mut request_rng);
                                load.recorder.record(kind, Outcome::Timeout, intended.elapsed());
                                step.record(intended, Outcome::Timeout, intended.elapsed());
                                return;
                            }
                        }
                    }
                };
                load.one(user, &mut request_rng, intended, Some(&step)).await;
                drop(permit);
            });
            n += 1;
            next += interval;
        }
        // Reap finished tasks so the set holds only those in flight.
        while tasks.try_join_next().is_some() {}
    }
}

/// Open model at one rate for `length`, waiting for the last answers.
pub async fn steady(load: &Arc<Load>, rate: f64, start: Instant, length: Duration, max_in_flight: usize, seed: u64) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks = JoinSet::new();
    let step = Step::new(rate, start, length, false);
    open(load, &step, length, &slots, &mut tasks, seed).await;
    while tasks.join_next().await.is_some() {}
}

/// How a ramp climbs.
pub struct Ramp {
    pub from: f64,
    pub step: f64,
    pub max: f64,
    pub step_time: Duration,
    /// Steps climbed after the first overloaded one.
    pub past_knee: usize,
    pub recovery: Duration,
    /// A recovered second: no errors and admitted p99 at most this.
    pub recovered_p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Recovery {
    pub rate: f64,
    /// From the drop to the first second with no errors and p99 within the
    /// target; None if that never came within the recovery phase.
    pub seconds_to_recover: Option<u64>,
    pub target_p99_ms: f64,
    pub summary: StepSummary,
}

/// The stepped open model: climbs from `ramp.from` until a step is
/// overloaded, `past_knee` steps more, then drops back to `ramp.from` and
/// reads the recovery second by second. Each step is announced on `say`.
pub async fn ramp(
    load: &Arc<Load>,
    ramp: &Ramp,
    start: Instant,
    max_in_flight: usize,
    seed: u64,
    say: impl Fn(&StepSummary),
) -> (Vec<StepSummary>, Recovery) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut tasks = JoinSet::new();
    let mut steps = Vec::new();
    let (mut offered, mut start, mut knee) = (ramp.from, start, None);
    loop {
        let step = Step::new(offered, start, ramp.step_time, false);
        open(load, &step, ramp.step_time, &slots, &mut tasks, seed ^ offered.to_bits()).await;
        let summary = step.summary();
        say(&summary);
        if summary.overloaded() && knee.is_none() {
            knee = Some(steps.len() + 1);
        }
        steps.push(step);
        start += ramp.step_time;
        let past = knee.is_some_and(|k| steps.len() - k >= ramp.past_knee);
        if past || offered + ramp.step > ramp.max {
            break;
        }
        offered += ramp.step;
    }
    let step = Step::new(ramp.from, start, ramp.recovery, true);
    open(load, &step, ramp.recovery, &slots, &mut tasks, seed ^ 0x5EED).await;
    while tasks.join_next().await.is_some() {}
    // Late answers of the overloaded steps have arrived by now: summarize them all.
    let summaries = steps.iter().map(|s| s.summary()).collect();
    let clean = step.seconds().iter().position(|(errors, p99)| *errors == 0 && *p99 <= ramp.recovered_p99_ms);
    let recovery = Recovery {
        rate: ramp.from,
        seconds_to_recover: clean.map(|s| s as u64),
        target_p99_ms: ramp.recovered_p99_ms,
        summary: step.summary(),
    };
    (summaries, recovery)
}
