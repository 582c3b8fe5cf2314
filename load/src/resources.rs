//! Which process is the ceiling: CPU of the proxy, of PostgreSQL (the
//! postmaster and all its children, including those that exited during the
//! run) and of this tool, from `/proc`; the proxy's RSS; and PostgreSQL
//! connections, from `pg_stat_activity`. Every figure is `None` when its
//! process is not on this machine (or not given).

use std::path::Path;

use tokio_postgres::Client;

/// Linux reports CPU in USER_HZ, which is 100 on every architecture we run.
const TICKS_PER_SEC: f64 = 100.0;

/// `/proc/PID/stat` fields after the command name: (ppid, utime + stime,
/// cutime + cstime) in ticks.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let num = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    // After ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    Some((u32::try_from(num(1)?).ok()?, num(11)? + num(12)?, num(13)? + num(14)?))
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU ticks PostgreSQL has used: the postmaster, its reaped children, and its living children.
fn postgres_ticks(postmaster: u32) -> Option<u64> {
    let (_, own, reaped) = stat(postmaster)?;
    let mut living = 0;
    for entry in std::fs::read_dir(Path::new("/proc")).ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some((_, ticks, _)) = stat(pid).filter(|(ppid, _, _)| *ppid == postmaster) {
            living += ticks;
        }
    }
    Some(own + reaped + living)
}

/// Cumulative CPU seconds at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub proxy: Option<f64>,
    pub postgres: Option<f64>,
    pub tool: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Connections {
    /// Client backends of the database running a statement.
    pub active: i64,
    /// All client backends of the database.
    pub total: i64,
}

pub struct Probe {
    proxy: Option<u32>,
    postmaster: Option<u32>,
    db: Client,
}

impl Probe {
    pub async fn new(db: Client, proxy: Option<u32>) -> Self {
        // Our own backend's parent is the postmaster (when it runs here).
        let backend: Option<i32> = db.query_one("SELECT pg_backend_pid()", &[]).await.ok().map(|r| r.get(0));
        let postmaster = backend.and_then(|b| u32::try_from(b).ok()).and_then(stat).map(|(ppid, _, _)| ppid);
        Self { proxy, postmaster, db }
    }

    pub fn cpu(&self) -> Cpu {
        let secs = |ticks: u64| ticks as f64 / TICKS_PER_SEC;
        Cpu {
            proxy: self.proxy.and_then(stat).map(|(_, t, _)| secs(t)),
            postgres: self.postmaster.and_then(postgres_ticks).map(secs),
            tool: stat(std::process::id()).map(|(_, t, _)| secs(t)),
        }
    }

    pub fn proxy_rss_kib(&self) -> Option<u64> {
        self.proxy.and_then(rss_kib)
    }

    /// Connections of the proxy's database, not counting this probe's own.
    pub async fn connections(&self) -> Option<Connections> {
        let row = self
            .db
            .query_one(
                "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FROM pg_stat_activity
                  WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .ok()?;
        Some(Connections { active: row.get(0), total: row.get(1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_stat_and_an_rss() {
        let (ppid, _, _) = stat(std::process::id()).expect("our own /proc entry");
        assert!(ppid > 0);
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
