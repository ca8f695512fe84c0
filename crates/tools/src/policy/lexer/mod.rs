//! The shell lexer: one pass over the characters with an explicit stack of frames (the line,
//! each `$(…)`/backquote/process substitution) and modes (double quotes, `${…}`, `$((…))`,
//! here-document bodies). Nothing here recurses, so input cannot deepen the Rust stack; the
//! work is one step per character plus one per here-document delimiter check.

use std::collections::VecDeque;

mod modes;
mod structure;

use super::syntax::{
    BRACE, Cmd, GLOB, LexStop, Parsed, QUOTED, RedirKind, Script, TILDE, Word, is_assignment,
};

/// Where a here-document body goes once read.
#[derive(Debug, Clone, Copy)]
struct Slot {
    script: usize,
    cmd: usize,
    redir: usize,
}

#[derive(Debug)]
struct HeredocBody {
    delim: Vec<char>,
    strip_tabs: bool,
    body: String,
    line_start: bool,
    slot: Slot,
}

#[derive(Debug)]
enum Mode {
    /// The innermost frame lexes commands.
    Script,
    /// Inside `"…"`; `body` = the text goes to a here-document body.
    DQuote { body: bool },
    /// Inside `${…}`.
    Param { body: bool },
    /// Inside `$((…))` or `((…))`.
    Arith { depth: usize, body: bool },
    /// An unquoted here-document body (expansions run).
    Heredoc(HeredocBody),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Eof,
    Paren,
    Backtick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Pending {
    #[default]
    None,
    Redir(RedirKind),
    HeredocDelim {
        strip_tabs: bool,
    },
}

#[derive(Debug)]
struct PendingHeredoc {
    delim: String,
    quoted: bool,
    strip_tabs: bool,
    slot: Slot,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    paren: bool,
    func: Option<usize>,
    array: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sep {
    Plain,
    Pipe,
    Background,
}

#[derive(Debug)]
struct Frame {
    id: usize,
    close: Close,
    cur: Cmd,
    word: Word,
    in_word: bool,
    pending: Pending,
    heredocs: Vec<PendingHeredoc>,
    heredoc_queue: VecDeque<PendingHeredoc>,
    groups: Vec<Group>,
    pending_func: Option<usize>,
    expect_func_name: bool,
    pipe_next: bool,
    pipe_from_group: bool,
    last_closed_group: bool,
    case_pattern: bool,
    case_depth: usize,
    brace_open: bool,
    brace_sep: bool,
    bracket_open: bool,
}

impl Frame {
    fn new(id: usize, close: Close) -> Self {
        Frame {
            id,
            close,
            cur: Cmd::default(),
            word: Word::default(),
            in_word: false,
            pending: Pending::None,
            heredocs: Vec::new(),
            heredoc_queue: VecDeque::new(),
            groups: Vec::new(),
            pending_func: None,
            expect_func_name: false,
            pipe_next: false,
            pipe_from_group: false,
            last_closed_group: false,
            case_pattern: false,
            case_depth: 0,
            brace_open: false,
            brace_sep: false,
            bracket_open: false,
        }
    }
}

/// Lexes `src`; `base_depth` is the nesting of the text itself (a `bash -c` script inside a
/// line is one deeper). Returns the parse and the steps spent.
pub(super) fn lex(src: &[char], base_depth: usize, max_depth: usize) -> (Parsed, u64) {
    let mut lx = Lexer {
        src,
        pos: 0,
        modes: Vec::new(),
        frames: Vec::new(),
        out: Parsed::default(),
        base_depth,
        max_depth,
        open_groups: 0,
        steps: 0,
    };
    lx.out.scripts.push(Script {
        depth: base_depth,
        parent: None,
        cmds: Vec::new(),
    });
    lx.out.max_depth = base_depth;
    lx.modes.push(Mode::Script);
    lx.frames.push(Frame::new(0, Close::Eof));
    lx.run();
    (lx.out, lx.steps)
}

struct Lexer<'a> {
    src: &'a [char],
    pos: usize,
    modes: Vec<Mode>,
    frames: Vec<Frame>,
    out: Parsed,
    base_depth: usize,
    max_depth: usize,
    open_groups: usize,
    steps: u64,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, off: usize) -> Option<char> {
        self.src.get(self.pos + off).copied()
    }

    fn depth(&self) -> usize {
        self.base_depth + self.modes.len() + self.open_groups - 1
    }

