//! [`SharedBudget`]: one token pool for every leaf of a run.

use std::sync::atomic::{AtomicU64, Ordering};

use power_loop_agent::RunUsage;
use serde_json::{Value, json};

use crate::spec::BudgetSpec;

/// A soft token pool shared by the leaves of one run: [`SharedBudget::can_spawn`] gates starting
/// a new leaf, [`SharedBudget::commit`] charges a finished one. In-flight leaves are never
/// stopped, so a run may overshoot by what they spend. Lock-free and safe to share across
/// threads (`Arc<SharedBudget>`).
#[derive(Debug)]
pub struct SharedBudget {
    max_tokens: u64,
    floor: f64,
    spent: AtomicU64,
}

impl SharedBudget {
    /// A pool of `max_tokens` that stops admitting leaves once no more than
    /// `stop_at_remaining_pct` percent of it is left (clamped to 0–100).
    pub fn new(max_tokens: u64, stop_at_remaining_pct: f64) -> Self {
        let pct = if stop_at_remaining_pct.is_finite() {
            stop_at_remaining_pct.clamp(0.0, 100.0)
        } else {
            0.0
        };
        SharedBudget {
            max_tokens,
            floor: max_tokens as f64 * pct / 100.0,
            spent: AtomicU64::new(0),
        }
    }

    /// The pool a spec's `budget` describes.
    pub fn from_spec(spec: &BudgetSpec) -> Self {
        SharedBudget::new(spec.max_tokens, spec.stop_at_remaining_pct)
    }

    /// The pool size.
    pub fn max_tokens(&self) -> u64 {
        self.max_tokens
    }

    /// Tokens charged so far.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Acquire)
    }

    /// Tokens left (never below 0).
    pub fn remaining(&self) -> u64 {
        self.max_tokens.saturating_sub(self.spent())
    }

    /// Whether a new leaf may start: what is left is still above the reserve floor.
    pub fn can_spawn(&self) -> bool {
        let left = self.max_tokens as f64 - self.spent() as f64;
        left > self.floor
    }

    /// Charges a leaf's `total_tokens`.
    pub fn commit(&self, usage: &RunUsage) {
        self.commit_tokens(usage.total_tokens);
    }

    /// Charges `tokens` directly.
    pub fn commit_tokens(&self, tokens: u64) {
        // saturating: a hostile journal cannot wrap the counter
        let _ = self
            .spent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some(s.saturating_add(tokens))
            });
    }

    /// `{max_tokens, spent, remaining}`.
    pub fn as_value(&self) -> Value {
        let spent = self.spent();
        json!({
            "max_tokens": self.max_tokens,
            "spent": spent,
            "remaining": self.max_tokens.saturating_sub(spent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(total: u64) -> RunUsage {
        RunUsage {
            total_tokens: total,
            ..RunUsage::default()
        }
    }

    #[test]
    fn floor_gates_spawning_and_remaining_never_goes_negative() {
        let b = SharedBudget::new(1000, 10.0);
        assert!(b.can_spawn());
        b.commit(&usage(899));
        assert!(b.can_spawn()); // 101 left > floor 100
        b.commit(&usage(1));
        assert!(!b.can_spawn()); // 100 left, not above the floor
        b.commit(&usage(5000));
        assert_eq!(b.remaining(), 0);
        assert_eq!(
            b.as_value(),
            json!({"max_tokens": 1000, "spent": 5900, "remaining": 0})
        );
    }

    #[test]
    fn zero_floor_admits_until_spent() {
        let b = SharedBudget::new(10, 0.0);
        b.commit(&usage(9));
        assert!(b.can_spawn());
        b.commit(&usage(1));
        assert!(!b.can_spawn());
    }

    #[test]
    fn concurrent_commits_all_land() {
        let b = std::sync::Arc::new(SharedBudget::new(u64::MAX, 0.0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        b.commit_tokens(1);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.spent(), 8000);
    }
}
