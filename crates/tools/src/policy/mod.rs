//! The command policy: which shell commands `bash`/`background_run` refuse.
//!
//! A guard rail, not a boundary: it reads the command text before the shell runs it and stops
//! the obvious and the obfuscated-but-visible ways to damage the host. The sandbox
//! ([`BubblewrapShell`](crate::BubblewrapShell)) is what actually contains a command. See
//! `docs/command-policy.md` for what it blocks and where it stops.
//!
//! How it decides, in order (the first denial wins):
//! 1. **Lex** ([`lexer`]): one pass, explicit stacks, no recursion: quotes, `$'…'`, `$(…)`,
//!    backquotes, `${…}`, `$((…))`, process substitution, here-documents and here-strings,
//!    groups, subshells, functions, `case`. Each word keeps flags saying whether its value is
//!    known before the shell runs (variables, globs, brace expansion, ANSI-C quoting…).
//! 2. **Unwrap** ([`unwrap`]): wrappers (`env`, `timeout`, `nice`, `xargs`, `sudo`, `eval`…)
//!    are stripped; scripts handed to a shell (`sh -c`, `eval`, `env -S`, here-documents,
//!    here-strings and `echo … |` piped into a shell) are lexed one level deeper. A shell fed a
//!    script the policy cannot see (`curl … | sh`) is denied.
//! 3. **Rules** ([`rules`]): data ([`PolicyRule`]) matched on the command word and its
//!    arguments, never on substrings; path arguments are resolved against the workspace and any
//!    literal `cd`, and a destructive target that cannot be known (a variable, a glob over a
//!    protected directory, `..` onto a protected root) is denied.
//! 4. **Limits**: a line too large, too deeply nested, with too many commands, or needing more
//!    than [`STEPS_PER_BYTE`] steps per byte of input is denied (fail closed).

mod analyze;
mod defaults;
mod home;
mod lexer;
mod rules;
mod syntax;
mod target;
mod unwrap;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The largest command line the policy analyses; longer lines are denied.
pub const MAX_COMMAND_BYTES: usize = 1 << 20;
/// The deepest nesting (substitutions, quotes, groups, scripts handed to shells) analysed.
pub const MAX_NESTING: usize = 64;
/// The most simple commands one line may hold (counting those in nested scripts).
pub const MAX_SIMPLE_COMMANDS: usize = 20_000;
/// The analysis budget: at most this many steps per byte of input (plus
/// [`STEPS_BASE`]); a line needing more (nested re-quoting) is denied.
pub const STEPS_PER_BYTE: u64 = 64;
/// The fixed part of the step budget.
pub const STEPS_BASE: u64 = 10_000;

/// One simple command: its words (leading `VAR=value` assignments removed) and the targets of
/// its redirections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimpleCommand {
    /// Command word and arguments, quotes removed.
    pub words: Vec<String>,
    /// Redirection targets (`> file`, `>> file`, `2> file`, `< file`; a here-document's body).
    pub redirects: Vec<String>,
}

