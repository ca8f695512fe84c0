//! `SessionStore`: the one backend-neutral store (cheap to clone; an `Arc` inside).
//!
//! Every operation is expressed as SQL with `?` placeholders over the [`Database`] port and runs
//! in one transaction through [`run_tx`]. The operations live with their tables under
//! `crate::tables` (`sessions`, `messages`, `timers`, …) as further `impl SessionStore` blocks;
//! this file holds the handle, its options and the statements of the hot path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use power_loop_contracts::{ErrorCode, Result};

use crate::db::run::run_tx;
use crate::db::{Database, Transaction, TxMode};
use crate::open::{StoreOptions, validate_spawn_depth};
use crate::schema::{CURRENT_SCHEMA_VERSION, TableNames};
use crate::tables::messages::sql::MessageSql;
use crate::tables::session_state::sql::StateSql;
use crate::tables::sessions::sql::SessionSql;
use crate::tables::usage::sql::UsageSql;

/// The durable session store. Clone it freely: clones share one database handle.
#[derive(Clone)]
pub struct SessionStore {
    pub(crate) inner: Arc<Inner>,
    /// Fencing tokens every write transaction of this handle checks first (`None`: unfenced);
    /// see [`SessionStore::fenced`].
    pub(crate) fences: Option<Arc<[crate::tables::fences::row::Fence]>>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("backend", &self.inner.db.dialect().name())
            .field("table_prefix", &self.inner.t.prefix)
            .field("max_spawn_depth", &self.max_spawn_depth())
            .field("fences", &self.fences())
            .finish()
    }
}

/// Statements of the hot path, rendered once per store (each table's own module renders and
/// runs them).
pub(crate) struct HotSql {
    /// `sessions`: touch and existence check.
    pub(crate) sessions: SessionSql,
    /// `session_state`: the row lock, the read and the write-back.
    pub(crate) state: StateSql,
    /// `messages`: the multi-row insert.
    pub(crate) messages: MessageSql,
    /// `usage_rounds` / `session_stats`: the turn's upserts.
    pub(crate) usage: UsageSql,
    /// `lease_fences`: the fencing-token check of a fenced handle's write transactions.
    pub(crate) fence_check: String,
}

/// What every clone of a [`SessionStore`] shares.
pub(crate) struct Inner {
    pub(crate) db: Arc<dyn Database>,
    pub(crate) t: TableNames,
    pub(crate) max_spawn_depth: AtomicU32,
    pub(crate) sql: HotSql,
    /// Session leases this store released cleanly, by lease name, with the token they held: a
    /// later acquire by this store may keep that token when the table still holds it.
    pub(crate) released_leases: crate::tables::fences::row::ReleasedLeases,
}

impl SessionStore {
    /// Wraps an open database without touching the schema (use [`SessionStore::open_database`]
    /// or `open_store` to apply a schema policy). Validates the options.
    pub fn new(db: Arc<dyn Database>, options: &StoreOptions) -> Result<Self> {
        options.validate()?;
        let t = TableNames::new(&options.table_prefix)?;
        let d = db.dialect();
        let sql = HotSql {
            sessions: SessionSql::new(&t),
            state: StateSql::new(&t, d),
            messages: MessageSql::new(&t),
            usage: UsageSql::new(&t, d),
            fence_check: crate::tables::fences::row::fence_check_sql(
                &t.lease_fences,
                d.for_update(),
            ),
        };
        Ok(SessionStore {
            inner: Arc::new(Inner {
                db,
                t,
                max_spawn_depth: AtomicU32::new(options.max_spawn_depth),
                sql,
                released_leases: crate::tables::fences::row::ReleasedLeases::default(),
            }),
            fences: None,
        })
    }

    /// The underlying database handle.
    pub fn database(&self) -> &Arc<dyn Database> {
        &self.inner.db
    }

    /// The backend name (`sqlite`, `postgres`, `mysql`).
    pub fn backend_name(&self) -> &'static str {
        self.inner.db.dialect().name()
    }

    /// The sub-agent nesting ceiling of this handle.
    pub fn max_spawn_depth(&self) -> u32 {
        self.inner.max_spawn_depth.load(Ordering::Relaxed)
    }

    /// Changes the nesting ceiling (≥ 1, else `invalid_argument`); shared by clones, not persisted.
    pub fn set_max_spawn_depth(&self, depth: u32) -> Result<()> {
        validate_spawn_depth(depth)?;
        self.inner.max_spawn_depth.store(depth, Ordering::Relaxed);
        Ok(())
    }

    /// The schema version of this build ([`CURRENT_SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> i64 {
        CURRENT_SCHEMA_VERSION
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        &self.inner.t.prefix
    }

    /// The resolved physical table names.
    pub fn tables(&self) -> &TableNames {
        &self.inner.t
    }

    /// Closes the database (idempotent). Later operations fail with `store.closed`.
    pub async fn close(&self) -> Result<()> {
        self.inner.db.close().await
    }

    /// Runs `f` in one write transaction with access to the store internals. On a fenced handle
    /// the transaction first checks every fencing token (see [`SessionStore::fenced`]).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut dyn Transaction) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        match self.fences.clone() {
            None => run_tx(&*self.inner.db, TxMode::Write, move |tx| f(&inner, tx)).await,
            Some(fences) => {
                run_tx(&*self.inner.db, TxMode::Write, move |tx| {
                    crate::tables::fences::row::check_fences(tx, &inner.sql.fence_check, &fences)?;
                    f(&inner, tx)
                })
                .await
            }
        }
    }

    /// Runs `f` in one read transaction (a consistent snapshot where the backend offers one).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut dyn Transaction) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_tx(&*self.inner.db, TxMode::Read, move |tx| f(&inner, tx)).await
    }

    /// Like [`SessionStore::write`], retried a few times on a uniqueness violation or a
    /// transient conflict (the backstop of id allocation under concurrent writers).
    pub(crate) async fn write_retrying<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Inner, &mut dyn Transaction) -> Result<T> + Send + Sync + Clone + 'static,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let g = f.clone();
            match self.write(move |i, tx| g(i, tx)).await {
                Err(e)
                    if attempt < 8
                        && matches!(
                            e.code(),
                            ErrorCode::StoreConstraint | ErrorCode::StoreConflict
                        ) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }
}
