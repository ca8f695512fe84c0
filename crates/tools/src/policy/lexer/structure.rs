//! The lexer's command structure: groups, subshells, function definitions, redirections, and
//! the ends of words and commands.

use super::{Close, Group, Lexer, Mode, Pending, PendingHeredoc, Sep, Slot};
use crate::policy::syntax::{
    Cmd, EXPAND, PROC_SUBST, QUOTED, Redir, RedirKind, Word, is_assignment,
};

impl Lexer<'_> {
    pub(super) fn open_group(&mut self, paren: bool, array: bool) {
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        let inherited = f.groups.last().and_then(|g| g.func);
        let func = f.pending_func.take().or(inherited);
        let array = array || f.groups.last().is_some_and(|g| g.array);
        f.groups.push(Group { paren, func, array });
        self.open_groups += 1;
        self.check_depth();
    }

    pub(super) fn close_group(&mut self) {
        self.end_command(Sep::Plain);
        if let Some(f) = self.frame()
            && f.groups.pop().is_some()
        {
            f.last_closed_group = true;
            self.open_groups = self.open_groups.saturating_sub(1);
        }
    }

    pub(super) fn next_nonblank(&self) -> Option<(usize, char)> {
        let mut i = self.pos;
        while let Some(&c) = self.src.get(i) {
            if c != ' ' && c != '\t' {
                return Some((i, c));
            }
            i += 1;
        }
        None
    }

    pub(super) fn register_function(&mut self, name: String) {
        let idx = self.out.functions.len();
        self.out.functions.push(name);
        if let Some(f) = self.frame() {
            f.pending_func = Some(idx);
        }
    }

    pub(super) fn open_paren(&mut self) {
        let Some(f) = self.frames.last() else { return };
        let closes_now = matches!(self.next_nonblank(), Some((_, ')')));
        // `function f ()` / `f ()`: the name is already known
        if closes_now && f.pending_func.is_some() && !f.in_word && f.cur.words.is_empty() {
            if let Some((i, _)) = self.next_nonblank() {
                self.pos = i + 1;
            }
            return;
        }
        // `name()` or `name ()`
        let name_word = f.cur.redirs.is_empty()
            && ((f.in_word && f.cur.words.is_empty()) || (!f.in_word && f.cur.words.len() == 1));
        if closes_now && name_word {
            if let Some((i, _)) = self.next_nonblank() {
                self.pos = i + 1;
            }
            if let Some(f) = self.frame() {
                f.expect_func_name = false;
            }
            let name = match self.frames.last_mut() {
                Some(f) if f.in_word => {
                    f.in_word = false;
                    std::mem::take(&mut f.word).text
                }
                Some(f) => f.cur.words.pop().map(|w| w.text).unwrap_or_default(),
                None => String::new(),
            };
            self.register_function(name);
            return;
        }
        // `((…))`: an arithmetic command
        if !f.in_word && f.cur.words.is_empty() && self.peek() == Some('(') {
            self.pos += 1;
            if let Some(f) = self.frame() {
                f.cur.data = true;
            }
            self.flag(EXPAND);
            self.modes.push(Mode::Arith {
                depth: 0,
                body: false,
            });
            self.check_depth();
            return;
        }
        self.end_command(Sep::Plain);
        self.open_group(true, false);
    }

    pub(super) fn close_paren(&mut self) {
        let Some(f) = self.frames.last() else { return };
        if f.groups.last().is_some_and(|g| g.paren) {
            self.close_group();
            return;
        }
        if f.close == Close::Paren {
            self.close_frame();
            return;
        }
        self.end_command(Sep::Plain);
    }

    pub(super) fn redirect(&mut self, c: char) {
        let fd_prefix = self.frames.last().is_some_and(|f| {
            f.in_word
                && f.word.flags == 0
                && !f.word.text.is_empty()
                && f.word.text.chars().all(|d| d.is_ascii_digit())
        });
        if fd_prefix {
            if let Some(f) = self.frame() {
                f.word = Word::default();
                f.in_word = false;
            }
        } else if self.peek() == Some('(') {
            // process substitution: a word, not a redirection
            self.pos += 1;
            self.push_text(if c == '<' { "<(…)" } else { ">(…)" });
            self.flag(PROC_SUBST | EXPAND);
            self.open_subst(Close::Paren);
            return;
        } else {
            self.end_word();
        }
        let next = self.peek();
        let pending = if c == '<' {
            match next {
                Some('<') => {
                    self.pos += 1;
                    if self.peek() == Some('<') {
                        self.pos += 1;
                        Pending::Redir(RedirKind::HereStr)
                    } else {
                        let strip_tabs = self.peek() == Some('-');
                        if strip_tabs {
                            self.pos += 1;
                        }
                        Pending::HeredocDelim { strip_tabs }
                    }
                }
                Some('&') => {
                    self.pos += 1;
                    Pending::Redir(RedirKind::Dup)
                }
                Some('>') => {
                    self.pos += 1;
                    Pending::Redir(RedirKind::Out)
                }
                _ => Pending::Redir(RedirKind::In),
            }
        } else {
            match next {
                Some('>') | Some('|') => {
                    self.pos += 1;
                    Pending::Redir(RedirKind::Out)
                }
                Some('&') => {
                    self.pos += 1;
                    Pending::Redir(RedirKind::Dup)
                }
                _ => Pending::Redir(RedirKind::Out),
            }
        };
        self.set_pending(pending);
    }

    pub(super) fn end_word(&mut self) {
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        if !f.in_word {
            return;
        }
        f.in_word = false;
        f.brace_open = false;
        f.bracket_open = false;
        let mut w = std::mem::take(&mut f.word);
        if w.subst.is_some() && w.text != "$(…)" {
            w.subst = None;
        }
        match std::mem::take(&mut f.pending) {
            Pending::Redir(kind) => {
                let kind = if kind == RedirKind::Dup
                    && !(w.text == "-" || w.text.chars().all(|d| d.is_ascii_digit()))
                {
                    RedirKind::Out
                } else {
                    kind
                };
                f.cur.redirs.push(Redir { kind, target: w });
                return;
            }
            Pending::HeredocDelim { strip_tabs } => {
                let slot = Slot {
                    script: f.id,
                    cmd: self.out.scripts.get(f.id).map_or(0, |s| s.cmds.len()),
                    redir: f.cur.redirs.len(),
                };
                let quoted = w.has(QUOTED);
                f.heredocs.push(PendingHeredoc {
                    delim: w.text,
                    quoted,
                    strip_tabs,
                    slot,
                });
                f.cur.redirs.push(Redir {
                    kind: RedirKind::HereDoc,
                    target: Word {
                        text: String::new(),
                        flags: if quoted { QUOTED } else { 0 },
                        subst: None,
                    },
                });
                return;
            }
            Pending::None => {}
        }
        if f.case_pattern {
            if w.text == "esac" && w.flags == 0 {
                f.case_depth = f.case_depth.saturating_sub(1);
                f.case_pattern = false;
                f.cur = Cmd::default();
                return;
            }
            f.cur.data = true;
            f.cur.words.push(w);
            return;
        }
        if f.expect_func_name {
            f.expect_func_name = false;
            let idx = self.out.functions.len();
            self.out.functions.push(w.text);
            f.pending_func = Some(idx);
            return;
        }
        if f.cur.words.is_empty() && !f.cur.data {
            if w.flags == 0 {
                match w.text.as_str() {
                    "function" => {
                        f.expect_func_name = true;
                        return;
                    }
                    "if" | "then" | "else" | "elif" | "fi" | "do" | "done" | "while" | "until"
                    | "!" | "{" | "}" => return,
                    "esac" if f.case_depth > 0 => {
                        f.case_depth -= 1;
                        return;
                    }
                    "case" | "for" | "select" | "coproc" => {
                        f.cur.data = w.text != "coproc";
                        if w.text == "coproc" {
                            return;
                        }
                        f.cur.words.push(w);
                        return;
                    }
                    _ => {}
                }
            }
            if is_assignment(&w.text) && !w.text.starts_with('=') {
                return;
            }
        }
        let case_header = f.cur.data
            && f.cur.words.len() == 2
            && w.text == "in"
            && f.cur.words.first().is_some_and(|x| x.text == "case");
        f.cur.words.push(w);
        if case_header {
            self.end_command(Sep::Plain);
            if let Some(f) = self.frame() {
                f.case_depth += 1;
                f.case_pattern = true;
            }
        }
    }

    pub(super) fn end_command(&mut self, sep: Sep) {
        self.end_word();
        let Some(f) = self.frames.last_mut() else {
            return;
        };
        f.pending = Pending::None;
        let mut c = std::mem::take(&mut f.cur);
        let group_end = std::mem::take(&mut f.last_closed_group);
        if c.words.is_empty() && c.redirs.is_empty() {
            if sep == Sep::Pipe && group_end {
                f.pipe_next = true;
                f.pipe_from_group = true;
            } else if sep == Sep::Plain && !group_end {
                // a bare separator keeps the pipe state of a following `|`
            }
            return;
        }
        c.pipe_in = std::mem::take(&mut f.pipe_next);
        c.pipe_from_group = std::mem::take(&mut f.pipe_from_group);
        c.pipe_out = sep == Sep::Pipe;
        c.background = sep == Sep::Background;
        if let Some(g) = f.groups.last() {
            c.func = c.func.or(g.func);
            c.data |= g.array;
        }
        if sep == Sep::Pipe {
            f.pipe_next = true;
        }
        if let Some(s) = self.out.scripts.get_mut(f.id) {
            s.cmds.push(c);
        }
    }
}
