//! Matching one rule against one view of a simple command (the command itself or what a
//! wrapper runs). Each matcher looks at words, never at substrings of the line.

use super::RuleMatch;
use super::syntax::{Cmd, Parsed, RedirKind, Word, basename};
use super::target::{Cwd, Protection, Scope, Target, classify, normalize};

/// One command as a rule sees it.
pub(super) struct View<'a> {
    /// `words[0]` is the program.
    pub(super) words: &'a [Word],
    pub(super) cmd: &'a Cmd,
    /// The view is the command as written (not unwrapped): redirections and function
    /// membership belong to it.
    pub(super) original: bool,
    /// More arguments arrive at run time (`xargs`).
    pub(super) unknown_args: bool,
}

/// The state a match needs besides the view.
pub(super) struct MatchEnv<'a> {
    pub(super) cwd: &'a Cwd,
    pub(super) scope: &'a Scope,
    pub(super) parsed: &'a Parsed,
}

fn program_matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Whether an option word carries one of `flags`.
fn flag_matches(word: &str, flags: &[String]) -> bool {
    if let Some(long) = word.strip_prefix("--") {
        let name = long.split('=').next().unwrap_or(long);
        return flags.iter().any(|f| {
            f.strip_prefix("--")
                .is_some_and(|fl| fl == name || (name.len() >= 2 && fl.starts_with(name)))
        });
    }
    if flags
        .iter()
        .any(|f| f.len() > 2 && !f.starts_with("--") && f == word)
    {
        return true;
    }
    let letters = &word[1..];
    letters.chars().all(|c| c.is_ascii_alphanumeric())
        && letters
            .chars()
            .any(|c| flags.iter().any(|f| f.len() == 1 && f.starts_with(c)))
}