    fn check_depth(&mut self) {
        let d = self.depth();
        self.out.max_depth = self.out.max_depth.max(d);
        if d > self.max_depth {
            self.out.stop = Some(LexStop::TooDeep);
        }
    }

    fn run(&mut self) {
        while self.out.stop.is_none() {
            self.steps += 1;
            if matches!(self.modes.last(), Some(Mode::Script))
                && let Some(h) = self
                    .frames
                    .last_mut()
                    .and_then(|f| f.heredoc_queue.pop_front())
            {
                self.start_heredoc(h);
                continue;
            }
            if let Some(Mode::Heredoc(h)) = self.modes.last()
                && h.line_start
            {
                self.heredoc_line_start();
                continue;
            }
            let Some(c) = self.peek() else { break };
            self.pos += 1;
            match self.modes.last() {
                Some(Mode::Script) | None => self.script_char(c),
                Some(Mode::DQuote { .. }) => self.dquote_char(c),
                Some(Mode::Param { .. }) => self.param_char(c),
                Some(Mode::Arith { .. }) => self.arith_char(c),
                Some(Mode::Heredoc(_)) => self.heredoc_char(c),
            }
        }
        // Close whatever is still open (unterminated quotes, substitutions, bodies).
        while let Some(m) = self.modes.pop() {
            match m {
                Mode::Script => {
                    self.end_command(Sep::Plain);
                    self.frames.pop();
                }
                Mode::Heredoc(h) => self.store_body(h.slot, h.body),
                _ => {}
            }
        }
    }

    fn frame(&mut self) -> Option<&mut Frame> {
        self.frames.last_mut()
    }

    /// Whether text now goes to a here-document body rather than the current word.
    fn writes_body(&self) -> bool {
        match self.modes.last() {
            Some(Mode::Heredoc(_)) => true,
            Some(Mode::DQuote { body } | Mode::Param { body } | Mode::Arith { body, .. }) => *body,
            _ => false,
        }
    }

    fn push_text(&mut self, s: &str) {
        if self.writes_body() {
            for m in self.modes.iter_mut().rev() {
                if let Mode::Heredoc(h) = m {
                    h.body.push_str(s);
                    return;
                }
            }
            return;
        }
        if let Some(f) = self.frame() {
            f.word.text.push_str(s);
            f.in_word = true;
        }
    }

    fn push_char(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.push_text(c.encode_utf8(&mut b));
    }

    fn flag(&mut self, flag: u16) {
        if self.writes_body() {
            return;
        }
        if let Some(f) = self.frame() {
            f.word.flags |= flag;
            f.in_word = true;
        }
    }

    // ----- the command level -----

