//! [`SqliteDatabase`]: the port's `Database` on one dedicated connection thread.
//!
//! Every operation is a job sent over a channel to the thread that owns the rusqlite
//! [`Connection`]; the caller awaits a `tokio::sync::oneshot` reply, so the async runtime never
//! blocks on SQLite. A transaction body runs directly on that thread (no round trip per statement).
//! Write transactions queued together are committed together (group commit, see [`crate::group`]).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{BoxFuture, Database, Dialect, Lease, Maintenance, TxBody, TxMode};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::dialect::DIALECT;
use crate::error::{closed, map_sqlite};
use crate::group::{GroupCommitStats, GroupCounters, MAX_GROUP, WriteJob, commit_group};
use crate::lease::LeaseHost;
use crate::open::{Opened, Target, open_connection};
use crate::tx::{rollback_quietly, run_transaction};

/// A unit of work for the connection thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

enum Command {
    /// Any work that is not a write transaction (reads, schema boot, maintenance).
    Job(Job),
    /// A write transaction, committed together with the others queued beside it.
    Write(WriteJob),
    Close(oneshot::Sender<()>),
}

/// A SQLite database served by one dedicated connection thread.
///
/// Writers are serialized by that thread and by `BEGIN IMMEDIATE`; write transactions queued
/// together are committed in one SQLite transaction (group commit: one `COMMIT`, one fsync at
/// `synchronous=FULL`; each body in its own savepoint, so one body's failure fails it alone; every
/// caller is answered after the `COMMIT`). Reads run on the same connection. Cheap to share behind an `Arc`. Dropping it (or [`Database::close`]) stops the
/// thread after the queued work has finished, and closes the connection.
pub struct SqliteDatabase {
    sender: Mutex<Option<mpsc::Sender<Command>>>,
    path: Option<PathBuf>,
    leases: LeaseHost,
    groups: Arc<GroupCounters>,
}

impl std::fmt::Debug for SqliteDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteDatabase")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn thread_gone() -> Error {
    Error::new(
        ErrorCode::StoreClosed,
        "sqlite: the connection thread stopped (the database was closed); open the store again",
    )
}

/// How long the connection thread polls for the next command before it sleeps: a caller that
/// issues transactions back to back (one durable turn after another) then avoids paying a thread
/// wake-up per transaction. Bounded, so an idle database costs no CPU.
const POLL_BEFORE_SLEEP: std::time::Duration = std::time::Duration::from_micros(50);

/// Waits for the next command: polls briefly, then blocks.
fn next_command(rx: &mpsc::Receiver<Command>) -> Option<Command> {
    let started = std::time::Instant::now();
    loop {
        match rx.try_recv() {
            Ok(cmd) => return Some(cmd),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => {
                if started.elapsed() >= POLL_BEFORE_SLEEP {
                    return rx.recv().ok();
                }
                std::thread::yield_now();
            }
        }
    }
}

/// The most commands one round of the connection thread takes off the queue before it commits
/// the writes it collected (bounds how long a write waits behind reads queued after it).
const MAX_ROUND: usize = 4 * MAX_GROUP;

