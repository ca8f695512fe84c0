//! The driver: a worklist of scripts (the line, then every script a command hands to a shell),
//! each lexed once; commands are unwrapped and judged in order while the working directory is
//! followed through literal `cd`s. Every loop here is over a worklist, never a recursive call,
//! and every piece of work adds to a step counter that is bounded by the input length.

use std::rc::Rc;

use super::home::HomeScope;
use super::lexer::lex;
use super::rules::{MatchEnv, View, matches, short};
use super::syntax::{LexStop, Parsed, Word, basename};
use super::target::{Cwd, Scope, change_dir, normalize};
use super::unwrap::unwrap;
use super::{
    Analysis, CommandPolicy, MAX_COMMAND_BYTES, MAX_NESTING, MAX_SIMPLE_COMMANDS, PolicyContext,
    PolicyDecision, RuleMatch, STEPS_BASE, STEPS_PER_BYTE,
};

struct Work {
    text: Vec<char>,
    depth: usize,
    cwd: Cwd,
}

fn deny(rule: &str, reason: String, command: &str) -> PolicyDecision {
    PolicyDecision::Deny {
        rule: rule.to_owned(),
        reason,
        command: short(command.trim()),
    }
}

fn norm_path(p: &std::path::Path) -> Option<String> {
    let s = p.to_string_lossy();
    if s.starts_with('/') {
        normalize(&s)
    } else {
        None
    }
}

pub(super) fn analyze(policy: &CommandPolicy, command: &str, ctx: &PolicyContext) -> Analysis {
    let mut a = Analysis {
        decision: PolicyDecision::Allow,
        steps: 0,
        commands: 0,
        max_depth: 0,
    };
    let home = ctx
        .agent_home
        .as_deref()
        .and_then(norm_path)
        .map(|h| HomeScope {
            home: h.to_lowercase(),
            allow: ctx
                .home_allowlist
                .iter()
                .filter_map(|p| norm_path(p))
                .map(|p| p.to_lowercase())
                .collect(),
        });
    if policy.rules.is_empty() && home.is_none() {
        return a;
    }
    if command.len() > MAX_COMMAND_BYTES {
        a.decision = deny(
            "limit_size",
            format!(
                "the command is {} bytes, more than the policy analyses ({MAX_COMMAND_BYTES}); write the commands to a script file in the workspace and run that",
                command.len()
            ),
            "",
        );
        return a;
    }
    let scope = Scope {
        workspace: ctx.workspace.as_deref().and_then(norm_path),
        user_home: ctx.user_home.as_deref().and_then(norm_path),
    };
    let budget = STEPS_PER_BYTE
        .saturating_mul(command.len() as u64)
        .saturating_add(STEPS_BASE);
    let regexes: Vec<Option<regex::Regex>> = policy
        .rules
        .iter()
        .map(|r| match &r.matcher {
            RuleMatch::Regex { pattern } => regex::Regex::new(pattern).ok(),
            _ => None,
        })
        .collect();
    let start_cwd = scope
        .workspace
        .as_deref()
        .map_or(Cwd::Base, |w| Cwd::Known(Rc::from(w)));
    let mut work = vec![Work {
        text: command.chars().collect(),
        depth: 0,
        cwd: start_cwd,
    }];
    let mut judge = Judge {
        policy,
        regexes: &regexes,
        scope: &scope,
        home: home.as_ref(),
    };
    while let Some(item) = work.pop() {
        let (parsed, steps) = lex(&item.text, item.depth, MAX_NESTING);
        a.steps += steps;
        a.max_depth = a.max_depth.max(parsed.max_depth);
        if let Some(d) = stop_decision(&parsed, &item.text) {
            a.decision = d;
            return a;
        }
        match judge.script_set(&parsed, item.cwd, &mut a, &mut work) {
            Some(d) => {
                a.decision = d;
                return a;
            }
            None if a.steps > budget => {
                a.decision = deny(
                    "limit_steps",
                    format!(
                        "the command needs more analysis than the policy allows ({} steps for {} bytes): it re-quotes scripts inside scripts (eval, sh -c, here-documents); write the inner script to a file in the workspace and run that",
                        a.steps,
                        command.len()
                    ),
                    "",
                );
                return a;
            }
            None => {}
        }
    }
    a
}

fn stop_decision(parsed: &Parsed, text: &[char]) -> Option<PolicyDecision> {
    let snippet: String = text.iter().take(120).collect();
    let (rule, reason) = match parsed.stop? {
        LexStop::TooDeep => (
            "limit_depth",
            format!(
                "the command nests substitutions, quotes, groups or scripts more than {MAX_NESTING} levels deep; flatten it or write a script file in the workspace and run that"
            ),
        ),
        LexStop::NestedBackquotes => (
            "limit_nested_backquotes",
            "backquotes nested inside backquotes cannot be analysed reliably; use $( … ) instead"
                .to_owned(),
        ),
        LexStop::AmbiguousArith => (
            "limit_ambiguous_arith",
            "`$((` or `((` is not closed by `))`, so it is unclear whether it is arithmetic or a subshell; write `$( (` with a space for a subshell".to_owned(),
        ),
    };
    Some(deny(rule, reason, &snippet))
}

struct Judge<'a> {
    policy: &'a CommandPolicy,
    regexes: &'a [Option<regex::Regex>],
    scope: &'a Scope,
    home: Option<&'a HomeScope>,
}

