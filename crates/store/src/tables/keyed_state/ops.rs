//! Per-session keyed JSON and process-independent shared state, both
//! with atomic read-modify-write (`update_*` / `compare_and_set_*`) — beyond the reference.
//!
//! Atomic updates first make sure the row exists (insert-if-absent of a NULL value), then lock
//! it (`SELECT … FOR UPDATE`), so concurrent updaters of one key serialize on every backend and
//! never lose an update.

use power_loop_contracts::{Error, Result};
use serde_json::Value as Json;

use power_loop_contracts::clock::now_ms;

use crate::codec::{decode_json, encode_json};
use crate::db::{Transaction, Value};
use crate::store::{Inner, SessionStore};

#[derive(Clone, Copy)]
enum Scope {
    Runtime,
    Shared,
}

impl Scope {
    fn table(self, inner: &Inner) -> &str {
        match self {
            Scope::Runtime => &inner.t.session_runtime_state,
            Scope::Shared => &inner.t.shared_state,
        }
    }
    fn owner_col(self) -> &'static str {
        match self {
            Scope::Runtime => "session_id",
            Scope::Shared => "owner",
        }
    }
}

fn read_value(
    inner: &Inner,
    tx: &mut dyn Transaction,
    scope: Scope,
    owner: &str,
    key: &str,
    lock: bool,
) -> Result<Option<Json>> {
    let sql = format!(
        "SELECT value_json FROM {} WHERE {} = ? AND state_key = ?{}",
        scope.table(inner),
        scope.owner_col(),
        if lock { tx.dialect().for_update() } else { "" }
    );
    match tx.fetch_optional(&sql, &[Value::from(owner), Value::from(key)])? {
        Some(r) => {
            Ok(decode_json("value_json", r.opt_text("value_json")?)?.filter(|v| !v.is_null()))
        }
        None => Ok(None),
    }
}

fn write_value(
    inner: &Inner,
    tx: &mut dyn Transaction,
    scope: Scope,
    owner: &str,
    key: &str,
    value: Option<&Json>,
) -> Result<()> {
    let sql = tx.dialect().upsert(
        scope.table(inner),
        &[scope.owner_col(), "state_key"],
        &["value_json", "updated_at"],
        &[],
        &[],
    );
    let v = value.filter(|v| !v.is_null()).map(encode_json);
    tx.execute(
        &sql,
        &[
            Value::from(owner),
            Value::from(key),
            Value::from(v),
            Value::Int(now_ms()),
        ],
    )?;
    Ok(())
}

fn delete_value(
    inner: &Inner,
    tx: &mut dyn Transaction,
    scope: Scope,
    owner: &str,
    key: &str,
) -> Result<bool> {
    let sql = format!(
        "DELETE FROM {} WHERE {} = ? AND state_key = ?",
        scope.table(inner),
        scope.owner_col()
    );
    Ok(tx.execute(&sql, &[Value::from(owner), Value::from(key)])? > 0)
}

fn lock_row(
    inner: &Inner,
    tx: &mut dyn Transaction,
    scope: Scope,
    owner: &str,
    key: &str,
) -> Result<Option<Json>> {
    let ins = tx.dialect().insert_ignore(
        scope.table(inner),
        &[scope.owner_col(), "state_key", "value_json", "updated_at"],
        &[scope.owner_col(), "state_key"],
    );
    tx.execute(
        &ins,
        &[
            Value::from(owner),
            Value::from(key),
            Value::Null,
            Value::Int(now_ms()),
        ],
    )?;
    read_value(inner, tx, scope, owner, key, true)
}

fn apply_update<F>(
    inner: &Inner,
    tx: &mut dyn Transaction,
    scope: Scope,
    owner: &str,
    key: &str,
    f: F,
) -> Result<Option<Json>>
where
    F: FnOnce(Option<Json>) -> Option<Json>,
{
    let cur = lock_row(inner, tx, scope, owner, key)?;
    match f(cur).filter(|v| !v.is_null()) {
        Some(v) => {
            write_value(inner, tx, scope, owner, key, Some(&v))?;
            Ok(Some(v))
        }
        None => {
            delete_value(inner, tx, scope, owner, key)?;
            Ok(None)
        }
    }
}

impl SessionStore {
    /// The value under `key`, or `None` (missing row or stored JSON null).
    pub async fn get_runtime_state(&self, session_id: &str, key: &str) -> Result<Option<Json>> {
        let (sid, k) = (session_id.to_owned(), key.to_owned());
        self.read(move |inner, tx| read_value(inner, tx, Scope::Runtime, &sid, &k, false))
            .await
    }

    /// Stores `value` (`Null` stored as NULL) and bumps the session's `updated_at`.
    /// Unknown session → `session.not_found`.
    pub async fn set_runtime_state(&self, session_id: &str, key: &str, value: Json) -> Result<()> {
        let (sid, k) = (session_id.to_owned(), key.to_owned());
        self.write(move |inner, tx| {
            if !inner.sql.sessions.exists(tx, &sid)? {
                return Err(Error::session_not_found(&sid));
            }
            write_value(inner, tx, Scope::Runtime, &sid, &k, Some(&value))?;
            inner.sql.sessions.touch(tx, &sid, now_ms())
        })
        .await
    }

