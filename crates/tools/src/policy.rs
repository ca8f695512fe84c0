//! The command policy: which shell commands `bash`/`background_run` refuse.
//!
//! Commands are parsed into simple commands (split on `;`, `&&`, `||`, `|`, `&`, newlines,
//! subshells and command substitutions, quotes honoured, here-doc bodies and comments skipped,
//! wrappers like `env`/`nohup`/`timeout` and `sh -c '…'` unwrapped). Rules then match on the
//! command word and its arguments — never on substrings — so `echo halt` or
//! `grep shutdown log.txt` pass while `shutdown -h now` or `rm -rf /` do not. The rules are plain
//! data ([`PolicyRule`], serde-serializable); replace or extend [`CommandPolicy::rules`].

use serde::{Deserialize, Serialize};

/// One simple command: its words (leading `VAR=value` assignments removed) and the targets of
/// its output/input redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// Command word and arguments, quotes removed.
    pub words: Vec<String>,
    /// Redirection targets (`> file`, `>> file`, `2> file`, `< file`).
    pub redirects: Vec<String>,
}

impl SimpleCommand {
    /// The basename of the command word (`/usr/sbin/reboot` → `reboot`).
    pub fn program(&self) -> Option<&str> {
        self.words
            .first()
            .map(|w| w.rsplit('/').next().unwrap_or(w.as_str()))
    }
}

/// How a rule recognises a dangerous command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RuleMatch {
    /// The program (basename) is one of `names`; a trailing `*` matches a prefix (`mkfs.*`).
    Program {
        /// Program names or prefixes.
        names: Vec<String>,
    },
    /// The program is `program` and one of its arguments equals one of `args`
    /// (e.g. `systemctl reboot`, `init 0`).
    ProgramWithArg {
        /// Program name.
        program: String,
        /// Argument values that make it dangerous.
        args: Vec<String>,
    },
    /// The program is one of `programs`, carries one of `flags` (short letters inside a `-xyz`
    /// group, or long `--flag`), and targets a protected path: exactly one of `protected`, a
    /// path below one of `protected_trees`, or the home directory (`~`, `$HOME`).
    ProtectedTarget {
        /// Programs (e.g. `rm`, `chmod`, `chown`).
        programs: Vec<String>,
        /// Flags that make it dangerous: single letters (`r`, `f`) or long flags (`--recursive`).
        flags: Vec<String>,
        /// Paths protected exactly (e.g. `/`, `/*`).
        protected: Vec<String>,
        /// Directories protected with everything below them (e.g. `/etc`, `/usr`).
        protected_trees: Vec<String>,
    },
    /// Writes to a raw device: a redirection to, or a `of=` argument naming, a path starting
    /// with one of `device_prefixes`; or one of `programs` taking such a path as argument.
    DeviceWrite {
        /// Device path prefixes (e.g. `/dev/sd`).
        device_prefixes: Vec<String>,
        /// Programs that destroy a device given as plain argument (e.g. `shred`, `wipefs`).
        programs: Vec<String>,
    },
    /// A shell fork bomb: a function whose body pipes itself into itself in the background
    /// (`:(){ :|:& };:`).
    ForkBomb,
    /// A regular expression matched against each simple command's words joined by spaces.
    Regex {
        /// The pattern (Rust `regex` syntax).
        pattern: String,
    },
}

/// A named rule with the reason shown when it blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    /// Stable identifier (e.g. `power`).
    pub id: String,
    /// Why it is blocked, shown to the model.
    pub reason: String,
    /// What it matches.
    #[serde(rename = "match")]
    pub matcher: RuleMatch,
}

/// The verdict for one command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyDecision {
    /// Nothing matched.
    Allow,
    /// A rule matched.
    Deny {
        /// The rule id.
        rule: String,
        /// The rule's reason.
        reason: String,
        /// The offending simple command, words joined by spaces.
        command: String,
    },
}

/// The rule set applied to shell commands. `CommandPolicy::default()` holds the built-in rules;
/// `CommandPolicy { rules: vec![] }` allows everything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandPolicy {
    /// The rules, checked in order; the first match denies.
    pub rules: Vec<PolicyRule>,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var",
];

