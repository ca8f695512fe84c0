//! Mechanical check of the floor plan inside each crate (`design.md`: "no file over ~600 lines,
//! no import circle between files"): every crate under `crates/` is read from its `src/` and
//!
//! - no non-test source file may be over [`MAX_LINES`] lines, and
//! - the files of a crate may not import each other in a circle.
//!
//! # What counts as an import
//! Each `src/**.rs` file of a crate is one node. A file *imports* another file when it names a
//! path into it: a `use` item, or a path written in code (`crate::a::B`, `super::x::f()`,
//! `self::y::Z`, or a path that starts with a name the file brought in by `use` or with a child
//! module). The path is resolved the way rustc resolves it, to the file that defines the named
//! item: through child modules, through `use` items and re-exports of the module it passes (a
//! `pub use x::Y` in `lib.rs` leads to the file of `x`), and through glob imports when one of
//! them defines the name. A path that ends at an item the resolver cannot find (a macro-made
//! item, a variant) counts as an import of the deepest module it reached.
//!
//! # What does not count
//! - A module naming its own descendants: a parent declares, drives and re-exports its children
//!   (`mod.rs` calling `dispatch::run()`, `lib.rs` saying `pub use run::Run`), so those edges are
//!   left out. A child naming its parent or any other file does count.
//! - Test code: files declared under `#[cfg(test)]` (`mod tests;`) and items under `#[cfg(test)]`
//!   (`mod tests { … }`, test helpers), whose whole point is to reach into the module they test.
//! - Paths to other crates, and comments and string literals.
//!
//! A circle is a strongly connected set of two or more files in the remaining graph; the test
//! names every file in it and one path (with its line) for each import between them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most lines a non-test source file may have.
const MAX_LINES: usize = 600;

/// One lexical token of Rust source: an identifier/keyword (with `$crate` as one), `::`, or any
/// other single punctuation character. Literals, comments and lifetimes are dropped.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Splits `src` into tokens with their 1-based line numbers.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0usize, 1usize);
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    // Skips a quoted string starting at the opening quote `k`, returning the index after it.
    let skip_str = |mut k: usize, line: &mut usize| {
        k += 1;
        while k < c.len() && c[k] != '"' {
            if c[k] == '\\' {
                k += 1;
            }
            if at(k) == '\n' {
                *line += 1;
            }
            k += 1;
        }
        k + 1
    };
    // Skips a raw string whose `#`s (if any) start at `k`.
    let skip_raw = |mut k: usize, line: &mut usize| {
        let mut hashes = 0;
        while at(k) == '#' {
            hashes += 1;
            k += 1;
        }
        k += 1; // the opening quote
        loop {
            if k >= c.len() {
                return k;
            }
            if c[k] == '\n' {
                *line += 1;
            }
            if c[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#') {
                return k + 1 + hashes;
            }
            k += 1;
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
            while i < c.len() {
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
            i = skip_str(i, &mut line);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1; // a lifetime or label: its name follows as an identifier, harmlessly
            }
        } else if ch.is_alphanumeric() || ch == '_' || (ch == '$' && at(i + 1).is_alphabetic()) {
            let start = i;
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '"' | '#'))) {
                i = skip_raw(i, &mut line);
            } else if word == "r" && at(i) == '#' && (at(i + 1).is_alphabetic() || at(i + 1) == '_')
            {
                // a raw identifier `r#name`
                i += 1;
                let s = i;
                while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                out.push((Tok::Ident(c[s..i].iter().collect()), line));
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_str(i, &mut line);
            } else if word == "b" && at(i) == '\'' {
                let mut k = i + 1;
                if at(k) == '\\' {
                    k += 2;
                }
                while k < c.len() && c[k] != '\'' {
                    k += 1;
                }
                i = k + 1;
            } else if (start > 0 && c[start - 1] == '\'')
                || word.starts_with(|d: char| d.is_ascii_digit())
            {
                // a lifetime's name or a number
            } else {
                out.push((Tok::Ident(word), line));
            }
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

/// A module path from the crate root (`[]` is the root).
type ModPath = Vec<String>;

