//! Running commands: echo each one, fail with one clear sentence, time steps.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Whether `program --version` runs and names `version` (a pinned tool from PyPI).
pub fn reports_version(program: &str, version: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(version))
}

/// Whether we run as root (then PostgreSQL runs as the `postgres` user).
pub fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// Asks `ready` every `every` until it gives a value, for at most `within`,
/// then fails with "waited N s for {what}". An error from `ready` ends the
/// wait at once (a process that exited, a check that cannot pass).
pub fn poll<T>(
    what: &str,
    within: Duration,
    every: Duration,
    mut ready: impl FnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = ready()? {
            return Ok(value);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("waited {} s for {what}", within.as_secs_f64());
        }
        std::thread::sleep(every.min(left));
    }
}

/// [`poll`] for a condition.
pub fn until(
    what: &str,
    within: Duration,
    every: Duration,
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    poll(what, within, every, || Ok(ready()?.then_some(())))
}

/// Numbered steps with their duration.
pub struct Steps {
    n: usize,
}

impl Steps {
    pub fn new() -> Self {
        Self { n: 0 }
    }

    pub fn step<T>(&mut self, what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        self.n += 1;
        eprintln!("\n==> [{}] {what}", self.n);
        let started = Instant::now();
        let out = f().with_context(|| format!("step {} ({what}) failed", self.n))?;
        eprintln!("    done in {:.1} s", started.elapsed().as_secs_f64());
        Ok(out)
    }
}

pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` with its output on our stderr (status, never a result: `cargo
/// xtask psql -A -t ...` must print only what psql prints); a non-zero exit
/// is an error naming it.
pub fn status(cmd: &mut Command) -> anyhow::Result<()> {
    let line = describe(cmd);
    eprintln!("    $ {line}");
    cmd.stdout(Stdio::from(std::io::stderr()));
    let status = cmd.status().with_context(|| format!("cannot start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` exited with {status}");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; on failure the error carries stderr.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let line = describe(cmd);
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` exited with {}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Now, in UTC (`2026-12-06T17:30:00Z`), for the heads of benchmark tables.
pub fn utc_now() -> String {
    output(Command::new("date").args(["-u", "+%FT%TZ"])).map(|s| s.trim().to_owned()).unwrap_or_default()
}

pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

#[derive(Clone, Copy)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }

    pub fn proxy_binary(self) -> PathBuf {
        target_dir().join(self.name()).join("veritable-proxy")
    }
}

/// `cargo build` of these workspace packages in this profile.
pub fn build(profile: Profile, packages: &[&str]) -> anyhow::Result<()> {
    let mut cmd = cargo();
    cmd.arg("build");
    for package in packages {
        cmd.args(["-p", package]);
    }
    if let Profile::Release = profile {
        cmd.arg("--release");
    }
    status(&mut cmd)
}

fn proxy_command(profile: Profile, args: &[&str], database_url: &str) -> Command {
    let mut cmd = Command::new(profile.proxy_binary());
    cmd.args(args).env("DATABASE_URL", database_url);
    cmd
}

pub fn proxy(profile: Profile, args: &[&str], database_url: &str) -> anyhow::Result<()> {
    status(&mut proxy_command(profile, args, database_url))
}

/// Replaces this process with the proxy, so Ctrl-C reaches it directly.
pub fn exec_proxy(profile: Profile, args: &[&str], database_url: &str) -> anyhow::Result<()> {
    let mut cmd = proxy_command(profile, args, database_url);
    eprintln!("    $ {}", describe(&cmd));
    exec(&mut cmd)
}

#[cfg(unix)]
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let error = cmd.exec();
    Err(error).with_context(|| format!("cannot start `{}`", describe(cmd)))
}

#[cfg(not(unix))]
pub fn exec(cmd: &mut Command) -> anyhow::Result<()> {
    status(cmd)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{poll, until};

    #[test]
    fn a_wait_returns_what_became_ready_and_asks_no_more() {
        let mut asked = 0;
        let got = poll("the third ask", Duration::from_secs(5), Duration::from_millis(1), || {
            asked += 1;
            Ok((asked == 3).then_some(asked * 10))
        });
        assert_eq!(got.ok(), Some(30));
        assert_eq!(asked, 3);
    }

    #[test]
    fn a_wait_past_its_bound_says_what_it_waited_for() {
        let error = until("nothing", Duration::from_millis(30), Duration::from_millis(10), || Ok(false))
            .expect_err("never ready");
        assert_eq!(error.to_string(), "waited 0.03 s for nothing");
    }

    #[test]
    fn an_error_from_the_check_ends_the_wait_at_once() {
        let mut asked = 0;
        let error = until("a process", Duration::from_secs(60), Duration::from_millis(1), || {
            asked += 1;
            anyhow::bail!("it exited")
        })
        .expect_err("the check failed");
        assert_eq!((error.to_string(), asked), ("it exited".to_owned(), 1));
    }
}
