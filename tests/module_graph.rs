//! The crate's top-level modules import each other without cycles, so data
//! and dependencies flow one way (ARCHITECTURE: data flow). A cycle makes
//! every module on it depend on all the others: none can be read, tested
//! or moved alone, and a new import can close one without anyone noticing.
//! This test reads the source of `src/`, builds the graph of top-level
//! modules and fails with any cycle spelt out, each edge with the lines that
//! make it.
//!
//! Nodes: `src/x.rs` and everything under `src/x/` are one node `x`;
//! `src/lib.rs` is the node `lib` (the crate root, whose items and
//! re-exports `crate::Name` reaches). Edges: every `crate::` path, and every
//! `super::` or `self::` path that climbs to the crate root, in `use` items
//! and inline in code alike, `use crate::{a, b::c}` groups included; in
//! `lib.rs` also the plain paths that start with a module's name. Unit test
//! modules count like any other code. Comments and literals are skipped;
//! `mod x;` declarations are not imports.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// One source file: its path under `src/` (`btf/ext.rs`) and its text.
struct Source {
    rel: String,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

/// Rust source to identifiers, `::` and single punctuation characters, with
/// each token's line. Comments, string, byte-string, raw-string and char
/// literals, numbers and lifetimes produce no token: a `crate::` inside them
/// is no import.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let is_ident_start = |ch: char| ch == '_' || ch.is_alphabetic();
    let is_ident = |ch: char| ch == '_' || ch.is_alphanumeric();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    // Skip a quoted literal whose opening quote is at `i`; returns the index after it.
    let skip_quoted = |mut i: usize, quote: char, line: &mut usize| {
        i += 1;
        while i < c.len() && c[i] != quote {
            if c[i] == '\\' {
                i += 1;
            }
            if at(i) == '\n' {
                *line += 1;
            }
            i += 1;
        }
        i + 1
    };
    // A raw string `r#*"…"#*` whose `r` is at `i`.
    let skip_raw = |i: usize, line: &mut usize| {
        let mut j = i + 1;
        let mut hashes = 0;
        while at(j) == '#' {
            hashes += 1;
            j += 1;
        }
        j += 1; // the opening quote
        loop {
            if j >= c.len() {
                return j;
            }
            if c[j] == '\n' {
                *line += 1;
            }
            if c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                return j + 1 + hashes;
            }
            j += 1;
        }
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_quoted(i, '"', &mut line);
        } else if (ch == 'r' && (at(i + 1) == '"' || at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')))
            || (ch == 'b' && at(i + 1) == 'r' && matches!(at(i + 2), '"' | '#'))
        {
            i = skip_raw(if ch == 'b' { i + 1 } else { i }, &mut line);
        } else if ch == 'b' && at(i + 1) == '"' {
            i = skip_quoted(i + 1, '"', &mut line);
        } else if ch == 'b' && at(i + 1) == '\'' {
            i = skip_quoted(i + 1, '\'', &mut line);
        } else if ch == '\'' {
            // A char literal ('a', '\n', '\u{e9}') or a lifetime ('a).
            if at(i + 1) == '\\' || at(i + 2) == '\'' {
                i = skip_quoted(i, '\'', &mut line);
            } else {
                i += 1;
                while is_ident(at(i)) {
                    i += 1;
                }
            }
        } else if ch.is_ascii_digit() {
            while is_ident(at(i)) {
                i += 1;
            }
        } else if is_ident_start(ch) {
            if ch == 'r' && at(i + 1) == '#' {
                i += 2; // a raw identifier: r#type
            }
            let start = i;
            while is_ident(at(i)) {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The top-level module a file belongs to, and the depth of the file's own
/// module below the crate root (0 for `lib.rs`).
fn module_of(rel: &str) -> (String, usize) {
    let parts: Vec<&str> = rel.split('/').collect();
    let file = parts[parts.len() - 1];
    let own = usize::from(file != "mod.rs" && file != "lib.rs");
    let depth = parts.len() - 1 + own;
    let top = parts[0].trim_end_matches(".rs").to_string();
    (top, depth)
}

/// Where an edge comes from: `file:line`.
type Evidence = Vec<String>;

/// The directed graph of top-level modules: (from, to) → the places that
/// make that edge.
fn module_graph(sources: &[Source]) -> BTreeMap<(String, String), Evidence> {
    let modules: BTreeSet<String> = sources
        .iter()
        .map(|s| module_of(&s.rel).0)
        .filter(|m| m != "lib")
        .collect();
    let mut edges: BTreeMap<(String, String), Evidence> = BTreeMap::new();
    for s in sources {
        let (me, file_depth) = module_of(&s.rel);
        let toks = tokens(&s.text);
        let ident = |k: usize| match toks.get(k) {
            Some((Tok::Ident(n), _)) => Some(n.as_str()),
            _ => None,
        };
        let tok = |k: usize| toks.get(k).map(|t| &t.0);
        // Brace depths at which inline `mod name {` blocks opened.
        let mut inline_mods: Vec<usize> = Vec::new();
        let mut braces = 0usize;
        let mut add = |target: &str, line: usize| {
            let to = if modules.contains(target) { target } else { "lib" };
            if to != me {
                edges
                    .entry((me.clone(), to.to_string()))
                    .or_default()
                    .push(format!("src/{}:{line}", s.rel));
            }
        };
        for k in 0..toks.len() {
            match tok(k) {
                Some(Tok::Punct('{')) => {
                    if ident(k.wrapping_sub(2)) == Some("mod") && ident(k - 1).is_some() {
                        inline_mods.push(braces);
                    }
                    braces += 1;
                    continue;
                }
                Some(Tok::Punct('}')) => {
                    braces = braces.saturating_sub(1);
                    if inline_mods.last() == Some(&braces) {
                        inline_mods.pop();
                    }
                    continue;
                }
                _ => {}
            }
            // A path starts at an identifier followed by `::`, not after one.
            let Some(first) = ident(k) else { continue };
            if tok(k + 1) != Some(&Tok::PathSep) || k > 0 && tok(k - 1) == Some(&Tok::PathSep) {
                continue;
            }
            let line = toks[k].1;
            let depth = file_depth + inline_mods.len();
            // How many modules the path climbs, and the `::` after the
            // segments that climb.
            let (climbs, next) = match first {
                "crate" => (depth, k + 1),
                "self" | "super" => {
                    let (mut up, mut seg) = (0, k);
                    while let Some(name @ ("self" | "super")) = ident(seg)
                        && tok(seg + 1) == Some(&Tok::PathSep)
                    {
                        up += usize::from(name == "super");
                        seg += 2;
                    }
                    (up, seg - 1)
                }
                // In the crate root a plain path may start at a module.
                name if depth == 0 && modules.contains(name) => {
                    add(name, line);
                    continue;
                }
                _ => continue,
            };
            if climbs < depth {
                // It stays inside this top-level module.
                continue;
            }
            match tok(next + 1) {
                Some(Tok::Ident(name)) if name != "self" => add(name, line),
                Some(Tok::Punct('{')) => {
                    // `{a, b::c, d::{e, f}}`: the first segment of each member.
                    let mut level = 0;
                    let mut member_start = true;
                    for (t, l) in &toks[next + 1..] {
                        match t {
                            Tok::Punct('{') => {
                                level += 1;
                                member_start = level == 1;
                                continue;
                            }
                            Tok::Punct('}') => {
                                level -= 1;
                                if level == 0 {
                                    break;
                                }
                            }
                            Tok::Punct(',') if level == 1 => {
                                member_start = true;
                                continue;
                            }
                            Tok::Ident(name) if member_start && level == 1 && name != "self" => add(name, *l),
                            _ => {}
                        }
                        member_start = false;
                    }
                }
                _ => {}
            }
        }
    }
    edges
}

/// Modules that reach each other (a strongly connected component of more
/// than one node), and the shortest cycle through the first of them.
#[derive(Debug, PartialEq, Eq)]
struct Knot {
    modules: Vec<String>,
    /// `["a", "b", "c", "a"]`.
    cycle: Vec<String>,
}

/// Every knot of the graph, in the order of their first modules.
fn knots(edges: &BTreeMap<(String, String), Evidence>) -> Vec<Knot> {
    let mut succ: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        succ.entry(from).or_default().push(to);
        succ.entry(to).or_default();
    }
    let reach = |from: &str| -> BTreeSet<&str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for &m in &succ[n] {
                if seen.insert(m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<&str>> = succ.keys().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for &start in succ.keys() {
        if done.contains(start) || !reaches[start].contains(start) {
            continue;
        }
        // The nodes on a cycle with `start`, then the shortest such cycle.
        let component: BTreeSet<&str> = reaches[start]
            .iter()
            .copied()
            .filter(|&n| reaches[n].contains(start))
            .collect();
        done.extend(component.iter().copied());
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        'bfs: while let Some(n) = queue.pop_front() {
            for &m in &succ[n] {
                if m == start {
                    let mut back = Vec::new();
                    let mut at = n;
                    while at != start {
                        back.push(at.to_string());
                        at = parent[at];
                    }
                    let mut cycle = vec![start.to_string()];
                    cycle.extend(back.into_iter().rev());
                    cycle.push(start.to_string());
                    out.push(Knot {
                        modules: component.iter().map(|m| m.to_string()).collect(),
                        cycle,
                    });
                    break 'bfs;
                }
                if component.contains(m) && !parent.contains_key(m) {
                    parent.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
    }
    out
}

fn read_sources(dir: &Path, root: &Path, out: &mut Vec<Source>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            out.push(Source {
                rel,
                text: fs::read_to_string(&path).unwrap(),
            });
        }
    }
}

fn describe(knot: &Knot, edges: &BTreeMap<(String, String), Evidence>) -> String {
    let mut s = format!("{} (of {})", knot.cycle.join(" -> "), knot.modules.join(", "));
    for pair in knot.cycle.windows(2) {
        let places = &edges[&(pair[0].clone(), pair[1].clone())];
        s += &format!("\n  {} -> {}: {}", pair[0], pair[1], places.join(", "));
    }
    s
}

#[test]
fn src_modules_import_without_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    read_sources(&root, &root, &mut sources);
    let edges = module_graph(&sources);
    // A parser that found nothing would find no cycle either.
    assert!(edges.len() > 20, "only {} module edges found: {edges:?}", edges.len());
    for (from, to) in [
        ("generate", "loader"),
        ("loader", "loader_abi"),
        ("struct_ops", "object"),
    ] {
        assert!(
            edges.contains_key(&(from.to_string(), to.to_string())),
            "the known edge {from} -> {to} was not found"
        );
    }
    let found = knots(&edges);
    assert!(
        found.is_empty(),
        "import cycles between the modules of src/:\n{}",
        found.iter().map(|k| describe(k, &edges)).collect::<Vec<_>>().join("\n")
    );
}

fn synthetic(files: &[(&str, &str)]) -> BTreeMap<(String, String), Evidence> {
    let sources: Vec<Source> = files
        .iter()
        .map(|(rel, text)| Source {
            rel: rel.to_string(),
            text: text.to_string(),
        })
        .collect();
    module_graph(&sources)
}

fn edge_set(edges: &BTreeMap<(String, String), Evidence>) -> Vec<String> {
    edges.keys().map(|(a, b)| format!("{a}->{b}")).collect()
}

#[test]
fn a_cycle_is_found_and_spelt_out() {
    let edges = synthetic(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod c; pub mod d; pub mod e;"),
        ("a.rs", "use crate::b::B;"),
        ("b.rs", "fn f() -> u32 { crate::c::LIMIT }"),
        ("c.rs", "use crate::{a::A, error};"),
        ("d.rs", "mod tests { use crate::e::E; }"),
        ("e.rs", "use crate::{b, d};"),
    ]);
    let found = knots(&edges);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].cycle, ["a", "b", "c", "a"]);
    assert_eq!(found[1].cycle, ["d", "e", "d"]);
    let text = describe(&found[0], &edges);
    assert!(
        text.starts_with("a -> b -> c -> a (of a, b, c)\n  a -> b: src/a.rs:1\n  b -> c: src/b.rs:1"),
        "{text}"
    );
}

#[test]
fn paths_are_read_where_they_hide() {
    let edges = synthetic(&[
        (
            "lib.rs",
            "pub mod btf; pub mod x; pub mod y; pub use y::Y;\nmod tests { use super::z; }",
        ),
        (
            "x.rs",
            "use crate::{btf::{kind, Btf}, y};\n\
             // crate::comment::A\n\
             /* crate::block /* nested */ crate::comment */\n\
             const S: &str = \"crate::string\";\n\
             const R: &str = r#\"crate::raw\"#;\n\
             fn f<'a>(c: char) -> bool { c == '\"' || c == '{' }\n\
             pub(crate) fn g() { let _ = crate::Error::new; }\n\
             mod tests { use super::*; use super::super::y::Y; }",
        ),
        ("y.rs", "pub struct Y;"),
        ("btf/mod.rs", "pub mod ext; use self::ext::E;"),
        ("btf/ext.rs", "use super::kind; mod tests { use super::super::Btf; }"),
    ]);
    assert_eq!(edge_set(&edges), ["lib->y", "x->btf", "x->lib", "x->y"]);
    assert_eq!(edges[&("x".to_string(), "y".to_string())], ["src/x.rs:1", "src/x.rs:8"]);
    assert!(knots(&edges).is_empty());
}
