//! schemathesis (PyPI) against the debug proxy's OpenAPI document: installs
//! the pinned version when missing, starts the proxy on the test database,
//! runs `tests/schemathesis/run.sh` with a time budget, stops the proxy.

use std::process::Command;

use anyhow::Context;

use crate::proxy::ProxyUnderTest;
use crate::run::{self, Profile};

/// The version the checks were written against.
const VERSION: &str = "4.32.5";
/// Seconds of fuzzing in `cargo xtask test`.
pub const BUDGET_SECS: u32 = 110;

pub fn ensure_installed() -> anyhow::Result<()> {
    if run::reports_version("schemathesis", VERSION) {
        eprintln!("    schemathesis {VERSION} present");
        return Ok(());
    }
    eprintln!("    installing schemathesis {VERSION} from PyPI");
    run::status(Command::new("python3").args(["-m", "pip", "install", "-q", &format!("schemathesis=={VERSION}")]))
        .context("cannot install schemathesis")
}

/// Runs the fuzzer for `budget` seconds against a fresh debug proxy on
/// `database_url`; true when it found nothing.
pub fn run(database_url: &str, budget: u32) -> anyhow::Result<bool> {
    // The fuzzer writes and logs in far faster than a person: limits lifted.
    let proxy = ProxyUnderTest::start(&Profile::Debug.proxy_binary(), database_url, true, &[])?;
    let addr = &proxy.addr;
    let script = run::root().join("tests").join("schemathesis").join("run.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).arg(format!("http://{addr}")).arg(budget.to_string());
    eprintln!("    $ {}", run::describe(&cmd));
    Ok(cmd.status().context("cannot run schemathesis")?.success())
}
