//! `cargo xtask test`: the setup of `up`, then every suite, then one summary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;

use crate::cluster::Cluster;
use crate::pgbouncer::Pgbouncer;
use crate::run::{self, Profile, Steps};
use crate::{browser, faults, kit, load, prereqs, schemathesis};

pub const TEST_DB: &str = "veritable_test";

struct Outcome {
    name: &'static str,
    passed: u64,
    failed: u64,
    ignored: u64,
    ok: bool,
    seconds: f64,
}

impl Outcome {
    /// A step of `checks` checks of which `failed` failed, started at `started`.
    fn of_checks(name: &'static str, checks: u64, failed: u64, started: Instant) -> Self {
        Self {
            name,
            passed: checks - failed,
            failed,
            ignored: 0,
            ok: failed == 0,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

pub fn test() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut steps = Steps::new();
    let mut outcomes = Vec::new();
    steps.step(
        "checking prerequisites (Debian packages, cargo-pgrx, schemathesis, promtool, kubernetes-validate, playwright-core)",
        || {
            prereqs::ensure()?;
            schemathesis::ensure_installed()?;
            kit::ensure_installed()?;
            browser::ensure_installed()
        },
    )?;
    let cluster = Cluster::locate()?;

    outcomes.push(steps.step("formatting and lints (cargo fmt --check; cargo clippy -D warnings)", lint)?);

    outcomes.push(steps.step(
        "the operator's kit (promtool check rules; kubernetes-validate; haproxy -c; compose YAML, dashboard JSON)",
        || {
            let started = Instant::now();
            let checks = kit::check()?;
            kit::print(&checks);
            let failed = checks.iter().filter(|(_, ok)| !ok).count() as u64;
            Ok(Outcome::of_checks("kit", checks.len() as u64, failed, started))
        },
    )?);

    outcomes.push(steps.step("unit tests (cargo test, without the extension)", || {
        suite(
            "unit",
            run::cargo().args([
                "test",
                "--no-fail-fast",
                "--workspace",
                "--exclude",
                "veritable",
                "--exclude",
                "veritable-tests",
            ]),
        )
    })?);

    // cargo pgrx test installs its own build of the shared library: keep the
    // private cluster's backends off it while that happens.
    outcomes.push(steps.step("extension tests (cargo pgrx test pg15)", || {
        cluster.while_stopped(|| {
            let mut cmd = run::cargo();
            cmd.current_dir(run::root().join("extension")).args(["pgrx", "test", "pg15"]);
            if run::is_root() {
                let pgdata = cluster.pgrx_test_data()?;
                cmd.args(["--runas", "postgres", "--pgdata"]).arg(pgdata);
            }
            suite("extension", &mut cmd)
        })
    })?);

    steps.step("building and installing the extension (cargo pgrx install --release)", prereqs::install_extension)?;
    steps.step("building veritable-proxy and veritable-load (debug)", || run::build(Profile::Debug, load::BINARIES))?;
    steps.step(&format!("starting the private cluster on port {}", cluster.port), || cluster.ensure_running())?;
    let url = cluster.database_url(TEST_DB);
    steps.step(&format!("creating a fresh {TEST_DB} database, migrating, loading small data"), || {
        cluster.drop_database(TEST_DB)?;
        cluster.ensure_database(TEST_DB)?;
        run::proxy(Profile::Debug, &["migrate"], &url)?;
        run::proxy(Profile::Debug, &["seed", "--scale", "small"], &url)?;
        cluster.analyze(TEST_DB)
    })?;

    let replica = cluster.replica(1);
    steps.step(&format!("starting a streaming replica of it on port {} (pg_basebackup)", replica.port), || {
        // A fresh copy: the one of an earlier run may follow another timeline.
        replica.remove(&cluster)?;
        replica.ensure_replica_of(&cluster)
    })?;

    outcomes.push(steps.step("integration tests (real PostgreSQL and its replica, real proxy over TCP)", || {
        let bin = run::target_dir().join("debug").join("veritable-proxy");
        suite(
            "integration",
            run::cargo()
                .args(["test", "--no-fail-fast", "-p", "veritable-tests"])
                .env("VERITABLE_TEST_DATABASE_URL", &url)
                .env("VERITABLE_TEST_CREATEDB_URL", cluster.database_url("postgres"))
                .env("VERITABLE_TEST_REPLICA_URL", replica.database_url(TEST_DB))
                .env("VERITABLE_TEST_REPLICA_ADMIN_URL", replica.superuser_url("postgres"))
                .env("VERITABLE_PROXY_BIN", bin),
        )
    })?);

    outcomes.push(steps.step(
        "API tests again through pgbouncer (transaction mode; proxy in pgbouncer mode)",
        || {
            let bouncer = Pgbouncer::start(&cluster)?;
            // The first run's login and posting windows must not spill into this one.
            cluster.superuser(TEST_DB, "DELETE FROM rate_limits")?;
            let bin = run::target_dir().join("debug").join("veritable-proxy");
            let mut cmd = run::cargo();
            cmd.args(["test", "--no-fail-fast", "-p", "veritable-tests", "--test", "api", "--"]).args(API_MODULES);
            cmd.env("VERITABLE_TEST_DATABASE_URL", &url)
                .env("VERITABLE_TEST_CREATEDB_URL", cluster.database_url("postgres"))
                .env("VERITABLE_PROXY_BIN", bin)
                .env("VERITABLE_TEST_PGBOUNCER_PORT", bouncer.port.to_string());
            suite("pgbouncer", &mut cmd)
        },
    )?);

    outcomes.push(steps.step(
        "load tool smoke run (veritable-load: 10 s on small data; a table, 0 missed events)",
        || {
            let started = Instant::now();
            let ok = load::smoke(&url, TEST_DB)?;
            Ok(Outcome::of_checks("load", 1, u64::from(!ok), started))
        },
    )?);

    outcomes.push(steps.step(
        &format!(
            "the web page in Chromium (playwright-core; two users, a proxy restart, XSS shapes, a wiki conflict, \
             the budgets on a topic of {} replies)",
            browser::BIG_TOPIC_REPLIES
        ),
        || {
            let started = Instant::now();
            browser::prepare(&cluster, Profile::Debug)?;
            let (passed, failed) = browser::run(&cluster, Profile::Debug)?;
            Ok(Outcome::of_checks("browser", passed + failed, failed, started))
        },
    )?);

    outcomes.push(steps.step(
        "fault runs, short (each fault once, 12 s: PostgreSQL killed, connections terminated, a topic locked, \
         pgbouncer killed, one of two proxies killed behind haproxy, a rolling restart, PostgreSQL stalled, \
         a replica killed, a replica promoted; then a clean restart, whose shared buffers autoprewarm reads back)",
        || {
            let started = Instant::now();
            let (passed, failed) = faults::short(&cluster, TEST_DB)?;
            Ok(Outcome::of_checks("faults", passed + failed, failed, started))
        },
    )?);

    // Last: the fuzzer writes into the shared test data.
    outcomes.push(steps.step(
        &format!(
            "schemathesis against the OpenAPI document ({} s; 0 server errors, 0 undocumented status codes)",
            schemathesis::BUDGET_SECS
        ),
        || {
            let started = Instant::now();
            let ok = schemathesis::run(&url, schemathesis::BUDGET_SECS)?;
            Ok(Outcome::of_checks("schemathesis", 1, u64::from(!ok), started))
        },
    )?);

    eprintln!("\n==> summary ({:.0} s in all)", started.elapsed().as_secs_f64());
    for o in &outcomes {
        eprintln!(
            "    {:<12} {:>5} passed, {:>3} failed, {:>3} ignored  {:>6.1} s  {}",
            o.name,
            o.passed,
            o.failed,
            o.ignored,
            o.seconds,
            if o.ok { "ok" } else { "FAILED" }
        );
    }
    let passed: u64 = outcomes.iter().map(|o| o.passed).sum();
    let failed: u64 = outcomes.iter().map(|o| o.failed).sum();
    eprintln!("xtask: {passed} passed, {failed} failed");
    let broken: Vec<&str> = outcomes.iter().filter(|o| !o.ok).map(|o| o.name).collect();
    if !broken.is_empty() {
        anyhow::bail!("failing suites: {}", broken.join(", "));
    }
    Ok(())
}

/// The modules of the `api` test binary run a second time through
/// pgbouncer (test-name filters; the authorization matrix and the
/// adversarial inputs run once, directly).
const API_MODULES: &[&str] = &["auth::", "forums::", "limits::", "people::", "replies::", "topics::", "wiki::"];

/// Runs a cargo test command, echoing its output and adding up its
/// `test result:` lines. A suite is ok only if the command succeeded.
/// The two gates, both run whatever the first says: `cargo fmt --check` and
/// clippy on every target of the workspace (the extension included; its
/// build needs the `cargo pgrx init` of the prerequisites) with warnings as
/// errors.
fn lint() -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let checks = [
        run::status(run::cargo().args(["fmt", "--all", "--check"])),
        run::status(run::cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
    ];
    for failure in checks.iter().filter_map(|c| c.as_ref().err()) {
        eprintln!("    {failure:#}");
    }
    let failed = checks.iter().filter(|c| c.is_err()).count() as u64;
    Ok(Outcome::of_checks("lint", checks.len() as u64, failed, started))
}

fn suite(name: &'static str, cmd: &mut Command) -> anyhow::Result<Outcome> {
    let line = run::describe(cmd);
    eprintln!("    $ {line}");
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().with_context(|| format!("cannot start `{line}`"))?;
    let mut outcome = Outcome { name, passed: 0, failed: 0, ignored: 0, ok: false, seconds: 0.0 };
    if let Some(stdout) = child.stdout.take() {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{text}");
            if let Some(rest) = text.trim().strip_prefix("test result: ") {
                outcome.passed += count(rest, "passed");
                outcome.failed += count(rest, "failed");
                outcome.ignored += count(rest, "ignored");
            }
        }
    }
    let status = child.wait()?;
    outcome.ok = status.success() && outcome.failed == 0;
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// `count("ok. 3 passed; 0 failed; ...", "passed") == 3`.
fn count(summary: &str, word: &str) -> u64 {
    summary
        .split(';')
        .filter_map(|part| {
            let mut words = part.split_whitespace().rev();
            let label = words.next()?;
            let n = words.next()?;
            (label == word).then(|| n.parse::<u64>().ok()).flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_cargo_test_summaries() {
        let line = "ok. 12 passed; 1 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.52s";
        assert_eq!(count(line, "passed"), 12);
        assert_eq!(count(line, "failed"), 1);
        assert_eq!(count(line, "ignored"), 3);
        assert_eq!(count("FAILED. 0 passed; 2 failed;", "failed"), 2);
    }
}
