//! veritable-proxy: the thin HTTP/WebSocket service in front of PostgreSQL.
//!
//! `main.rs` only parses the command line; everything here can be driven by
//! tests, which start the real server on `127.0.0.1:0` (see [`server::run`]).
//!
//! # Layout
//!
//! Modules depend downwards only (a test, `lib::tests::no_import_cycles`,
//! reads the sources and fails on any circle):
//!
//! | module | what |
//! |---|---|
//! | [`server`] | `run(listener, config, shutdown)`: builds the state, spawns the background tasks, serves, drains |
//! | [`http`] | the one route table (router and OpenAPI document from the same list), middleware, extractors, errors, the web page's files (`client/`, built in), the TCP edge |
//! | [`api`] | one file per resource: the handlers, their request types and rules |
//! | [`realtime`] | WebSockets: protocol, rooms, the hub, the LISTEN connection, presence, cache invalidation |
//! | [`state`] | `AppState`, what every handler can reach |
//! | [`store`] | PostgreSQL: the pool and `Conn`, every SQL statement behind a typed function ([`store::ALL`]), migrations |
//! | [`sessions`], [`passwords`], [`limits`], [`cache`], [`posting`] | sessions and their cache, argon2 off the runtime, rate limits and budgets kept in PostgreSQL, the read cache, reply posts committed in groups |
//! | [`config`], [`metrics`], [`telemetry`], [`shutdown`] | settings read once, Prometheus metrics, logs, signals |
//! | [`seed`] | deterministic demo and benchmark data |
#![forbid(unsafe_code)]

pub mod api;
pub mod cache;
pub mod config;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod passwords;
pub mod posting;
pub mod realtime;
pub mod seed;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;

pub use http::error::{AppError, AppResult};
pub use state::AppState;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// `a::b` for `src/a/b.rs` or `src/a/b/mod.rs`; None for the crate root.
    fn module_of(file: &Path, src: &Path) -> Option<String> {
        let relative = file.strip_prefix(src).ok()?.with_extension("");
        let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] { None } else { Some(parts.join("::")) }
    }

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Every path a line names after `crate::` or `super::`, with `{a, b::c}`
    /// groups expanded: `crate::{x, y::z}` gives `x` and `y::z`.
    fn paths_in(code: &str, prefix: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before_ok = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
            rest = &rest[at + prefix.len()..];
            if !before_ok {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let item = item.trim().split(" as ").next().unwrap_or("").trim();
                    if !item.is_empty() && item != "self" {
                        found.push(item.to_owned());
                    }
                }
            } else {
                let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                found.push(path.trim_end_matches(':').to_owned());
            }
        }
        found
    }

    /// The module a path lands in: its longest prefix that is a module.
    fn target(path: &str, modules: &BTreeSet<String>, aliases: &BTreeMap<String, String>) -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty() && *p != "{").collect();
        if let Some(first) = parts.first()
            && let Some(module) = aliases.get(*first)
        {
            return Some(module.clone());
        }
        (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
    }

    fn related(a: &str, b: &str) -> bool {
        a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
    }

    /// No circle of imports between the proxy's modules: each file's
    /// `crate::` and `super::` paths are edges to the modules they name (a
    /// module and its own submodules may use each other: that is nesting,
    /// not a circle), and the graph must be acyclic.
    #[test]
    fn no_import_cycles() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let modules: BTreeSet<String> = all.iter().filter_map(|f| module_of(f, &src)).collect();
        // `pub use` at the crate root: `crate::AppError` is `http::error`'s.
        let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
        let mut aliases = BTreeMap::new();
        for line in lib.lines().filter_map(|l| l.strip_prefix("pub use ")) {
            let (module, names) = line.trim_end_matches(';').split_once("::{").map_or_else(
                || {
                    line.trim_end_matches(';')
                        .rsplit_once("::")
                        .map(|(m, n)| (m, n.to_owned()))
                        .unwrap_or(("", String::new()))
                },
                |(m, n)| (m, n.trim_end_matches('}').to_owned()),
            );
            for name in names.split(',') {
                aliases.insert(name.trim().to_owned(), module.to_owned());
            }
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &all {
            let Some(module) = module_of(file, &src) else { continue };
            let text = std::fs::read_to_string(file).expect("readable source");
            // `super::` is the parent module, whether the file is `x.rs` or `x/mod.rs`.
            let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_owned();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                let mut named: Vec<String> = paths_in(code, "crate::");
                for path in paths_in(code, "super::") {
                    named.push(if parent.is_empty() { path } else { format!("{parent}::{path}") });
                }
                for path in named {
                    if let Some(to) = target(&path, &modules, &aliases)
                        && !related(&module, &to)
                    {
                        edges.entry(module.clone()).or_default().insert(to);
                    }
                }
            }
        }
        // Depth-first search for a back edge.
        fn visit(
            node: &str,
            edges: &BTreeMap<String, BTreeSet<String>>,
            state: &mut BTreeMap<String, bool>,
            stack: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            match state.get(node) {
                Some(true) => return None,
                Some(false) => {
                    let start = stack.iter().position(|n| n == node).unwrap_or(0);
                    let mut circle = stack[start..].to_vec();
                    circle.push(node.to_owned());
                    return Some(circle);
                }
                None => {}
            }
            state.insert(node.to_owned(), false);
            stack.push(node.to_owned());
            for next in edges.get(node).into_iter().flatten() {
                if let Some(circle) = visit(next, edges, state, stack) {
                    return Some(circle);
                }
            }
            stack.pop();
            state.insert(node.to_owned(), true);
            None
        }
        let mut state = BTreeMap::new();
        for module in &modules {
            if let Some(circle) = visit(module, &edges, &mut state, &mut Vec::new()) {
                panic!("import circle: {}", circle.join(" -> "));
            }
        }
        assert!(edges.len() > 20, "the scan found the imports ({} modules with any)", edges.len());
    }
}
