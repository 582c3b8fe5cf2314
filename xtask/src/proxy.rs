//! A veritable-proxy started for a suite or a load run: on a free port of
//! 127.0.0.1, optionally with the per-user and per-address limits lifted,
//! ready once it accepts connections, stopped (SIGTERM, then waited for) on drop.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::run;

/// The limits a fuzzer or a load test would otherwise meet as 429s: every
/// client comes from 127.0.0.1, so the per-address limits (logins, sockets)
/// would count them all as one. Their own tests cover them.
const LIFTED: &[(&str, &str)] = &[
    ("VERITABLE_LOGIN_PER_IP", "100000000"),
    ("VERITABLE_LOGIN_PER_ACCOUNT", "100000000"),
    ("VERITABLE_POSTS_PER_MINUTE", "100000000"),
    ("VERITABLE_WRITES_PER_MINUTE", "100000000"),
    ("VERITABLE_REGISTRATIONS_PER_HOUR", "100000000"),
    ("VERITABLE_WS_PER_IP", "100000"),
];

pub struct ProxyUnderTest {
    child: Child,
    pub addr: String,
}

impl ProxyUnderTest {
    /// `binary` serves (a build's `veritable-proxy`, or another one to compare with).
    pub fn start(
        binary: &Path,
        database_url: &str,
        lift_limits: bool,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::start_on(&format!("127.0.0.1:{port}"), binary, database_url, lift_limits, env)
    }

    /// The same on a given address (a proxy restarted where a balancer expects it).
    pub fn start_on(
        addr: &str,
        binary: &Path,
        database_url: &str,
        lift_limits: bool,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let addr = addr.to_owned();
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--addr", &addr]).env("DATABASE_URL", database_url).env("RUST_LOG", "warn,deadpool=error");
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
        // SIGTERM: the proxy drains and exits; kill() would be SIGKILL.
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let _ = self.child.wait();
    }
}
