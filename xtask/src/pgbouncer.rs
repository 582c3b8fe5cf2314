//! A pgbouncer 1.18 (Debian's) in transaction pool mode in front of the
//! private cluster, for the pgbouncer suite: the API tests run again with the
//! proxy connecting through it in pgbouncer mode.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cluster::{Cluster, as_owner};
use crate::run;

const BINARY: &str = "/usr/sbin/pgbouncer";
/// `VERITABLE_PGBOUNCER_PORT`, else the first free port from 26432, below the
/// kernel's ephemeral range (32768–60999): a port inside it can be taken by
/// any client socket as its own end. One run failed because 54330 (the
/// cluster's port + 1) was held that way, and a fault run's pgbouncer, killed
/// and started again on the same port while the proxy kept reconnecting,
/// found it taken by one of the proxy's own connections.
fn port() -> u16 {
    if let Some(port) = std::env::var("VERITABLE_PGBOUNCER_PORT").ok().and_then(|p| p.parse().ok()) {
        return port;
    }
    (FIRST_PORT..FIRST_PORT + 50)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or(FIRST_PORT)
}

const FIRST_PORT: u16 = 26432;

/// A running pgbouncer, stopped on drop.
pub struct Pgbouncer {
    pub port: u16,
    pidfile: PathBuf,
    config: PathBuf,
}

impl Pgbouncer {
    pub fn start(cluster: &Cluster) -> anyhow::Result<Self> {
        if !Path::new(BINARY).exists() {
            bail!("{BINARY} is missing: install the Debian package pgbouncer");
        }
        let dir = cluster.owned_dir("pgbouncer")?;
        let port = port();
        let pidfile = dir.join("pgbouncer.pid");
        let userlist = dir.join("userlist.txt");
        let config = dir.join("pgbouncer.ini");
        std::fs::write(&userlist, "\"veritable\" \"\"\n\"postgres\" \"\"\n")?;
        std::fs::write(
            &config,
            format!(
                "[databases]\n* = host=127.0.0.1 port={cluster_port}\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {userlist}\npool_mode = transaction\n\
                 max_client_conn = 2000\ndefault_pool_size = 20\n\
                 ignore_startup_parameters = extra_float_digits,options\n\
                 server_reset_query =\nlogfile = {log}\npidfile = {pid}\n",
                cluster_port = cluster.port,
                userlist = userlist.display(),
                log = dir.join("pgbouncer.log").display(),
                pid = pidfile.display(),
            ),
        )?;
        if run::is_root() {
            run::output(std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir))?;
        }
        let bouncer = Self { port, pidfile, config };
        bouncer.stop_leftover();
        bouncer.launch()?;
        eprintln!("    pgbouncer (transaction mode) on 127.0.0.1:{port} → 127.0.0.1:{}", cluster.port);
        Ok(bouncer)
    }

    /// Starts the daemon and waits until it listens.
    fn launch(&self) -> anyhow::Result<()> {
        run::status(as_owner(Path::new(BINARY)).arg("-d").arg(&self.config)).context("cannot start pgbouncer")?;
        run::until(
            &format!("pgbouncer to listen on 127.0.0.1:{} (see its log)", self.port),
            Duration::from_secs(10),
            Duration::from_millis(20),
            || Ok(TcpStream::connect(("127.0.0.1", self.port)).is_ok()),
        )
    }

    /// `kill -9` (a crash, for the fault runs); `start_again` brings it back.
    pub fn kill9(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
            let _ = std::fs::remove_file(&self.pidfile);
        }
    }

    /// Starts it again on the same port with the same settings.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.launch()
    }

    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(&self.pidfile).ok().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty())
    }

    /// A pgbouncer left by an interrupted run would hold the port.
    fn stop_leftover(&self) {
        if let Some(pid) = self.pid() {
            let _ = std::process::Command::new("kill").arg(&pid).status();
            let _ = std::fs::remove_file(&self.pidfile);
        }
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        self.stop_leftover();
    }
}
