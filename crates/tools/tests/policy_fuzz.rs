//! Property tests: random shell lines built from a grammar of shell fragments (quotes,
//! substitutions, here-documents, pipes, wrappers, destructive commands…). The policy never
//! panics or overflows the stack, stays within its step budget, and denies every line that holds
//! a destructive command in command position.

use power_loop_tools::{CommandPolicy, PolicyContext, PolicyDecision, STEPS_BASE, STEPS_PER_BYTE};
use proptest::prelude::*;

/// Commands that the default policy must deny wherever they run.
const DESTRUCTIVE: &[&str] = &[
    "rm -rf /",
    "rm -fr /etc",
    "rm -r ~",
    "rm -rf /usr/*",
    "reboot",
    "shutdown -h now",
    "halt",
    "poweroff",
    "su -",
    "sudo id",
    "mkfs.ext4 /dev/sdb",
    "dd if=/dev/zero of=/dev/sda",
    "chmod -R 777 /",
    "systemctl reboot",
    "kill -9 -1",
    "find / -delete",
    "mv /etc /tmp/e",
];

const HARMLESS: &[&str] = &[
    "echo hi",
    "ls -la",
    "true",
    "cargo test",
    "git status",
    "cat README.md",
    "grep -n x f",
    "wc -l",
    "sort",
    "echo halt",
];

const WRAPPERS: &[&str] = &[
    "",
    "env ",
    "env -u X ",
    "nohup ",
    "timeout 5 ",
    "timeout -s KILL 5 ",
    "nice -n 5 ",
    "command ",
    "exec ",
    "setsid ",
    "stdbuf -oL ",
    "time ",
    "xargs ",
    "eval ",
    "builtin ",
];

/// A simple command in command position, optionally wrapped.
fn simple(cmds: &'static [&'static str]) -> impl Strategy<Value = String> {
    (prop::sample::select(WRAPPERS), prop::sample::select(cmds))
        .prop_map(|(w, c)| format!("{w}{c}"))
}

/// Noise: words and fragments that do not change whether a command runs.
fn noise() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "echo 'a;b|c'",
        "echo \"x $(echo y)\"",
        "echo `date`",
        "x=1",
        "echo ${HOME:-/}",
        "echo $((1+2))",
        "cat <<'EOF'\nrm -rf /\nEOF\ntrue",
        "echo ':(){ :|:& };:'",
        "# comment rm -rf /\ntrue",
        "echo '\"'",
        "echo \"'\"",
        "true",
        "diff <(ls) <(ls)",
        "(( i++ ))",
        "arr=(a b)",
    ])
    .prop_map(str::to_owned)
}

/// Single-quotes `s` for the shell.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Double-quotes `s` for the shell.
fn dq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Wraps a command in a context where it still runs (`level` keeps here-document delimiters
/// of nested levels apart).
fn runs(cmd: String, ctx: u8, level: usize) -> String {
    match ctx % 14 {
        0 => cmd,
        1 => format!("bash -c {}", sq(&cmd)),
        2 => format!("sh -c {}", dq(&cmd)),
        3 => format!("echo $({cmd}\n)"),
        4 => format!("echo \"$({cmd}\n)\""),
        5 => format!("({cmd}\n)"),
        6 => format!("{{ {cmd}\n}}"),
        7 => format!("if true; then {cmd}\nfi"),
        8 => format!("f() {{ {cmd}\n}}; f"),
        9 => format!("bash <<E{level}\n{cmd}\nE{level}\n"),
        10 => format!("echo {} | bash", sq(&cmd)),
        11 => format!("bash <<< {}", sq(&cmd)),
        12 => format!("cat <( {cmd}\n)"),
        _ => format!("for i in 1; do {cmd}\ndone"),
    }
}

fn joiner() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["; ", " && ", " || ", " | ", "\n", " & "])
}

/// A line holding at least one destructive command somewhere in command position.
fn dangerous_line() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![noise(), simple(HARMLESS)], 0..4),
        simple(DESTRUCTIVE),
        prop::collection::vec(any::<u8>(), 1..3),
        prop::collection::vec(prop_oneof![noise(), simple(HARMLESS)], 0..4),
        prop::collection::vec(joiner(), 8),
    )
        .prop_map(|(before, bad, ctxs, after, joins)| {
            let mut cmd = bad;
            for (level, c) in ctxs.into_iter().enumerate() {
                cmd = runs(cmd, c, level);
            }
            let mut parts = before;
            parts.push(cmd);
            parts.extend(after);
            let mut line = String::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    line.push_str(joins[i % joins.len()]);
                }
                line.push_str(p);
            }
            line
        })
}

/// Arbitrary fragments, balanced or not: the parser must survive them.
fn any_line() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "$(", ")", "`", "'", "\"", "\\", "<<", "<<-", "EOF", "\n", ";", "&&", "|", "&", "(",
            "{", "}", "${", "$((", "))", "<(", ">(", "$'", "<<<", " ", "rm", "-rf", "/", "*",
            "eval", "bash -c", "env -S", "case", "in", "esac", "function", "f()", "#", "~", "$IFS",
            "..", "=", "[", "]", "!", "reboot", "x",
        ]),
        0..120,
    )
    .prop_map(|v| v.concat())
}

fn ctx() -> PolicyContext {
    PolicyContext::new()
        .with_workspace("/home/dev/ws")
        .with_user_home("/home/dev")
        .with_agent_home("/home/dev/.agent", vec!["/home/dev/.agent/.cache".into()])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn destructive_commands_in_command_position_are_denied(line in dangerous_line()) {
        let a = CommandPolicy::default().analyze(&line, &ctx());
        prop_assert!(
            matches!(a.decision, PolicyDecision::Deny { .. }),
            "allowed: {line:?}"
        );
    }

    #[test]
    fn random_lines_never_panic_and_stay_in_budget(line in any_line()) {
        let a = CommandPolicy::default().analyze(&line, &ctx());
        prop_assert!(a.steps <= STEPS_PER_BYTE * line.len() as u64 + STEPS_BASE + 64);
        let _ = power_loop_tools::split_commands(&line);
    }

    #[test]
    fn nested_random_lines_do_not_overflow(depth in 1usize..20_000, inner in any_line()) {
        let line = format!("{}{inner}{}", "$(".repeat(depth), ")".repeat(depth));
        let a = CommandPolicy::default().analyze(&line, &ctx());
        if depth > power_loop_tools::MAX_NESTING {
            prop_assert!(a.decision.is_deny());
        }
    }
}
