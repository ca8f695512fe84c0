//! The shell lexer: one pass over the characters with an explicit stack of frames (the line,
//! each `$(…)`/backquote/process substitution) and modes (double quotes, `${…}`, `$((…))`,
//! here-document bodies). Nothing here recurses, so input cannot deepen the Rust stack; the
//! work is one step per character plus one per here-document delimiter check.

use std::collections::VecDeque;

use super::syntax::{
    ANSI_C, BRACE, CMD_SUBST, Cmd, EXPAND, GLOB, LexStop, PROC_SUBST, Parsed, QUOTED, Redir,
    RedirKind, Script, TILDE, Word, is_assignment,
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

    fn open_group(&mut self, paren: bool, array: bool) {
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

    fn close_group(&mut self) {
        self.end_command(Sep::Plain);
        if let Some(f) = self.frame()
            && f.groups.pop().is_some()
        {
            f.last_closed_group = true;
            self.open_groups = self.open_groups.saturating_sub(1);
        }
    }

    fn next_nonblank(&self) -> Option<(usize, char)> {
        let mut i = self.pos;
        while let Some(&c) = self.src.get(i) {
            if c != ' ' && c != '\t' {
                return Some((i, c));
            }
            i += 1;
        }
        None
    }

    fn register_function(&mut self, name: String) {
        let idx = self.out.functions.len();
        self.out.functions.push(name);
        if let Some(f) = self.frame() {
            f.pending_func = Some(idx);
        }
    }

    fn open_paren(&mut self) {
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

    fn close_paren(&mut self) {
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

    fn redirect(&mut self, c: char) {
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

    fn end_word(&mut self) {
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

    fn end_command(&mut self, sep: Sep) {
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

    // ----- expansions -----

    fn dollar(&mut self, quoted: bool) {
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
    fn subst_word_start(&mut self) {
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

    fn backtick(&mut self) {
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

    fn open_subst(&mut self, close: Close) {
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

    fn close_frame(&mut self) {
        self.end_command(Sep::Plain);
        if let Some(f) = self.frames.last() {
            self.open_groups = self.open_groups.saturating_sub(f.groups.len());
        }
        if self.frames.len() > 1 {
            self.frames.pop();
            self.modes.pop();
        }
    }

    fn ansi_c(&mut self) -> String {
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

    fn radix_digits(&mut self, radix: u32, max: usize) -> Option<u32> {
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

    fn dquote_char(&mut self, c: char) {
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
                Some(e @ ('"' | '\\' | '$' | '`')) => {
                    self.pos += 1;
                    self.push_char(e);
                }
                Some('\n') => self.pos += 1,
                _ => self.push_char('\\'),
            },
            '$' => self.dollar(true),
            '`' => self.backtick(),
            _ => self.push_char(c),
        }
    }

    fn param_char(&mut self, c: char) {
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

    fn arith_char(&mut self, c: char) {
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

    fn start_heredoc(&mut self, h: PendingHeredoc) {
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
    fn line_at(&mut self, start: usize) -> ((usize, usize), usize) {
        let mut end = start;
        while self.src.get(end).is_some_and(|c| *c != '\n') {
            end += 1;
        }
        self.steps += (end - start) as u64 + 1;
        ((start, end), (end + 1).min(self.src.len()))
    }

    fn is_delim(&self, line: (usize, usize), delim: &[char], strip_tabs: bool) -> bool {
        let mut s = &self.src[line.0..line.1];
        if strip_tabs {
            while let Some(('\t', rest)) = s.split_first() {
                s = rest;
            }
        }
        s == delim
    }

    fn heredoc_line_start(&mut self) {
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

    fn heredoc_char(&mut self, c: char) {
        match c {
            '\\' => match self.peek() {
                Some(e @ ('$' | '`' | '\\')) => {
                    self.pos += 1;
                    self.push_char(e);
                }
                Some('\n') => self.pos += 1,
                _ => self.push_char('\\'),
            },
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

    fn store_body(&mut self, slot: Slot, body: String) {
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
