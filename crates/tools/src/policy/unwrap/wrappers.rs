//! Wrapper commands (`env`, `timeout`, `nice`, `sudo`…): which options take an argument and
//! where the wrapped command starts.

use super::join_words;
use crate::policy::syntax::{Word, is_assignment};

/// How a wrapper takes its options before the command.
pub(super) struct WrapperSpec {
    /// Options that take the next word as argument.
    with_arg: &'static [&'static str],
    /// Positional words before the command (`timeout DURATION`).
    positional: usize,
    /// `NAME=value` words may precede the command.
    assignments: bool,
    /// Options after which no command follows (`ionice -p`, `command -v`).
    no_command: &'static [&'static str],
}

pub(super) fn wrapper(prog: &str) -> Option<WrapperSpec> {
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

pub(super) enum Skip {
    /// The wrapped command starts here; `true` when an unknown option was skipped.
    Command(usize, bool),
    /// `env -S 'script'`.
    Script(String),
    NoCommand,
}

pub(super) fn skip_wrapper(
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
