//! The lexer's expansion and quoting modes: `$…` forms, substitutions, double quotes, `${…}`,
//! arithmetic and here-document bodies.

use super::{Close, Frame, HeredocBody, Lexer, Mode, PendingHeredoc, Script, Sep, Slot};
use crate::policy::syntax::{ANSI_C, CMD_SUBST, EXPAND, LexStop, QUOTED};

impl Lexer<'_> {
    // ----- expansions -----

    pub(super) fn dollar(&mut self, quoted: bool) {
        match self.peek() {
            Some('\'') if !quoted => {
                self.pos += 1;
                let text = self.ansi_c();
                self.flag(ANSI_C | QUOTED);
                self.push_text(&text);
            }
            Some('"') if !quoted => {
                self.pos += 1;
                self.flag(QUOTED);
                self.modes.push(Mode::DQuote { body: false });
                self.check_depth();
            }
            Some('(') if self.peek_at(1) == Some('(') => {
                self.pos += 2;
                self.push_text("$((");
                self.flag(EXPAND);
                let body = self.writes_body();
                self.modes.push(Mode::Arith { depth: 0, body });
                self.check_depth();
            }
            Some('(') => {
                self.pos += 1;
                self.subst_word_start();
                self.open_subst(Close::Paren);
            }
            Some('{') => {
                self.pos += 1;
                self.push_text("${");
                self.flag(EXPAND);
                let body = self.writes_body();
                self.modes.push(Mode::Param { body });
                self.check_depth();
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                self.steps += (self.pos - start) as u64;
                let name: String = self.src[start..self.pos].iter().collect();
                self.push_text("$");
                self.push_text(&name);
                self.flag(EXPAND);
            }
            Some(c) if c.is_ascii_digit() || "@*#?-$!".contains(c) => {
                self.pos += 1;
                self.push_char('$');
                self.push_char(c);
                self.flag(EXPAND);
            }
            _ => self.push_char('$'),
        }
    }

    /// Marks the current word as holding a command substitution (placeholder `$(…)`).
    pub(super) fn subst_word_start(&mut self) {
        if self.writes_body() {
            self.push_text("$(…)");
            return;
        }
        let next_id = self.out.scripts.len();
        if let Some(f) = self.frame() {
            let whole = f.word.text.is_empty();
            f.word.text.push_str("$(…)");
            f.word.flags |= EXPAND | CMD_SUBST;
            f.word.subst = if whole { Some(next_id) } else { None };
            f.in_word = true;
        }
    }

    pub(super) fn backtick(&mut self) {
        if self
            .frames
            .last()
            .is_some_and(|f| f.close == Close::Backtick)
        {
            // the closing backquote ends every mode opened inside it
            while matches!(
                self.modes.last(),
                Some(Mode::DQuote { .. } | Mode::Param { .. } | Mode::Arith { .. })
            ) {
                self.modes.pop();
            }
            self.close_frame();
        } else {
            self.subst_word_start();
            self.open_subst(Close::Backtick);
        }
    }

    pub(super) fn open_subst(&mut self, close: Close) {
        let Some(f) = self.frames.last() else { return };
        let parent_id = f.id;
        let parent_cmd = self.out.scripts.get(parent_id).map_or(0, |s| s.cmds.len());
        let id = self.out.scripts.len();
        self.modes.push(Mode::Script);
        self.frames.push(Frame::new(id, close));
        self.out.scripts.push(Script {
            depth: self.depth(),
            parent: Some((parent_id, parent_cmd)),
            cmds: Vec::new(),
        });
        self.check_depth();
    }

    pub(super) fn close_frame(&mut self) {
        self.end_command(Sep::Plain);
        if let Some(f) = self.frames.last() {
            self.open_groups = self.open_groups.saturating_sub(f.groups.len());
        }
        if self.frames.len() > 1 {
            self.frames.pop();
            self.modes.pop();
        }
    }

    pub(super) fn ansi_c(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            self.steps += 1;
            match c {
                '\'' => return out,
                '\\' => {
                    let Some(e) = self.peek() else { break };
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'e' | 'E' => out.push('\u{1b}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        'x' | 'u' | 'U' => {
                            let max = match e {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let v = self.radix_digits(16, max);
                            if let Some(ch) = v.and_then(char::from_u32) {
                                out.push(ch);
                            }
                        }
                        '0'..='7' => {
                            self.pos -= 1;
                            if let Some(ch) = self.radix_digits(8, 3).and_then(char::from_u32) {
                                out.push(ch);
                            }
                        }
                        'c' => {
                            if let Some(x) = self.peek() {
                                self.pos += 1;
                                out.push(char::from_u32(u32::from(x) & 0x1f).unwrap_or('?'));
                            }
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    pub(super) fn radix_digits(&mut self, radix: u32, max: usize) -> Option<u32> {
        let mut v: Option<u32> = None;
        for _ in 0..max {
            let Some(d) = self.peek().and_then(|c| c.to_digit(radix)) else {
                break;
            };
            self.pos += 1;
            v = Some(v.unwrap_or(0).saturating_mul(radix).saturating_add(d));
        }
        v
    }

    // ----- modes -----

    pub(super) fn dquote_char(&mut self, c: char) {
        match c {
            '"' => {
                self.modes.pop();
            }
            '\\' => match self.peek() {
                Some('`')
                    if self
                        .frames
                        .last()
                        .is_some_and(|f| f.close == Close::Backtick) =>
                {
                    self.out.stop = Some(LexStop::NestedBackquotes);
                }
                _ => self.backslash_in_text(&['"', '\\', '$', '`']),
            },
            '$' => self.dollar(true),
            '`' => self.backtick(),
            _ => self.push_char(c),
        }
    }

    pub(super) fn param_char(&mut self, c: char) {
        match c {
            '}' => {
                self.push_char('}');
                self.modes.pop();
            }
            '\'' => self.single_quoted(),
            '"' => {
                let body = self.writes_body();
                self.modes.push(Mode::DQuote { body });
                self.check_depth();
            }
            '$' => self.dollar(true),
            '`' => self.backtick(),
            '\\' => {
                if let Some(e) = self.peek() {
                    self.pos += 1;
                    self.push_char(e);
                }
            }
            _ => self.push_char(c),
        }
    }

    pub(super) fn arith_char(&mut self, c: char) {
        match c {
            '(' => {
                if let Some(Mode::Arith { depth, .. }) = self.modes.last_mut() {
                    *depth += 1;
                }
                self.push_char(c);
            }
            ')' => {
                let depth = match self.modes.last() {
                    Some(Mode::Arith { depth, .. }) => *depth,
                    _ => 0,
                };
                if depth == 0 {
                    if self.peek() == Some(')') {
                        self.pos += 1;
                        self.push_text("))");
                        self.modes.pop();
                    } else {
                        self.out.stop = Some(LexStop::AmbiguousArith);
                    }
                } else {
                    if let Some(Mode::Arith { depth, .. }) = self.modes.last_mut() {
                        *depth -= 1;
                    }
                    self.push_char(c);
                }
            }
            '$' => self.dollar(true),
            '`' => self.backtick(),
            _ => self.push_char(c),
        }
    }

    pub(super) fn start_heredoc(&mut self, h: PendingHeredoc) {
        let delim: Vec<char> = h.delim.chars().collect();
        if h.quoted {
            let mut body = String::new();
            while self.pos < self.src.len() {
                let (line, next) = self.line_at(self.pos);
                self.pos = next;
                if self.is_delim(line, &delim, h.strip_tabs) {
                    break;
                }
                body.extend(&self.src[line.0..line.1]);
                body.push('\n');
            }
            self.store_body(h.slot, body);
        } else {
            self.modes.push(Mode::Heredoc(HeredocBody {
                delim,
                strip_tabs: h.strip_tabs,
                body: String::new(),
                line_start: true,
                slot: h.slot,
            }));
            self.check_depth();
        }
    }

    /// The line starting at `start` (without its newline) and where the next line starts.
    pub(super) fn line_at(&mut self, start: usize) -> ((usize, usize), usize) {
        let mut end = start;
        while self.src.get(end).is_some_and(|c| *c != '\n') {
            end += 1;
        }
        self.steps += (end - start) as u64 + 1;
        ((start, end), (end + 1).min(self.src.len()))
    }

    pub(super) fn is_delim(&self, line: (usize, usize), delim: &[char], strip_tabs: bool) -> bool {
        let mut s = &self.src[line.0..line.1];
        if strip_tabs {
            while let Some(('\t', rest)) = s.split_first() {
                s = rest;
            }
        }
        s == delim
    }

    pub(super) fn heredoc_line_start(&mut self) {
        let (line, next) = self.line_at(self.pos);
        let done = match self.modes.last() {
            Some(Mode::Heredoc(h)) => {
                self.is_delim(line, &h.delim, h.strip_tabs) || self.pos >= self.src.len()
            }
            _ => return,
        };
        if done {
            self.pos = next;
            if let Some(Mode::Heredoc(h)) = self.modes.pop() {
                self.store_body(h.slot, h.body);
            }
        } else if let Some(Mode::Heredoc(h)) = self.modes.last_mut() {
            h.line_start = false;
        }
    }

    /// A backslash inside double quotes or a here-document body: before a character of
    /// `escapable` it stands for that character, before a newline it joins the lines, and before
    /// anything else it is a literal backslash.
    fn backslash_in_text(&mut self, escapable: &[char]) {
        match self.peek() {
            Some(e) if escapable.contains(&e) => {
                self.pos += 1;
                self.push_char(e);
            }
            Some('\n') => self.pos += 1,
            _ => self.push_char('\\'),
        }
    }

    pub(super) fn heredoc_char(&mut self, c: char) {
        match c {
            '\\' => self.backslash_in_text(&['$', '`', '\\']),
            '$' => self.dollar(true),
            '`' => self.backtick(),
            '\n' => {
                self.push_char('\n');
                if let Some(Mode::Heredoc(h)) = self.modes.last_mut() {
                    h.line_start = true;
                }
            }
            _ => self.push_char(c),
        }
    }

    pub(super) fn store_body(&mut self, slot: Slot, body: String) {
        if let Some(r) = self
            .out
            .scripts
            .get_mut(slot.script)
            .and_then(|s| s.cmds.get_mut(slot.cmd))
            .and_then(|c| c.redirs.get_mut(slot.redir))
        {
            r.target.text = body;
        }
    }
}
