//! Span selection of the default compactor: the protected head, the tail of the last
//! `keep_last_n` exchanges, the atomic-pair guard, and (improvement) a token-targeted cut at
//! tool-pair boundaries inside an exchange, so one long user turn with many tool rounds can still
//! be folded.

use power_loop_contracts::{Message, Role};

use crate::budget::estimate_tokens;

/// An inclusive range of history indices to fold into one compact note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldSpan {
    /// First folded index.
    pub start: usize,
    /// Last folded index (inclusive).
    pub end: usize,
}

/// Whether `m` is a compact note (`role=system`, `name=compact_note`).
pub fn is_compact_note(m: &Message) -> bool {
    m.role == Role::System && m.name.as_deref() == Some("compact_note")
}

fn is_memory(m: &Message) -> bool {
    m.role == Role::System && m.name.as_deref().is_some_and(|n| n.starts_with("memory_"))
}

/// The protected head: a leading non-note system message plus the memory messages after it.
fn protected_head(messages: &[Message]) -> usize {
    match messages.first() {
        Some(m) if m.role == Role::System && !is_compact_note(m) => {
            1 + messages[1..].iter().take_while(|m| is_memory(m)).count()
        }
        _ => 0,
    }
}

/// The spec's tail start: the `max(keep_last_n, 1)`-th user message from the end, moved back over
/// a tool message to its assistant call. `None` when there are too few user messages.
fn exchange_tail(messages: &[Message], sys_end: usize, keep_last_n: usize) -> Option<usize> {
    let want = keep_last_n.max(1);
    let mut count = 0;
    let mut tail = None;
    for i in (sys_end..messages.len()).rev() {
        if messages[i].role == Role::User {
            count += 1;
            if count >= want {
                tail = Some(i);
                break;
            }
        }
    }
    let mut tail = tail?;
    if messages[tail].role == Role::Tool {
        tail = (sys_end..tail)
            .rev()
            .find(|&i| messages[i].role == Role::Assistant && !messages[i].tool_calls.is_empty())?;
    }
    (tail > sys_end).then_some(tail)
}

/// Selects the span to fold, or `None` when nothing useful can be folded.
///
/// Without `tail_target` this is exactly the spec's exchange rule (keep the last
/// `max(keep_last_n, 1)` exchanges). With `tail_target` (estimated tokens the kept tail should fit
/// in), a cut that would keep a tail above the target is moved forward to the earliest later
/// boundary that fits, never cutting between an assistant tool call and its tool results (a cut
/// only lands on a non-`tool` message) and always keeping at least `max(keep_last_n, 1)` such
/// units. The span always starts right after the protected head, so it absorbs a previous note.
/// A span holding nothing but compact notes and memory messages is rejected (folding it cannot
/// shrink anything).
pub fn select_span(
    messages: &[Message],
    keep_last_n: usize,
    tail_target: Option<u64>,
) -> Option<FoldSpan> {
    if messages.is_empty() {
        return None;
    }
    let sys_end = protected_head(messages);
    let mut cut = exchange_tail(messages, sys_end, keep_last_n);
    if let Some(target) = tail_target {
        let fits = |c: usize| estimate_tokens(&messages[c..]) <= target;
        if cut.is_none_or(|c| !fits(c)) {
            // Unit starts after the head: every non-tool message.
            let starts: Vec<usize> = (sys_end + 1..messages.len())
                .filter(|&i| messages[i].role != Role::Tool)
                .collect();
            let keep = keep_last_n.max(1);
            if starts.len() >= keep {
                let latest = starts[starts.len() - keep];
                let from = cut.unwrap_or(sys_end);
                let candidate = starts
                    .iter()
                    .copied()
                    .filter(|&c| c > from && c <= latest)
                    .find(|&c| fits(c))
                    .or_else(|| (latest > from).then_some(latest));
                if let Some(c) = candidate {
                    cut = Some(c);
                }
            }
        }
    }
    let cut = cut?;
    if cut <= sys_end {
        return None;
    }
    let span = FoldSpan {
        start: sys_end,
        end: cut - 1,
    };
    let productive = messages[span.start..=span.end]
        .iter()
        .any(|m| !is_compact_note(m) && !is_memory(m));
    productive.then_some(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use power_loop_contracts::ToolCall;

    fn parse(spec: &str) -> Vec<Message> {
        let mut n = 0;
        spec.split_whitespace()
            .map(|t| {
                n += 1;
                match t {
                    "U" => Message::user(format!("u{n}")),
                    "A" => Message::assistant(format!("a{n}")),
                    "Ac" => Message::assistant_tool_calls(
                        "",
                        vec![ToolCall::new(format!("c{n}"), "t", "{}")],
                    ),
                    "T" => Message::tool(format!("c{}", n - 1), "out"),
                    "S" => Message::system("sys"),
                    "N" => Message::system("note").with_name("compact_note"),
                    "M" => Message::system("mem").with_name("memory_1"),
                    other => panic!("bad token {other}"),
                }
            })
            .collect()
    }

    fn span(spec: &str, keep: usize) -> Option<(usize, usize)> {
        select_span(&parse(spec), keep, None).map(|s| (s.start, s.end))
    }

    #[test]
    fn spec_worked_examples() {
        let ex = "U Ac T A ";
        assert_eq!(span(&ex.repeat(6), 4), Some((0, 7)));
        assert_eq!(span(&format!("M M {}", ex.repeat(5)), 4), Some((2, 5)));
        assert_eq!(span(&format!("N M {}", ex.repeat(5)), 4), Some((0, 5)));
        assert_eq!(span(&format!("S N {}", ex.repeat(5)), 4), Some((1, 5)));
        assert_eq!(span(&ex.repeat(4), 4), None);
        assert_eq!(span(&ex.repeat(5), 4), Some((0, 3)));
        assert_eq!(span(&ex.repeat(2), 0), Some((0, 3)));
    }

    #[test]
    fn lone_previous_note_is_not_refolded() {
        // The reference folds [0, 0] here every round (an LLM call that cannot shrink anything).
        assert_eq!(span("N U Ac T A U Ac T", 2), None);
    }

    #[test]
    fn one_long_exchange_folds_at_tool_pair_boundaries() {
        let msgs = parse(&format!("S U {}", "Ac T ".repeat(20)));
        assert_eq!(select_span(&msgs, 4, None), None);
        let s = select_span(&msgs, 4, Some(60)).unwrap();
        assert_eq!(s.start, 1);
        assert_eq!(msgs[s.end + 1].role, Role::Assistant);
        assert!(!msgs[s.end + 1].tool_calls.is_empty());
        // at least 4 pairs are kept
        assert!(msgs.len() - (s.end + 1) >= 8);
    }
}
