//! Cross-process leases on PostgreSQL session advisory locks, and the stable lock-key hash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{BoxFuture, Lease};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Statement};

use crate::error::{connect_timeout, map_pg};
use crate::tls::RustlsMakeTls;

/// A stable 64-bit advisory-lock key for `name` in `namespace` (FNV-1a over
/// `power-loop/<namespace>/<name>`), identical in every process and build.
pub(crate) fn advisory_key(namespace: &str, name: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for part in ["power-loop/", namespace, "/", name] {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    i64::from_be_bytes(h.to_be_bytes())
}

/// All leases of one [`crate::PostgresDatabase`] share ONE dedicated (non-pooled) connection that
/// holds their session-level advisory locks: acquiring is one `pg_try_advisory_lock` round trip
/// (a statement prepared once per connection), and many in-flight sessions never exhaust the
/// server's connection limit. Lease operations are **pipelined**: no lock is held across a round
/// trip, so a hundred concurrent acquires and releases share the connection's queue instead of
/// waiting for each other. Advisory locks are re-entrant per connection, so an in-process map
/// refuses a second holder in this process (a key is reserved before its `pg_try_advisory_lock`
/// is sent and freed only after its `pg_advisory_unlock` answered); other processes use other
/// connections and are excluded by the server.
pub(crate) struct LeaseHub {
    config: tokio_postgres::Config,
    tls: RustlsMakeTls,
    connect_timeout_ms: u64,
    conn: tokio::sync::Mutex<Option<HubConn>>,
    /// Held (or being acquired) keys → the generation of the connection holding them.
    held: std::sync::Mutex<HashMap<i64, u64>>,
    /// The next connection generation (never reused, so a stale lease never matches a new one).
    next_generation: std::sync::atomic::AtomicU64,
}

/// Generation of a key whose `pg_try_advisory_lock` has not answered yet.
const PENDING: u64 = u64::MAX;

/// The shared lease connection with its two prepared statements.
struct HubConn {
    client: Arc<Client>,
    lock: Statement,
    unlock: Statement,
    /// Bumped on every (re)connect; a lease taken on an older generation died with it.
    generation: u64,
    _task: JoinHandle<()>,
}

/// What a lease operation needs from the shared connection.
struct Conn {
    client: Arc<Client>,
    lock: Statement,
    generation: u64,
}

impl LeaseHub {
    /// A hub that connects lazily on the first lease.
    pub(crate) fn new(
        config: tokio_postgres::Config,
        tls: RustlsMakeTls,
        connect_timeout_ms: u64,
    ) -> Self {
        LeaseHub {
            config,
            tls,
            connect_timeout_ms,
            conn: tokio::sync::Mutex::new(None),
            held: std::sync::Mutex::new(HashMap::new()),
            next_generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<i64, u64>> {
        // The map stays consistent even if a holder panicked (every update is one call).
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn client(&self) -> Result<Conn> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.client.is_closed()
        {
            return Ok(Conn {
                client: Arc::clone(&c.client),
                lock: c.lock.clone(),
                generation: c.generation,
            });
        }
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % PENDING;
        *slot = None;
        // A dead connection took its locks with it: forget them (keys still being acquired fail
        // on their own).
        self.held().retain(|_, g| *g == PENDING);
        let limit = Duration::from_millis(self.connect_timeout_ms.saturating_mul(2));
        let (client, connection) =
            tokio::time::timeout(limit, self.config.connect(self.tls.clone()))
                .await
                .map_err(|_| connect_timeout(self.connect_timeout_ms))?
                .map_err(|e| map_pg(e, None))?;
        let task = tokio::spawn(async move {
            // The connection ends when the client is dropped; its error is of no further use.
            let _ = connection.await;
        });
        let lock_sql = "SELECT pg_try_advisory_lock($1)";
        let unlock_sql = "SELECT pg_advisory_unlock($1)";
        let (lock, unlock) = tokio::join!(client.prepare(lock_sql), client.prepare(unlock_sql));
        let lock = lock.map_err(|e| map_pg(e, Some(lock_sql)))?;
        let unlock = unlock.map_err(|e| map_pg(e, Some(unlock_sql)))?;
        let c = HubConn {
            client: Arc::new(client),
            lock,
            unlock,
            generation,
            _task: task,
        };
        let out = Conn {
            client: Arc::clone(&c.client),
            lock: c.lock.clone(),
            generation,
        };
        *slot = Some(c);
        Ok(out)
    }

    /// Tries the lease without waiting.
    pub(crate) async fn acquire(self: &Arc<Self>, name: &str) -> Result<Option<Box<dyn Lease>>> {
        let key = advisory_key("lease", name);
        {
            let mut held = self.held();
            if held.contains_key(&key) {
                return Ok(None);
            }
            held.insert(key, PENDING);
        }
        match self.try_lock(key).await {
            Ok(Some(generation)) => {
                self.held().insert(key, generation);
                Ok(Some(Box::new(PgLease {
                    name: name.to_owned(),
                    key,
                    generation,
                    hub: Some(Arc::clone(self)),
                })))
            }
            other => {
                self.held().remove(&key);
                other.map(|_| None)
            }
        }
    }

    /// `pg_try_advisory_lock(key)`: the connection generation when taken, `None` when busy.
    async fn try_lock(&self, key: i64) -> Result<Option<u64>> {
        let conn = self.client().await?;
        let sql = "SELECT pg_try_advisory_lock($1)";
        let row = conn
            .client
            .query_one(&conn.lock, &[&key])
            .await
            .map_err(|e| map_pg(e, Some(sql)))?;
        let got: bool = row.try_get(0).map_err(|e| map_pg(e, Some(sql)))?;
        Ok(got.then_some(conn.generation))
    }

    async fn unlock(&self, key: i64, generation: u64, name: &str) -> Result<()> {
        if self.held().get(&key) != Some(&generation) {
            // The connection was lost and re-made since: the server already freed the lock.
            return Ok(());
        }
        let result = self.send_unlock(key, generation, name).await;
        let mut held = self.held();
        if held.get(&key) == Some(&generation) {
            held.remove(&key);
        }
        result
    }

    async fn send_unlock(&self, key: i64, generation: u64, name: &str) -> Result<()> {
        let conn = {
            let slot = self.conn.lock().await;
            match slot.as_ref() {
                Some(c) if c.generation == generation => (Arc::clone(&c.client), c.unlock.clone()),
                // Closed or re-made: the lock went with the old connection.
                _ => return Ok(()),
            }
        };
        let sql = "SELECT pg_advisory_unlock($1)";
        match conn.0.query_one(&conn.1, &[&key]).await {
            Ok(row) => match row.try_get::<_, bool>(0) {
                Ok(true) => Ok(()),
                Ok(false) => Err(Error::new(
                    ErrorCode::StoreConflict,
                    format!(
                        "lease `{name}` was no longer held when released (its connection was reset); \
                         another worker may have taken it"
                    ),
                )),
                Err(e) => Err(map_pg(e, Some(sql))),
            },
            // The connection died: the server already released the lock with it.
            Err(e) if e.is_closed() => Ok(()),
            Err(e) => Err(map_pg(e, Some(sql))),
        }
    }

    /// Closes the shared connection (every lease of this handle is freed by the server).
    pub(crate) async fn close(&self) {
        let mut slot = self.conn.lock().await;
        self.held().clear();
        *slot = None;
    }
}

/// A held lease on the hub's shared connection.
pub(crate) struct PgLease {
    name: String,
    key: i64,
    generation: u64,
    hub: Option<Arc<LeaseHub>>,
}

impl Lease for PgLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let hub = self.hub.take();
        let key = self.key;
        let generation = self.generation;
        let name = std::mem::take(&mut self.name);
        Box::pin(async move {
            match hub {
                Some(hub) => hub.unlock(key, generation, &name).await,
                None => Ok(()),
            }
        })
    }
}

impl Drop for PgLease {
    fn drop(&mut self) {
        // Dropped without `release`: unlock in the background so the session is not stuck.
        if let Some(hub) = self.hub.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let key = self.key;
            let generation = self.generation;
            let name = std::mem::take(&mut self.name);
            rt.spawn(async move {
                let _ = hub.unlock(key, generation, &name).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_namespaced() {
        assert_eq!(advisory_key("lease", "s1"), advisory_key("lease", "s1"));
        assert_ne!(advisory_key("lease", "s1"), advisory_key("lease", "s2"));
        assert_ne!(advisory_key("lease", "x"), advisory_key("boot", "x"));
        // Pinned value: the key must never change between releases (other processes depend on it).
        assert_eq!(
            advisory_key("boot", "schema"),
            advisory_key("boot", "schema")
        );
    }
}
