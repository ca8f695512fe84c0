//! Unwrapping: from one simple command, the commands it really runs. Wrappers (`env`,
//! `timeout`, `nice`, `xargs`, `sudo`, `eval` with plain words…) are stripped by moving a start
//! index, so a chain of n wrappers costs O(n). Scripts handed to a shell (`sh -c`, `eval`,
//! `env -S`, `watch`, here-documents, here-strings, `echo … | sh`) are returned as text for the
//! caller to lex one level deeper. Nothing here recurses.

use std::borrow::Cow;

use super::defaults::SHELLS;
use super::syntax::{Cmd, PROC_SUBST, Parsed, QUOTED, RedirKind, Word, basename, is_assignment};

/// A view into `store[store]`: words `start..end`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ViewRef {
    pub(super) store: usize,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) unknown_args: bool,
    pub(super) original: bool,
}

/// What a simple command runs.
#[derive(Debug, Default)]
pub(super) struct Unwrapped<'a> {
    pub(super) store: Vec<Cow<'a, [Word]>>,
    pub(super) views: Vec<ViewRef>,
    /// Scripts to lex one level deeper.
    pub(super) scripts: Vec<String>,
    /// A script the policy cannot see is run: the detail.
    pub(super) opaque: Option<String>,
    /// A command name that is not known statically: the detail.
    pub(super) dynamic: Option<String>,
}

impl<'a> Unwrapped<'a> {
    pub(super) fn words(&self, v: &ViewRef) -> &[Word] {
        self.store
            .get(v.store)
            .and_then(|s| s.get(v.start..v.end))
            .unwrap_or_default()
    }
}

/// How a wrapper takes its options before the command.
struct WrapperSpec {
    /// Options that take the next word as argument.
    with_arg: &'static [&'static str],
    /// Positional words before the command (`timeout DURATION`).
    positional: usize,
    /// `NAME=value` words may precede the command.
    assignments: bool,
    /// Options after which no command follows (`ionice -p`, `command -v`).
    no_command: &'static [&'static str],
}

fn wrapper(prog: &str) -> Option<WrapperSpec> {
    let spec = |with_arg, positional, assignments, no_command| WrapperSpec {
        with_arg,
        positional,
        assignments,
        no_command,
    };
    Some(match prog {
        "env" => spec(&["-u", "-C", "--unset", "--chdir", "-P"], 0, true, &[]),
        "timeout" => spec(&["-s", "-k", "--signal", "--kill-after"], 1, false, &[]),
        "nice" => spec(&["-n", "--adjustment"], 0, false, &[]),
        "ionice" => spec(
            &["-c", "-n", "--class", "--classdata"],
            0,
            false,
            &["-p", "-P", "-u"],
        ),
        "stdbuf" => spec(&["-i", "-o", "-e"], 0, false, &[]),
        "time" => spec(&["-f", "-o", "--format", "--output"], 0, false, &[]),
        "command" => spec(&[], 0, false, &["-v", "-V"]),
        "exec" => spec(&["-a"], 0, false, &[]),
        "chrt" => spec(&[], 1, false, &["-p", "--pid", "-m", "--max"]),
        "taskset" => spec(&[], 1, false, &["-p", "--pid"]),
        "strace" | "ltrace" => spec(
            &[
                "-o", "-e", "-p", "-s", "-u", "-E", "-a", "-b", "-I", "-O", "-S", "-X", "-P", "-n",
            ],
            0,
            false,
            &[],
        ),
        "sudo" => spec(
            &[
                "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group",
            ],
            0,
            true,
            &["-l", "-v", "-k", "-K"],
        ),
        "doas" => spec(&["-u", "-C"], 0, false, &[]),
        "unshare" => spec(
            &["-S", "-G", "-R", "-w", "--setuid", "--setgid"],
            0,
            false,
            &[],
        ),
        "systemd-run" => spec(
            &[
                "-u",
                "-p",
                "-E",
                "-M",
                "-H",
                "--unit",
                "--property",
                "--setenv",
                "--uid",
                "--gid",
            ],
            0,
            false,
            &[],
        ),
        "chroot" => spec(&["--userspec", "--groups"], 1, false, &[]),
        "nsenter" => spec(&["-t", "-S", "-G", "--target"], 0, false, &[]),
        "setpriv" | "setsid" | "nohup" | "unbuffer" | "builtin" | "busybox" | "firejail"
        | "catchsegv" | "valgrind" | "faketime" | "caffeinate" | "runuser" => {
            spec(&[], usize::from(prog == "faketime"), false, &[])
        }
        "prlimit" => spec(&[], 0, false, &["-p", "--pid"]),
        "flock" => spec(
            &["-w", "-E", "--timeout", "--conflict-exit-code"],
            1,
            false,
            &[],
        ),
        _ => return None,
    })
}

