//! The architecture's invariants, checked on the source itself:
//! - no module imports a module that imports it back (directly or through
//!   others): the request's stages and the config layer form a DAG;
//! - `config/` is inert data: it knows nothing of HTTP frameworks, the
//!   upstream client, metrics or request-time state.
//!
//! Modules are the files under `src/` (`src/config/spec/call.rs` is
//! `config::spec::call`; a `mod.rs` is its folder's module). An edge A → B is
//! any `crate::B…` path or `super::`/`self::` path resolving to B in A's
//! text, comments and doc links excluded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            let name = parts.join("::");
            if name == "main" || name == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(name, strip_comments(&text));
        }
    }
    out
}

/// The code without `//` comments (doc comments included) and tests.
fn strip_comments(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    code.lines()
        .map(|l| match l.find("//") {
            // `//` inside a string (a URL) is rare in `use` lines; good enough.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a path written in `module` refers to, among `known`.
fn resolve(module: &str, path: &str, known: &BTreeSet<String>) -> Option<String> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<&str> = match segs.first()? {
        &"crate" => {
            segs.remove(0);
            Vec::new()
        }
        &"super" | &"self" => {
            let mut base: Vec<&str> = module.split("::").collect();
            while let Some(&s) = segs.first() {
                match s {
                    "super" => {
                        base.pop();
                        segs.remove(0);
                    }
                    "self" => {
                        segs.remove(0);
                    }
                    _ => break,
                }
            }
            base
        }
        _ => return None,
    };
    // The longest prefix that names a module.
    let mut found = None;
    for s in segs {
        base.push(s.trim_matches(|c: char| !c.is_alphanumeric() && c != '_'));
        let name = base.join("::");
        if known.contains(&name) {
            found = Some(name);
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    let path_re = |text: &str| -> Vec<String> {
        // Paths starting with crate::, super:: or self::, including the
        // `a::{b, c}` groups of `use` lines (each member is tried).
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        for start in ["crate::", "super::", "self::"] {
            let mut from = 0;
            while let Some(i) = text[from..].find(start) {
                let at = from + i;
                from = at + start.len();
                if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                    continue;
                }
                let end = text[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(text.len(), |e| at + e);
                let head = text[at..end].trim_end_matches(':').to_owned();
                if text[end..].starts_with('{') {
                    let close = text[end..].find('}').map_or(text.len(), |c| end + c);
                    for member in text[end + 1..close].split(',') {
                        let member = member.trim().split([' ', ':']).next().unwrap_or("");
                        if !member.is_empty() {
                            out.push(format!("{head}::{member}"));
                        }
                    }
                }
                out.push(head);
            }
        }
        out
    };
    let mut graph = BTreeMap::new();
    for (name, text) in &modules {
        let deps: BTreeSet<String> = path_re(text)
            .iter()
            .filter_map(|p| resolve(name, p, &known))
            // A module's own children and ancestors are its parts, not peers.
            .filter(|d| d != name && !d.starts_with(&format!("{name}::")))
            .filter(|d| !name.starts_with(&format!("{d}::")))
            .collect();
        graph.insert(name.clone(), deps);
    }
    graph
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = graph();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(cycle) = visit(n, &graph, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" → "));
        }
    }
    // The graph is not empty by accident (a parser that finds nothing would
    // pass the check above).
    assert!(graph["hook"].contains("tenant"), "{graph:#?}");
    assert!(
        graph["config::load"].contains("config::compile"),
        "{graph:#?}"
    );
}

#[test]
fn config_is_inert_data() {
    for (name, text) in modules() {
        if !name.starts_with("config") {
            continue;
        }
        for forbidden in [
            "axum::",
            "hyper::",
            "reqwest::",
            "metrics::",
            "crate::telemetry",
            "crate::state",
            "crate::server",
            "crate::hook",
            "crate::enrich",
            "crate::ops",
        ] {
            assert!(
                !text.contains(forbidden),
                "{name} uses {forbidden}: config must stay inert data"
            );
        }
    }
}

#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let known: BTreeSet<String> = ["a", "b", "config", "config::x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        resolve("a", "crate::b::Thing", &known).as_deref(),
        Some("b")
    );
    assert_eq!(
        resolve("config::x", "super::x::Y", &known).as_deref(),
        Some("config::x")
    );
    assert_eq!(resolve("config::x", "std::fmt", &known), None);
}