/// A path as written somewhere: the module it is written in and its segments.
#[derive(Debug, Clone)]
struct RawPath {
    ctx: ModPath,
    segs: Vec<String>,
}

/// What the scan learns about one module (a file module or an inline one).
#[derive(Debug, Default)]
struct Module {
    /// Index of the file the module is written in.
    file: usize,
    /// Child modules by name.
    children: BTreeMap<String, ModPath>,
    /// Names brought in by `use` (the alias and what it points at).
    aliases: BTreeMap<String, RawPath>,
    /// Glob imports (`use x::*`).
    globs: Vec<RawPath>,
    /// Names of items defined here.
    defs: BTreeSet<String>,
}

/// One crate's module graph.
#[derive(Debug, Default)]
struct Crate {
    files: Vec<(PathBuf, ModPath)>,
    modules: BTreeMap<ModPath, Module>,
    /// Every path a file names: (file index, path, line, as written).
    refs: Vec<(usize, RawPath, usize, String)>,
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn", "struct", "enum", "trait", "type", "const", "static", "union",
];

impl Crate {
    /// Reads the crate whose root file is `root` (its `src/lib.rs` or `src/main.rs`).
    fn read(root: &Path) -> Crate {
        let mut krate = Crate::default();
        let mut todo = vec![(root.to_path_buf(), ModPath::new())];
        while let Some((file, path)) = todo.pop() {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let idx = krate.files.len();
            krate.files.push((file.clone(), path.clone()));
            let name = file.file_name().unwrap().to_str().unwrap();
            let dir = if matches!(name, "lib.rs" | "main.rs" | "mod.rs") {
                file.parent().unwrap().to_path_buf()
            } else {
                file.with_extension("")
            };
            krate.scan(idx, &path, &dir, &tokenize(&text), &mut todo);
        }
        krate
    }

    fn module(&mut self, path: &ModPath, file: usize) -> &mut Module {
        self.modules.entry(path.clone()).or_insert_with(|| Module {
            file,
            ..Module::default()
        })
    }