impl Default for CommandPolicy {
    fn default() -> Self {
        CommandPolicy {
            rules: vec![
                PolicyRule {
                    id: "privileged".into(),
                    reason: "privilege escalation (sudo/su/doas) is not allowed".into(),
                    matcher: RuleMatch::Program {
                        names: strings(&["sudo", "su", "doas", "pkexec"]),
                    },
                },
                PolicyRule {
                    id: "power".into(),
                    reason: "shutting down or rebooting the machine is not allowed".into(),
                    matcher: RuleMatch::Program {
                        names: strings(&["shutdown", "reboot", "halt", "poweroff", "kexec"]),
                    },
                },
                PolicyRule {
                    id: "power_systemctl".into(),
                    reason: "shutting down or rebooting the machine is not allowed".into(),
                    matcher: RuleMatch::ProgramWithArg {
                        program: "systemctl".into(),
                        args: strings(&[
                            "poweroff",
                            "reboot",
                            "halt",
                            "kexec",
                            "suspend",
                            "hibernate",
                        ]),
                    },
                },
                PolicyRule {
                    id: "power_init".into(),
                    reason: "changing the init runlevel is not allowed".into(),
                    matcher: RuleMatch::ProgramWithArg {
                        program: "init".into(),
                        args: strings(&["0", "6"]),
                    },
                },
                PolicyRule {
                    id: "filesystem_format".into(),
                    reason: "formatting or repartitioning disks is not allowed".into(),
                    matcher: RuleMatch::Program {
                        names: strings(&[
                            "mkfs", "mkfs.*", "mke2fs", "mkswap", "wipefs", "fdisk", "sfdisk",
                            "cfdisk", "parted", "diskutil",
                        ]),
                    },
                },
                PolicyRule {
                    id: "recursive_delete_system".into(),
                    reason: "refusing recursive/forced deletion of a root, home or system path"
                        .into(),
                    matcher: RuleMatch::ProtectedTarget {
                        programs: strings(&["rm"]),
                        flags: strings(&[
                            "r",
                            "R",
                            "f",
                            "--recursive",
                            "--force",
                            "--no-preserve-root",
                        ]),
                        protected: strings(&["/", "/*", "~", "~/", "~/*", "$HOME", "${HOME}"]),
                        protected_trees: strings(SYSTEM_TREES),
                    },
                },
                PolicyRule {
                    id: "recursive_permissions_system".into(),
                    reason: "refusing recursive permission/owner changes of a root or system path"
                        .into(),
                    matcher: RuleMatch::ProtectedTarget {
                        programs: strings(&["chmod", "chown", "chgrp"]),
                        flags: strings(&["R", "--recursive"]),
                        protected: strings(&["/", "/*", "~", "~/", "$HOME", "${HOME}"]),
                        protected_trees: strings(SYSTEM_TREES),
                    },
                },
                PolicyRule {
                    id: "raw_device_write".into(),
                    reason: "refusing to write to a raw device".into(),
                    matcher: RuleMatch::DeviceWrite {
                        device_prefixes: strings(&[
                            "/dev/sd",
                            "/dev/hd",
                            "/dev/vd",
                            "/dev/xvd",
                            "/dev/nvme",
                            "/dev/mmcblk",
                            "/dev/disk",
                            "/dev/rdisk",
                            "/dev/mem",
                            "/dev/kmem",
                            "/dev/port",
                            "/dev/loop",
                            "/dev/dm-",
                            "/dev/md",
                            "/dev/mapper/",
                        ]),
                        programs: strings(&["shred", "wipefs", "blkdiscard", "badblocks"]),
                    },
                },
                PolicyRule {
                    id: "fork_bomb".into(),
                    reason: "fork bombs are not allowed".into(),
                    matcher: RuleMatch::ForkBomb,
                },
            ],
        }
    }
}

const WRAPPERS: &[&str] = &[
    "env", "nohup", "exec", "command", "builtin", "time", "nice", "ionice", "stdbuf", "timeout",
    "xargs", "setsid", "unbuffer", "busybox", "chrt", "taskset", "watch", "strace", "then", "do",
    "else", "!",
];
const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "fish"];

fn program_matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

fn has_flag(words: &[String], flags: &[String]) -> bool {
    words.iter().skip(1).any(|w| {
        if w.starts_with("--") {
            flags.iter().any(|f| f == w)
        } else if let Some(letters) = w.strip_prefix('-') {
            !letters.is_empty()
                && letters.chars().all(|c| c.is_ascii_alphabetic())
                && letters
                    .chars()
                    .any(|c| flags.iter().any(|f| f.len() == 1 && f.starts_with(c)))
        } else {
            false
        }
    })
}

