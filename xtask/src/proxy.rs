//! A veritable-proxy started for a suite or a load run: on a free port of
//! 127.0.0.1, optionally with the per-user and per-address limits lifted,
//! ready once it accepts connections, stopped (SIGTERM, then waited for) on drop.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Context;

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
        run::until(
            &format!("veritable-proxy to listen on {}", proxy.addr),
            Duration::from_secs(60),
            Duration::from_millis(100),
            || Ok(TcpStream::connect(&proxy.addr).is_ok()),
        )?;
        Ok(proxy)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The value of metric `name` (a full series name with its labels, or a
    /// bare name: every series of it summed), from `/metrics`; None when the
    /// proxy does not answer or does not export it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(&self.addr).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET /metrics HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let values: Vec<f64> = text
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || (!name.contains('{') && rest.starts_with('{')))
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse().ok())
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// Waits for the proxy to exit by itself (Ctrl-C, a signal).
    pub fn wait(&mut self) -> anyhow::Result<()> {
        let status = self.child.wait()?;
        anyhow::ensure!(status.success(), "veritable-proxy on {} exited: {status}", self.addr);
        Ok(())
    }
}

impl Drop for ProxyUnderTest {
    fn drop(&mut self) {
        // SIGTERM: the proxy drains and exits; kill() would be SIGKILL.
        let _ = Command::new("kill").arg(self.pid().to_string()).status();
        let _ = self.child.wait();
    }
}
