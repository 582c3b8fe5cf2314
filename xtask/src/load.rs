//! `cargo xtask load`: the front door of veritable-load. It starts a proxy on
//! a seeded database of the private cluster (limits lifted unless asked
//! otherwise), runs the tool against it with the proxy's pid for the
//! resource figures, and stops the proxy. The test suite's smoke run goes
//! through the same code.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::cluster::Cluster;
use crate::run::{self, Profile};

/// The proxy's limits that the load would otherwise meet as 429s.
const LIFTED: &[(&str, &str)] = &[
    ("VERITABLE_LOGIN_PER_IP", "100000000"),
    ("VERITABLE_LOGIN_PER_ACCOUNT", "100000000"),
    ("VERITABLE_POSTS_PER_MINUTE", "100000000"),
];

/// A proxy started for a load run, stopped (SIGTERM, then waited for) on drop.
pub struct ProxyUnderTest {
    child: Child,
    pub addr: String,
}

impl ProxyUnderTest {
    pub fn start(
        profile: Profile,
        database_url: &str,
        lift_limits: bool,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = (18080..18180)
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .context("no free port in 18080-18179 for the proxy")?;
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(run::target_dir().join(profile.name()).join("veritable-proxy"));
        cmd.args(["serve", "--addr", &addr]).env("DATABASE_URL", database_url).env("RUST_LOG", "warn");
        if lift_limits {
            cmd.envs(LIFTED.iter().copied());
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        eprintln!("    $ {}", run::describe(&cmd));
        let child = cmd.spawn().context("starting veritable-proxy")?;
        let proxy = Self { child, addr };
        // The proxy listens once it has checked the schema; it is ready when it accepts.
        let until = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(&proxy.addr).is_err() {
            if Instant::now() > until {
                bail!("veritable-proxy did not listen on {} within 60 s", proxy.addr);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(proxy)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ProxyUnderTest {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The tool's command line against `proxy`; callers add the run's own flags.
pub fn tool(profile: Profile, proxy: &ProxyUnderTest, database_url: &str, lifted: bool, db: &str) -> Command {
    let mut cmd = Command::new(run::target_dir().join(profile.name()).join("veritable-load"));
    cmd.args(["--target", &format!("http://{}", proxy.addr), "--database-url", database_url])
        .args(["--proxy-pid", &proxy.pid().to_string()])
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

pub fn build(profile: Profile) -> anyhow::Result<()> {
    let mut cmd = run::cargo();
    cmd.args(["build", "-p", "veritable-proxy", "-p", "veritable-load"]);
    if let Profile::Release = profile {
        cmd.arg("--release");
    }
    run::status(&mut cmd)
}

/// `cargo xtask load --scale S [--keep-limits] [--proxy-env K=V]... -- TOOL ARGS`.
pub fn load(scale: &str, keep_limits: bool, proxy_env: &[String], args: &[String]) -> anyhow::Result<()> {
    let cluster = Cluster::locate()?;
    cluster.ensure_running()?;
    let db = format!("veritable_{scale}");
    let exists = cluster.superuser("postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"))?;
    if exists.trim() != "1" {
        bail!("database {db} is missing: run `cargo xtask seed {scale}` first");
    }
    let url = cluster.database_url(&db);
    build(Profile::Release)?;
    run::proxy(Profile::Release, &["migrate"], &url)?;
    let env = proxy_env
        .iter()
        .map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).context("--proxy-env takes KEY=VALUE"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let proxy = ProxyUnderTest::start(Profile::Release, &url, !keep_limits, &env)?;
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