    /// Deletes the key; true iff it existed.
    pub async fn delete_runtime_state(&self, session_id: &str, key: &str) -> Result<bool> {
        let (sid, k) = (session_id.to_owned(), key.to_owned());
        self.write(move |inner, tx| delete_value(inner, tx, Scope::Runtime, &sid, &k))
            .await
    }

    /// Atomic read-modify-write: `f(current)` runs inside one transaction with the row locked;
    /// `Some(v)` stores `v`, `None` deletes the key. Returns the new value. Concurrent updaters
    /// of the same key never lose updates. Unknown session → `session.not_found`.
    pub async fn update_runtime_state<F>(
        &self,
        session_id: &str,
        key: &str,
        f: F,
    ) -> Result<Option<Json>>
    where
        F: FnOnce(Option<Json>) -> Option<Json> + Send + 'static,
    {
        let (sid, k) = (session_id.to_owned(), key.to_owned());
        self.write(move |inner, tx| {
            if !inner.sql.sessions.exists(tx, &sid)? {
                return Err(Error::session_not_found(&sid));
            }
            let out = apply_update(inner, tx, Scope::Runtime, &sid, &k, f)?;
            inner.sql.sessions.touch(tx, &sid, now_ms())?;
            Ok(out)
        })
        .await
    }

    /// Compare-and-set: stores `new` (`None` deletes) only if the current value equals
    /// `expected` (`None` = absent); true iff it did.
    pub async fn compare_and_set_runtime_state(
        &self,
        session_id: &str,
        key: &str,
        expected: Option<Json>,
        new: Option<Json>,
    ) -> Result<bool> {
        let (sid, k) = (session_id.to_owned(), key.to_owned());
        self.write(move |inner, tx| {
            if !inner.sql.sessions.exists(tx, &sid)? {
                return Err(Error::session_not_found(&sid));
            }
            cas(inner, tx, Scope::Runtime, &sid, &k, expected, new)
        })
        .await
    }

    /// Shared (not session-scoped) value, or `None`.
    pub async fn get_shared_state(&self, owner: &str, key: &str) -> Result<Option<Json>> {
        let (o, k) = (owner.to_owned(), key.to_owned());
        self.read(move |inner, tx| read_value(inner, tx, Scope::Shared, &o, &k, false))
            .await
    }

    /// Stores a shared value (no owner validation; never cascaded).
    pub async fn set_shared_state(&self, owner: &str, key: &str, value: Json) -> Result<()> {
        let (o, k) = (owner.to_owned(), key.to_owned());
        self.write(move |inner, tx| write_value(inner, tx, Scope::Shared, &o, &k, Some(&value)))
            .await
    }

    /// Deletes a shared key; true iff it existed.
    pub async fn delete_shared_state(&self, owner: &str, key: &str) -> Result<bool> {
        let (o, k) = (owner.to_owned(), key.to_owned());
        self.write(move |inner, tx| delete_value(inner, tx, Scope::Shared, &o, &k))
            .await
    }

    /// Atomic read-modify-write of a shared value (see [`SessionStore::update_runtime_state`]).
    pub async fn update_shared_state<F>(&self, owner: &str, key: &str, f: F) -> Result<Option<Json>>
    where
        F: FnOnce(Option<Json>) -> Option<Json> + Send + 'static,
    {
        let (o, k) = (owner.to_owned(), key.to_owned());
        self.write(move |inner, tx| apply_update(inner, tx, Scope::Shared, &o, &k, f))
            .await
    }

    /// Atomic read-modify-write whose function may fail: an `Err` rolls back and is returned.
    pub async fn try_update_shared_state<T, F>(&self, owner: &str, key: &str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Option<Json>) -> Result<(Option<Json>, T)> + Send + 'static,
    {
        let (o, k) = (owner.to_owned(), key.to_owned());
        self.write(move |inner, tx| {
            let cur = lock_row(inner, tx, Scope::Shared, &o, &k)?;
            let (new, out) = f(cur)?;
            match new.filter(|v| !v.is_null()) {
                Some(v) => write_value(inner, tx, Scope::Shared, &o, &k, Some(&v))?,
                None => {
                    delete_value(inner, tx, Scope::Shared, &o, &k)?;
                }
            }
            Ok(out)
        })
        .await
    }

    /// Compare-and-set of a shared value (see [`SessionStore::compare_and_set_runtime_state`]).
    pub async fn compare_and_set_shared_state(
        &self,
        owner: &str,
        key: &str,
        expected: Option<Json>,
        new: Option<Json>,
    ) -> Result<bool> {
        let (o, k) = (owner.to_owned(), key.to_owned());
        self.write(move |inner, tx| cas(inner, tx, Scope::Shared, &o, &k, expected, new))
            .await
    }
}

fn cas(
    inner: &Inner,
    tx: &mut dyn Transaction,
    scope: Scope,
    owner: &str,
    key: &str,
    expected: Option<Json>,
    new: Option<Json>,
) -> Result<bool> {
    let cur = lock_row(inner, tx, scope, owner, key)?;
    let expected = expected.filter(|v| !v.is_null());
    if cur != expected {
        if cur.is_none() {
            // Remove the placeholder row the lock inserted.
            delete_value(inner, tx, scope, owner, key)?;
        }
        return Ok(false);
    }
    match new.filter(|v| !v.is_null()) {
        Some(v) => write_value(inner, tx, scope, owner, key, Some(&v))?,
        None => {
            delete_value(inner, tx, scope, owner, key)?;
        }
    }
    Ok(true)
}
