//! Unwrapping: from one simple command, the commands it really runs. Wrappers (`env`,
//! `timeout`, `nice`, `xargs`, `sudo`, `eval` with plain words…) are stripped by moving a start
//! index, so a chain of n wrappers costs O(n). Scripts handed to a shell (`sh -c`, `eval`,
//! `env -S`, `watch`, here-documents, here-strings, `echo … | sh`) are returned as text for the
//! caller to lex one level deeper. Nothing here recurses.

use std::borrow::Cow;

mod shells;
mod wrappers;

use shells::{Piped, interpreter, shell, stdin_script};
use wrappers::{Skip, skip_wrapper, wrapper};

use super::defaults::SHELLS;
use super::syntax::{Cmd, PROC_SUBST, Parsed, QUOTED, Word, basename};

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
    let at = Piped { cmd, cmds, ci };
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
                shell(words, start, at, &mut out);
                break;
            }
            if interpreters.iter().any(|i| i == prog) {
                interpreter(words, start, at, &mut out);
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
                            stdin_script(prog, at, &mut out);
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
