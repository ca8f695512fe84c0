//! Cross-process leases on MySQL / MariaDB named locks (`GET_LOCK`), multiplexed on a few shared
//! connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{BoxFuture, Lease, Value};

use crate::error;
use crate::tx::to_params;

/// Shared lease connections per database handle. One connection can hold any number of named
/// locks; a few of them let acquires and releases of different sessions overlap (each
/// connection runs one statement at a time).
const SHARDS: usize = 4;

/// Generation of a lock whose `GET_LOCK` has not answered yet.
const PENDING: u64 = u64::MAX;

/// The leases of one [`crate::MySqlDatabase`]: every named lock is taken with the non-waiting
/// `GET_LOCK(name, 0)` on one of [`SHARDS`] dedicated (non-pooled) connections, chosen by a hash
/// of the name, so a hundred in-flight sessions cost four connections and an acquire or a
/// release is one round trip (no connection is opened per lease). `GET_LOCK` is re-entrant per
/// connection, so an in-process map refuses a second holder in this process (a name is reserved
/// before its `GET_LOCK` is sent and freed after its `RELEASE_LOCK` answered); other processes
/// use other connections and are excluded by the server. A lease connection that dies takes its
/// locks with it (the server frees them); the hub reconnects on the next acquire and forgets the
/// leases of the dead connection.
pub(crate) struct LeaseHub {
    opts: Opts,
    connect_timeout: Duration,
    target: String,
    shards: Vec<tokio::sync::Mutex<Shard>>,
    /// Held (or being acquired) lock names → (shard, connection generation).
    held: Mutex<HashMap<String, (usize, u64)>>,
}

#[derive(Default)]
struct Shard {
    conn: Option<Conn>,
    /// Bumped on every (re)connect; a lease taken on an older generation died with it.
    generation: u64,
}

/// The full lock name (the hub's key) and the SQL expression / argument `GET_LOCK` takes it as.
pub(crate) struct LockName {
    /// `pl:<database>:<name>` (the in-process key).
    pub(crate) full: String,
    /// `?` or `SHA2(?, 256)` for names longer than the server accepts.
    pub(crate) expr: &'static str,
}

fn shard_of(full: &str) -> usize {
    // FNV-1a: stable and cheap; only spreads names over the shards.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in full.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    usize::try_from(h % SHARDS as u64).unwrap_or(0)
}

/// Whether a driver error means the connection itself is unusable (rather than a server-side
/// statement error on a healthy connection).
fn connection_lost(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_))
}