    fn script_char(&mut self, c: char) {
        let Some(f) = self.frames.last() else { return };
        let (case_pattern, in_word) = (f.case_pattern, f.in_word);
        let at_start = !in_word && f.cur.words.is_empty();
        if case_pattern && self.case_pattern_char(c) {
            return;
        }
        match c {
            '\'' => {
                self.flag(QUOTED);
                self.single_quoted();
            }
            '"' => {
                self.flag(QUOTED);
                self.modes.push(Mode::DQuote { body: false });
                self.check_depth();
            }
            '$' => self.dollar(false),
            '`' => self.backtick(),
            '\\' => match self.peek() {
                Some('\n') => self.pos += 1,
                Some(e) => {
                    if e == '`'
                        && self
                            .frames
                            .last()
                            .is_some_and(|f| f.close == Close::Backtick)
                    {
                        self.out.stop = Some(LexStop::NestedBackquotes);
                        return;
                    }
                    self.pos += 1;
                    self.flag(QUOTED);
                    self.push_char(e);
                }
                None => {}
            },
            '#' if !in_word => {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                    self.steps += 1;
                }
            }
            ' ' | '\t' | '\r' => self.end_word(),
            '\n' => {
                self.end_command(Sep::Plain);
                if let Some(f) = self.frame() {
                    let owed: Vec<_> = f.heredocs.drain(..).collect();
                    f.heredoc_queue.extend(owed);
                }
            }
            ';' => {
                let mut case_sep = false;
                if self.peek() == Some(';') {
                    self.pos += 1;
                    case_sep = true;
                    if self.peek() == Some('&') {
                        self.pos += 1;
                    }
                } else if self.peek() == Some('&') {
                    self.pos += 1;
                    case_sep = true;
                }
                self.end_command(Sep::Plain);
                if let Some(f) = self.frame()
                    && case_sep
                    && f.case_depth > 0
                {
                    f.case_pattern = true;
                }
            }
            '&' => match self.peek() {
                Some('&') => {
                    self.pos += 1;
                    self.end_command(Sep::Plain);
                }
                Some('>') => {
                    self.end_word();
                    self.pos += 1;
                    if self.peek() == Some('>') {
                        self.pos += 1;
                    }
                    self.set_pending(Pending::Redir(RedirKind::Out));
                }
                _ => self.end_command(Sep::Background),
            },
            '|' => match self.peek() {
                Some('|') => {
                    self.pos += 1;
                    self.end_command(Sep::Plain);
                }
                Some('&') => {
                    self.pos += 1;
                    self.end_command(Sep::Pipe);
                }
                _ => self.end_command(Sep::Pipe),
            },
            '(' => self.open_paren(),
            ')' => self.close_paren(),
            '<' | '>' => self.redirect(c),
            '{' if at_start && self.peek().is_none_or(char::is_whitespace) => {
                self.open_group(false, false);
            }
            '}' if at_start
                && self
                    .frames
                    .last()
                    .is_some_and(|f| f.groups.last().is_some_and(|g| !g.paren)) =>
            {
                self.close_group();
            }
            '{' => {
                self.push_char(c);
                if let Some(f) = self.frame() {
                    f.brace_open = true;
                    f.brace_sep = false;
                }
            }
            '}' => {
                self.push_char(c);
                if let Some(f) = self.frame()
                    && f.brace_open
                {
                    if f.brace_sep {
                        f.word.flags |= BRACE;
                    }
                    f.brace_open = false;
                }
            }
            ',' => {
                self.push_char(c);
                if let Some(f) = self.frame()
                    && f.brace_open
                {
                    f.brace_sep = true;
                }
            }
            '.' => {
                let prev_dot = in_word
                    && self
                        .frames
                        .last()
                        .is_some_and(|f| f.word.text.ends_with('.'));
                self.push_char(c);
                if let Some(f) = self.frame()
                    && f.brace_open
                    && prev_dot
                {
                    f.brace_sep = true;
                }
            }
            '*' | '?' | '@' | '+' | '!' if self.peek() == Some('(') && (in_word || c != '!') => {
                // extglob `@(a|b)`: a pattern, read to its closing parenthesis
                self.push_char(c);
                self.flag(GLOB);
                self.extglob();
            }
            '*' | '?' => {
                self.push_char(c);
                self.flag(GLOB);
            }
            '[' => {
                self.push_char(c);
                if let Some(f) = self.frame() {
                    f.bracket_open = true;
                }
            }
            ']' => {
                self.push_char(c);
                if self.frames.last().is_some_and(|f| f.bracket_open) {
                    self.flag(GLOB);
                }
            }
            '~' if !in_word => {
                self.push_char(c);
                self.flag(TILDE);
            }
            '=' => {
                self.push_char(c);
                let array = self.peek() == Some('(')
                    && self
                        .frames
                        .last()
                        .is_some_and(|f| is_assignment(&f.word.text));
                if array {
                    self.pos += 1;
                    self.end_word();
                    // `declare -a x=(…)` and `x=(…)`: the elements are data
                    self.end_command(Sep::Plain);
                    self.open_group(true, true);
                }
            }
            _ => self.push_char(c),
        }
    }

    fn set_pending(&mut self, p: Pending) {
        if let Some(f) = self.frame() {
            f.pending = p;
        }
    }

    /// Inside a `case` pattern list. Returns true when the character was handled.
    fn case_pattern_char(&mut self, c: char) -> bool {
        match c {
            ' ' | '\t' | '\r' | '\n' | ';' | '|' => {
                self.end_word();
                true
            }
            '(' if self.frames.last().is_some_and(|f| !f.in_word) => true,
            ')' => {
                self.end_word();
                if let Some(f) = self.frame() {
                    f.cur.data = true;
                }
                self.end_command(Sep::Plain);
                if let Some(f) = self.frame() {
                    f.case_pattern = false;
                }
                true
            }
            _ => false,
        }
    }

    fn single_quoted(&mut self) {
        let start = self.pos;
        while self.peek().is_some_and(|c| c != '\'') {
            self.pos += 1;
        }
        self.steps += (self.pos - start) as u64;
        let text: String = self.src[start..self.pos].iter().collect();
        self.push_text(&text);
        if self.peek() == Some('\'') {
            self.pos += 1;
        }
        if let Some(f) = self.frame() {
            f.in_word = true;
        }
    }

    fn extglob(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.pos += 1;
            self.steps += 1;
            self.push_char(c);
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}
