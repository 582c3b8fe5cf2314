//! `cargo xtask`: the project's two commands (`up`, `test`) and their helpers.
//!
//! Everything a fresh Debian 12 machine lacks is installed here (Debian
//! packages, cargo-pgrx), so `cargo xtask test` passes from nothing.

mod browser;
mod cluster;
mod faults;
mod haproxy;
mod kit;
mod load;
mod pgbouncer;
mod prereqs;
mod proxy;
mod run;
mod schemathesis;
mod suites;
mod topology;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cluster::Cluster;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Run, test and manage veritable's private PostgreSQL cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install what is missing, build, start the private cluster, migrate, load demo data and serve.
    Up {
        /// Proxies to run; more than one are served behind haproxy at VERITABLE_ADDR.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
        proxies: u16,
        /// Streaming replicas of the private cluster for the proxies' reads.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=cluster::MAX_REPLICAS as i64))]
        replicas: u16,
    },
    /// The same setup, then every test suite; exits non-zero on any failure.
    Test,
    /// Stop the private cluster.
    Down,
    /// Run psql on the private cluster's `veritable` database (extra arguments go to psql).
    Psql {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print DATABASE_URL for the private cluster.
    Env,
    /// Drop the `veritable` database, so the next `up` migrates and seeds it afresh.
    Reset,
    /// Load a seed scale into its own database `veritable_<scale>` (for benchmarks).
    Seed {
        #[arg(value_enum)]
        scale: Scale,
    },
    /// Run veritable-load against a release proxy on `veritable_<scale>`
    /// (seeded with `seed`); arguments after `--` go to the tool (see its --help).
    Load {
        #[arg(long, value_enum, default_value = "default")]
        scale: Scale,
        /// Run on this database of the cluster instead of `veritable_<scale>`.
        #[arg(long)]
        database: Option<String>,
        /// Serve with this proxy binary instead of this tree's release build
        /// (an earlier build, for a side-by-side run); it migrates its database.
        #[arg(long)]
        proxy_bin: Option<std::path::PathBuf>,
        /// Keep the proxy's login and posting limits (429s then appear in the table).
        #[arg(long)]
        keep_limits: bool,
        /// Extra proxy settings, e.g. `--proxy-env VERITABLE_MAX_CONNECTIONS=16000`.
        #[arg(long)]
        proxy_env: Vec<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The web page's tests in Chromium (playwright-core) on a database of
    /// their own, as `cargo xtask test` runs them; with `--release`, the
    /// page budgets of BENCHMARKS.md (written to target/browser/budgets.json).
    Browser {
        #[arg(long)]
        release: bool,
    },
    /// Checks the operator's kit (docker/, deploy/kubernetes/) with promtool,
    /// kubernetes-validate and haproxy, installing the tools when missing
    /// (`cargo xtask test` runs the same).
    Kit,
    /// Fault runs (RELIABILITY.md): a write load through a release proxy on
    /// `veritable_<scale>` with WebSocket readers, one fault in the middle,
    /// repeated; a Markdown table on stdout, non-zero exit if any run failed.
    Faults {
        #[arg(value_enum)]
        fault: faults::Fault,
        #[arg(long, default_value_t = 10)]
        runs: u32,
        #[arg(long, value_enum, default_value = "default")]
        scale: Scale,
        /// Run on this database of the cluster instead of `veritable_<scale>`.
        #[arg(long)]
        database: Option<String>,
        /// The debug build instead of the release one (as `cargo xtask test` runs them).
        #[arg(long)]
        debug: bool,
        /// Seconds of load in each run.
        #[arg(long, default_value_t = 30)]
        secs: u64,
        /// Seconds into the load when the fault starts.
        #[arg(long, default_value_t = 6.0)]
        at: f64,
        /// Seconds the fault lasts (default: 4 for pg-kill and terminate, 8
        /// for lock, 2 for pgbouncer-restart, 0.15 for each stall).
        #[arg(long)]
        down: Option<f64>,
        #[arg(long, default_value_t = 36)]
        users: u32,
        #[arg(long, default_value_t = 4)]
        sockets: u32,
        /// Posts per second, open model, for the stall fault (default: 1,200,
        /// the posts of the soak's 4,000 req/s; 200 with `--debug`).
        #[arg(long)]
        rate: Option<f64>,
        /// Another proxy binary than this tree's build (an earlier build, to
        /// compare side by side).
        #[arg(long)]
        proxy_bin: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scale {
    Small,
    Medium,
    Default,
    Large,
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Small => "small",
            Scale::Medium => "medium",
            Scale::Default => "default",
            Scale::Large => "large",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Up { proxies, replicas } => up(proxies, replicas),
        Command::Test => suites::test(),
        Command::Down => Cluster::locate().and_then(|c| down(&c)),
        Command::Psql { args } => psql(&args),
        Command::Env => Cluster::locate().map(|c| println!("DATABASE_URL={}", c.database_url(cluster::DEV_DB))),
        Command::Reset => reset(),
        Command::Seed { scale } => seed(scale),
        Command::Kit => kit::ensure_installed().and_then(|()| kit::run()),
        Command::Browser { release } => {
            browser::standalone(if release { run::Profile::Release } else { run::Profile::Debug })
        }
        Command::Faults { fault, runs, scale, database, debug, secs, at, down, users, sockets, rate, proxy_bin } => {
            faults::bench(
                fault,
                runs,
                &faults::Plan {
                    profile: if debug { run::Profile::Debug } else { run::Profile::Release },
                    db: database.unwrap_or_else(|| format!("veritable_{}", scale.name())),
                    secs,
                    at,
                    down,
                    users,
                    sockets,
                    rate,
                    proxy_bin,
                },
            )
        }
        Command::Load { scale, database, proxy_bin, keep_limits, proxy_env, args } => load::load(
            &load::Setup {
                scale: scale.name(),
                database: database.as_deref(),
                proxy_bin: proxy_bin.as_deref(),
                keep_limits,
                proxy_env: &proxy_env,
            },
            &args,
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nxtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything `up` and `test` share: prerequisites, the extension, the proxy
/// binary, and a running private cluster.
fn prepare(steps: &mut run::Steps, profile: run::Profile) -> anyhow::Result<Cluster> {
    steps.step("checking prerequisites (Debian packages, cargo-pgrx)", prereqs::ensure)?;
    let cluster = Cluster::locate()?;
    steps.step("building and installing the extension (cargo pgrx install --release)", || {
        cluster.while_stopped(prereqs::install_extension)
    })?;
    steps.step(&format!("building veritable-proxy ({})", profile.name()), || {
        run::build(profile, &["veritable-proxy"])
    })?;
    steps.step(&format!("starting the private cluster on port {}", cluster.port), || cluster.ensure_running())?;
    steps.step("creating the role and the database", || cluster.ensure_database(cluster::DEV_DB))?;
    steps.step("migrating and loading demo data (small)", || {
        let url = cluster.database_url(cluster::DEV_DB);
        run::proxy(profile, &["migrate"], &url)?;
        run::proxy(profile, &["seed", "--scale", "small", "--if-empty"], &url)
    })?;
    Ok(cluster)
}

fn up(proxies: u16, replicas: u16) -> anyhow::Result<()> {
    let profile = run::Profile::Release;
    let cluster = prepare(&mut run::Steps::new(), profile)?;
    let url = cluster.database_url(cluster::DEV_DB);
    let addr = std::env::var("VERITABLE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let mut replica_urls = Vec::new();
    for n in 1..=replicas {
        let replica = cluster.replica(n);
        eprintln!("==> starting replica {n} on port {}", replica.port);
        replica.ensure_replica_of(&cluster)?;
        replica_urls.push(replica.database_url(cluster::DEV_DB));
    }
    eprintln!("\nveritable is starting on http://{addr}  (Ctrl-C stops it; `cargo xtask down` stops PostgreSQL)");
    eprintln!("  curl http://{addr}/healthz");
    eprintln!("  curl http://{addr}/metrics");
    eprintln!("  cargo xtask psql -c 'SELECT veritable.version()'");
    eprintln!("  DATABASE_URL={url}");
    if proxies == 1 && replicas == 0 {
        eprintln!();
        return run::exec_proxy(profile, &["serve", "--addr", &addr], &url);
    }
    eprintln!("  VERITABLE_REPLICA_URLS={}\n", replica_urls.join(","));
    topology::serve(&topology::Shape { addr: &addr, proxies, url: &url, replica_urls: &replica_urls, profile })
}

/// Stops the replicas that run, then the primary.
fn down(cluster: &Cluster) -> anyhow::Result<()> {
    for n in 1..=cluster::MAX_REPLICAS {
        let replica = cluster.replica(n);
        if replica.is_running() {
            replica.stop()?;
        }
    }
    cluster.stop()
}

fn psql(args: &[String]) -> anyhow::Result<()> {
    let cluster = Cluster::locate()?;
    cluster.ensure_running()?;
    cluster.psql(cluster::DEV_DB, args)
}

fn reset() -> anyhow::Result<()> {
    let cluster = Cluster::locate()?;
    cluster.ensure_running()?;
    cluster.drop_database(cluster::DEV_DB)?;
    eprintln!("dropped database {}; `cargo xtask up` creates it again", cluster::DEV_DB);
    Ok(())
}

fn seed(scale: Scale) -> anyhow::Result<()> {
    let cluster = prepare(&mut run::Steps::new(), run::Profile::Release)?;
    let db = format!("veritable_{}", scale.name());
    cluster.drop_database(&db)?;
    cluster.ensure_database(&db)?;
    let url = cluster.database_url(&db);
    run::proxy(run::Profile::Release, &["migrate"], &url)?;
    run::proxy(run::Profile::Release, &["seed", "--scale", scale.name()], &url)?;
    cluster.analyze(&db)?;
    println!("DATABASE_URL={url}");
    Ok(())
}