impl LeaseHub {
    /// A hub whose connections (made lazily with `opts`) are opened within `connect_timeout`.
    pub(crate) fn new(opts: Opts, connect_timeout: Duration, target: String) -> Self {
        LeaseHub {
            opts,
            connect_timeout,
            target,
            shards: (0..SHARDS)
                .map(|_| tokio::sync::Mutex::new(Shard::default()))
                .collect(),
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<String, (usize, u64)>> {
        // Every update is a single map call, so a poisoned map is still consistent.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `SELECT <fn>(<expr>[, 0]) AS v` on shard `idx` (connecting it first if needed) and
    /// returns the integer answer (NULL → `None`) with the connection generation it ran on.
    async fn call(
        &self,
        idx: usize,
        sql: &str,
        arg: &str,
        want_generation: Option<u64>,
    ) -> Result<Option<(Option<i64>, u64)>> {
        let Some(slot) = self.shards.get(idx) else {
            return Err(Error::internal(format!("lease shard {idx} out of range")));
        };
        let mut shard = slot.lock().await;
        if let Some(g) = want_generation
            && (g != shard.generation || shard.conn.is_none())
        {
            // The connection that held the lock is gone (and the lock with it).
            return Ok(None);
        }
        if shard.conn.is_none() {
            let what = format!("opening a lease connection to {}", self.target);
            let conn = match tokio::time::timeout(
                self.connect_timeout,
                Conn::new(self.opts.clone()),
            )
            .await
            {
                Ok(r) => r.map_err(|e| error::map(e, &what))?,
                Err(_) => {
                    return Err(Error::new(
                        ErrorCode::StoreConnection,
                        format!(
                            "{what}: no answer within {} ms; check that the server is reachable \
                             or raise the connect timeout",
                            self.connect_timeout.as_millis()
                        ),
                    ));
                }
            };
            shard.generation = shard.generation.wrapping_add(1) % PENDING;
            shard.conn = Some(conn);
            // Leases of this shard's previous connection died with it.
            let generation = shard.generation;
            self.held()
                .retain(|_, (s, g)| *s != idx || *g == PENDING || *g == generation);
        }
        let generation = shard.generation;
        let Some(conn) = shard.conn.as_mut() else {
            return Ok(None);
        };
        let params = to_params(&[Value::Text(arg.to_owned())]);
        match conn.exec_first::<Option<i64>, _, _>(sql, params).await {
            Ok(v) => Ok(Some((v.flatten(), generation))),
            Err(e) => {
                if connection_lost(&e) {
                    // The server frees every lock of a lost connection.
                    shard.conn = None;
                }
                Err(error::map(e, "running a lease statement"))
            }
        }
    }

    /// `GET_LOCK(name, 0)`: `Ok(None)` when another holder (in this or another process) has it.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        lock: LockName,
        name: &str,
    ) -> Result<Option<Box<dyn Lease>>> {
        let idx = shard_of(&lock.full);
        {
            let mut held = self.held();
            if held.contains_key(&lock.full) {
                return Ok(None);
            }
            held.insert(lock.full.clone(), (idx, PENDING));
        }
        let sql = format!("SELECT GET_LOCK({}, 0) AS got", lock.expr);
        match self.call(idx, &sql, &lock.full, None).await {
            Ok(Some((Some(1), generation))) => {
                self.held().insert(lock.full.clone(), (idx, generation));
                Ok(Some(Box::new(MySqlLease {
                    name: name.to_owned(),
                    lock: Some(lock),
                    shard: idx,
                    generation,
                    hub: Some(Arc::clone(self)),
                })))
            }
            other => {
                self.held().remove(&lock.full);
                other.map(|_| None)
            }
        }
    }

    async fn release(
        &self,
        lock: &LockName,
        idx: usize,
        generation: u64,
        name: &str,
    ) -> Result<()> {
        if self.held().get(&lock.full) != Some(&(idx, generation)) {
            // Its connection was lost and re-made since: the server already freed the lock.
            return Ok(());
        }
        let sql = format!("SELECT RELEASE_LOCK({}) AS released", lock.expr);
        let result = self.call(idx, &sql, &lock.full, Some(generation)).await;
        {
            let mut held = self.held();
            if held.get(&lock.full) == Some(&(idx, generation)) {
                held.remove(&lock.full);
            }
        }
        match result {
            // Released, or its connection is gone (and the lock with it).
            Ok(Some((Some(1), _)) | None) => Ok(()),
            Ok(Some(_)) => Err(Error::new(
                ErrorCode::StoreConflict,
                format!(
                    "lease `{name}` was no longer held when released (its connection was reset); \
                     another worker may have taken it"
                ),
            )),
            Err(e) => Err(e),
        }
    }

    /// Closes the lease connections (the server frees every lock they held).
    pub(crate) async fn close(&self) {
        for slot in &self.shards {
            let conn = slot.lock().await.conn.take();
            if let Some(conn) = conn {
                let _ = tokio::time::timeout(self.connect_timeout, conn.disconnect()).await;
            }
        }
        self.held().clear();
    }
}

/// A named `GET_LOCK` held on one of the hub's shared connections.
struct MySqlLease {
    name: String,
    lock: Option<LockName>,
    shard: usize,
    generation: u64,
    hub: Option<Arc<LeaseHub>>,
}

impl Lease for MySqlLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let hub = self.hub.take();
        let lock = self.lock.take();
        let (shard, generation) = (self.shard, self.generation);
        let name = std::mem::take(&mut self.name);
        Box::pin(async move {
            match (hub, lock) {
                (Some(hub), Some(lock)) => hub.release(&lock, shard, generation, &name).await,
                _ => Ok(()),
            }
        })
    }
}

impl Drop for MySqlLease {
    fn drop(&mut self) {
        // Dropped without `release`: release in the background so the session is not stuck.
        if let (Some(hub), Some(lock)) = (self.hub.take(), self.lock.take())
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (shard, generation) = (self.shard, self.generation);
            let name = std::mem::take(&mut self.name);
            rt.spawn(async move {
                let _ = hub.release(&lock, shard, generation, &name).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_spread_over_the_shards_stably() {
        assert_eq!(shard_of("pl:test:a"), shard_of("pl:test:a"));
        let used: std::collections::HashSet<usize> = (0..64)
            .map(|i| shard_of(&format!("pl:test:s{i}")))
            .collect();
        assert_eq!(used.len(), SHARDS);
    }
}
