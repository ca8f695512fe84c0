//! The transaction runner: runs a synchronous body ([`super::TxBody`]) through the
//! [`Database`] port and hands its result back to the async caller. Every store operation goes
//! through [`run_tx`]; schema boot goes through [`run_tx_exclusive`].

use std::sync::{Arc, Mutex};

use power_loop_contracts::{Error, Result};

use super::{BoxFuture, Database, Transaction, TxBody, TxMode};

/// Runs `f` inside one transaction of `db` and returns its result.
///
/// The body is synchronous (see [`TxBody`]); its result is passed out through a
/// captured slot. `Ok` commits, `Err` rolls back and is returned unchanged.
pub async fn run_tx<T, F>(db: &dyn Database, mode: TxMode, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Transaction) -> Result<T> + Send + 'static,
{
    run_through(f, |body| db.transact(mode, body)).await
}

/// Runs `f` under the backend's exclusive schema-boot lock (see [`Database::transact_exclusive`]).
pub async fn run_tx_exclusive<T, F>(db: &dyn Database, lock_name: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Transaction) -> Result<T> + Send + 'static,
{
    run_through(f, |body| db.transact_exclusive(lock_name, body)).await
}

/// Boxes `f` into a [`TxBody`] that stores its value in a slot, lets `start` run it, and takes
/// the value out once the backend reports the commit.
async fn run_through<'a, T, F, S>(f: F, start: S) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Transaction) -> Result<T> + Send + 'static,
    S: FnOnce(TxBody) -> BoxFuture<'a, Result<()>>,
{
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    start(Box::new(move |tx| {
        let v = f(tx)?;
        match out.lock() {
            Ok(mut g) => *g = Some(v),
            Err(p) => *p.into_inner() = Some(v),
        }
        Ok(())
    }))
    .await?;
    let v = match slot.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    v.ok_or_else(|| {
        Error::internal("the backend reported a committed transaction but never ran its body")
    })
}