impl SimpleCommand {
    /// The basename of the command word (`/usr/sbin/reboot` → `reboot`).
    pub fn program(&self) -> Option<&str> {
        self.words.first().map(|w| syntax::basename(w))
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
    /// The program is one of `programs`, carries one of `flags`, and one of its path arguments
    /// is protected: exactly one of `protected` (`~`/`$HOME` = the user's home and everything
    /// in it), at or below one of `protected_trees`, a glob/brace pattern that can match one of
    /// those, or a path that cannot be known before the shell runs (a variable, `$IFS`…).
    /// Paths strictly inside the workspace are never protected (unless the workspace is itself
    /// a protected root). Flags are short letters (`r`, matched inside `-rf`), long flags
    /// (`--recursive`, also matched by an unambiguous prefix such as `--recu`) or single-dash
    /// words (`-delete`); an empty `flags` list means "always". For `find` the targets are its
    /// start directories; for `chmod`/`chown`/`chgrp` the mode/owner operand is skipped.
    ProtectedTarget {
        /// Programs (e.g. `rm`, `chmod`, `chown`).
        programs: Vec<String>,
        /// Flags that make it dangerous: single letters (`r`, `f`) or long flags (`--recursive`).
        flags: Vec<String>,
        /// Paths protected exactly (e.g. `/`, `~`).
        protected: Vec<String>,
        /// Directories protected with everything below them (e.g. `/etc`, `/usr`).
        protected_trees: Vec<String>,
    },
    /// Writes to a raw device or kernel control file: an output redirection to, or a `of=`
    /// argument naming, a path starting with one of `device_prefixes`; one of `programs` taking
    /// such a path as any argument; or one of `destination_programs` taking it as its last
    /// argument (`cp x /dev/sda`).
    DeviceWrite {
        /// Device path prefixes (e.g. `/dev/sd`).
        device_prefixes: Vec<String>,
        /// Programs that destroy a device given as plain argument (e.g. `shred`, `tee`).
        programs: Vec<String>,
        /// Programs whose last argument is the destination (e.g. `cp`, `mv`, `install`).
        #[serde(default)]
        destination_programs: Vec<String>,
    },
    /// A fork bomb: a function that calls itself in a pipeline or in the background
    /// (`:(){ :|:& };:`), recognised on the parsed line (quoted text is not code).
    ForkBomb,
    /// `kill` aimed at every process (`kill -9 -1`, `kill 1`) or `killall5`.
    KillAll,
    /// A command name that is not known before the shell runs: a variable (`$CMD`), a command
    /// substitution the policy cannot evaluate (`$(get-name)`; `$(echo su)` is evaluated), a
    /// glob, or ANSI-C quoting (`$'\x73u'`).
    DynamicCommand,
    /// A shell (or one of `interpreters`) running a script the policy cannot see: piped from a
    /// program other than `echo`/`printf`/a here-document (`curl … | sh`), from a process
    /// substitution (`bash <(curl …)`), or given as a variable (`sh -c "$X"`).
    OpaqueScript {
        /// Non-shell interpreters that read a script from stdin (e.g. `python3`, `perl`).
        interpreters: Vec<String>,
    },
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
    /// A rule matched, or the line could not be analysed (rule ids starting with `limit_`).
    Deny {
        /// The rule id.
        rule: String,
        /// What was denied and why, and what to do instead; shown to the model.
        reason: String,
        /// The offending simple command, words joined by spaces (shortened when long).
        command: String,
    },
}

impl PolicyDecision {
    /// Whether the decision denies.
    pub fn is_deny(&self) -> bool {
        matches!(self, PolicyDecision::Deny { .. })
    }
}

/// Where commands run, so the policy can tell the workspace from the rest of the machine.
/// Everything is optional; [`CommandPolicy::check`] uses the empty context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyContext {
    /// The workspace root (the shell's starting directory). Paths strictly inside it are not
    /// protected, and relative paths resolve against it.
    pub workspace: Option<PathBuf>,
    /// The user's home (`~`, `$HOME`); when unknown, `~` stays symbolic.
    pub user_home: Option<PathBuf>,
    /// The agent home: when set, commands reading or writing inside it outside
    /// `home_allowlist` are denied.
    pub agent_home: Option<PathBuf>,
    /// Directories inside the agent home that commands may use (`.cache`, `logs`, skills).
    pub home_allowlist: Vec<PathBuf>,
}

impl PolicyContext {
    /// The empty context (no workspace, no homes).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the workspace root.
    pub fn with_workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = Some(dir.into());
        self
    }

    /// Sets the user's home directory.
    pub fn with_user_home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.user_home = Some(dir.into());
        self
    }

    /// Sets the agent home and the directories inside it that stay usable.
    pub fn with_agent_home(mut self, dir: impl Into<PathBuf>, allowlist: Vec<PathBuf>) -> Self {
        self.agent_home = Some(dir.into());
        self.home_allowlist = allowlist;
        self
    }
}

/// The full result of analysing one line: the decision and the work it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// The verdict.
    pub decision: PolicyDecision,
    /// Steps spent (characters lexed, words and rules examined); bounded by
    /// `STEPS_PER_BYTE × len + STEPS_BASE`, so the analysis is linear in the input.
    pub steps: u64,
    /// Simple commands examined (including those in nested scripts).
    pub commands: usize,
    /// The deepest nesting reached.
    pub max_depth: usize,
}

/// The rule set applied to shell commands. `CommandPolicy::default()` holds the built-in rules;
/// `CommandPolicy { rules: vec![] }` allows everything (no analysis at all). A policy with at
/// least one rule fails closed: a line it cannot analyse within the limits is denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandPolicy {
    /// The rules, checked in order; the first match denies.
    pub rules: Vec<PolicyRule>,
}

impl Default for CommandPolicy {
    fn default() -> Self {
        CommandPolicy {
            rules: defaults::default_rules(),
        }
    }
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

    /// Checks a command line without knowing the workspace (relative paths are taken as work
    /// files; absolute ones are judged as they are).
    pub fn check(&self, command: &str) -> PolicyDecision {
        self.analyze(command, &PolicyContext::default()).decision
    }

    /// Checks a command line run from `ctx.workspace`.
    pub fn check_in(&self, command: &str, ctx: &PolicyContext) -> PolicyDecision {
        self.analyze(command, ctx).decision
    }

    /// Checks a command line and reports the work the analysis took.
    pub fn analyze(&self, command: &str, ctx: &PolicyContext) -> Analysis {
        analyze::analyze(self, command, ctx)
    }
}

/// Splits a shell command line into simple commands: those of the line, then those inside each
/// command or process substitution, in order. Here-document bodies are not commands (their
/// text is the redirect target).
pub fn split_commands(input: &str) -> Vec<SimpleCommand> {
    let chars: Vec<char> = input.chars().collect();
    let (parsed, _) = lexer::lex(&chars, 0, usize::MAX);
    parsed
        .scripts
        .into_iter()
        .flat_map(|s| s.cmds)
        .filter(|c| !c.data)
        .map(|c| SimpleCommand {
            words: c.words.into_iter().map(|w| w.text).collect(),
            redirects: c.redirs.into_iter().map(|r| r.target.text).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
