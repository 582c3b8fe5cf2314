//! schemathesis (PyPI) against the debug proxy's OpenAPI document: installs
//! the pinned version when missing, starts the proxy on the test database,
//! runs `tests/schemathesis/run.sh` with a time budget, stops the proxy.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::run;

/// The version the checks were written against.
const VERSION: &str = "4.32.5";
/// Seconds of fuzzing in `cargo xtask test`.
pub const BUDGET_SECS: u32 = 110;

fn installed() -> bool {
    Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(VERSION))
}

pub fn ensure_installed() -> anyhow::Result<()> {
    if installed() {
        eprintln!("    schemathesis {VERSION} present");
        return Ok(());
    }
    eprintln!("    installing schemathesis {VERSION} from PyPI");
    run::status(Command::new("python3").args(["-m", "pip", "install", "-q", &format!("schemathesis=={VERSION}")]))
        .context("cannot install schemathesis")
}

/// The proxy under test; killed when dropped.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the fuzzer for `budget` seconds against a fresh debug proxy on
/// `database_url`; true when it found nothing.
pub fn run(database_url: &str, budget: u32) -> anyhow::Result<bool> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let bin = run::target_dir().join("debug").join("veritable-proxy");
    // The fuzzer writes and logs in far faster than a person: lift the
    // per-user and per-address limits (their own tests cover them).
    let child = Command::new(&bin)
        .args(["serve", "--database-url", database_url, "--addr", &addr])
        .env("RUST_LOG", "warn")
        .envs(
            ["POSTS_PER_MINUTE", "WRITES_PER_MINUTE", "REGISTRATIONS_PER_HOUR", "LOGIN_PER_IP", "LOGIN_PER_ACCOUNT"]
                .map(|name| (format!("VERITABLE_{name}"), "1000000")),
        )
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let _proxy = Proxy(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "the proxy did not listen on {addr} within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let script = run::root().join("tests").join("schemathesis").join("run.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(format!("http://{addr}")).arg(budget.to_string());
    eprintln!("    $ {}", run::describe(&cmd));
    Ok(cmd.status().context("cannot run schemathesis")?.success())
}
