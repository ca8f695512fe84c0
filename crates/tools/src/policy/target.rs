//! What a path argument names, as far as it can be known before the shell runs: a normalized
//! absolute path, a glob/brace pattern over a known directory, or unknown (and why). Paths are
//! resolved lexically (`..` removed without looking at the disk), against the working directory
//! the analysis follows (the workspace, then any literal `cd` in the line).

use std::rc::Rc;

use super::syntax::{ANSI_C, BRACE, CMD_SUBST, EXPAND, GLOB, PROC_SUBST, TILDE, Word};

/// The longest working directory the analysis follows; longer ones become unknown.
const MAX_CWD_CHARS: usize = 4096;

/// The working directory a command runs in, as the analysis knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Cwd {
    /// The directory the line starts in, location not given (no workspace configured): relative
    /// paths that stay below it are ordinary work files.
    Base,
    /// A known absolute directory (normalized).
    Known(Rc<str>),
    /// Changed to a place the policy cannot follow (`cd "$X"`, `cd -`, `popd`).
    Unknown,
}

/// The directories the policy knows about, normalized.
#[derive(Debug, Clone, Default)]
pub(super) struct Scope {
    pub(super) workspace: Option<String>,
    pub(super) user_home: Option<String>,
}

/// What a path argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A normalized absolute path; `~` stands for the user's home when it is not known. A path
    /// relative to [`Cwd::Base`] stays relative (`./x`).
    Path(String),
    /// A glob or brace pattern whose matches are all inside `dir`.
    Pattern { dir: String },
    /// Cannot be known before the shell runs.
    Unknown(&'static str),
}

/// Normalizes `path` lexically. A leading `~` is kept as a root of its own; climbing above it
/// gives `/`. A relative path that climbs above its start returns `None`.
pub(super) fn normalize(path: &str) -> Option<String> {
    let (root, rest) = if let Some(r) = path.strip_prefix('/') {
        ("/", r)
    } else if path == "~" || path.starts_with("~/") {
        ("~", &path[1..])
    } else {
        (".", path)
    };
    let mut parts: Vec<&str> = Vec::new();
    let mut above_home = false;
    for p in rest.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    match root {
                        "/" => {}
                        "~" => above_home = true,
                        _ => return None,
                    }
                }
            }
            other => parts.push(other),
        }
    }
    let root = if above_home { "/" } else { root };
    let mut out = String::with_capacity(path.len() + 1);
    out.push_str(root);
    for p in parts {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(p);
    }
    Some(out)
}

/// `child` is `parent` or below it.
pub(super) fn within(child: &str, parent: &str) -> bool {
    child == parent
        || (child.starts_with(parent)
            && (parent.ends_with('/') || child[parent.len()..].starts_with('/')))
}

/// `child` is strictly below `parent`.
pub(super) fn below(child: &str, parent: &str) -> bool {
    child != parent && within(child, parent)
}

fn join(cwd: &Cwd, rel: &str) -> Result<String, &'static str> {
    match cwd {
        Cwd::Known(base) => {
            normalize(&format!("{base}/{rel}")).ok_or("the path cannot be resolved")
        }
        Cwd::Base => normalize(rel).ok_or(
            "a relative path climbing above the working directory (no workspace is configured)",
        ),
        Cwd::Unknown => Err("a relative path after a change of directory the policy cannot follow"),
    }
}

/// Expands a leading `~`, `$HOME` or `${HOME}`; `None` when the word does not start with one.
fn home_form(w: &Word, scope: &Scope) -> Option<Result<String, &'static str>> {
    let t = w.text.as_str();
    let rest = if w.has(TILDE) && (t == "~" || t.starts_with("~/")) {
        &t[1..]
    } else if w.has(TILDE) && t.starts_with('~') {
        return Some(Err("`~user` names another user's home"));
    } else if let Some(r) = t.strip_prefix("${HOME}") {
        r
    } else {
        t.strip_prefix("$HOME")
            .filter(|r| !r.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))?
    };
    if rest.contains('$') || w.has(CMD_SUBST | PROC_SUBST | ANSI_C) {
        return Some(Err("it holds a variable or command substitution"));
    }
    let base = scope.user_home.as_deref().unwrap_or("~");
    Some(normalize(&format!("{base}/{rest}")).ok_or("the path cannot be resolved"))
}

