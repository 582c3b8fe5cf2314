//! The command line: one typed struct, parsed once in `main`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "veritable-load",
    about = "Virtual users against a running veritable-proxy: the seed report's load test, its table and its cliff chart"
)]
pub struct Args {
    /// The proxy under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// The proxy's database, read for the seeded users, topics and wiki pages,
    /// and sampled (`pg_stat_activity`) for connections in use.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// The proxy's process id, for its RSS and CPU (absent: those rows say n/a).
    #[arg(long)]
    pub proxy_pid: Option<u32>,
    /// Virtual users: signed-in HTTP users plus the WebSocket share of the mix.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Open sockets instead of the mix's WebSocket share of `--users`.
    #[arg(long)]
    pub sockets: Option<usize>,
    /// The mix, in weights: `lists=40,posts=30,wiki=20,ws=10` (the seed's);
    /// `topic` is a topic's detail read by an anonymous visitor (uncached: it
    /// reaches PostgreSQL, or a replica).
    #[arg(long, default_value = "lists=40,posts=30,wiki=20,ws=10")]
    pub mix: Mix,
    /// Mean pause between one user's requests (each drawn from 0.5–1.5× of it).
    #[arg(long, default_value = "0s", value_parser = duration)]
    pub think: Duration,
    /// How long the load runs (after sign-in and socket set-up).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub duration: Duration,
    /// Which topics are listed, posted to and watched: `uniform` (every open
    /// topic) or `hot:N` (N topics drawn once from them).
    #[arg(long, default_value = "uniform")]
    pub topics: Topics,
    /// Open model: HTTP requests start at this rate (per second) whatever the
    /// server does, and latency counts from the intended start. Absent: closed
    /// model, each user waits for its answer before its next request.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open model, stepped: from `--rate`, add `--ramp-step` every `--step-time`
    /// until p99 passes 1 s or errors pass 1%, then drop back to `--rate` and
    /// measure recovery.
    #[arg(long, requires = "rate")]
    pub ramp: bool,
    #[arg(long, default_value_t = 500.0)]
    pub ramp_step: f64,
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub step_time: Duration,
    /// Steps the ramp keeps climbing after the first overloaded one, to show
    /// what lies past the knee (a plateau of shed load, or a cliff).
    #[arg(long, default_value_t = 2)]
    pub past_knee: usize,
    /// The ramp stops here even if the server keeps up.
    #[arg(long, default_value_t = 100_000.0)]
    pub ramp_max: f64,
    /// How long the ramp's recovery phase runs at `--rate`.
    #[arg(long, default_value = "20s", value_parser = duration)]
    pub recovery: Duration,
    /// Open model: requests in flight at most; later arrivals wait for a slot
    /// (and their wait counts in their latency).
    #[arg(long, default_value_t = 4000)]
    pub max_in_flight: usize,
    /// A request unanswered this long after its intended start is a timeout.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub timeout: Duration,
    /// Topic rooms each socket subscribes to.
    #[arg(long, default_value_t = 3)]
    pub rooms_per_socket: usize,
    /// How long sockets may take, after the load stops, to receive the events
    /// of the last acknowledged replies.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub drain: Duration,
    /// Resource and throughput sampling period (the soak's RSS curve).
    #[arg(long, default_value = "1s", value_parser = duration)]
    pub sample: Duration,
    /// The seeded users' password.
    #[arg(long, default_value = "veritable-demo")]
    pub password: String,
    /// Sign-in tokens kept between runs (they are checked before use).
    #[arg(long)]
    pub sessions: Option<PathBuf>,
    /// Whether the proxy's login and posting limits were lifted: printed in the
    /// table, since 429s mean different things in the two cases.
    #[arg(long, value_enum, default_value = "unknown")]
    pub limits: Limits,
    /// Where the JSON report and the PNG chart go.
    #[arg(long, default_value = "target/load")]
    pub out: PathBuf,
    /// A name for this run, used in the report and its file names.
    #[arg(long, default_value = "run")]
    pub label: String,
    /// A TrueType font for the chart's text (the chart is skipped without one).
    #[arg(long, default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")]
    pub font: PathBuf,
    /// Send every post with an `Idempotency-Key` (and the key in its body) and
    /// send it again, with the same key, up to this many times when its
    /// outcome is unknown (a broken connection, 502, 503, 504): a client
    /// riding out a fault. The durability check then also counts posts
    /// written twice (`doubled`). Keyed posts are written one per
    /// transaction, not batched, so throughput is not comparable.
    #[arg(long, default_value_t = 0)]
    pub retry_writes: u32,
    /// Exit non-zero unless requests succeeded and every socket received every
    /// acknowledged reply of its rooms once, in order.
    #[arg(long)]
    pub check: bool,
    /// Seed of the users' random choices (runs with one seed pick the same rooms).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl Args {
    /// Sockets this run opens.
    pub fn socket_count(&self) -> usize {
        self.sockets.unwrap_or_else(|| self.users * self.mix.ws as usize / self.mix.total().max(1) as usize)
    }

