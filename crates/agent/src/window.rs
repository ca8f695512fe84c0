//! The per-session active-window cache: a rebuildable accelerator keyed by the
//! store token `(next_seq, last_compact_seq)`. It holds only the durable projection (messages as
//! converted from stored rows), never transient content, so a cold loop builds the same prompt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use power_loop_contracts::Message;
use power_loop_store::WindowToken;
use serde::{Deserialize, Serialize};

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Sends served from the cache.
    pub hits: u64,
    /// Sends that reloaded the window.
    pub misses: u64,
    /// Entries evicted by the LRU bound.
    pub evictions: u64,
    /// Entries currently cached.
    pub entries: u64,
}

/// A cached window: the durable projection and the store seq of each message (all `Some`; the
/// type matches the run's seq vector so the window moves in and out without conversion).
pub(crate) type Window = (Arc<Vec<Message>>, Vec<Option<i64>>);

struct Entry {
    token: WindowToken,
    messages: Arc<Vec<Message>>,
    seqs: Vec<Option<i64>>,
    touched: u64,
}

/// The cache. A send *takes* its session's entry out ([`WindowCache::take`]) so the run holds
/// the only reference to the history and can append to it in place, and puts the updated
/// window back once the send succeeded ([`WindowCache::put`]); a failed send leaves no entry and
/// the next send reloads from the store. Sends on one session are serialized by the session
/// lock, so an entry is never needed by two sends at once.
pub(crate) struct WindowCache {
    cap: usize,
    inner: Mutex<(HashMap<String, Entry>, u64, CacheStats)>,
}

impl WindowCache {
    pub(crate) fn new(cap: usize) -> Self {
        WindowCache {
            cap,
            inner: Mutex::new((HashMap::new(), 0, CacheStats::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Entry>, u64, CacheStats)> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn enabled(&self) -> bool {
        self.cap > 0
    }

    /// Removes and returns the cached window when its token equals `token` (a hit), else drops
    /// any stale entry and returns `None` (a miss). O(1): the window is moved, not copied.
    pub(crate) fn take(&self, sid: &str, token: WindowToken) -> Option<Window> {
        if !self.enabled() {
            return None;
        }
        let mut g = self.lock();
        let hit = match g.0.remove(sid) {
            Some(e) if e.token == token => Some((e.messages, e.seqs)),
            _ => None,
        };
        if hit.is_some() {
            g.2.hits += 1;
        } else {
            g.2.misses += 1;
        }
        hit
    }

    /// Stores a window (freshly loaded, or a send's updated one) under `token`.
    pub(crate) fn put(&self, sid: &str, token: WindowToken, window: Window) {
        if !self.enabled() {
            return;
        }
        let (messages, seqs) = window;
        let mut g = self.lock();
        g.1 += 1;
        let touched = g.1;
        g.0.insert(
            sid.to_owned(),
            Entry {
                token,
                messages,
                seqs,
                touched,
            },
        );
        while g.0.len() > self.cap {
            let Some(oldest) =
                g.0.iter()
                    .min_by_key(|(_, e)| e.touched)
                    .map(|(k, _)| k.clone())
            else {
                break;
            };
            g.0.remove(&oldest);
            g.2.evictions += 1;
        }
    }

    pub(crate) fn invalidate(&self, sid: &str) {
        self.lock().0.remove(sid);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            entries: g.0.len() as u64,
            ..g.2
        }
    }
}