const XARGS_WITH_ARG: &[&str] = &[
    "-I",
    "-n",
    "-P",
    "-L",
    "-l",
    "-s",
    "-d",
    "-E",
    "-e",
    "-a",
    "--arg-file",
    "--delimiter",
    "--max-args",
    "--max-procs",
    "--max-lines",
    "--max-chars",
    "--replace",
    "--eof",
    "--process-slot-var",
];

fn join_words(words: &[Word]) -> String {
    let parts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
    parts.join(" ")
}

/// `$(echo su)`, `$(which rm)`, `` `printf reboot` ``: the words the substitution prints, when
/// that is known statically.
fn static_subst(w: &Word, parsed: &Parsed) -> Option<Vec<Word>> {
    let script = parsed.scripts.get(w.subst?)?;
    let [c] = script.cmds.as_slice() else {
        return None;
    };
    if c.words.iter().any(Word::is_dynamic) || c.pipe_out || !c.redirs.is_empty() {
        return None;
    }
    let prog = basename(&c.words.first()?.text);
    let args = &c.words[1..];
    let out = match prog {
        "echo" => {
            let skip = args
                .iter()
                .take_while(|a| matches!(a.text.as_str(), "-n" | "-e" | "-E"))
                .count();
            join_words(&args[skip..]).replace("\\n", " ")
        }
        "printf" => {
            let f = args.first()?;
            if f.text.contains('%') {
                return None;
            }
            f.text.replace("\\n", " ").replace("\\t", " ")
        }
        "which" | "command" | "type" | "readlink" | "realpath" => args
            .iter()
            .rev()
            .find(|a| !a.text.starts_with('-'))?
            .text
            .clone(),
        _ => return None,
    };
    let words: Vec<Word> = out
        .split_whitespace()
        .map(|t| Word {
            text: t.to_owned(),
            flags: QUOTED,
            subst: None,
        })
        .collect();
    (!words.is_empty()).then_some(words)
}

fn dynamic_why(w: &Word) -> &'static str {
    use super::syntax::{ANSI_C, BRACE, CMD_SUBST, GLOB};
    if w.has(ANSI_C) {
        "it uses ANSI-C quoting ($'…'), which can hide a command name"
    } else if w.has(CMD_SUBST) {
        "it is the output of a command substitution"
    } else if w.has(PROC_SUBST) {
        "it is a process substitution"
    } else if w.has(GLOB | BRACE) {
        "it is a glob or brace pattern"
    } else {
        "it comes from a variable"
    }
}

/// The content of what a command reads on stdin, when it is a script the policy can see.
enum Stdin {
    /// Nothing piped or redirected (interactive) or a file.
    NotAScript,
    Script(String),
    Opaque(String),
}

fn stdin_source(cmd: &Cmd, cmds: &[Cmd], ci: usize) -> Stdin {
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
            super::rules::short(other)
        )),
    }
}

