//! The lease-violation count of W7 and the fight, read from the store afterwards and
//! independently of how writers were serialized (leases, fencing or luck).
//!
//! A session is a violation unless its messages are exactly its acknowledged turns: every turn
//! once, nothing unacknowledged, seqs gap-free from 1, each user message followed directly by the
//! assistant answer to that very message, and the turns of one chain (the sends one driver made
//! to the session, each after the previous was acknowledged) in the order they were sent.

use std::collections::HashMap;

use power_loop::{MessageRow, SessionStore};
use tokio::task::JoinSet;

/// What the scripted model's answer to a user message starts with.
pub(crate) const ANSWER_PREFIX: &str = "answer to: ";

/// The assistant answer that belongs to the user message `user`.
pub(crate) fn answer_for(user: &str) -> String {
    format!("{ANSWER_PREFIX}{user}")
}

/// The acknowledged turns of one session: one chain of user texts per driver, each in send order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Acked {
    /// The session id.
    pub(crate) session_id: String,
    /// Per chain, the user texts acknowledged, in the order they were sent.
    pub(crate) chains: Vec<Vec<String>>,
}

/// The outcome of checking many sessions.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Sessions read.
    pub(crate) sessions_checked: usize,
    /// Messages read.
    pub(crate) messages_checked: usize,
    /// Sessions whose messages are not exactly their acknowledged turns.
    pub(crate) violations: usize,
    /// Their ids.
    pub(crate) violated: Vec<String>,
    /// The first few violations, `session: reason`.
    pub(crate) examples: Vec<String>,
}

/// How many violations to keep as examples.
const EXAMPLES: usize = 5;

/// Checks one session's stored messages against its acknowledged chains; `Err` names the first
/// thing that makes it a violation.
pub(crate) fn check_session(rows: &[MessageRow], chains: &[Vec<String>]) -> Result<(), String> {
    let mut rows: Vec<&MessageRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.seq);
    for (i, r) in rows.iter().enumerate() {
        let want = i64::try_from(i + 1).unwrap_or(i64::MAX);
        if r.seq != want {
            return Err(format!(
                "seq {} where {want} was expected (a gap or a repeated seq)",
                r.seq
            ));
        }
    }
    let turns: usize = chains.iter().map(Vec::len).sum();
    if rows.len() != turns * 2 {
        return Err(format!(
            "holds {} messages, expected {} ({turns} acknowledged turns)",
            rows.len(),
            turns * 2
        ));
    }
    // user text → (chain, position in the chain)
    let mut place: HashMap<&str, (usize, usize)> = HashMap::new();
    for (c, chain) in chains.iter().enumerate() {
        for (k, text) in chain.iter().enumerate() {
            place.insert(text.as_str(), (c, k));
        }
    }
    let mut next = vec![0usize; chains.len()];
    for pair in rows.chunks(2) {
        let [user, answer] = pair else {
            return Err("an odd message count".into());
        };
        let text = user.content.as_deref().unwrap_or_default();
        if user.role != "user" || answer.role != "assistant" {
            return Err(format!(
                "seq {} and {} are {}/{}, not a user message and its answer",
                user.seq, answer.seq, user.role, answer.role
            ));
        }
        if answer.content.as_deref() != Some(answer_for(text).as_str()) {
            return Err(format!(
                "the answer at seq {} does not answer the user message at seq {} (a broken pair)",
                answer.seq, user.seq
            ));
        }
        let Some(&(c, k)) = place.get(text) else {
            return Err(format!(
                "seq {} holds `{text}`, which was never acknowledged",
                user.seq
            ));
        };
        if k < next[c] {
            return Err(format!("seq {} repeats the turn `{text}`", user.seq));
        }
        if k > next[c] {
            return Err(format!(
                "seq {} holds `{text}` before `{}` (out of send order, or a turn is missing)",
                user.seq, chains[c][next[c]]
            ));
        }
        next[c] += 1;
    }
    for (c, chain) in chains.iter().enumerate() {
        if next[c] != chain.len() {
            return Err(format!(
                "the acknowledged turn `{}` is missing",
                chain[next[c]]
            ));
        }
    }
    Ok(())
}

/// Reads every session of `acked` from `store` (`concurrency` at a time) and counts the
/// violations. Fails only when the store cannot be read.
pub(crate) async fn count_violations(
    store: &SessionStore,
    acked: Vec<Acked>,
    concurrency: usize,
) -> Result<Verdict, String> {
    let mut verdict = Verdict::default();
    let mut pending = acked.into_iter();
    let mut set = JoinSet::new();
    loop {
        while set.len() < concurrency.max(1) {
            let Some(a) = pending.next() else { break };
            let store = store.clone();
            set.spawn(async move {
                let rows = store.load_all_messages(&a.session_id).await;
                (a, rows)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (a, rows) = joined.map_err(|e| format!("a checker task failed: {e}"))?;
        let rows = rows.map_err(|e| format!("reading session `{}`: {e}", a.session_id))?;
        verdict.sessions_checked += 1;
        verdict.messages_checked += rows.len();
        if let Err(reason) = check_session(&rows, &a.chains) {
            verdict.violations += 1;
            verdict.violated.push(a.session_id.clone());
            if verdict.examples.len() < EXAMPLES {
                verdict.examples.push(format!("{}: {reason}", a.session_id));
            }
        }
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests;