    /// Scans the tokens of file `idx` (module `base`, child files under `dir`).
    fn scan(
        &mut self,
        idx: usize,
        base: &ModPath,
        dir: &Path,
        toks: &[(Tok, usize)],
        todo: &mut Vec<(PathBuf, ModPath)>,
    ) {
        self.module(base, idx);
        // Inline modules currently open: (brace depth at which they close, their path, their dir).
        let mut stack: Vec<(usize, ModPath, PathBuf)> = vec![(0, base.clone(), dir.to_path_buf())];
        let mut depth = 0usize;
        let mut test_attr = false;
        let mut i = 0;
        let ident = |k: usize| match toks.get(k) {
            Some((Tok::Ident(s), _)) => Some(s.as_str()),
            _ => None,
        };
        while i < toks.len() {
            let (cur, cur_dir) = {
                let top = stack.last().unwrap();
                (top.1.clone(), top.2.clone())
            };
            match &toks[i].0 {
                Tok::Punct('#') if toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Punct('[')) => {
                    let end = matching(toks, i + 1);
                    let words: Vec<&str> = (i + 2..end).filter_map(ident).collect();
                    if words.first() == Some(&"cfg")
                        && words.contains(&"test")
                        && !words.contains(&"not")
                    {
                        test_attr = true;
                    }
                    i = end + 1;
                    continue;
                }
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    depth = depth.saturating_sub(1);
                    if stack.len() > 1 && stack.last().unwrap().0 == depth {
                        stack.pop();
                    }
                }
                _ => {}
            }
            if test_attr && matches!(toks[i].0, Tok::Ident(_)) && !is_visibility(toks, i) {
                // Skip the whole `#[cfg(test)]` item: to its `;` or its closing brace.
                test_attr = false;
                let mut k = i;
                while k < toks.len() {
                    match toks[k].0 {
                        Tok::Punct(';') => break,
                        Tok::Punct('{') => {
                            k = matching(toks, k);
                            break;
                        }
                        _ => k += 1,
                    }
                }
                i = k + 1;
                continue;
            }
            let Some(word) = ident(i) else {
                i += 1;
                continue;
            };
            let after_sep = i > 0 && toks[i - 1].0 == Tok::PathSep;
            match word {
                "mod" if !after_sep => {
                    let name = ident(i + 1).unwrap().to_owned();
                    let mut child = cur.clone();
                    child.push(name.clone());
                    self.module(&cur, idx)
                        .children
                        .insert(name.clone(), child.clone());
                    self.module(&cur, idx).defs.insert(name.clone());
                    if toks.get(i + 2).map(|t| &t.0) == Some(&Tok::Punct(';')) {
                        let flat = cur_dir.join(format!("{name}.rs"));
                        let nested = cur_dir.join(&name).join("mod.rs");
                        let file = if flat.exists() { flat } else { nested };
                        todo.push((file, child));
                        i += 3;
                    } else {
                        self.module(&child, idx);
                        depth += 1;
                        stack.push((depth - 1, child, cur_dir.join(&name)));
                        i += 3;
                    }
                    continue;
                }
                "use" if !after_sep => {
                    let end = (i..toks.len())
                        .find(|&k| toks[k].0 == Tok::Punct(';'))
                        .unwrap_or(toks.len());
                    let mut leaves = Vec::new();
                    use_tree(&toks[i + 1..end], &[], &mut leaves);
                    for (segs, alias) in leaves {
                        let raw = RawPath {
                            ctx: cur.clone(),
                            segs: segs.clone(),
                        };
                        let text = segs.join("::");
                        let line = toks[i].1;
                        match alias.as_deref() {
                            Some("*") => self.module(&cur, idx).globs.push(raw.clone()),
                            Some("_") => {}
                            Some(a) => {
                                self.module(&cur, idx)
                                    .aliases
                                    .insert(a.to_owned(), raw.clone());
                            }
                            None => {}
                        }
                        self.refs.push((idx, raw, line, text));
                    }
                    i = end + 1;
                    continue;
                }
                "macro_rules" => {
                    if let Some(name) = ident(i + 2) {
                        let name = name.to_owned();
                        self.module(&Vec::new(), 0).defs.insert(name.clone());
                        self.module(&cur, idx).defs.insert(name);
                    }
                }
                w if ITEM_KEYWORDS.contains(&w) && !after_sep => {
                    if let Some(name) = ident(i + 1) {
                        let name = name.to_owned();
                        self.module(&cur, idx).defs.insert(name);
                    }
                }
                _ if !after_sep && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep) => {
                    // A path written in code: `a::b::c`.
                    let mut segs = vec![word.to_owned()];
                    let mut k = i + 1;
                    while toks.get(k).map(|t| &t.0) == Some(&Tok::PathSep) {
                        match ident(k + 1) {
                            Some(s) => segs.push(s.to_owned()),
                            None => break,
                        }
                        k += 2;
                    }
                    let text = segs.join("::");
                    let line = toks[i].1;
                    self.refs.push((
                        idx,
                        RawPath {
                            ctx: cur.clone(),
                            segs,
                        },
                        line,
                        text,
                    ));
                    i = k;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// The file a path written in module `ctx` leads to, or `None` for a path into another
    /// crate. The flag says whether the named item itself was found.
    fn resolve(&self, raw: &RawPath, budget: usize) -> Option<(usize, bool)> {
        let mut segs: &[String] = &raw.segs;
        let mut at: ModPath = raw.ctx.clone();
        match segs.first().map(String::as_str) {
            Some("crate" | "$crate") => {
                at.clear();
                segs = &segs[1..];
            }
            Some("self") => segs = &segs[1..],
            Some("super") => {
                while segs.first().map(String::as_str) == Some("super") {
                    at.pop();
                    segs = &segs[1..];
                }
            }
            Some(first) => {
                let m = self.modules.get(&at)?;
                if !m.children.contains_key(first) && !m.aliases.contains_key(first) {
                    return None;
                }
            }
            None => return None,
        }
        self.walk(&at, segs, budget)
    }

    /// Resolves `segs` starting in module `at`.
    fn walk(&self, at: &ModPath, segs: &[String], budget: usize) -> Option<(usize, bool)> {
        let m = self.modules.get(at)?;
        let Some(seg) = segs.first() else {
            return Some((m.file, true));
        };
        if budget == 0 {
            return Some((m.file, false));
        }
        if let Some(child) = m.children.get(seg) {
            return self.walk(child, &segs[1..], budget - 1);
        }
        if let Some(target) = m.aliases.get(seg) {
            let mut joined = target.clone();
            joined.segs.extend(segs[1..].iter().cloned());
            return self.resolve(&joined, budget - 1).or(Some((m.file, false)));
        }
        if m.defs.contains(seg) {
            return Some((m.file, true));
        }
        for glob in &m.globs {
            let mut joined = glob.clone();
            joined.segs.extend(segs.iter().cloned());
            if let Some((file, true)) = self.resolve(&joined, budget - 1) {
                return Some((file, true));
            }
        }
        Some((m.file, false))
    }

    /// The import edges between files: (from, to) → an example (line, path as written).
    fn edges(&self) -> BTreeMap<(usize, usize), (usize, String)> {
        let mut edges = BTreeMap::new();
        for (from, raw, line, text) in &self.refs {
            let Some((to, _)) = self.resolve(raw, 32) else {
                continue;
            };
            let (from_mod, to_mod) = (&self.files[*from].1, &self.files[to].1);
            if to == *from || to_mod.starts_with(from_mod) {
                continue; // itself, or one of its descendants
            }
            edges.entry((*from, to)).or_insert((*line, text.clone()));
        }
        edges
    }
}

/// Whether token `i` is a visibility/qualifier keyword that precedes the item an attribute is on.
fn is_visibility(toks: &[(Tok, usize)], i: usize) -> bool {
    matches!(&toks[i].0, Tok::Ident(w) if w == "pub" || w == "crate" || w == "super" || w == "in")
}

/// The index of the bracket closing the one at `open`.
fn matching(toks: &[(Tok, usize)], open: usize) -> usize {
    let (o, c) = match toks[open].0 {
        Tok::Punct('[') => ('[', ']'),
        Tok::Punct('(') => ('(', ')'),
        _ => ('{', '}'),
    };
    let mut depth = 0;
    for (k, (t, _)) in toks.iter().enumerate().skip(open) {
        if *t == Tok::Punct(o) {
            depth += 1;
        } else if *t == Tok::Punct(c) {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    toks.len()
}

/// Expands a `use` tree into its leaves: (full path, the name it binds: the alias, the last
/// segment, or `*` for a glob).
fn use_tree(
    toks: &[(Tok, usize)],
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    if toks.is_empty() {
        return;
    }
    let mut path = prefix.to_vec();
    let mut k = 0;
    while k < toks.len() {
        match &toks[k].0 {
            Tok::Ident(w) if w == "as" => {
                if let Some((Tok::Ident(a), _)) = toks.get(k + 1) {
                    out.push((path, Some(a.clone())));
                }
                return;
            }
            // `a::{self, …}` binds `a` itself
            Tok::Ident(w) if w == "self" && k == 0 && !prefix.is_empty() => {}
            Tok::Ident(w) => path.push(w.clone()),
            Tok::Punct('*') => {
                out.push((path, Some("*".to_owned())));
                return;
            }
            Tok::Punct('{') => {
                let end = matching(toks, k);
                let mut start = k + 1;
                let mut depth = 0;
                for j in k + 1..end {
                    match toks[j].0 {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') => depth -= 1,
                        Tok::Punct(',') if depth == 0 => {
                            use_tree(&toks[start..j], &path, out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                use_tree(&toks[start..end.min(toks.len())], &path, out);
                return;
            }
            _ => {}
        }
        k += 1;
    }
    if !path.is_empty() {
        let name = path.last().cloned();
        out.push((path, name));
    }
}

/// The workspace's `crates/` folder.
fn crates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates")
}

/// Every crate root (`src/lib.rs` and `src/main.rs`) under `crates/`.
fn crate_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(crates_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    for dir in dirs {
        for root in ["src/lib.rs", "src/main.rs"] {
            if dir.join(root).exists() {
                roots.push(dir.join(root));
            }
        }
    }
    roots
}

/// The strongly connected sets (two files or more) of a graph over `n` nodes (Tarjan).
fn circles(n: usize, edges: &BTreeMap<(usize, usize), (usize, String)>) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: Vec<Vec<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
        _e: std::marker::PhantomData<&'a ()>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on[v] = true;
        for w in s.adj[v].clone() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut set = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on[w] = false;
                set.push(w);
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                s.out.push(set);
            }
        }
    }
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges.keys() {
        adj[a].push(b);
    }
    let mut s = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
        _e: std::marker::PhantomData,
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_circle_between_the_files_of_any_crate() {
    let base = crates_dir();
    let mut report = String::new();
    let mut files_read = 0;
    for root in crate_roots() {
        let krate = Crate::read(&root);
        files_read += krate.files.len();
        let edges = krate.edges();
        let name = |f: usize| {
            krate.files[f]
                .0
                .strip_prefix(&base)
                .unwrap_or(&krate.files[f].0)
                .display()
                .to_string()
        };
        if std::env::var_os("PRINT_IMPORTS").is_some() {
            for ((a, b), (line, text)) in &edges {
                println!("{}:{line} `{text}` -> {}", name(*a), name(*b));
            }
        }
        for set in circles(krate.files.len(), &edges) {
            report.push_str(&format!(
                "circle: {}\n",
                set.iter().map(|&f| name(f)).collect::<Vec<_>>().join(", ")
            ));
            for ((a, b), (line, text)) in &edges {
                if set.contains(a) && set.contains(b) {
                    report.push_str(&format!("  {}:{line} `{text}` -> {}\n", name(*a), name(*b)));
                }
            }
        }
    }
    assert!(files_read > 100, "only {files_read} source files were read");
    assert!(report.is_empty(), "import circles between files:\n{report}");
}

#[test]
fn no_non_test_source_file_is_over_the_limit() {
    let mut long = Vec::new();
    for root in crate_roots() {
        let krate = Crate::read(&root);
        for (file, _) in &krate.files {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            if lines > MAX_LINES {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines: {long:?}"
    );
}

#[test]
fn the_resolver_follows_re_exports_and_skips_descendants() {
    let dir = std::env::temp_dir().join(format!("pl-cycles-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "mod a; mod b; pub use a::Thing; #[cfg(test)] mod tests;",
    )
    .unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod inner; pub struct Thing; fn f() { inner::g(); crate::b::h(); }",
    )
    .unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "pub fn g() { let _ = super::Thing; crate::b::h(); }",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "// crate::a::x in a comment\npub fn h() { let _s = \"crate::a\"; let _ = crate::Thing; }",
    )
    .unwrap();
    std::fs::write(src.join("tests.rs"), "use crate::a::*;").unwrap();
    let krate = Crate::read(&src.join("lib.rs"));
    let edges = krate.edges();
    let file = |n: &str| {
        krate
            .files
            .iter()
            .position(|(p, _)| p.ends_with(n))
            .unwrap()
    };
    let set: BTreeSet<(usize, usize)> = edges.keys().copied().collect();
    // b names `crate::Thing`, re-exported by lib.rs from a/mod.rs: the edge goes to a/mod.rs.
    assert!(set.contains(&(file("b.rs"), file("a/mod.rs"))), "{edges:?}");
    assert!(
        set.contains(&(file("a/inner.rs"), file("b.rs"))),
        "{edges:?}"
    );
    // a/mod.rs -> a/inner.rs is a parent naming its child: not counted.
    assert!(
        !set.contains(&(file("a/mod.rs"), file("a/inner.rs"))),
        "{edges:?}"
    );
    // The test module is never read.
    assert!(krate.files.iter().all(|(p, _)| !p.ends_with("tests.rs")));
    // a/mod.rs -> b.rs -> a/mod.rs is a circle; a/inner.rs only leads into it.
    let found = circles(krate.files.len(), &edges);
    let mut expected = vec![file("a/mod.rs"), file("b.rs")];
    expected.sort();
    assert_eq!(found, vec![expected], "{edges:?}");
    std::fs::remove_dir_all(&dir).ok();
}