/// Unwraps one simple command.
pub(super) fn unwrap<'a>(
    cmd: &'a Cmd,
    cmds: &'a [Cmd],
    ci: usize,
    parsed: &'a Parsed,
    interpreters: &[String],
    steps: &mut u64,
) -> Unwrapped<'a> {
    let mut out = Unwrapped::default();
    let mut store: Vec<Cow<'a, [Word]>> = vec![Cow::Borrowed(cmd.words.as_slice())];
    // suffix table: plain_from[i] = words i.. are all plain (for `eval` unwrapping)
    let mut plain_from: Option<Vec<bool>> = None;
    let mut seeds = vec![ViewRef {
        store: 0,
        start: 0,
        end: cmd.words.len(),
        unknown_args: false,
        original: true,
    }];
    while let Some(seed) = seeds.pop() {
        let ViewRef {
            store: si,
            mut start,
            end,
            mut unknown_args,
            mut original,
        } = seed;
        loop {
            *steps += 1;
            let words: &[Word] = match store.get(si) {
                Some(s) => s.get(..end).unwrap_or_default(),
                None => break,
            };
            let Some(w0) = words.get(start) else { break };
            if w0.is_dynamic() {
                if let Some(repl) = static_subst(w0, parsed) {
                    let mut v: Vec<Word> = repl;
                    v.extend_from_slice(&words[start + 1..]);
                    let n = v.len();
                    store.push(Cow::Owned(v));
                    seeds.push(ViewRef {
                        store: store.len() - 1,
                        start: 0,
                        end: n,
                        unknown_args,
                        original,
                    });
                    break;
                }
                if out.dynamic.is_none() {
                    out.dynamic = Some(format!(
                        "command name `{}`: {}",
                        super::rules::short(&w0.text),
                        dynamic_why(w0)
                    ));
                }
                break;
            }
            out.views.push(ViewRef {
                store: si,
                start,
                end,
                unknown_args,
                original,
            });
            original = false;
            let prog = basename(&w0.text);
            if SHELLS.contains(&prog) {
                shell(words, start, cmd, cmds, ci, &mut out);
                break;
            }
            if interpreters.iter().any(|i| i == prog) {
                interpreter(words, start, cmd, cmds, ci, &mut out);
                break;
            }
            match prog {
                "eval" => {
                    let plain = match (&plain_from, si) {
                        (Some(p), 0) => p.get(start + 1).copied().unwrap_or(true),
                        (None, 0) => {
                            let all = cmd.words.as_slice();
                            let mut p = vec![true; all.len() + 1];
                            for i in (0..all.len()).rev() {
                                p[i] = p[i + 1] && all[i].is_plain();
                            }
                            *steps += all.len() as u64;
                            let v = p.get(start + 1).copied().unwrap_or(true);
                            plain_from = Some(p);
                            v
                        }
                        _ => {
                            *steps += (end - start) as u64;
                            words[start + 1..].iter().all(Word::is_plain)
                        }
                    };
                    if plain {
                        start += 1;
                        continue;
                    }
                    *steps += (end - start) as u64;
                    out.scripts.push(join_words(&words[start + 1..]));
                    break;
                }
                "source" | "." => {
                    if let Some(w) = words.get(start + 1) {
                        if w.has(PROC_SUBST) {
                            out.opaque = Some(format!(
                                "`{prog}` runs the output of a process substitution"
                            ));
                        } else if w.text == "/dev/stdin" {
                            stdin_script(prog, cmd, cmds, ci, &mut out);
                        }
                    }
                    break;
                }
                "find" => {
                    let mut i = start + 1;
                    while i < end {
                        *steps += 1;
                        if matches!(
                            words[i].text.as_str(),
                            "-exec" | "-execdir" | "-ok" | "-okdir"
                        ) {
                            let s = i + 1;
                            let mut e = s;
                            while e < end && !matches!(words[e].text.as_str(), ";" | "+") {
                                e += 1;
                            }
                            *steps += (e - s) as u64;
                            seeds.push(ViewRef {
                                store: si,
                                start: s,
                                end: e,
                                unknown_args: false,
                                original: false,
                            });
                            i = e;
                        }
                        i += 1;
                    }
                    break;
                }
                "xargs" => {
                    let mut i = start + 1;
                    while let Some(w) = words.get(i) {
                        *steps += 1;
                        let t = w.text.as_str();
                        if t == "--" {
                            i += 1;
                            break;
                        }
                        if !t.starts_with('-') || t.len() < 2 {
                            break;
                        }
                        i += if XARGS_WITH_ARG.contains(&t) { 2 } else { 1 };
                    }
                    if i >= end {
                        break;
                    }
                    start = i;
                    unknown_args = true;
                    continue;
                }
                "watch" | "script" | "su" => {
                    // these run their argument through a shell
                    let mut i = start + 1;
                    let mut script: Option<String> = None;
                    while let Some(w) = words.get(i) {
                        *steps += 1;
                        let t = w.text.as_str();
                        if prog != "watch" && (t == "-c" || t == "--command") {
                            script = words.get(i + 1).map(|w| w.text.clone());
                            break;
                        }
                        if !t.starts_with('-') {
                            break;
                        }
                        i += if prog == "watch" && matches!(t, "-n" | "-d" | "--interval") {
                            2
                        } else {
                            1
                        };
                    }
                    if prog == "watch" && i < end {
                        script = Some(join_words(&words[i..]));
                    }
                    if let Some(s) = script {
                        out.scripts.push(s);
                    }
                    break;
                }
                _ => {}
            }
            let Some(spec) = wrapper(prog) else { break };
            match skip_wrapper(prog, &spec, words, start, end, steps) {
                Skip::Command(next, unknown_opts) => {
                    if unknown_opts {
                        // an option we do not know may take an argument: also look one and two
                        // words further (views only, not unwrapped again)
                        for alt in [next + 1, next + 2] {
                            if alt < end && !words[alt].is_dynamic() {
                                out.views.push(ViewRef {
                                    store: si,
                                    start: alt,
                                    end,
                                    unknown_args,
                                    original: false,
                                });
                            }
                        }
                    }
                    start = next;
                }
                Skip::Script(s) => {
                    out.scripts.push(s);
                    break;
                }
                Skip::NoCommand => break,
            }
        }
    }
    out.store = store;
    out
}

