//! The web page in a real browser: Debian's Chromium, driven by
//! playwright-core (npm, pinned by `tests/browser/package-lock.json`) from
//! Node's own test runner, against real proxies on a database of its own
//! (`small` data plus one topic of 50,000 replies for the page budgets).
//! The script starts and restarts its proxies itself (the restart test);
//! screenshots and the measured budgets go to `target/browser/`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::cluster::Cluster;
use crate::run::{self, Profile};

pub const DB: &str = "veritable_browser";
const CHROMIUM: &str = "/usr/bin/chromium";

/// Replies in the topic whose page the budgets are measured on.
pub const BIG_TOPIC_REPLIES: u32 = 50_000;
const BIG_TITLE: &str = "A topic of 50,000 replies";

fn folder() -> PathBuf {
    run::root().join("tests").join("browser")
}

pub fn out_dir() -> PathBuf {
    run::target_dir().join("browser")
}

/// Chromium (Debian's package) and playwright-core (`npm ci`).
pub fn ensure_installed() -> anyhow::Result<()> {
    if !std::path::Path::new(CHROMIUM).exists() {
        bail!("{CHROMIUM} is missing: the prerequisites install Debian's chromium package");
    }
    if folder().join("node_modules").join("playwright-core").exists() {
        eprintln!("    playwright-core present");
        return Ok(());
    }
    run::status(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(folder()))
        .context("npm ci in tests/browser (playwright-core from the npm registry)")
}

/// A fresh database: migrated, `small` data, and one topic of
/// [`BIG_TOPIC_REPLIES`] replies (a tenth at the top, the rest answering
/// them), written as a DBA would, through the triggers.
pub fn prepare(cluster: &Cluster, profile: Profile) -> anyhow::Result<()> {
    cluster.drop_database(DB)?;
    cluster.ensure_database(DB)?;
    let url = cluster.database_url(DB);
    run::proxy(profile, &["migrate"], &url)?;
    run::proxy(profile, &["seed", "--scale", "small"], &url)?;
    let top = BIG_TOPIC_REPLIES / 10;
    let below = BIG_TOPIC_REPLIES - top;
    let sql = format!(
        "BEGIN;
         INSERT INTO forum_topics (category_id, author_id, title, body)
              VALUES ((SELECT min(id) FROM forum_categories), (SELECT min(id) FROM users),
                      '{BIG_TITLE}', 'The page budgets are measured on this topic.');
         INSERT INTO forum_replies (topic_id, author_id, body)
              SELECT currval('forum_topics_id_seq'), (SELECT min(id) FROM users) + g % 100,
                     'Reply **' || g || '**: a few words of *Markdown*, with a [link](https://example.org/' || g || ').'
                FROM generate_series(1, {top}) g;
         INSERT INTO forum_replies (topic_id, parent_id, author_id, body)
              SELECT r.topic_id, r.id, (SELECT min(id) FROM users) + (r.id + g) % 100,
                     'An answer to ' || r.id || ', number ' || g || '.'
                FROM (SELECT id, topic_id FROM forum_replies WHERE topic_id = currval('forum_topics_id_seq')) r,
                     generate_series(1, {per}) g
               ORDER BY r.id, g;
         COMMIT;",
        per = below / top,
    );
    cluster.superuser(DB, &sql)?;
    cluster.analyze(DB)
}

/// Runs the browser tests (`node --test`), echoing their TAP; (passed, failed).
pub fn run(cluster: &Cluster, profile: Profile) -> anyhow::Result<(u64, u64)> {
    let out = out_dir();
    std::fs::create_dir_all(&out)?;
    let big = cluster.superuser(DB, &format!("SELECT max(id) FROM forum_topics WHERE title = '{BIG_TITLE}'"))?;
    let mut cmd = Command::new("node");
    cmd.args(["--test", "--test-reporter=tap", "--test-concurrency=1"])
        .arg(folder().join("forum.test.mjs"))
        .current_dir(folder())
        .env("VERITABLE_PROXY_BIN", run::target_dir().join(profile.name()).join("veritable-proxy"))
        .env("VERITABLE_BROWSER_DATABASE_URL", cluster.database_url(DB))
        .env("VERITABLE_BROWSER_OUT", &out)
        .env("VERITABLE_BROWSER_BIG_TOPIC", big.trim())
        .env("VERITABLE_BROWSER_BIG_REPLIES", BIG_TOPIC_REPLIES.to_string())
        .env("CHROMIUM", CHROMIUM)
        .stdout(Stdio::piped());
    eprintln!("    $ {}", run::describe(&cmd));
    let mut child = cmd.spawn().context("node (Node.js >= 20) runs the browser tests")?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(n) = line.strip_prefix("# pass ") {
                passed = n.trim().parse().unwrap_or(0);
            } else if let Some(n) = line.strip_prefix("# fail ") {
                failed = n.trim().parse().unwrap_or(0);
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        failed = 1;
    }
    eprintln!("    screenshots and budgets.json in {}", out.display());
    Ok((passed, failed))
}

/// `cargo xtask browser`: the same on its own (release build: the budgets
/// written to BENCHMARKS.md are measured this way), after the setup that
/// `up` does (prerequisites, the extension, the cluster).
pub fn standalone(profile: Profile) -> anyhow::Result<()> {
    let mut steps = run::Steps::new();
    let cluster = crate::prepare(&mut steps, profile)?;
    steps.step("installing playwright-core (npm ci) if missing", ensure_installed)?;
    steps.step(&format!("creating {DB}: small data and a topic of {BIG_TOPIC_REPLIES} replies"), || {
        prepare(&cluster, profile)
    })?;
    let (passed, failed) = steps.step("browser tests (Chromium, playwright-core)", || run(&cluster, profile))?;
    eprintln!("xtask: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} browser tests failed");
    }
    Ok(())
}
