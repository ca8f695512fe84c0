//! Shells and interpreters: the script they run (`-c`, a file, or stdin: here-documents,
//! here-strings and pipes from `echo`/`printf`/`cat <<EOF`), or why it cannot be seen.

use super::{Unwrapped, join_words};
use crate::policy::syntax::{Cmd, PROC_SUBST, RedirKind, Word, basename};

/// The content of what a command reads on stdin, when it is a script the policy can see.
enum Stdin {
    /// Nothing piped or redirected (interactive) or a file.
    NotAScript,
    Script(String),
    Opaque(String),
}

/// Where a command sits in its pipeline (`cmds[ci]` is `cmd`): what its stdin can come from.
#[derive(Clone, Copy)]
pub(super) struct Piped<'a> {
    pub(super) cmd: &'a Cmd,
    pub(super) cmds: &'a [Cmd],
    pub(super) ci: usize,
}

fn stdin_source(at: Piped<'_>) -> Stdin {
    let Piped { cmd, cmds, ci } = at;
    if let Some(r) = cmd.redirs.iter().rev().find(|r| {
        matches!(
            r.kind,
            RedirKind::HereDoc | RedirKind::HereStr | RedirKind::In
        )
    }) {
        return match r.kind {
            RedirKind::HereDoc => Stdin::Script(r.target.text.clone()),
            RedirKind::HereStr if r.target.is_dynamic() => {
                Stdin::Opaque("its here-string holds a variable or substitution".to_owned())
            }
            RedirKind::HereStr => Stdin::Script(r.target.text.clone()),
            _ if r.target.has(PROC_SUBST) => {
                Stdin::Opaque("it reads a process substitution".to_owned())
            }
            _ => Stdin::NotAScript,
        };
    }
    if !cmd.pipe_in {
        return Stdin::NotAScript;
    }
    if cmd.pipe_from_group {
        return Stdin::Opaque("it reads the output of a command group".to_owned());
    }
    let Some(prev) = ci.checked_sub(1).and_then(|i| cmds.get(i)) else {
        return Stdin::Opaque("it reads a pipe".to_owned());
    };
    let Some(first) = prev.words.first() else {
        return Stdin::Opaque("it reads a pipe".to_owned());
    };
    let prog = basename(&first.text);
    let args = &prev.words[1..];
    match prog {
        "echo" | "printf" if !args.iter().any(Word::is_dynamic) => {
            let skip = args
                .iter()
                .take_while(|a| a.text.starts_with('-') && a.text.len() > 1)
                .count();
            let text = join_words(&args[skip..]);
            Stdin::Script(text.replace("\\n", "\n"))
        }
        "cat" if args.is_empty() => match prev
            .redirs
            .iter()
            .rev()
            .find(|r| matches!(r.kind, RedirKind::HereDoc | RedirKind::HereStr))
        {
            Some(r) => Stdin::Script(r.target.text.clone()),
            None => Stdin::Opaque("it reads the output of `cat`".to_owned()),
        },
        other => Stdin::Opaque(format!(
            "it reads the output of `{}` through a pipe",
            crate::policy::rules::short(other)
        )),
    }
}

/// `bash …`: a `-c` script, a script file, or a script read from stdin.
pub(super) fn shell(words: &[Word], start: usize, at: Piped<'_>, out: &mut Unwrapped<'_>) {
    let prog = basename(&words[start].text).to_owned();
    let mut i = start + 1;
    let mut has_c = false;
    let mut from_stdin = false;
    while let Some(w) = words.get(i) {
        let t = w.text.as_str();
        if w.is_dynamic() {
            break;
        }
        if t == "--" || t == "-" {
            from_stdin |= t == "-";
            i += 1;
            break;
        }
        if t.starts_with("--") {
            i += if matches!(t, "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        if (t.starts_with('-') || t.starts_with('+')) && t.len() > 1 {
            let letters = &t[1..];
            has_c |= t.starts_with('-') && letters.contains('c');
            from_stdin |= letters.contains('s');
            i += if letters.contains('o') || letters.contains('O') {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    if has_c {
        match words.get(i) {
            Some(w) if w.is_dynamic() => {
                out.opaque = Some(format!(
                    "the script of `{prog} -c` (`{}`) is not known before the shell runs",
                    crate::policy::rules::short(&w.text)
                ));
            }
            Some(w) => out.scripts.push(w.text.clone()),
            None => {}
        }
        return;
    }
    if let Some(w) = words.get(i).filter(|_| !from_stdin) {
        if w.has(PROC_SUBST) {
            out.opaque = Some(format!(
                "`{prog}` runs the output of a process substitution as a script"
            ));
            return;
        }
        if w.text != "/dev/stdin" {
            // a script file: its content is not visible to the policy
            return;
        }
    }
    stdin_script(&prog, at, out);
}

pub(super) fn stdin_script(prog: &str, at: Piped<'_>, out: &mut Unwrapped<'_>) {
    match stdin_source(at) {
        Stdin::NotAScript => {}
        Stdin::Script(s) => out.scripts.push(s),
        Stdin::Opaque(why) => {
            out.opaque = Some(format!("`{prog}` reads its script from stdin and {why}"));
        }
    }
}

/// `python3`, `perl`…: only scripts they would read from an unknown stdin are refused.
pub(super) fn interpreter(words: &[Word], start: usize, at: Piped<'_>, out: &mut Unwrapped<'_>) {
    let prog = basename(&words[start].text).to_owned();
    let rest = &words[start + 1..];
    if let Some(w) = rest.iter().find(|w| w.has(PROC_SUBST)) {
        let _ = w;
        out.opaque = Some(format!(
            "`{prog}` runs the output of a process substitution as a script"
        ));
        return;
    }
    let reads_stdin = rest
        .iter()
        .all(|w| w.text.starts_with('-') && !matches!(w.text.as_str(), "-c" | "-e" | "-m" | "-E"))
        && !rest.iter().any(|w| {
            w.text.contains('c')
                && w.text.starts_with('-')
                && w.text.len() > 1
                && !w.text.starts_with("--")
        });
    if !reads_stdin {
        return;
    }
    match stdin_source(at) {
        Stdin::Opaque(why) => {
            out.opaque = Some(format!("`{prog}` reads its script from stdin and {why}"));
        }
        Stdin::NotAScript | Stdin::Script(_) => {}
    }
}
