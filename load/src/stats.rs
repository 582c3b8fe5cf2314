//! What the users measured: an HDR histogram per kind of request, failures by
//! kind, and a window that the sampler empties once per period.
//!
//! Latencies are microseconds from the request's *intended* start (open
//! model) or its actual start (closed model). Only answers in 2xx go into the
//! latency histograms ("admitted" latency); 503s, the proxy's load shedding,
//! have their own histogram, so a fast refusal does not flatter the p99.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The kinds of HTTP work in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Lists,
    Posts,
    Wiki,
    /// A topic's detail, read by a visitor who is not signed in: not cached
    /// by the proxy, so it reaches PostgreSQL (a replica, when the proxy has them).
    Topic,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Lists, Kind::Posts, Kind::Wiki, Kind::Topic];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Lists => "GET topic list",
            Kind::Posts => "POST reply",
            Kind::Wiki => "GET wiki page",
            Kind::Topic => "GET topic (anonymous)",
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// An HTTP answer outside 2xx.
    Status(u16),
    /// No answer within `--timeout` of the intended start.
    Timeout,
    /// The connection failed or broke before an answer.
    Connection,
    /// A 2xx whose body lacked what the API promises (a reply's id).
    Malformed,
}

impl Outcome {
    /// The name this failure is counted under.
    fn label(self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Status(code) => code.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Connection => "connection".into(),
            Outcome::Malformed => "malformed".into(),
        }
    }

    /// A failure of the system under test: 429 is the posting or login limit
    /// doing its job, counted apart.
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Status(429))
    }
}

fn histogram(digits: u8) -> Histogram<u64> {
    // 1 µs to 10 minutes; values above are clamped.
    Histogram::new_with_bounds(1, 600_000_000, digits).expect("the bounds are valid constants")
}

#[derive(Clone, Debug)]
pub struct Tally {
    pub admitted: Histogram<u64>,
    pub shed: Histogram<u64>,
    pub ok: u64,
    pub failures: BTreeMap<String, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

impl Tally {
    /// Three significant digits (about 170 KiB per histogram).
    pub fn new() -> Self {
        Self::with_digits(3)
    }

    /// Two digits (1% resolution, about 20 KiB) for the many short windows.
    pub fn coarse() -> Self {
        Self::with_digits(2)
    }

    fn with_digits(digits: u8) -> Self {
        Self { admitted: histogram(digits), shed: histogram(digits), ok: 0, failures: BTreeMap::new() }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.failures.values().sum::<u64>()
    }

    pub fn limited(&self) -> u64 {
        self.failures.get("429").copied().unwrap_or(0)
    }

    /// Failures other than 429.
    pub fn errors(&self) -> u64 {
        self.failures.iter().filter(|(k, _)| k.as_str() != "429").map(|(_, v)| v).sum()
    }

    pub fn record(&mut self, outcome: Outcome, micros: u64) {
        match outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.admitted.saturating_record(micros.max(1));
            }
            other => {
                if other == Outcome::Status(503) {
                    self.shed.saturating_record(micros.max(1));
                }
                *self.failures.entry(other.label()).or_default() += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.ok += other.ok;
        // Same bounds on both sides, so adding cannot fail (digits may differ; values are re-bucketed).
        let _ = self.admitted.add(&other.admitted);
        let _ = self.shed.add(&other.shed);
        for (k, v) in &other.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
    }
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Percentile of a histogram in milliseconds (0 when empty).
pub fn ms(h: &Histogram<u64>, percentile: f64) -> f64 {
    if h.is_empty() { 0.0 } else { h.value_at_quantile(percentile / 100.0) as f64 / 1000.0 }
}

/// Shared by every user task; each lock is held for one record.
pub struct Recorder {
    started: Instant,
    kinds: [Mutex<Tally>; Kind::ALL.len()],
    window: Mutex<Tally>,
    first_failure: Mutex<Option<(Duration, String)>>,
}

impl Recorder {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            kinds: std::array::from_fn(|_| Mutex::new(Tally::new())),
            window: Mutex::new(Tally::coarse()),
            first_failure: Mutex::new(None),
        }
    }

    pub fn record(&self, kind: Kind, outcome: Outcome, latency: Duration) {
        let micros = micros(latency);
        lock(&self.kinds[kind as usize]).record(outcome, micros);
        lock(&self.window).record(outcome, micros);
        if outcome.is_error() {
            let mut first = lock(&self.first_failure);
            if first.is_none() {
                *first = Some((self.started.elapsed(), format!("{} {}", kind.name(), outcome.label())));
            }
        }
    }

    /// Everything recorded since the last call (for the sampler).
    pub fn take_window(&self) -> Tally {
        std::mem::replace(&mut *lock(&self.window), Tally::coarse())
    }

    pub fn kind(&self, kind: Kind) -> Tally {
        lock(&self.kinds[kind as usize]).clone()
    }

    pub fn all(&self) -> Tally {
        let mut all = Tally::new();
        for kind in Kind::ALL {
            all.merge(&self.kind(kind));
        }
        all
    }

    pub fn first_failure(&self) -> Option<(Duration, String)> {
        lock(&self.first_failure).clone()
    }
}

/// A poisoned lock only means another task panicked mid-record; the numbers
/// in it are still the best we have.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_counted_apart_from_errors() {
        let recorder = Recorder::new(Instant::now());
        recorder.record(Kind::Posts, Outcome::Ok, Duration::from_millis(3));
        recorder.record(Kind::Posts, Outcome::Status(429), Duration::from_millis(1));
        assert!(recorder.first_failure().is_none());
        recorder.record(Kind::Lists, Outcome::Status(503), Duration::from_millis(1));
        recorder.record(Kind::Lists, Outcome::Timeout, Duration::from_secs(10));
        let all = recorder.all();
        assert_eq!((all.total(), all.ok, all.limited(), all.errors()), (4, 1, 1, 2));
        assert_eq!(all.shed.len(), 1);
        assert!(recorder.first_failure().is_some_and(|(_, what)| what == "GET topic list 503"));
        assert!((ms(&all.admitted, 99.0) - 3.0).abs() < 0.01);
        assert_eq!(recorder.take_window().total(), 4);
        assert_eq!(recorder.take_window().total(), 0);
    }
}