    /// HTTP virtual users (the users that are not the mix's sockets).
    pub fn http_users(&self) -> usize {
        let by_share = self.users * self.mix.ws as usize / self.mix.total().max(1) as usize;
        self.users.saturating_sub(by_share).max(usize::from(self.mix.http_total() > 0))
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limits {
    Lifted,
    Default,
    Unknown,
}

/// Weights of the kinds of work.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Mix {
    pub lists: u32,
    pub posts: u32,
    pub wiki: u32,
    pub topic: u32,
    pub ws: u32,
}

impl Mix {
    pub fn total(&self) -> u32 {
        self.http_total() + self.ws
    }

    pub fn http_total(&self) -> u32 {
        self.lists + self.posts + self.wiki + self.topic
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut mix = Mix { lists: 0, posts: 0, wiki: 0, topic: 0, ws: 0 };
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').ok_or(format!("`{part}` is not name=weight"))?;
            let weight: u32 = weight.trim().parse().map_err(|_| format!("`{weight}` is not a whole number"))?;
            match name.trim() {
                "lists" => mix.lists = weight,
                "posts" => mix.posts = weight,
                "wiki" => mix.wiki = weight,
                "topic" => mix.topic = weight,
                "ws" => mix.ws = weight,
                other => return Err(format!("unknown kind `{other}` (lists, posts, wiki, topic, ws)")),
            }
        }
        if mix.total() == 0 {
            return Err("the mix is empty".into());
        }
        Ok(mix)
    }
}

/// Which topics the users aim at.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topics {
    Uniform,
    Hot(usize),
}

impl FromStr for Topics {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "uniform" => Ok(Topics::Uniform),
            Some(("hot", n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Topics::Hot(n)),
                _ => Err(format!("hot:N needs a positive N, got `{n}`")),
            },
            _ => Err(format!("`{s}` is neither `uniform` nor `hot:N`")),
        }
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_mix_is_the_seeds() {
        let args = Args::parse_from(["veritable-load", "--database-url", "postgres://x"]);
        assert_eq!((args.mix.lists, args.mix.posts, args.mix.wiki, args.mix.ws), (40, 30, 20, 10));
        assert_eq!((args.http_users(), args.socket_count()), (90, 10));
    }

    #[test]
    fn bad_mixes_and_targets_are_refused() {
        assert!("lists=4,likes=1".parse::<Mix>().is_err());
        assert!("lists=x".parse::<Mix>().is_err());
        assert!("ws=0".parse::<Mix>().is_err());
        assert!("hot:0".parse::<Topics>().is_err());
        assert!(matches!("hot:20".parse::<Topics>(), Ok(Topics::Hot(20))));
    }

    #[test]
    fn sockets_can_be_set_apart_from_users() {
        let args = Args::parse_from([
            "veritable-load",
            "--database-url",
            "postgres://x",
            "--users",
            "5000",
            "--sockets",
            "10000",
        ]);
        assert_eq!((args.http_users(), args.socket_count()), (4500, 10000));
    }
}
