//! The operator's kit, checked with the tools its users run: the Prometheus
//! alert rules with `promtool check rules` (from Debian's `prometheus`
//! package, unpacked under `target/tools` without installing the server),
//! the Kubernetes manifests with `kubernetes-validate` (PyPI, pinned)
//! against the Kubernetes schemas, the balancer's configuration with
//! `haproxy -c`, and the compose file and the dashboard as YAML and JSON. (That every metric the alerts and the dashboard use is
//! exported, and that every alert has its runbook entry, is checked by the
//! integration tests.)

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::run;

/// The kubernetes-validate release the manifests were checked with.
const KUBERNETES_VALIDATE: &str = "1.34.1";
/// The Kubernetes version whose schemas the manifests must satisfy.
const KUBERNETES: &str = "1.30.0";

fn tools() -> PathBuf {
    run::target_dir().join("tools")
}

/// `promtool` on the PATH, or unpacked from Debian's package under `target/tools`.
fn promtool() -> anyhow::Result<PathBuf> {
    if Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Ok(PathBuf::from("promtool"));
    }
    let unpacked = tools().join("prometheus");
    let binary = unpacked.join("usr").join("bin").join("promtool");
    if binary.exists() {
        return Ok(binary);
    }
    eprintln!("    unpacking promtool from Debian's prometheus package into {}", unpacked.display());
    let downloads = tools().join("debs");
    std::fs::create_dir_all(&downloads)?;
    let fetched = run::status(Command::new("apt-get").args(["download", "-q", "prometheus"]).current_dir(&downloads));
    if fetched.is_err() {
        // A machine whose package lists were never fetched.
        let mut update = if run::is_root() { Command::new("apt-get") } else { Command::new("sudo") };
        if !run::is_root() {
            update.args(["-n", "apt-get"]);
        }
        run::status(update.args(["update", "-q"])).context("apt-get update, to download prometheus")?;
        run::status(Command::new("apt-get").args(["download", "-q", "prometheus"]).current_dir(&downloads))
            .context("cannot download Debian's prometheus package (for promtool)")?;
    }
    let deb = std::fs::read_dir(&downloads)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("prometheus_")))
        .context("the downloaded prometheus package")?;
    run::status(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked)).context("unpacking prometheus")?;
    if !binary.exists() {
        bail!("{} has no usr/bin/promtool", deb.display());
    }
    Ok(binary)
}

/// The tools, installed when missing (with the other prerequisites).
pub fn ensure_installed() -> anyhow::Result<()> {
    promtool()?;
    if run::reports_version("kubernetes-validate", KUBERNETES_VALIDATE) {
        eprintln!("    kubernetes-validate {KUBERNETES_VALIDATE} present");
        return Ok(());
    }
    eprintln!("    installing kubernetes-validate {KUBERNETES_VALIDATE} from PyPI");
    run::status(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "-q",
        &format!("kubernetes-validate=={KUBERNETES_VALIDATE}"),
    ]))
    .context("cannot install kubernetes-validate")
}

/// Each check, by name, and whether it passed.
pub fn check() -> anyhow::Result<Vec<(&'static str, bool)>> {
    let root = run::root();
    let mut outcomes = Vec::new();
    let alerts = root.join("docker").join("prometheus").join("alerts.yml");
    let mut rules = Command::new(promtool()?);
    rules.args(["check", "rules"]).arg(&alerts);
    outcomes.push(("promtool check rules docker/prometheus/alerts.yml", run::status(&mut rules).is_ok()));

    let manifests: Vec<PathBuf> = std::fs::read_dir(root.join("deploy").join("kubernetes"))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    if manifests.is_empty() {
        bail!("no manifests under deploy/kubernetes");
    }
    let mut validate = Command::new("kubernetes-validate");
    validate.args(["--strict", "--kubernetes-version", KUBERNETES]).args(&manifests);
    outcomes.push(("kubernetes-validate deploy/kubernetes", run::status(&mut validate).is_ok()));

    // The balancer's configuration, by the Debian haproxy the fault runs use
    // (the compose file's server names do not resolve here: a warning).
    let mut haproxy = Command::new("/usr/sbin/haproxy");
    haproxy.arg("-c").arg("-f").arg(root.join("docker").join("haproxy").join("haproxy.cfg"));
    outcomes.push(("haproxy -c docker/haproxy/haproxy.cfg", run::status(&mut haproxy).is_ok()));

    // The compose file and Prometheus' configuration parse as YAML (no
    // Docker engine here to run `docker compose config`); the dashboard as JSON.
    let mut yaml = Command::new("python3");
    yaml.args(["-c", "import sys, yaml\nfor path in sys.argv[1:]:\n    yaml.safe_load(open(path))"])
        .arg(root.join("docker").join("compose.yml"))
        .arg(root.join("docker").join("prometheus").join("prometheus.yml"))
        .arg(&alerts);
    outcomes.push(("docker/compose.yml and the Prometheus files parse as YAML", run::status(&mut yaml).is_ok()));
    let dashboard = std::fs::read(root.join("docker").join("grafana").join("veritable.json"))?;
    outcomes.push((
        "docker/grafana/veritable.json parses as JSON",
        serde_json::from_slice::<serde_json::Value>(&dashboard).is_ok(),
    ));
    Ok(outcomes)
}

/// `cargo xtask kit`: every check, printed; fails if one failed.
pub fn run() -> anyhow::Result<()> {
    let checks = check()?;
    print(&checks);
    let failed: Vec<&str> = checks.iter().filter(|(_, ok)| !ok).map(|(name, _)| *name).collect();
    if !failed.is_empty() {
        bail!("the operator's kit failed: {}", failed.join("; "));
    }
    Ok(())
}

/// One line per check.
pub fn print(checks: &[(&'static str, bool)]) {
    for (name, ok) in checks {
        eprintln!("    {name}: {}", if *ok { "ok" } else { "FAILED" });
    }
}
