//! An haproxy (Debian's) in front of several proxies, for the fault run that
//! kills one of them: round robin, health-checked on `/healthz` every 250 ms,
//! a failed connection sent to another server (`option redispatch`).
//! WebSockets pass through it as tunnels. Stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::run;

const BINARY: &str = "/usr/sbin/haproxy";

pub struct Haproxy {
    child: Child,
    host: String,
    port: u16,
}

impl Haproxy {
    /// Balances over `backends` (`127.0.0.1:PORT` each), on a free port.
    pub fn start(backends: &[&str]) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::start_on("127.0.0.1", port, backends)
    }

    /// The same on `host:port`.
    pub fn start_on(host: &str, port: u16, backends: &[&str]) -> anyhow::Result<Self> {
        if !Path::new(BINARY).exists() {
            bail!("{BINARY} is missing: install the Debian package haproxy");
        }
        let servers: String =
            backends.iter().enumerate().map(|(n, addr)| format!("    server proxy{n} {addr} check\n")).collect();
        let config = format!(
            "global\n    maxconn 8000\n\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 60s\n    timeout server 60s\n\
             \x20   timeout tunnel 1h\n    timeout http-keep-alive 5s\n    retries 3\n    option redispatch 1\n\n\
             frontend clients\n    bind {host}:{port}\n    default_backend proxies\n\n\
             backend proxies\n    balance roundrobin\n    option httpchk GET /healthz\n\
             \x20   default-server inter 250ms fall 2 rise 2\n{servers}"
        );
        let dir = run::target_dir().join("haproxy");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("haproxy-{port}.cfg"));
        std::fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
        let log = std::fs::File::create(dir.join(format!("haproxy-{port}.log")))?;
        let mut cmd = Command::new(BINARY);
        cmd.args(["-db", "-f"]).arg(&path).stdout(Stdio::from(log.try_clone()?)).stderr(Stdio::from(log));
        eprintln!("    $ {}", run::describe(&cmd));
        let child = cmd.spawn().context("starting haproxy")?;
        let balancer = Self { child, host: host.to_owned(), port };
        run::until(
            &format!("haproxy to listen on {} (see {})", balancer.addr(), dir.display()),
            Duration::from_secs(10),
            Duration::from_millis(20),
            || Ok(TcpStream::connect(balancer.addr()).is_ok()),
        )?;
        Ok(balancer)
    }

    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
