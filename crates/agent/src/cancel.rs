//! [`CancelHandle`]: a cancellation token that remembers why it fired.

use std::sync::{Arc, OnceLock};

use power_loop_contracts::CancellationToken;

/// The reason a run reports when it was cancelled without one.
pub const DEFAULT_CANCEL_REASON: &str = "cancelled";

/// A cancellation token plus the reason it was cancelled with. Pass it with
/// [`SendOptions::with_cancel_handle`](crate::SendOptions::with_cancel_handle); when it fires,
/// the run ends `cancelled`, [`StatefulResult::cancel_reason`](crate::StatefulResult) and the
/// `loop_cancelled` event carry the reason. Cloning shares the token and the reason; the first
/// reason given wins.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

impl CancelHandle {
    /// A fresh handle (not cancelled).
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle over an existing token (e.g. a child of a host-wide shutdown token). If the
    /// token fires without [`cancel_with_reason`](Self::cancel_with_reason), the reason is
    /// [`DEFAULT_CANCEL_REASON`].
    pub fn from_token(token: CancellationToken) -> Self {
        CancelHandle {
            token,
            reason: Arc::default(),
        }
    }

    /// The token (what tools and model calls watch).
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Cancels with [`DEFAULT_CANCEL_REASON`] (unless a reason was already given).
    pub fn cancel(&self) {
        self.cancel_with_reason(DEFAULT_CANCEL_REASON);
    }

    /// Cancels and records `reason` (blank → [`DEFAULT_CANCEL_REASON`]); a later call keeps the
    /// first reason.
    pub fn cancel_with_reason(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let reason = if reason.trim().is_empty() {
            DEFAULT_CANCEL_REASON.to_owned()
        } else {
            reason.trim().to_owned()
        };
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Whether the token fired.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it fired: `None` while not cancelled, else the recorded reason or
    /// [`DEFAULT_CANCEL_REASON`].
    pub fn reason(&self) -> Option<String> {
        if !self.token.is_cancelled() {
            return None;
        }
        Some(
            self.reason
                .get()
                .cloned()
                .unwrap_or_else(|| DEFAULT_CANCEL_REASON.to_owned()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reason_wins_and_plain_cancel_has_the_default() {
        let h = CancelHandle::new();
        assert_eq!(h.reason(), None);
        h.cancel_with_reason("  user pressed stop ");
        h.cancel_with_reason("later");
        assert!(h.token().is_cancelled());
        assert_eq!(h.reason().as_deref(), Some("user pressed stop"));
        let t = CancellationToken::new();
        let h = CancelHandle::from_token(t.clone());
        t.cancel();
        assert_eq!(h.reason().as_deref(), Some(DEFAULT_CANCEL_REASON));
    }
}
