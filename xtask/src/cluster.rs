//! The private PostgreSQL cluster under `target/pg`: its own port and socket
//! directory, never the system cluster on 5432. As root, initdb and pg_ctl run
//! as the `postgres` user (PostgreSQL refuses to run as root).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::prereqs::PG_BIN;
use crate::run;

pub const DEV_DB: &str = "veritable";
pub const ROLE: &str = "veritable";
const DEFAULT_PORT: u16 = 54329;
const REPLICA_PORTS: u16 = 25432;
/// Replicas `cargo xtask up --replicas` starts at most.
pub const MAX_REPLICAS: u16 = 3;

/// PostgreSQL settings for veritable's workload, shared with the Docker image.
const WORKLOAD_SETTINGS: &str = include_str!("../../docker/postgres/veritable.conf");

pub struct Cluster {
    base: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
    log: PathBuf,
    pub port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    Path::new(PG_BIN).join(name)
}

/// A command that runs as the cluster's owner: `postgres` when we are root.
pub fn as_owner(program: &Path) -> Command {
    if run::is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn postgres_can_reach(dir: &Path) -> bool {
    !run::is_root()
        || Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-x"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
}

impl Cluster {
    pub fn locate() -> anyhow::Result<Self> {
        let port = match std::env::var("VERITABLE_PG_PORT") {
            Ok(p) => p.parse().with_context(|| format!("VERITABLE_PG_PORT={p} is not a port number"))?,
            Err(_) => DEFAULT_PORT,
        };
        let target = run::target_dir();
        std::fs::create_dir_all(&target).with_context(|| format!("cannot create {}", target.display()))?;
        let mut base = target.join("pg");
        if !postgres_can_reach(&target) {
            // A checkout under a private (0700) directory: the postgres user
            // cannot reach target/, so keep the cluster where it can.
            let mut hasher = DefaultHasher::new();
            run::root().hash(&mut hasher);
            base = PathBuf::from(format!("/var/tmp/veritable-pg-{:016x}", hasher.finish()));
            eprintln!(
                "    the postgres user cannot reach {}; the cluster lives in {}",
                target.display(),
                base.display()
            );
        }
        Ok(Self { data: base.join("data"), sockets: base.join("run"), log: base.join("postgres.log"), base, port })
    }

    /// A fresh, owner-writable parent for `cargo pgrx test --pgdata`: the
    /// postgres user must be able to create the data directory itself.
    /// A directory under the cluster's base that the postgres user owns
    /// (for pgbouncer's files).
    pub fn owned_dir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = self.base.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if run::is_root() {
            run::output(Command::new("chown").args(["postgres:postgres"]).arg(&dir))?;
        }
        Ok(dir)
    }

    pub fn pgrx_test_data(&self) -> anyhow::Result<PathBuf> {
        let parent = self.base.join("pgrx-test");
        std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
        if run::is_root() {
            run::output(Command::new("chown").args(["postgres:postgres"]).arg(&self.base).arg(&parent))?;
        }
        Ok(parent.join("data"))
    }

    /// Streaming replica `n` (from 1) of this cluster, under the cluster's
    /// base, on port 25432 + n: below the kernel's ephemeral range, so a
    /// replica stopped and started again finds its port free (see pgbouncer.rs).
    pub fn replica(&self, n: u16) -> Self {
        let base = self.base.join(format!("replica{n}"));
        Self {
            data: base.join("data"),
            sockets: base.join("run"),
            log: base.join("postgres.log"),
            base,
            port: REPLICA_PORTS + n,
        }
    }

    /// The physical replication slot that keeps the primary's WAL for this
    /// replica while it is stopped (bounded by `max_slot_wal_keep_size`).
    fn slot(&self) -> String {
        format!("veritable_{}", self.base.file_name().and_then(|n| n.to_str()).unwrap_or("replica"))
    }

    /// Drops this replica's slot on `primary`, if it has one.
    fn drop_slot(&self, primary: &Cluster) -> anyhow::Result<()> {
        let sql = format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{}'",
            self.slot()
        );
        primary.superuser("postgres", &sql).map(drop)
    }

    /// Makes this cluster a streaming replica of `primary` if it is not
    /// one yet (`pg_basebackup -R -C`: a copy of the primary that follows
    /// its WAL through a replication slot), and starts it.
    pub fn ensure_replica_of(&self, primary: &Cluster) -> anyhow::Result<()> {
        if !self.initialized() {
            self.drop_slot(primary)?;
            std::fs::create_dir_all(&self.sockets)
                .with_context(|| format!("cannot create {}", self.sockets.display()))?;
            if run::is_root() {
                run::status(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.base))?;
            }
            run::status(
                as_owner(&pg_bin("pg_basebackup")).arg("-D").arg(&self.data).arg("-h").arg(&primary.sockets).args([
                    "-p",
                    &primary.port.to_string(),
                    "-U",
                    "postgres",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "-R",
                    "-C",
                    "-S",
                    &self.slot(),
                ]),
            )
            .context("pg_basebackup failed")?;
        }
        self.ensure_running()
    }

    /// Forgets a replica of `primary`: stopped at once, its directory and
    /// its slot removed (after a promotion it no longer follows the
    /// primary; the next `ensure_replica_of` copies the primary afresh).
    pub fn remove(&self, primary: &Cluster) -> anyhow::Result<()> {
        if self.is_running() {
            run::status(as_owner(&pg_bin("pg_ctl")).arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]))?;
        }
        if self.base.exists() {
            std::fs::remove_dir_all(&self.base).with_context(|| format!("cannot remove {}", self.base.display()))?;
        }
        self.drop_slot(primary)
    }

    /// Whether this cluster's server is a standby (in recovery).
    pub fn in_recovery(&self) -> anyhow::Result<bool> {
        Ok(self.superuser("postgres", "SELECT pg_is_in_recovery()")?.trim() == "t")
    }

    /// The superuser over TCP (the private cluster trusts 127.0.0.1).
    pub fn superuser_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn database_url(&self, db: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{db}", self.port)
    }

    fn initialized(&self) -> bool {
        self.data.join("PG_VERSION").exists()
    }

    pub fn is_running(&self) -> bool {
        self.initialized()
            && as_owner(&pg_bin("pg_ctl"))
                .arg("status")
                .arg("-D")
                .arg(&self.data)
                .output()
                .is_ok_and(|o| o.status.success())
    }

    fn init(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.sockets).with_context(|| format!("cannot create {}", self.sockets.display()))?;
        if run::is_root() {
            run::status(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&self.base))?;
        }
        run::status(as_owner(&pg_bin("initdb")).arg("-D").arg(&self.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
        ]))
        .context("initdb failed")?;
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).with_context(|| format!("cannot read {}", conf.display()))?;
        text.push_str("\n# veritable's settings, rewritten by `cargo xtask` at every start\ninclude_if_exists = 'veritable.conf'\n");
        std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))
    }

    /// Our settings, rewritten at every start so changes here take effect:
    /// where this cluster listens, then the workload's settings that
    /// deployments use too (`docker/postgres/veritable.conf`, with why).
    fn write_settings(&self) -> anyhow::Result<()> {
        let settings = format!(
            "# Written by cargo xtask; edit xtask/src/cluster.rs and docker/postgres/veritable.conf instead.\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{sockets}'\n\n\
             {workload}",
            port = self.port,
            sockets = self.sockets.display(),
            workload = WORKLOAD_SETTINGS,
        );
        let path = self.data.join("veritable.conf");
        std::fs::write(&path, settings).with_context(|| format!("cannot write {}", path.display()))?;
        if run::is_root() {
            run::output(
                Command::new("chown").arg("postgres:postgres").arg(&path).arg(self.data.join("postgresql.conf")),
            )?;
        }
        Ok(())
    }

    pub fn ensure_running(&self) -> anyhow::Result<()> {
        if !self.initialized() {
            self.init()?;
        }
        if self.is_running() {
            eprintln!("    already running ({})", self.data.display());
            return Ok(());
        }
        self.write_settings()?;
        let started = run::status(
            as_owner(&pg_bin("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "start"]),
        );
        if let Err(error) = started {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
            bail!("{error:#}\nlast lines of {}:\n{}", self.log.display(), tail.join("\n"));
        }
        Ok(())
    }

    /// `kill -9` of the postmaster and every backend (a crash, for the fault
    /// runs), returning once they are gone; `ensure_running` starts it again.
    pub fn kill9(&self) -> anyhow::Result<()> {
        let pids = self.processes()?;
        // Some may end by themselves meanwhile (kill then says so and fails): what counts is below.
        let _ = Command::new("kill").arg("-9").args(&pids).stderr(std::process::Stdio::null()).status();
        // Gone: no such process, or a zombie waiting for init to reap it.
        let alive = |pid: &String| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        };
        run::until(
            "PostgreSQL's processes to end after kill -9",
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis(20),
            || Ok(!pids.iter().any(alive)),
        )
    }

    /// The postmaster and its children, postmaster last.
    fn processes(&self) -> anyhow::Result<Vec<String>> {
        let pidfile = self.data.join("postmaster.pid");
        let text = std::fs::read_to_string(&pidfile).with_context(|| format!("cannot read {}", pidfile.display()))?;
        let postmaster = text.lines().next().map(str::trim).context("an empty postmaster.pid")?.to_owned();
        let children = run::output(Command::new("pgrep").args(["-P", &postmaster])).unwrap_or_default();
        let mut pids: Vec<String> = children.split_whitespace().map(str::to_owned).collect();
        pids.push(postmaster);
        Ok(pids)
    }

    /// Every process of the cluster stopped (SIGSTOP) for `how_long`, then
    /// continued: what a disk that does not answer a flush, or a paused
    /// machine, looks like from the clients.
    pub fn pause(&self, how_long: std::time::Duration) -> anyhow::Result<()> {
        let pids = self.processes()?;
        // A backend that ended meanwhile makes kill fail for it alone.
        let _ = Command::new("kill").arg("-STOP").args(&pids).stderr(std::process::Stdio::null()).status();
        std::thread::sleep(how_long);
        Command::new("kill")
            .arg("-CONT")
            .args(&pids)
            .stderr(std::process::Stdio::null())
            .status()
            .context("continuing PostgreSQL's processes (kill -CONT)")?;
        Ok(())
    }

    pub fn stop(&self) -> anyhow::Result<()> {
        if !self.is_running() {
            eprintln!("the private cluster is not running ({})", self.data.display());
            return Ok(());
        }
        run::status(as_owner(&pg_bin("pg_ctl")).arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]))
    }

    /// Runs `f` with the cluster stopped (and starts it again if it was
    /// running): installing the extension rewrites a shared library that
    /// running backends have mapped.
    pub fn while_stopped<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let was_running = self.is_running();
        if was_running {
            self.stop()?;
        }
        let out = f()?;
        if was_running {
            self.ensure_running()?;
        }
        Ok(out)
    }

    /// How long the server's log is now: [`Cluster::log_from`] that offset
    /// is what the server wrote since.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// The server's log from byte `offset` on, as text (lossy); its last
    /// line may be one the server is still writing.
    pub fn log_from(&self, offset: u64) -> anyhow::Result<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&self.log).with_context(|| format!("cannot open {}", self.log.display()))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// One SQL command as the superuser, over the private socket.
    pub fn superuser(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        run::output(
            Command::new(pg_bin("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
                .arg(&self.sockets)
                .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]),
        )
    }

    pub fn ensure_database(&self, db: &str) -> anyhow::Result<()> {
        self.superuser(
            "postgres",
            &format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                     CREATE ROLE {ROLE} LOGIN CREATEDB;
                   END IF;
                 END $$;
                 -- Tests drop their scratch databases WITH (FORCE), which must
                 -- end autovacuum workers too.
                 GRANT pg_signal_backend TO {ROLE}"
            ),
        )?;
        if self.has_database(db)? {
            eprintln!("    database {db} exists");
        } else {
            self.superuser("postgres", &format!("CREATE DATABASE {db} OWNER {ROLE}"))?;
            eprintln!("    created database {db} (owner {ROLE})");
        }
        Ok(())
    }

    pub fn has_database(&self, db: &str) -> anyhow::Result<bool> {
        let exists = self.superuser("postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"))?;
        Ok(exists.trim() == "1")
    }

    pub fn drop_database(&self, db: &str) -> anyhow::Result<()> {
        self.superuser("postgres", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).map(drop)
    }

    pub fn analyze(&self, db: &str) -> anyhow::Result<()> {
        self.superuser(db, "VACUUM ANALYZE").map(drop)
    }

    /// Replaces this process with psql on `db` as the application role.
    pub fn psql(&self, db: &str, args: &[String]) -> anyhow::Result<()> {
        let mut cmd = Command::new(pg_bin("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", ROLE, "-d", db]).args(args);
        run::exec(&mut cmd)
    }
}