/// Shortens a word for messages.
pub(super) fn short(s: &str) -> String {
    const MAX: usize = 120;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// Matches `rule` against `view`; `Some(detail)` when it hits (detail may be empty).
pub(super) fn matches(
    matcher: &RuleMatch,
    regex: Option<&regex::Regex>,
    view: &View<'_>,
    env: &MatchEnv<'_>,
    steps: &mut u64,
) -> Option<String> {
    let first = view.words.first()?;
    let counted = view.words.len() as u64;
    let prog = basename(&first.text);
    *steps += 1;
    match matcher {
        RuleMatch::Program { names } => names
            .iter()
            .any(|n| program_matches(prog, n))
            .then(String::new),
        RuleMatch::ProgramWithArg { program, args } => {
            if prog != program {
                return None;
            }
            *steps += view.words.len() as u64;
            view.words[1..]
                .iter()
                .find(|w| args.iter().any(|a| a.eq_ignore_ascii_case(&w.text)))
                .map(|w| format!("argument `{}`", short(&w.text)))
        }
        RuleMatch::ProtectedTarget {
            programs,
            flags,
            protected,
            protected_trees,
        } => {
            if !programs.iter().any(|p| p == prog) {
                return None;
            }
            *steps += view.words.len() as u64;
            protected_target(prog, flags, protected, protected_trees, view, env)
        }
        RuleMatch::DeviceWrite {
            device_prefixes,
            programs,
            destination_programs,
        } => {
            let scans = prog == "dd"
                || prog == "dcfldd"
                || programs
                    .iter()
                    .chain(destination_programs)
                    .any(|p| p == prog);
            if scans {
                *steps += counted;
            }
            if view.original {
                *steps += view.cmd.redirs.len() as u64;
            }
            device_write(
                prog,
                device_prefixes,
                programs,
                destination_programs,
                view,
                env,
            )
        }
        RuleMatch::ForkBomb => {
            let name = view.cmd.func.and_then(|f| env.parsed.functions.get(f))?;
            let forks = view.cmd.background || view.cmd.pipe_in || view.cmd.pipe_out;
            (view.original && forks && *name == first.text)
                .then(|| format!("function `{}` calls itself while forking", short(name)))
        }
        RuleMatch::KillAll => kill_all(prog, view),
        RuleMatch::Regex { .. } => {
            let re = regex?;
            *steps += view.words.len() as u64;
            let joined: Vec<&str> = view.words.iter().map(|w| w.text.as_str()).collect();
            re.is_match(&joined.join(" ")).then(String::new)
        }
        RuleMatch::DynamicCommand | RuleMatch::OpaqueScript { .. } => None,
    }
}

fn protected_target(
    prog: &str,
    flags: &[String],
    protected: &[String],
    trees: &[String],
    view: &View<'_>,
    env: &MatchEnv<'_>,
) -> Option<String> {
    let mut has_flag = flags.is_empty();
    let mut operands: Vec<&Word> = Vec::new();
    let mut after_dashes = false;
    let is_find = prog == "find";
    let mut find_starts = is_find;
    for (i, w) in view.words.iter().enumerate().skip(1) {
        let t = w.text.as_str();
        if is_find {
            // start directories come first; then the expression
            if find_starts && i == 1 && matches!(t, "-H" | "-L" | "-P") {
                continue;
            }
            if find_starts && (t.starts_with('-') || t == "(" || t == "!") {
                find_starts = false;
            }
            if find_starts {
                operands.push(w);
            } else if w.is_dynamic() || flag_matches_word(t, flags) {
                has_flag = true;
            }
            continue;
        }
        if !after_dashes && t == "--" && !w.is_dynamic() {
            after_dashes = true;
            continue;
        }
        if !after_dashes && t.starts_with('-') && t.len() > 1 {
            if w.is_dynamic() {
                // `-rf$IFS/`: the flags and the target are unknown
                has_flag = true;
                operands.push(w);
            } else if flag_matches(t, flags) {
                has_flag = true;
            }
            continue;
        }
        operands.push(w);
    }
    if !has_flag {
        return None;
    }
    if matches!(prog, "chmod" | "chown" | "chgrp")
        && !view.words.iter().any(|w| w.text.starts_with("--reference"))
        && !operands.is_empty()
    {
        operands.remove(0);
    }
    if is_find && operands.is_empty() {
        let dot = Word {
            text: ".".into(),
            ..Word::default()
        };
        return judge(&dot, protected, trees, env);
    }
    if view.unknown_args {
        return Some(
            "its targets come from stdin (xargs), so they are not known before the shell runs; list the paths literally"
                .to_owned(),
        );
    }
    operands
        .into_iter()
        .find_map(|w| judge(w, protected, trees, env))
}

fn flag_matches_word(t: &str, flags: &[String]) -> bool {
    flags.iter().any(|f| f == t)
}

fn judge(w: &Word, protected: &[String], trees: &[String], env: &MatchEnv<'_>) -> Option<String> {
    let p = Protection::new(protected, trees, env.scope);
    match classify(w, env.cwd, env.scope) {
        Target::Path(path) => p.path(&path).then(|| {
            if path == w.text {
                format!("target `{}` is protected", short(&w.text))
            } else {
                format!(
                    "target `{}` resolves to `{}`, which is protected",
                    short(&w.text),
                    short(&path)
                )
            }
        }),
        Target::Pattern { dir } => p.pattern(&dir).then(|| {
            format!(
                "target `{}` is a glob/brace pattern over `{}`, which can match protected paths; name the paths literally",
                short(&w.text),
                short(&dir)
            )
        }),
        Target::Unknown(why) => Some(format!(
            "target `{}` is not known before the shell runs ({why}); write the path literally",
            short(&w.text)
        )),
    }
}

fn device_write(
    prog: &str,
    prefixes: &[String],
    programs: &[String],
    dest_programs: &[String],
    view: &View<'_>,
    env: &MatchEnv<'_>,
) -> Option<String> {
    let is_dev = |w: &Word| -> bool {
        let t = w.text.as_str();
        let path = match classify(w, env.cwd, env.scope) {
            Target::Path(p) => p,
            Target::Pattern { .. } => {
                let cut = t.find(['*', '?', '[', '{']).unwrap_or(t.len());
                let lit = normalize(&t[..cut]).unwrap_or_default();
                if prefixes
                    .iter()
                    .any(|d| d.starts_with(&lit) && lit.len() > 1)
                {
                    return true;
                }
                lit
            }
            Target::Unknown(_) => return false,
        };
        prefixes
            .iter()
            .any(|d| path.starts_with(d.as_str()) || (d.ends_with('/') && path == d[..d.len() - 1]))
    };
    if view.original
        && let Some(r) = view
            .cmd
            .redirs
            .iter()
            .find(|r| r.kind == RedirKind::Out && is_dev(&r.target))
    {
        return Some(format!("output redirected to `{}`", short(&r.target.text)));
    }
    let args = &view.words[1..];
    let dd = prog == "dd" || prog == "dcfldd";
    for w in args.iter().filter(|_| dd) {
        if let Some(v) = w.text.strip_prefix("of=") {
            let target = Word {
                text: v.to_owned(),
                flags: w.flags,
                subst: None,
            };
            if is_dev(&target) {
                return Some(format!("`{}`", short(&w.text)));
            }
        }
    }
    if programs.iter().any(|p| p == prog)
        && let Some(w) = args.iter().find(|w| !w.text.starts_with('-') && is_dev(w))
    {
        return Some(format!("`{prog}` given `{}`", short(&w.text)));
    }
    if dest_programs.iter().any(|p| p == prog) {
        let explicit = args
            .windows(2)
            .find(|p| p[0].text == "-t" || p[0].text == "--target-directory")
            .map(|p| &p[1]);
        let dest = explicit.or_else(|| args.iter().rev().find(|w| !w.text.starts_with('-')));
        if let Some(w) = dest.filter(|w| is_dev(w)) {
            return Some(format!("`{prog}` writing to `{}`", short(&w.text)));
        }
    }
    None
}

fn kill_all(prog: &str, view: &View<'_>) -> Option<String> {
    if prog == "killall5" {
        return Some(String::new());
    }
    if prog != "kill" {
        return None;
    }
    let args = &view.words[1..];
    let mut i = 0;
    if let Some(first) = args.first() {
        match first.text.as_str() {
            "-l" | "-L" | "--list" | "--table" => return None,
            "-s" | "-n" | "--signal" => i = 2,
            "--" => {}
            t if t.starts_with('-') => i = 1,
            _ => {}
        }
    }
    let rest = args.get(i..).unwrap_or_default();
    rest.iter()
        .filter(|w| w.text != "--")
        .find(|w| w.text == "-1" || w.text == "1" || w.text.starts_with("-1 "))
        .map(|w| format!("pid `{}` means every process (or init)", w.text))
}
