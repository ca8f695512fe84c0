//! What the lexer produces: words with flags saying how they were written, simple commands with
//! their redirections and pipe/background links, grouped into scripts (the line itself and each
//! command or process substitution inside it).

/// The word was (partly) quoted or escaped.
pub(super) const QUOTED: u16 = 1;
/// The word holds a parameter, arithmetic or command expansion (`$x`, `${x}`, `$((1))`, `$(…)`).
pub(super) const EXPAND: u16 = 1 << 1;
/// The word holds an unquoted glob character (`*`, `?`, `[`, extglob).
pub(super) const GLOB: u16 = 1 << 2;
/// The word holds an unquoted brace expansion (`{a,b}`, `{1..3}`).
pub(super) const BRACE: u16 = 1 << 3;
/// The word holds ANSI-C quoting (`$'…'`).
pub(super) const ANSI_C: u16 = 1 << 4;
/// The word holds a process substitution (`<(…)`, `>(…)`).
pub(super) const PROC_SUBST: u16 = 1 << 5;
/// The word starts with an unquoted `~`.
pub(super) const TILDE: u16 = 1 << 6;
/// The word holds a command substitution (`$(…)`, backquotes).
pub(super) const CMD_SUBST: u16 = 1 << 7;

/// Flags that make a word's value unknown before the shell runs.
pub(super) const DYNAMIC: u16 = EXPAND | GLOB | BRACE | ANSI_C | PROC_SUBST | CMD_SUBST;

/// One shell word after quote removal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Word {
    /// The text, quotes removed; an expansion keeps its source form (`$HOME`) and a command
    /// substitution reads `$(…)`.
    pub(super) text: String,
    /// Bit set of the flags above.
    pub(super) flags: u16,
    /// When the whole word is one command substitution: the script holding its commands.
    pub(super) subst: Option<usize>,
}

impl Word {
    pub(super) fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    pub(super) fn is_dynamic(&self) -> bool {
        self.has(DYNAMIC)
    }

    /// A word the shell would lex back into the same single word (used to unwrap `eval` without
    /// lexing its arguments again).
    pub(super) fn is_plain(&self) -> bool {
        !self.text.is_empty()
            && !self.is_dynamic()
            && !self.text.chars().any(|c| {
                c.is_whitespace()
                    || matches!(
                        c,
                        '\'' | '"'
                            | '\\'
                            | '$'
                            | '`'
                            | ';'
                            | '&'
                            | '|'
                            | '('
                            | ')'
                            | '<'
                            | '>'
                            | '#'
                            | '*'
                            | '?'
                            | '['
                            | ']'
                            | '{'
                            | '}'
                            | '~'
                            | '='
                            | '!'
                    )
            })
    }
}

/// How a redirection uses its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RedirKind {
    /// `< file`.
    In,
    /// `> file`, `>> file`, `>| file`, `&> file`, `<> file`.
    Out,
    /// `>&2`, `<&0`, `>&-`.
    Dup,
    /// A here-document; the target's text is the body.
    HereDoc,
    /// A here-string (`<<< word`).
    HereStr,
}

/// One redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Redir {
    pub(super) kind: RedirKind,
    pub(super) target: Word,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Cmd {
    /// Words, leading assignments and reserved words removed.
    pub(super) words: Vec<Word>,
    pub(super) redirs: Vec<Redir>,
    /// Its stdin is the previous command's stdout.
    pub(super) pipe_in: bool,
    /// Its stdout goes to the next command.
    pub(super) pipe_out: bool,
    /// The producer feeding `pipe_in` is a group or subshell (its output is not one command's).
    pub(super) pipe_from_group: bool,
    /// Ended by `&`.
    pub(super) background: bool,
    /// Not a command but data: an array literal or a `case`/`for` header.
    pub(super) data: bool,
    /// The innermost function definition whose body holds this command (index into
    /// [`Parsed::functions`]).
    pub(super) func: Option<usize>,
}

/// The commands of one script: the line itself or one substitution inside it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Script {
    /// Nesting depth (the line is 0).
    pub(super) depth: usize,
    /// For a substitution: the script and command index it sits in.
    pub(super) parent: Option<(usize, usize)>,
    pub(super) cmds: Vec<Cmd>,
}

/// Why the lexer stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LexStop {
    /// Nesting deeper than the limit.
    TooDeep,
    /// Backquotes nested inside backquotes (`\``), whose meaning depends on escape counting.
    NestedBackquotes,
    /// `$((` or `((` that is not closed by `))`: arithmetic or a subshell, the shell decides late.
    AmbiguousArith,
}

/// A lexed line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Parsed {
    /// Script 0 is the line; the others are substitutions, parents before children.
    pub(super) scripts: Vec<Script>,
    /// Names of the functions defined in the line.
    pub(super) functions: Vec<String>,
    /// Set when lexing stopped early; the scripts then hold what was read so far.
    pub(super) stop: Option<LexStop>,
    /// Deepest nesting seen.
    pub(super) max_depth: usize,
}

/// `NAME=…` with a valid shell name.
pub(super) fn is_assignment(w: &str) -> bool {
    let Some(eq) = w.find('=') else { return false };
    let name = w[..eq].strip_suffix('+').unwrap_or(&w[..eq]);
    let name = name.split('[').next().unwrap_or(name);
    !name.is_empty()
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
}

/// The basename of a command word (`/usr/sbin/reboot` → `reboot`).
pub(super) fn basename(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}
