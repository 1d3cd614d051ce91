//! The shape of the code, kept by a test: the modules of `src/` import each other in the
//! layer order `ARCHITECTURE.md` declares (a lower layer never reaches up), and no two files
//! import each other, directly or round a longer loop.
//!
//! It reads every `use crate::...` / `use super::...` statement and every inline
//! `crate::a::b` or `super::a` path outside comments, maps each to the file that defines it (the longest
//! module prefix that is a file), and checks the graph. Test-only files (`*_tests.rs`,
//! `tests.rs`, `test_support.rs`, `#[cfg(test)]` blocks are not parsed apart, so test files
//! are skipped) and `main.rs`/`lib.rs` (the crate's root) are left out.
//!
//! `KNOWN` lists what the code did before this test existed and issue 23 removes; a new
//! edge that breaks the rules fails the test, and so does a listed one that is gone (so the
//! list only shrinks).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top first: a module may import its own layer's and lower layers' modules.
/// Written out in ARCHITECTURE.md, one paragraph each.
const LAYERS: &[(&str, &[&str])] = &[
    ("entry", &["cli", "commands", "demo"]),
    ("run", &["pipeline", "manifest"]),
    (
        "work",
        &[
            "schedule", "stage", "campaign", "delivery", "report", "listen",
        ],
    ),
    (
        "adapters",
        &[
            "config",
            "channels",
            "state",
            "state_tables",
            "source",
            "output",
            "engine",
        ],
    ),
    (
        "foundation",
        &[
            "message",
            "channel_rules",
            "feedback",
            "models",
            "functions",
            "storage",
            "clock",
            "error",
            "mask",
            "progress",
            "memory_cap",
            "spill",
            "unsubscribe_token",
        ],
    ),
];

