//! The agent-home scope: commands may not read or write inside the agent home outside its
//! allowlisted directories (`.cache`, `logs`, the skills dir). Judged per command on resolved
//! path arguments and redirections (so `cat<$HOME/x` and `cd ~/.agent && cat x` are seen), plus
//! any word that mentions the home path inside it (`python3 -c "open('/home/a/x')"`).

use super::syntax::{Cmd, RedirKind, Word, basename};
use super::target::{Cwd, Scope, Target, classify, normalize, within};

/// The normalized agent home and allowlist (lower-cased: the check errs on the side of
/// case-insensitive file systems).
#[derive(Debug, Clone)]
pub(super) struct HomeScope {
    pub(super) home: String,
    pub(super) allow: Vec<String>,
}

/// A denial: rule id and message.
pub(super) type HomeHit = (&'static str, String);

/// Programs that only look at names or metadata, never at content.
const METADATA: &[&str] = &[
    "ls", "cd", "pushd", "stat", "test", "[", "[[", "echo", "printf", "pwd", "realpath",
    "readlink", "dirname", "basename", "du", "df",
];
/// Programs that change what their path arguments name.
const WRITERS: &[&str] = &[
    "tee", "rm", "rmdir", "mv", "cp", "touch", "mkdir", "ln", "chmod", "chown", "chgrp",
    "truncate", "install", "rsync", "dd", "shred", "unlink",
];

const WRITE_MSG: &str = "Writing under the agent home is blocked outside allowlisted paths (.cache/logs/skills). Use workspace files or allowlisted agent paths only.";
const READ_MSG: &str = "Reading agent-home internals is blocked outside allowlisted paths (.cache/logs/skills). Use load_skill(name) for skill content instead of direct file reads.";

impl HomeScope {
    fn forbidden(&self, path: &str, scope: &Scope) -> bool {
        let p = path.to_lowercase();
        within(&p, &self.home)
            && !self.allow.iter().any(|a| within(&p, a))
            && !scope.workspace.as_deref().is_some_and(|ws| {
                within(&p, &ws.to_lowercase()) && !within(&self.home, &ws.to_lowercase())
            })
    }

    /// Whether `w` names (or mentions) a forbidden place.
    fn touches(&self, w: &Word, cwd: &Cwd, scope: &Scope) -> bool {
        let resolved = match classify(w, cwd, scope) {
            Target::Path(p) => Some(p),
            Target::Pattern { dir } => Some(dir),
            Target::Unknown(_) => None,
        };
        if resolved.is_some_and(|p| self.forbidden(&p, scope)) {
            return true;
        }
        // the home path mentioned inside a word (`--file=/h/x`, `-c "open('/h/x')"`)
        let lower = w.text.to_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(&self.home) {
            let at = from + i;
            let end = lower[at..]
                .find(|c: char| c.is_whitespace() || "'\"`;,()[]{}<>|&".contains(c))
                .map_or(lower.len(), |e| at + e);
            if let Some(p) = normalize(&lower[at..end])
                && self.forbidden(&p, scope)
            {
                return true;
            }
            from = at + self.home.len().max(1);
        }
        false
    }

    /// Checks one command: its redirections and the words of every view (each word once),
    /// judged by the programs the views run (`nice cat x` reads, `env cp x y` writes).
    pub(super) fn check(
        &self,
        cmd: &Cmd,
        stores: &[&[Word]],
        programs: &[&[Word]],
        cwd: &Cwd,
        scope: &Scope,
    ) -> Option<HomeHit> {
        for r in &cmd.redirs {
            let write = match r.kind {
                RedirKind::Out => true,
                RedirKind::In => false,
                _ => continue,
            };
            if self.touches(&r.target, cwd, scope) {
                return Some(if write {
                    ("agent_home_write", WRITE_MSG.to_owned())
                } else {
                    ("agent_home_read", READ_MSG.to_owned())
                });
            }
        }
        let hit = stores.iter().any(|words| {
            words.iter().skip(1).any(|w| {
                let w = match w.text.split_once('=') {
                    Some((_, v)) if w.text.starts_with("of=") || w.text.starts_with("--") => Word {
                        text: v.to_owned(),
                        flags: w.flags,
                        subst: None,
                    },
                    _ => w.clone(),
                };
                self.touches(&w, cwd, scope)
            })
        });
        if !hit {
            return None;
        }
        fn name<'w>(v: &&'w [Word]) -> &'w str {
            v.first().map_or("", |w| basename(&w.text))
        }
        let writes = programs.iter().any(|v| {
            let prog = name(v);
            WRITERS.contains(&prog)
                || (prog == "sed"
                    && v.iter()
                        .any(|w| w.text.starts_with("-i") || w.text == "--in-place"))
        });
        if writes {
            return Some(("agent_home_write", WRITE_MSG.to_owned()));
        }
        if programs.last().is_some_and(|v| METADATA.contains(&name(v))) {
            return None;
        }
        Some(("agent_home_read", READ_MSG.to_owned()))
    }
}