/// The connection thread, until closed or dropped. Each round takes what is queued (never
/// waiting for more): jobs (reads, maintenance) run as they come, write transactions are
/// collected and then committed as one group (see [`crate::group`]). A read may thus run before
/// a write queued ahead of it but not yet acknowledged (the two are concurrent); a `Close` runs
/// after everything queued before it.
///
/// `max_group` is [`MAX_GROUP`], or 1 when group commit is off
/// (`ConnectOptions::sqlite_group_commit`).
fn serve(
    mut opened: Opened,
    rx: mpsc::Receiver<Command>,
    groups: &GroupCounters,
    max_group: usize,
) {
    let conn = &mut opened.conn;
    let mut writes: Vec<WriteJob> = Vec::new();
    while let Some(first) = next_command(&rx) {
        let mut next = Some(first);
        let mut close = None;
        let mut taken = 0;
        while let Some(cmd) = next.take() {
            taken += 1;
            match cmd {
                Command::Job(job) => {
                    // A job never leaves a transaction open, even if it panics.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(conn)));
                    rollback_quietly(conn);
                }
                Command::Write(w) => writes.push(w),
                Command::Close(reply) => {
                    close = Some(reply);
                    break;
                }
            }
            if writes.len() < max_group && taken < MAX_ROUND {
                next = rx.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            commit_group(conn, std::mem::take(&mut writes), groups);
        }
        if let Some(reply) = close {
            // The connection closes first, then the file leaves the process's set of open files.
            drop(opened);
            let _ = reply.send(());
            return;
        }
    }
}

impl SqliteDatabase {
    /// Opens (creating if missing) the database file at `path`.
    ///
    /// Parent directories are created. An existing file that is not a SQLite database, or is
    /// truncated, is refused with `store.corrupt` and left untouched.
    pub async fn open_file(path: impl Into<PathBuf>, options: &ConnectOptions) -> Result<Self> {
        let path = path.into();
        let leases = LeaseHost::for_file(&path);
        Self::start(
            Target::File(path.clone()),
            options.clone(),
            Some(path),
            leases,
        )
        .await
    }

    /// Opens a private in-memory database (gone when this value is closed or dropped).
    pub async fn open_memory(options: &ConnectOptions) -> Result<Self> {
        let leases = LeaseHost::Memory(Arc::new(Mutex::new(HashSet::new())));
        Self::start(Target::Memory, options.clone(), None, leases).await
    }

    async fn start(
        target: Target,
        options: ConnectOptions,
        path: Option<PathBuf>,
        leases: LeaseHost,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let groups = Arc::new(GroupCounters::default());
        let thread_groups = Arc::clone(&groups);
        let max_group = if options.sqlite_group_commit {
            MAX_GROUP
        } else {
            1
        };
        std::thread::Builder::new()
            .name("power-loop-sqlite".to_owned())
            .spawn(move || match open_connection(&target, &options) {
                Ok(opened) => {
                    if ready_tx.send(Ok(())).is_ok() {
                        serve(opened, rx, &thread_groups, max_group);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| {
                Error::new(
                    ErrorCode::StoreIo,
                    format!("sqlite: could not start the connection thread: {e}"),
                )
                .with_source(e)
            })?;
        ready_rx.await.map_err(|_| thread_gone())??;
        Ok(SqliteDatabase {
            sender: Mutex::new(Some(tx)),
            path,
            leases,
            groups,
        })
    }

    /// Counters of the group-commit writer: how many write bodies ran in how many transactions
    /// (each one `COMMIT`, one fsync at `synchronous=FULL`) and the largest group so far.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.groups.snapshot()
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Queues a write transaction for the next group commit and waits for its outcome (sent
    /// after the group's `COMMIT` returned).
    async fn write(&self, body: TxBody) -> Result<()> {
        let (reply, reply_rx) = oneshot::channel::<Result<()>>();
        self.send(Command::Write(WriteJob { body, reply }))?;
        self.groups.queued();
        reply_rx.await.map_err(|_| thread_gone())?
    }

    fn send(&self, cmd: Command) -> Result<()> {
        let guard = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sender = guard.as_ref().ok_or_else(closed)?;
        sender.send(cmd).map_err(|_| closed())
    }

    /// Runs `f` with the connection on the connection thread and returns its result.
    ///
    /// If the caller stops waiting before the job starts, the job is skipped.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            if reply_tx.is_closed() {
                return;
            }
            let _ = reply_tx.send(f(conn));
        });
        self.send(Command::Job(job))?;
        reply_rx.await.map_err(|_| thread_gone())?
    }
}

impl Database for SqliteDatabase {
    fn dialect(&self) -> &dyn Dialect {
        &DIALECT
    }

    fn transact(&self, mode: TxMode, body: TxBody) -> BoxFuture<'_, Result<()>> {
        match mode {
            TxMode::Write => Box::pin(self.write(body)),
            TxMode::Read => Box::pin(self.call(move |conn| run_transaction(conn, mode, body))),
        }
    }

    fn transact_exclusive(&self, _lock_name: &str, body: TxBody) -> BoxFuture<'_, Result<()>> {
        // SQLite's write lock (BEGIN IMMEDIATE) excludes every other writer of the file, in
        // this process and in others, and SQLite DDL is transactional.
        Box::pin(self.call(move |conn| run_transaction(conn, TxMode::Write, body)))
    }

    fn acquire_lease(&self, name: &str) -> BoxFuture<'_, Result<Option<Box<dyn Lease>>>> {
        let name = name.to_owned();
        Box::pin(async move {
            if self
                .sender
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_none()
            {
                return Err(closed());
            }
            self.leases.try_acquire(&name)
        })
    }

    fn maintenance(&self) -> Option<&dyn Maintenance> {
        Some(self)
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let sender = self
                .sender
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let Some(sender) = sender else { return Ok(()) };
            let (done_tx, done_rx) = oneshot::channel();
            if sender.send(Command::Close(done_tx)).is_ok() {
                // The thread finishes queued jobs, closes the connection, then replies.
                let _ = done_rx.await;
            }
            Ok(())
        })
    }
}