fn normalize_target(t: &str) -> String {
    let mut s = t.to_owned();
    while s.len() > 1 && s.ends_with('/') && !s.ends_with("*/") {
        s.pop();
    }
    // collapse `//` and `/./`
    while s.contains("//") {
        s = s.replace("//", "/");
    }
    s = s.replace("/./", "/");
    if s.len() > 2 && s.ends_with("/.") {
        s.truncate(s.len() - 2);
    }
    if s.is_empty() { "/".to_owned() } else { s }
}

fn is_protected(target: &str, protected: &[String], trees: &[String]) -> bool {
    let t = normalize_target(target);
    if protected
        .iter()
        .any(|p| *p == t || normalize_target(p) == t)
    {
        return true;
    }
    if t.starts_with("~/") || t.starts_with("$HOME/") || t.starts_with("${HOME}/") {
        // everything in the user's home counts as protected when `~` is
        return protected.iter().any(|p| p == "~");
    }
    trees.iter().any(|tree| {
        t == *tree
            || t.strip_prefix(tree.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn is_fork_bomb(raw: &str) -> bool {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes: Vec<char> = compact.chars().collect();
    // find NAME(){ … NAME|NAME& … }
    let mut i = 0;
    while let Some(pos) = compact[i..].find("(){") {
        let start = i + pos;
        let name: String = compact[..start]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':' || *c == '.')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !name.is_empty() {
            let body = &compact[start + 3..];
            if body.contains(&format!("{name}|{name}&"))
                || body.contains(&format!("{name}&|{name}"))
            {
                return true;
            }
        }
        i = start + 3;
        if i >= bytes.len() {
            break;
        }
    }
    false
}

impl CommandPolicy {
    /// A policy that allows everything.
    pub fn allow_all() -> Self {
        CommandPolicy { rules: Vec::new() }
    }

    /// Adds a rule at the end.
    pub fn with_rule(mut self, rule: PolicyRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Checks a command line.
    pub fn check(&self, command: &str) -> PolicyDecision {
        for rule in &self.rules {
            if matches!(rule.matcher, RuleMatch::ForkBomb) && is_fork_bomb(command) {
                return PolicyDecision::Deny {
                    rule: rule.id.clone(),
                    reason: rule.reason.clone(),
                    command: command.trim().to_owned(),
                };
            }
        }
        let mut queue = split_commands(command);
        let mut seen = 0usize;
        while let Some(cmd) = queue.pop() {
            seen += 1;
            if seen > 10_000 {
                break;
            }
            for view in unwrap(&cmd, &mut queue) {
                if let Some(d) = self.check_simple(&view) {
                    return d;
                }
            }
        }
        PolicyDecision::Allow
    }

    fn check_simple(&self, cmd: &SimpleCommand) -> Option<PolicyDecision> {
        let prog = cmd.program().unwrap_or("");
        for rule in &self.rules {
            let hit = match &rule.matcher {
                RuleMatch::Program { names } => {
                    !prog.is_empty() && names.iter().any(|n| program_matches(prog, n))
                }
                RuleMatch::ProgramWithArg { program, args } => {
                    prog == program && cmd.words.iter().skip(1).any(|w| args.contains(w))
                }
                RuleMatch::ProtectedTarget {
                    programs,
                    flags,
                    protected,
                    protected_trees,
                } => {
                    programs.iter().any(|p| p == prog)
                        && has_flag(&cmd.words, flags)
                        && cmd
                            .words
                            .iter()
                            .skip(1)
                            .filter(|w| !w.starts_with('-'))
                            .any(|w| is_protected(w, protected, protected_trees))
                }
                RuleMatch::DeviceWrite {
                    device_prefixes,
                    programs,
                } => {
                    let is_dev = |p: &str| device_prefixes.iter().any(|d| p.starts_with(d));
                    cmd.redirects.iter().any(|r| is_dev(r))
                        || cmd.words.iter().skip(1).any(|w| {
                            w.strip_prefix("of=").is_some_and(is_dev)
                                || (programs.iter().any(|p| p == prog) && is_dev(w))
                        })
                }
                RuleMatch::ForkBomb => false,
                RuleMatch::Regex { pattern } => regex::Regex::new(pattern)
                    .map(|re| re.is_match(&cmd.words.join(" ")))
                    .unwrap_or(false),
            };
            if hit {
                return Some(PolicyDecision::Deny {
                    rule: rule.id.clone(),
                    reason: rule.reason.clone(),
                    command: cmd.words.join(" "),
                });
            }
        }
        None
    }
}

/// The views of a simple command the rules look at: itself and, after stripping wrappers
/// (`env`, `nohup`, `timeout 5`…), the wrapped command. `sh -c 'script'` and `eval …` push
/// the parsed script onto `queue`.
fn unwrap(cmd: &SimpleCommand, queue: &mut Vec<SimpleCommand>) -> Vec<SimpleCommand> {
    let mut views = vec![cmd.clone()];
    let mut cur = cmd.clone();
    for _ in 0..8 {
        let Some(prog) = cur.program().map(str::to_owned) else {
            break;
        };
        if SHELLS.contains(&prog.as_str()) {
            if let Some(i) = cur
                .words
                .iter()
                .position(|w| w.starts_with('-') && !w.starts_with("--") && w.contains('c'))
                && let Some(script) = cur.words.get(i + 1)
            {
                queue.extend(split_commands(script));
            }
            break;
        }
        if prog == "eval" {
            queue.extend(split_commands(&cur.words[1..].join(" ")));
            break;
        }
        if !WRAPPERS.contains(&prog.as_str()) {
            break;
        }
        let mut rest: Vec<String> = cur.words[1..].to_vec();
        // drop wrapper options and env-style assignments
        while let Some(first) = rest.first() {
            let is_opt = first.starts_with('-') && first.len() > 1;
            let is_assign = prog == "env" && is_assignment(first);
            let is_num = matches!(prog.as_str(), "timeout" | "nice" | "chrt" | "taskset")
                && first.chars().next().is_some_and(|c| c.is_ascii_digit());
            if is_opt || is_assign || is_num {
                rest.remove(0);
            } else {
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        cur = SimpleCommand {
            words: rest,
            redirects: cur.redirects.clone(),
        };
        views.push(cur.clone());
    }
    views
}

fn is_assignment(w: &str) -> bool {
    let Some(eq) = w.find('=') else { return false };
    let name = &w[..eq];
    !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "case", "esac", "{", "}",
    "!", "time", "function",
];

/// Splits a shell command line into simple commands (see the module docs).
pub fn split_commands(input: &str) -> Vec<SimpleCommand> {
    Splitter::new(input).run()
}

struct Splitter<'a> {
    chars: Vec<char>,
    pos: usize,
    out: Vec<SimpleCommand>,
    cur: SimpleCommand,
    word: String,
    in_word: bool,
    redirect_next: bool,
    heredocs: Vec<String>,
    _src: &'a str,
}

impl<'a> Splitter<'a> {
    fn new(src: &'a str) -> Self {
        Splitter {
            chars: src.chars().collect(),
            pos: 0,
            out: Vec::new(),
            cur: SimpleCommand::default(),
            word: String::new(),
            in_word: false,
            redirect_next: false,
            heredocs: Vec::new(),
            _src: src,
        }
    }

    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        let w = std::mem::take(&mut self.word);
        self.in_word = false;
        if self.redirect_next {
            self.redirect_next = false;
            self.cur.redirects.push(w);
            return;
        }
        if self.cur.words.is_empty() && (is_assignment(&w) || KEYWORDS.contains(&w.as_str())) {
            return;
        }
        self.cur.words.push(w);
    }

    fn end_command(&mut self) {
        self.end_word();
        self.redirect_next = false;
        let c = std::mem::take(&mut self.cur);
        if !c.words.is_empty() || !c.redirects.is_empty() {
            self.out.push(c);
        }
    }

    /// Reads a `$( … )` / `` ` … ` `` body starting after the opener; returns the body.
    fn read_subst(&mut self, close: char) -> String {
        let mut depth = 1;
        let mut body = String::new();
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos];
            self.pos += 1;
            if close == ')' {
                if c == '(' {
                    depth += 1;
                } else if c == ')' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
            } else if c == close {
                break;
            }
            body.push(c);
        }
        body
    }

    fn skip_heredocs(&mut self) {
        let delims = std::mem::take(&mut self.heredocs);
        for d in delims {
            // skip lines until one equals the delimiter (tabs trimmed for <<-)
            loop {
                if self.pos >= self.chars.len() {
                    return;
                }
                let start = self.pos;
                while self.pos < self.chars.len() && self.chars[self.pos] != '\n' {
                    self.pos += 1;
                }
                let line: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1; // newline
                if line.trim_start_matches('\t') == d {
                    break;
                }
            }
        }
    }

    fn run(mut self) -> Vec<SimpleCommand> {
        let mut nested: Vec<String> = Vec::new();
        while self.pos < self.chars.len() {
            let c = self.chars[self.pos];
            self.pos += 1;
            match c {
                '\'' => {
                    self.in_word = true;
                    while self.pos < self.chars.len() && self.chars[self.pos] != '\'' {
                        self.word.push(self.chars[self.pos]);
                        self.pos += 1;
                    }
                    self.pos += 1;
                }
                '"' => {
                    self.in_word = true;
                    while self.pos < self.chars.len() && self.chars[self.pos] != '"' {
                        let d = self.chars[self.pos];
                        self.pos += 1;
                        if d == '\\' && self.pos < self.chars.len() {
                            let e = self.chars[self.pos];
                            if matches!(e, '"' | '\\' | '$' | '`') {
                                self.word.push(e);
                                self.pos += 1;
                                continue;
                            }
                            self.word.push('\\');
                        } else if d == '$'
                            && self.pos < self.chars.len()
                            && self.chars[self.pos] == '('
                        {
                            self.pos += 1;
                            nested.push(self.read_subst(')'));
                            self.word.push_str("$(…)");
                        } else if d == '`' {
                            nested.push(self.read_subst('`'));
                            self.word.push_str("$(…)");
                        } else {
                            self.word.push(d);
                        }
                    }
                    self.pos += 1;
                }
                '\\' => {
                    if self.pos < self.chars.len() {
                        let e = self.chars[self.pos];
                        self.pos += 1;
                        if e != '\n' {
                            self.in_word = true;
                            self.word.push(e);
                        }
                    }
                }
                '$' if self.chars.get(self.pos) == Some(&'(') => {
                    self.pos += 1;
                    nested.push(self.read_subst(')'));
                    self.in_word = true;
                    self.word.push_str("$(…)");
                }
                '`' => {
                    nested.push(self.read_subst('`'));
                    self.in_word = true;
                    self.word.push_str("$(…)");
                }
                '#' if !self.in_word => {
                    while self.pos < self.chars.len() && self.chars[self.pos] != '\n' {
                        self.pos += 1;
                    }
                }
                ' ' | '\t' => self.end_word(),
                '\n' => {
                    self.end_command();
                    self.skip_heredocs();
                }
                ';' | '&' | '|' | '(' | ')' => {
                    if c == '&' && self.chars.get(self.pos) == Some(&'>') {
                        // `&>file`
                        self.end_word();
                        self.pos += 1;
                        if self.chars.get(self.pos) == Some(&'>') {
                            self.pos += 1;
                        }
                        self.redirect_next = true;
                        continue;
                    }
                    self.end_command();
                }
                '>' | '<' => {
                    // a pure-digit word right before is an fd number
                    if self.in_word && self.word.chars().all(|d| d.is_ascii_digit()) {
                        self.word.clear();
                        self.in_word = false;
                    } else {
                        self.end_word();
                    }
                    if c == '<' && self.chars.get(self.pos) == Some(&'<') {
                        self.pos += 1;
                        if self.chars.get(self.pos) == Some(&'<') {
                            // here-string: the next word is data
                            self.pos += 1;
                            self.redirect_next = true;
                            continue;
                        }
                        if self.chars.get(self.pos) == Some(&'-') {
                            self.pos += 1;
                        }
                        while self.chars.get(self.pos).is_some_and(|c| *c == ' ') {
                            self.pos += 1;
                        }
                        let mut delim = String::new();
                        while let Some(&d) = self.chars.get(self.pos) {
                            if d.is_whitespace() || matches!(d, ';' | '&' | '|' | '<' | '>') {
                                break;
                            }
                            if d != '\'' && d != '"' {
                                delim.push(d);
                            }
                            self.pos += 1;
                        }
                        self.heredocs.push(delim);
                        continue;
                    }
                    while matches!(self.chars.get(self.pos), Some('>') | Some('|') | Some('&')) {
                        if self.chars.get(self.pos) == Some(&'&') {
                            // `>&2`: duplicate fd, target is a number
                            self.pos += 1;
                            break;
                        }
                        self.pos += 1;
                    }
                    self.redirect_next = true;
                }
                c => {
                    self.in_word = true;
                    self.word.push(c);
                }
            }
        }
        self.end_command();
        for body in nested {
            self.out.extend(split_commands(&body));
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Vec<String>> {
        split_commands(s).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn splits_on_operators_and_quotes() {
        assert_eq!(
            words("echo 'a;b' && ls -l | wc -l; x=1 cat \"f g\""),
            vec![
                vec!["echo", "a;b"],
                vec!["ls", "-l"],
                vec!["wc", "-l"],
                vec!["cat", "f g"]
            ]
        );
        let c = &split_commands("echo hi > out.txt 2>&1")[0];
        assert_eq!(c.words, vec!["echo", "hi"]);
        assert_eq!(c.redirects, vec!["out.txt", "1"]);
        assert_eq!(
            words("cat <<EOF\nshutdown now\nEOF\necho ok"),
            vec![vec!["cat"], vec!["echo", "ok"]]
        );
        assert_eq!(
            words("echo $(reboot)"),
            vec![vec!["echo", "$(…)"], vec!["reboot"]]
        );
    }

    #[test]
    fn policy_table() {
        let p = CommandPolicy::default();
        let allowed = [
            "echo halt",
            "grep shutdown log.txt",
            "cat reboot.md",
            "ls -la",
            "rm -rf build",
            "rm -rf ./target/debug",
            "rm -rf /tmp/work-123",
            "echo 'rm -rf /'",
            "git commit -m 'reboot the plan'",
            "man dd",
            "echo dd",
            "python3 -c 'print(1)'",
            "cat /dev/null > out.txt",
            "echo x > /dev/null",
            "find . -name '*.rs' | xargs grep -n shutdown",
            "printf 'mkfs\\n'",
            "echo su",
            "chmod -R 755 ./scripts",
            "dd if=/dev/zero of=./disk.img bs=1M count=1",
        ];
        for c in allowed {
            assert_eq!(p.check(c), PolicyDecision::Allow, "should allow: {c}");
        }
        let blocked = [
            ("rm -rf /", "recursive_delete_system"),
            ("rm -rf / --no-preserve-root", "recursive_delete_system"),
            ("rm -fr /*", "recursive_delete_system"),
            ("rm -r ~", "recursive_delete_system"),
            ("rm -rf $HOME", "recursive_delete_system"),
            ("rm -rf /etc", "recursive_delete_system"),
            ("rm -rf /usr/lib/", "recursive_delete_system"),
            ("cd x && rm -Rf //", "recursive_delete_system"),
            ("sudo ls", "privileged"),
            ("su -", "privileged"),
            ("shutdown -h now", "power"),
            ("/sbin/reboot", "power"),
            ("halt", "power"),
            ("echo ok; poweroff", "power"),
            ("systemctl reboot", "power_systemctl"),
            ("mkfs -t ext4 /dev/sda1", "filesystem_format"),
            ("mkfs.ext4 /dev/sdb", "filesystem_format"),
            ("dd if=/dev/zero of=/dev/sda", "raw_device_write"),
            ("cat img > /dev/nvme0n1", "raw_device_write"),
            ("shred /dev/sda", "raw_device_write"),
            (":(){ :|:& };:", "fork_bomb"),
            ("bomb() { bomb | bomb & }; bomb", "fork_bomb"),
            ("bash -c 'rm -rf /'", "recursive_delete_system"),
            ("sh -c \"shutdown now\"", "power"),
            ("env FOO=1 reboot", "power"),
            ("nohup timeout 5 reboot &", "power"),
            ("echo $(reboot)", "power"),
            ("echo `halt`", "power"),
            ("eval 'reboot'", "power"),
            ("if true; then reboot; fi", "power"),
            ("chmod -R 777 /", "recursive_permissions_system"),
        ];
        for (c, rule) in blocked {
            match p.check(c) {
                PolicyDecision::Deny { rule: r, .. } => assert_eq!(r, rule, "{c}"),
                PolicyDecision::Allow => panic!("should block: {c}"),
            }
        }
    }

    #[test]
    fn rules_are_data() {
        let json = serde_json::to_string(&CommandPolicy::default()).unwrap();
        let back: CommandPolicy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, CommandPolicy::default());
        let custom = CommandPolicy::allow_all().with_rule(PolicyRule {
            id: "no_curl".into(),
            reason: "no downloads".into(),
            matcher: RuleMatch::Program {
                names: vec!["curl".into()],
            },
        });
        assert!(matches!(
            custom.check("curl x"),
            PolicyDecision::Deny { .. }
        ));
        assert_eq!(custom.check("reboot"), PolicyDecision::Allow);
    }
}