/// Edges the code still has that break the rules, each a known debt of issue 23: the
/// pipeline file's resolved form holds the campaigns' and channels' own config types, so
/// `config` reaches up to them (the fix splits the leaf settings from the pipeline's
/// resolution); `schedule` records runs through the manifest (the fix is the `Runner`
/// trait returning a `RunOutcome`).
const KNOWN: &[&str] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module path of a file: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn is_test_file(file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy();
    name.ends_with("_tests.rs")
        || name == "tests.rs"
        || name == "test_support.rs"
        || name == "leak_tests.rs"
        || name.starts_with("plan_golden")
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests { ... }`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("//") {
                ""
            } else {
                l.split(" // ").next().unwrap_or("")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let base = join(prefix, head);
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        out.push(join(prefix, path));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// Every path a file's code names: `use` trees and inline `crate::` paths.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 4..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let t = after.trim_start();
        if !(t.starts_with("crate::") || t.starts_with("super::")) {
            continue;
        }
        if let Some(end) = t.find(';') {
            expand("", &t[..end], &mut out);
        }
    }
    let inline = code
        .match_indices("crate::")
        .chain(code.match_indices("super::"));
    for (i, _) in inline {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        let tail: String = code[i..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        out.push(tail.trim_end_matches(':').to_string());
    }
    out
}

/// Resolves `super::` and `crate::` against `module`; None for other crates.
fn absolute(module: &[String], path: &str, is_mod_rs: bool) -> Option<Vec<String>> {
    let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
    let mut base: Vec<String> = match parts.first() {
        Some(&"crate") => {
            parts.remove(0);
            vec![]
        }
        Some(&"super") => {
            // In `a/b.rs` (module a::b) `super` is `a`; in `a/b/mod.rs` it is also `a`.
            let mut b = module.to_vec();
            let _ = is_mod_rs;
            while parts.first() == Some(&"super") {
                parts.remove(0);
                b.pop();
            }
            b
        }
        _ => return None,
    };
    base.extend(parts.iter().map(|s| s.to_string()));
    Some(base)
}

struct Graph {
    /// File modules.
    files: BTreeSet<Vec<String>>,
    /// file -> files it imports.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn graph() -> Graph {
    let mut all = Vec::new();
    rust_files(&src(), &mut all);
    let files: BTreeSet<Vec<String>> = all.iter().map(|f| module_of(f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for f in &all {
        let module = module_of(f);
        if is_test_file(f) || module.is_empty() || module == ["main"] || module == ["lib"] {
            continue;
        }
        let is_mod_rs = f.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(f).unwrap();
        for p in paths(&code(&text)) {
            let Some(abs) = absolute(&module, &p, is_mod_rs) else {
                continue;
            };
            // The longest prefix that is a file.
            let target = (1..=abs.len())
                .rev()
                .map(|n| abs[..n].to_vec())
                .find(|m| files.contains(m));
            if let Some(t) = target
                && t != module
                // A parent declares and re-exports its children: not a dependency.
                && !(t.len() > module.len() && t.starts_with(&module))
            {
                edges.entry(module.clone()).or_default().insert(t);
            }
        }
    }
    Graph { files, edges }
}

fn name(m: &[String]) -> String {
    m.join("::")
}

fn layer_of(m: &[String]) -> Option<usize> {
    let top = m.first()?;
    LAYERS
        .iter()
        .position(|(_, mods)| mods.contains(&top.as_str()))
}

/// Strongly connected components of more than one file (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<Vec<String>>> {
    struct T<'a> {
        g: &'a Graph,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on: BTreeSet<Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit(t: &mut T<'_>, v: &Vec<String>) {
        t.index.insert(v.clone(), t.next);
        t.low.insert(v.clone(), t.next);
        t.next += 1;
        t.stack.push(v.clone());
        t.on.insert(v.clone());
        let targets: Vec<Vec<String>> =
            t.g.edges
                .get(v)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
        for w in targets {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(&w);
                let done = &w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        next: 0,
        out: vec![],
    };
    for v in g.files.iter() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// Every rule broken: `from -> to` for a layer break, and for each import circle the
/// edges between its files.
fn violations(g: &Graph) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (from, tos) in &g.edges {
        for to in tos {
            if let (Some(a), Some(b)) = (layer_of(from), layer_of(to))
                && b < a
            {
                out.insert(format!(
                    "layer: {} -> {} ({} reaches up to {})",
                    name(from),
                    name(to),
                    LAYERS[a].0,
                    LAYERS[b].0
                ));
            }
        }
    }
    for comp in cycles(g) {
        let members: BTreeSet<&Vec<String>> = comp.iter().collect();
        for from in &comp {
            for to in g.edges.get(from).into_iter().flatten() {
                if members.contains(to) {
                    out.insert(format!("circle: {} -> {}", name(from), name(to)));
                }
            }
        }
    }
    out
}

#[test]
fn every_top_level_module_has_a_layer() {
    let g = graph();
    let tops: BTreeSet<&String> = g
        .files
        .iter()
        .filter_map(|m| m.first())
        .filter(|t| !matches!(t.as_str(), "main" | "lib"))
        .collect();
    for t in tops {
        assert!(
            layer_of(std::slice::from_ref(t)).is_some(),
            "src/{t}: give it a layer in LAYERS and ARCHITECTURE.md"
        );
    }
}

#[test]
fn imports_follow_the_layers_and_never_go_round_in_a_circle() {
    let found = violations(&graph());
    let known: BTreeSet<String> = KNOWN.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = found.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "imports that break ARCHITECTURE.md (move the code, or the type it needs, to the right layer):\n{}",
        new.iter()
            .map(|s| format!("  {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        gone.is_empty(),
        "fixed, well done: remove these from KNOWN:\n{}",
        gone.iter()
            .map(|s| format!("  {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_checker_sees_a_circle_and_a_layer_break() {
    // Two files importing each other, and an adapter reaching up into the run layer.
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    let mut g = Graph {
        files: [m("state::a"), m("state::b"), m("pipeline::x")]
            .into_iter()
            .collect(),
        edges: BTreeMap::new(),
    };
    g.edges
        .entry(m("state::a"))
        .or_default()
        .insert(m("state::b"));
    g.edges
        .entry(m("state::b"))
        .or_default()
        .insert(m("state::a"));
    g.edges
        .entry(m("state::a"))
        .or_default()
        .insert(m("pipeline::x"));
    let v = violations(&g);
    assert!(v.contains("circle: state::a -> state::b"), "{v:?}");
    assert!(v.contains("circle: state::b -> state::a"), "{v:?}");
    assert!(
        v.iter()
            .any(|s| s.starts_with("layer: state::a -> pipeline::x")),
        "{v:?}"
    );
    let mut seen = Vec::new();
    expand("", "crate::a::{b, c::{d, e as f}}", &mut seen);
    assert_eq!(seen, ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]);
}