/// Classifies a path argument.
pub(super) fn classify(w: &Word, cwd: &Cwd, scope: &Scope) -> Target {
    let expanded = match home_form(w, scope) {
        Some(Ok(p)) => Some(p),
        Some(Err(why)) => return Target::Unknown(why),
        None => None,
    };
    if expanded.is_none() {
        if w.has(ANSI_C) {
            return Target::Unknown("it uses ANSI-C quoting ($'…')");
        }
        if w.text.contains("$IFS") || w.text.contains("${IFS") {
            return Target::Unknown("it splits on $IFS");
        }
        if w.has(EXPAND | CMD_SUBST | PROC_SUBST) {
            return Target::Unknown("it holds a variable or command substitution");
        }
    }
    let text = expanded.as_deref().unwrap_or(&w.text);
    let pattern = w.has(GLOB | BRACE);
    let literal = if pattern {
        let cut = text.find(['*', '?', '[', '{']).unwrap_or(text.len());
        match text[..cut].rfind('/') {
            Some(0) => "/",
            Some(i) => &text[..i],
            None => "",
        }
    } else {
        text
    };
    let resolved = if literal.starts_with('/') || literal == "~" || literal.starts_with("~/") {
        normalize(literal).ok_or("the path cannot be resolved")
    } else if literal.is_empty() {
        match cwd {
            Cwd::Known(b) => Ok(b.to_string()),
            Cwd::Base => Ok(".".to_owned()),
            Cwd::Unknown => {
                Err("a relative path after a change of directory the policy cannot follow")
            }
        }
    } else {
        join(cwd, literal)
    };
    match resolved {
        Ok(p) if pattern => Target::Pattern { dir: p },
        Ok(p) => Target::Path(p),
        Err(why) => Target::Unknown(why),
    }
}

/// The new working directory after `cd`/`pushd` with `arg` (`None` = no argument).
pub(super) fn change_dir(arg: Option<&Word>, cwd: &Cwd, scope: &Scope) -> Cwd {
    let target = match arg {
        None => scope.user_home.clone().map(Target::Path),
        Some(w) if w.text == "-" => None,
        Some(w) => Some(classify(w, cwd, scope)),
    };
    match target {
        Some(Target::Path(p)) if p.starts_with('/') && p.len() <= MAX_CWD_CHARS => {
            Cwd::Known(Rc::from(p))
        }
        Some(Target::Path(p)) if p.starts_with('.') && *cwd == Cwd::Base => Cwd::Base,
        _ => Cwd::Unknown,
    }
}

/// The protected set of one rule, with the scope it is judged in.
pub(super) struct Protection<'a> {
    /// Exact paths (normalized; `~` = the user's home).
    pub(super) exact: Vec<String>,
    /// Trees protected with everything below.
    pub(super) trees: &'a [String],
    pub(super) scope: &'a Scope,
}

impl<'a> Protection<'a> {
    pub(super) fn new(exact: &[String], trees: &'a [String], scope: &'a Scope) -> Self {
        let exact = exact
            .iter()
            .filter_map(|p| match p.as_str() {
                "$HOME" | "${HOME}" | "~/" | "~" => Some("~".to_owned()),
                p if p.contains('*') => None,
                p => normalize(p),
            })
            .collect();
        Protection {
            exact,
            trees,
            scope,
        }
    }

    fn home_protected(&self) -> bool {
        self.exact.iter().any(|p| p == "~")
    }

    fn in_home(&self, p: &str) -> bool {
        within(p, "~")
            || self
                .scope
                .user_home
                .as_deref()
                .is_some_and(|h| within(p, h))
    }

    /// Whether the workspace exempts paths below it: not when it is itself a protected root.
    fn workspace(&self) -> Option<&str> {
        let ws = self.scope.workspace.as_deref()?;
        let is_root = ws == "/"
            || self.exact.iter().any(|e| e == ws)
            || self.trees.iter().any(|t| t == ws)
            || self.scope.user_home.as_deref() == Some(ws);
        (!is_root).then_some(ws)
    }

    /// Whether deleting/changing `path` touches a protected place.
    pub(super) fn path(&self, path: &str) -> bool {
        if path.starts_with('.') {
            return false;
        }
        if self.workspace().is_some_and(|ws| within(path, ws)) {
            return false;
        }
        if self.exact.iter().any(|e| e == path) {
            return true;
        }
        if self.home_protected() && self.in_home(path) {
            return true;
        }
        self.trees.iter().any(|t| within(path, t))
    }

    /// Whether a pattern matching entries inside `dir` can touch a protected place.
    pub(super) fn pattern(&self, dir: &str) -> bool {
        if dir.starts_with('.') {
            return false;
        }
        if self.workspace().is_some_and(|ws| within(dir, ws)) {
            return false;
        }
        if self.path(dir) {
            return true;
        }
        // an ancestor of something protected
        let ancestor = |p: &str| below(p, dir);
        self.exact.iter().any(|e| e != "~" && ancestor(e))
            || self.trees.iter().any(|t| ancestor(t))
            || (self.home_protected() && self.scope.user_home.as_deref().is_some_and(ancestor))
            || (self.home_protected() && dir == "/")
    }
}