/// Checkpoint modes accepted by [`Maintenance::checkpoint`].
const CHECKPOINT_MODES: [&str; 4] = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"];

fn checkpoint_on(conn: &Connection, mode: &str) -> Result<()> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    conn.query_row(&sql, [], |r| r.get::<_, i64>(0))
        .map_err(|e| map_sqlite(e, &format!("running {sql}")))?;
    Ok(())
}

/// Steps `PRAGMA incremental_vacuum` until every free page is released.
fn incremental_vacuum_on(conn: &Connection) -> Result<()> {
    let auto: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .map_err(|e| map_sqlite(e, "reading PRAGMA auto_vacuum"))?;
    if auto != 2 {
        // A file created without incremental auto-vacuum (e.g. by an older version): switch it on;
        // the full VACUUM that makes the switch effective also frees every page now.
        conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL; VACUUM")
            .map_err(|e| map_sqlite(e, "switching to incremental auto-vacuum"))?;
        return Ok(());
    }
    let mut stmt = conn
        .prepare("PRAGMA incremental_vacuum")
        .map_err(|e| map_sqlite(e, "preparing PRAGMA incremental_vacuum"))?;
    let mut rows = stmt
        .query([])
        .map_err(|e| map_sqlite(e, "running PRAGMA incremental_vacuum"))?;
    while rows
        .next()
        .map_err(|e| map_sqlite(e, "running PRAGMA incremental_vacuum"))?
        .is_some()
    {}
    Ok(())
}

impl Maintenance for SqliteDatabase {
    fn checkpoint(&self, mode: &str) -> BoxFuture<'_, Result<()>> {
        let upper = mode.trim().to_ascii_uppercase();
        let invalid = (!CHECKPOINT_MODES.contains(&upper.as_str())).then(|| {
            Error::invalid_argument(format!(
                "invalid checkpoint mode `{mode}`; use one of PASSIVE, FULL, RESTART, TRUNCATE"
            ))
        });
        Box::pin(async move {
            if let Some(e) = invalid {
                return Err(e);
            }
            self.call(move |conn| checkpoint_on(conn, &upper)).await
        })
    }

    fn vacuum(&self, incremental: bool) -> BoxFuture<'_, Result<()>> {
        let is_file = self.path.is_some();
        Box::pin(self.call(move |conn| {
            if incremental {
                incremental_vacuum_on(conn)?;
            } else {
                conn.execute_batch("VACUUM")
                    .map_err(|e| map_sqlite(e, "running VACUUM"))?;
            }
            if is_file {
                // In WAL mode freed pages leave the main file only at a checkpoint; TRUNCATE also
                // empties the write-ahead log, so the space really returns to the file system.
                checkpoint_on(conn, "TRUNCATE")?;
            }
            Ok(())
        }))
    }

    fn backup(&self, dest_path: &Path) -> BoxFuture<'_, Result<()>> {
        let dest = dest_path.to_path_buf();
        let own = self.path.clone();
        Box::pin(async move {
            if let Some(own) = own.as_deref() {
                let same = match (std::fs::canonicalize(own), std::fs::canonicalize(&dest)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => own == dest.as_path(),
                };
                if same {
                    return Err(Error::invalid_argument(format!(
                        "cannot back up the database onto itself (`{}`); choose another destination",
                        dest.display()
                    )));
                }
            }
            self.call(move |conn| {
                if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        crate::error::map_io(e, "creating the backup directory for", &dest)
                    })?;
                }
                conn.backup(
                    rusqlite::MAIN_DB,
                    &dest,
                    None::<fn(rusqlite::backup::Progress)>,
                )
                .map_err(|e| map_sqlite(e, &format!("backing up to `{}`", dest.display())))
            })
            .await
        })
    }
}
