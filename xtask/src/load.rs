//! `cargo xtask load`: the front door of veritable-load. It starts a proxy on
//! a seeded database of the private cluster (limits lifted unless asked
//! otherwise), runs the tool against it with the proxy's pid for the
//! resource figures, and stops the proxy. The test suite's smoke run
//! (`smoke`) goes through the same code.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::cluster::Cluster;
use crate::proxy::ProxyUnderTest;
use crate::run::{self, Profile};

/// The tool's command line against `proxy`; callers add the run's own flags.
pub fn tool(profile: Profile, proxy: &ProxyUnderTest, database_url: &str, lifted: bool, db: &str) -> Command {
    tool_for(profile, &proxy.addr, proxy.pid(), database_url, lifted, db)
}

/// The tool's command line against whatever listens on `addr` (a proxy, or a
/// load balancer in front of proxies), sampling the proxy process `pid`.
pub fn tool_for(profile: Profile, addr: &str, pid: u32, database_url: &str, lifted: bool, db: &str) -> Command {
    let mut cmd = Command::new(run::target_dir().join(profile.name()).join("veritable-load"));
    cmd.args(["--target", &format!("http://{addr}"), "--database-url", database_url])
        .args(["--proxy-pid", &pid.to_string()])
        .args(["--limits", if lifted { "lifted" } else { "default" }])
        .arg("--sessions")
        .arg(sessions_file(db))
        .arg("--out")
        .arg(run::target_dir().join("load"));
    cmd
}

fn sessions_file(db: &str) -> PathBuf {
    run::target_dir().join("load").join(format!("sessions-{db}.json"))
}

/// The two binaries a load run needs.
pub const BINARIES: &[&str] = &["veritable-proxy", "veritable-load"];

/// What `cargo xtask load` runs against.
pub struct Setup<'a> {
    pub scale: &'a str,
    /// Another database of the cluster than `veritable_<scale>` (a copy, say).
    pub database: Option<&'a str>,
    /// Another proxy binary than this tree's release build (an earlier
    /// build, to compare side by side); it migrates its database itself.
    pub proxy_bin: Option<&'a Path>,
    pub keep_limits: bool,
    pub proxy_env: &'a [String],
}

/// `cargo xtask load --scale S [--database D] [--proxy-bin P] [--keep-limits] [--proxy-env K=V]... -- TOOL ARGS`.
pub fn load(setup: &Setup<'_>, args: &[String]) -> anyhow::Result<()> {
    let Setup { scale, database, proxy_bin, keep_limits, proxy_env } = *setup;
    let cluster = Cluster::locate()?;
    cluster.ensure_running()?;
    let db = database.map_or_else(|| format!("veritable_{scale}"), str::to_owned);
    if !cluster.has_database(&db)? {
        bail!("database {db} is missing: run `cargo xtask seed {scale}` first (or copy it)");
    }
    let url = cluster.database_url(&db);
    run::build(Profile::Release, BINARIES)?;
    let binary = proxy_bin.map_or_else(|| Profile::Release.proxy_binary(), Path::to_path_buf);
    run::status(Command::new(&binary).arg("migrate").env("DATABASE_URL", &url))?;
    let env = proxy_env
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).context("--proxy-env takes KEY=VALUE"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let proxy = ProxyUnderTest::start(&binary, &url, !keep_limits, &env)?;
    let mut cmd = tool(Profile::Release, &proxy, &url, !keep_limits, &db);
    cmd.args(args);
    eprintln!("    $ {}", run::describe(&cmd));
    let status = cmd.status().context("starting veritable-load")?;
    drop(proxy);
    if !status.success() {
        bail!("veritable-load exited with {status}");
    }
    Ok(())
}

/// The test suite's run: 10 s on the test database's small data, a hot set
/// of topics so the sockets are owed events; passes on a non-empty table and
/// 0 missed, repeated or reordered events (never on a speed).
pub fn smoke(database_url: &str, db: &str) -> anyhow::Result<bool> {
    let proxy = ProxyUnderTest::start(&Profile::Debug.proxy_binary(), database_url, true, &[])?;
    let label = "ci-smoke";
    let mut cmd = tool(Profile::Debug, &proxy, database_url, true, db);
    cmd.args(["--duration", "10s", "--users", "12", "--sockets", "3", "--topics", "hot:4", "--rooms-per-socket", "2"])
        .args(["--label", label, "--check"]);
    eprintln!("    $ {}", run::describe(&cmd));
    let status = cmd.status().context("starting veritable-load")?;
    drop(proxy);
    let path = run::target_dir().join("load").join(format!("{label}.json"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)?;
    let kinds = report["endpoints"].as_array().map_or(0, Vec::len);
    let ok = report["ok"].as_u64().unwrap_or(0);
    let owed = report["delivery"]["expected"].as_u64().unwrap_or(0);
    let missed = report["delivery"]["missed"].as_u64();
    eprintln!("    {ok} answered 2xx over {kinds} kinds of request; sockets owed {owed} events, missed {missed:?}");
    Ok(status.success() && kinds == 3 && ok > 0 && owed > 0 && missed == Some(0))
}