impl Judge<'_> {
    fn rule_of(&self, pred: impl Fn(&RuleMatch) -> bool) -> Option<&super::PolicyRule> {
        self.policy.rules.iter().find(|r| pred(&r.matcher))
    }

    /// Judges every command of one lexed text; pushes handed-off scripts onto `work`.
    fn script_set(
        &mut self,
        parsed: &Parsed,
        start_cwd: Cwd,
        a: &mut Analysis,
        work: &mut Vec<Work>,
    ) -> Option<PolicyDecision> {
        let interpreters: &[String] = self
            .policy
            .rules
            .iter()
            .find_map(|r| match &r.matcher {
                RuleMatch::OpaqueScript { interpreters } => Some(interpreters.as_slice()),
                _ => None,
            })
            .unwrap_or_default();
        // the working directory before each command of each script
        let mut cwd_at: Vec<Vec<Cwd>> = Vec::with_capacity(parsed.scripts.len());
        let mut pending: Option<PolicyDecision> = None;
        for script in &parsed.scripts {
            let mut cwd = match script.parent {
                Some((p, ci)) => cwd_at
                    .get(p)
                    .and_then(|v| v.get(ci).or_else(|| v.last()))
                    .cloned()
                    .unwrap_or_else(|| start_cwd.clone()),
                None => start_cwd.clone(),
            };
            let mut seen = Vec::with_capacity(script.cmds.len());
            for (ci, cmd) in script.cmds.iter().enumerate() {
                seen.push(cwd.clone());
                a.commands += 1;
                a.steps += 1;
                if a.commands > MAX_SIMPLE_COMMANDS {
                    return Some(deny(
                        "limit_commands",
                        format!(
                            "the command holds more than {MAX_SIMPLE_COMMANDS} simple commands; split it or write a script file in the workspace and run that"
                        ),
                        "",
                    ));
                }
                if cmd.data {
                    continue;
                }
                let u = unwrap(cmd, &script.cmds, ci, parsed, interpreters, &mut a.steps);
                if let Some(detail) = &u.dynamic
                    && pending.is_none()
                    && let Some(rule) = self.rule_of(|m| matches!(m, RuleMatch::DynamicCommand))
                {
                    // judged after the substitutions themselves (`$(su)` reports `su`)
                    let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
                    pending = Some(deny(
                        &rule.id,
                        format!("{}: {detail}", rule.reason),
                        &words.join(" "),
                    ));
                }
                let env = MatchEnv {
                    cwd: &cwd,
                    scope: self.scope,
                    parsed,
                };
                if let Some(h) = self.home {
                    let stores: Vec<&[Word]> = u.store.iter().map(|s| &s[..]).collect();
                    let programs: Vec<&[Word]> = u.views.iter().map(|v| u.words(v)).collect();
                    a.steps +=
                        (stores.iter().map(|s| s.len()).sum::<usize>() + programs.len()) as u64;
                    if let Some((rule, reason)) = h.check(cmd, &stores, &programs, &cwd, self.scope)
                    {
                        let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
                        return Some(deny(rule, reason, &words.join(" ")));
                    }
                }
                let mut next_cwd: Option<Cwd> = None;
                for v in &u.views {
                    let words = u.words(v);
                    let view = View {
                        words,
                        cmd,
                        original: v.original,
                        unknown_args: v.unknown_args,
                    };
                    if let Some(d) = self.judge_view(&view, &env, &mut a.steps) {
                        return Some(d);
                    }
                    if let Some(first) = words.first() {
                        match basename(&first.text) {
                            "cd" | "pushd" => {
                                let arg = words[1..]
                                    .iter()
                                    .find(|w| !(w.text.starts_with('-') && w.text.len() > 1));
                                next_cwd = Some(change_dir(arg, &cwd, self.scope));
                            }
                            "popd" => next_cwd = Some(Cwd::Unknown),
                            _ => {}
                        }
                    }
                }
                if let Some(detail) = &u.opaque
                    && let Some(rule) =
                        self.rule_of(|m| matches!(m, RuleMatch::OpaqueScript { .. }))
                {
                    let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
                    return Some(deny(
                        &rule.id,
                        format!("{}: {detail}", rule.reason),
                        &words.join(" "),
                    ));
                }
                for s in u.scripts {
                    a.steps += 1;
                    work.push(Work {
                        text: s.chars().collect(),
                        depth: script.depth + 1,
                        cwd: cwd.clone(),
                    });
                }
                if let Some(c) = next_cwd
                    && !cmd.background
                    && !cmd.pipe_in
                    && !cmd.pipe_out
                {
                    cwd = c;
                }
            }
            cwd_at.push(seen);
        }
        pending
    }

    fn judge_view(
        &self,
        view: &View<'_>,
        env: &MatchEnv<'_>,
        steps: &mut u64,
    ) -> Option<PolicyDecision> {
        let command = || {
            let words: Vec<&str> = view.words.iter().map(|w| w.text.as_str()).collect();
            words.join(" ")
        };
        for (rule, re) in self.policy.rules.iter().zip(self.regexes) {
            if let Some(detail) = matches(&rule.matcher, re.as_ref(), view, env, steps) {
                let reason = if detail.is_empty() {
                    rule.reason.clone()
                } else {
                    format!("{}: {detail}", rule.reason)
                };
                return Some(deny(&rule.id, reason, &command()));
            }
        }
        None
    }
}