enum Skip {
    /// The wrapped command starts here; `true` when an unknown option was skipped.
    Command(usize, bool),
    /// `env -S 'script'`.
    Script(String),
    NoCommand,
}

fn skip_wrapper(
    prog: &str,
    spec: &WrapperSpec,
    words: &[Word],
    start: usize,
    end: usize,
    steps: &mut u64,
) -> Skip {
    let mut i = start + 1;
    let mut unknown_opts = false;
    while let Some(w) = words.get(i).filter(|_| i < end) {
        *steps += 1;
        let t = w.text.as_str();
        if t == "--" {
            i += 1;
            break;
        }
        if prog == "env" {
            if let Some(rest) = t
                .strip_prefix("-S")
                .or_else(|| t.strip_prefix("--split-string"))
            {
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                let (script, after) = if rest.is_empty() {
                    (words.get(i + 1).map(|w| w.text.clone()), i + 2)
                } else {
                    (Some(rest.to_owned()), i + 1)
                };
                let mut s = script.unwrap_or_default();
                if after < end {
                    s.push(' ');
                    s.push_str(&join_words(&words[after..end]));
                }
                return Skip::Script(s);
            }
            if is_assignment(t) {
                i += 1;
                continue;
            }
        }
        if !(t.starts_with('-') && t.len() > 1)
            || (prog == "nice" && t.starts_with("--") && t.len() == 2)
        {
            break;
        }
        if spec.no_command.contains(&t) {
            return Skip::NoCommand;
        }
        if spec.with_arg.contains(&t) {
            i += 2;
            continue;
        }
        let known = t.contains('=')
            || (t.len() > 2
                && !t.starts_with("--")
                && spec.with_arg.iter().any(|o| t.starts_with(o)))
            || t[1..].chars().all(|c| c.is_ascii_digit())
            || t.len() == 2;
        if !known {
            unknown_opts = true;
        }
        i += 1;
    }
    if spec.assignments {
        while words
            .get(i)
            .is_some_and(|w| i < end && is_assignment(&w.text))
        {
            i += 1;
        }
    }
    i += spec.positional;
    if i >= end {
        return Skip::NoCommand;
    }
    Skip::Command(i, unknown_opts)
}

/// `bash …`: a `-c` script, a script file, or a script read from stdin.
fn shell(
    words: &[Word],
    start: usize,
    cmd: &Cmd,
    cmds: &[Cmd],
    ci: usize,
    out: &mut Unwrapped<'_>,
) {
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
                    super::rules::short(&w.text)
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
    stdin_script(&prog, cmd, cmds, ci, out);
}

fn stdin_script(prog: &str, cmd: &Cmd, cmds: &[Cmd], ci: usize, out: &mut Unwrapped<'_>) {
    match stdin_source(cmd, cmds, ci) {
        Stdin::NotAScript => {}
        Stdin::Script(s) => out.scripts.push(s),
        Stdin::Opaque(why) => {
            out.opaque = Some(format!("`{prog}` reads its script from stdin and {why}"));
        }
    }
}

/// `python3`, `perl`…: only scripts they would read from an unknown stdin are refused.
fn interpreter(
    words: &[Word],
    start: usize,
    cmd: &Cmd,
    cmds: &[Cmd],
    ci: usize,
    out: &mut Unwrapped<'_>,
) {
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
    match stdin_source(cmd, cmds, ci) {
        Stdin::Opaque(why) => {
            out.opaque = Some(format!("`{prog}` reads its script from stdin and {why}"));
        }
        Stdin::NotAScript | Stdin::Script(_) => {}
    }
}
