//! What a fresh Debian 12 machine lacks: Debian packages, cargo-pgrx and its
//! `init` against the system PostgreSQL 15.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::run;

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const PG_CONFIG: &str = "/usr/lib/postgresql/15/bin/pg_config";
const PGRX_VERSION: &str = "0.18.0";
const PACKAGES: &[&str] = &[
    "postgresql-15",
    "postgresql-server-dev-15",
    "libclang-dev",
    "clang",
    "pgbouncer",
    "haproxy",
    "nodejs",
    "chromium",
    "sudo",
];

pub fn ensure() -> anyhow::Result<()> {
    ensure_packages()?;
    ensure_cargo_pgrx()?;
    ensure_pgrx_init()
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn ensure_packages() -> anyhow::Result<()> {
    if Command::new("dpkg-query").arg("--version").output().is_err() {
        // Not Debian: we cannot install, so check for what the build needs.
        if !Path::new(PG_CONFIG).exists() {
            bail!(
                "PostgreSQL 15 with server headers is required ({PG_CONFIG} is missing); this tool installs it only on Debian"
            );
        }
        return Ok(());
    }
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("    Debian packages present: {}", PACKAGES.join(", "));
        return Ok(());
    }
    eprintln!("    missing Debian packages: {}", missing.join(", "));
    let sudo: &[&str] = if run::is_root() {
        &[]
    } else if Command::new("sudo").args(["-n", "true"]).output().is_ok_and(|o| o.status.success()) {
        &["sudo", "-n"]
    } else {
        bail!(
            "missing Debian packages {0}: install them with `sudo apt-get install {0}` and run again",
            missing.join(" ")
        );
    };
    let apt = |args: &[&str]| -> anyhow::Result<()> {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut cmd = Command::new(all[0]);
        cmd.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        run::status(&mut cmd)
    };
    apt(&["update", "-q"])?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(&missing);
    apt(&install).with_context(|| format!("cannot install Debian packages {}", missing.join(", ")))
}

fn ensure_cargo_pgrx() -> anyhow::Result<()> {
    let current = Command::new("cargo").args(["pgrx", "--version"]).output();
    if let Ok(out) = &current
        && String::from_utf8_lossy(&out.stdout).contains(PGRX_VERSION)
    {
        eprintln!("    cargo-pgrx {PGRX_VERSION} present");
        return Ok(());
    }
    eprintln!("    installing cargo-pgrx {PGRX_VERSION} (about 6 minutes on 2 cores)");
    run::status(Command::new("cargo").args(["install", "cargo-pgrx", "--version", PGRX_VERSION, "--locked"]))
        .context("cannot install cargo-pgrx")
}

fn pgrx_home() -> PathBuf {
    if let Some(home) = std::env::var_os("PGRX_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".pgrx")
}

fn ensure_pgrx_init() -> anyhow::Result<()> {
    let config = pgrx_home().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap_or_default();
    if text.lines().any(|l| l.trim_start().starts_with("pg15")) {
        eprintln!("    cargo pgrx init done ({})", config.display());
        return Ok(());
    }
    run::status(Command::new("cargo").args(["pgrx", "init", &format!("--pg15={PG_CONFIG}")]))
        .context("cannot run `cargo pgrx init` against the system PostgreSQL 15")
}

/// Builds the extension in release mode and installs it into the system
/// PostgreSQL 15 directories (with sudo when not root).
pub fn install_extension() -> anyhow::Result<()> {
    let mut cmd = run::cargo();
    cmd.current_dir(run::root().join("extension")).args(["pgrx", "install", "--release", "--pg-config", PG_CONFIG]);
    if !run::is_root() {
        cmd.arg("--sudo");
    }
    run::status(&mut cmd)
}
