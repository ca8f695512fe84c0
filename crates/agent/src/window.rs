//! The per-session active-window cache (store spec §11): a rebuildable accelerator keyed by the
//! store token `(next_seq, last_compact_seq)`. It holds only the durable projection (messages as
//! converted from stored rows), never transient content, so a cold loop builds the same prompt.

use std::collections::HashMap;
use std::sync::Mutex;

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

struct Entry {
    token: WindowToken,
    messages: Vec<Message>,
    seqs: Vec<i64>,
    touched: u64,
}

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

    /// The cached window when its token equals `token` (a hit), else `None` (a miss).
    pub(crate) fn get(&self, sid: &str, token: WindowToken) -> Option<(Vec<Message>, Vec<i64>)> {
        if !self.enabled() {
            return None;
        }
        let mut g = self.lock();
        g.1 += 1;
        let now = g.1;
        let hit = match g.0.get_mut(sid) {
            Some(e) if e.token == token => {
                e.touched = now;
                Some((e.messages.clone(), e.seqs.clone()))
            }
            _ => None,
        };
        if hit.is_some() {
            g.2.hits += 1;
        } else {
            g.2.misses += 1;
        }
        hit
    }

    /// Stores a freshly loaded window.
    pub(crate) fn put(
        &self,
        sid: &str,
        token: WindowToken,
        messages: Vec<Message>,
        seqs: Vec<i64>,
    ) {
        if !self.enabled() {
            return;
        }
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

    /// Extends an entry with rows this loop just wrote: only when the first new seq equals the
    /// entry's `next_seq` (contiguity guard) and no fold happened; otherwise drops the entry.
    pub(crate) fn extend(&self, sid: &str, last_compact_seq: i64, appended: &[(i64, Message)]) {
        if !self.enabled() || appended.is_empty() {
            return;
        }
        let mut g = self.lock();
        let ok = match g.0.get_mut(sid) {
            Some(e) if e.token.last_compact_seq == last_compact_seq => {
                let mut ok = true;
                for (seq, m) in appended {
                    if *seq != e.token.next_seq {
                        ok = false;
                        break;
                    }
                    e.messages.push(m.clone());
                    e.seqs.push(*seq);
                    e.token.next_seq = seq + 1;
                }
                ok
            }
            Some(_) => false,
            None => true,
        };
        if !ok {
            g.0.remove(sid);
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
