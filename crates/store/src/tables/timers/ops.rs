//! Durable timers, including fleet claiming with `FOR UPDATE SKIP LOCKED`.
//!
//! ```text
//! one-shot : armed ──claim──► firing ──finish──► fired
//! recurring: armed ──claim──► firing ──finish──► armed (due = finish + interval)
//! armed ──cancel──► cancelled ; firing ──rearm──► armed ; stale firing ──recover/claim──► firing
//! ```
//! `updated_at` of a `firing` row is its claim (or last heartbeat) time, so a claim whose runner
//! crashed becomes claimable again after the lease.

use power_loop_contracts::clock::now_ms;
use power_loop_contracts::{Error, ErrorCode, Result};

use super::row::{TimerClaim, TimerRow, timer_status};
use crate::codec::{StoredRow, insert_row_sql, select_row, select_rows};
use crate::db::sql::placeholders;
use crate::db::{Transaction, Value};
use crate::store::{Inner, SessionStore};
use crate::tables::fences::row::{bump_fence, timer_fence_name};

impl SessionStore {
    /// Arms a timer; `timer_id` is the session's next id (allocated under the session row lock,
    /// retried on a collision, so concurrent writers never clash). `interval_s` ≤ 0 or `None`
    /// means one-shot. No session-existence check (orphan timers are allowed, as in the reference).
    pub async fn create_timer(
        &self,
        session_id: &str,
        due_at: i64,
        note: &str,
        interval_s: Option<i64>,
    ) -> Result<TimerRow> {
        let sid = session_id.to_owned();
        let note = note.to_owned();
        let interval = interval_s.filter(|i| *i > 0);
        self.write_retrying(move |inner, tx| insert_timer(inner, tx, &sid, due_at, &note, interval))
            .await
    }

    /// One timer, or `None`.
    pub async fn get_timer(&self, session_id: &str, timer_id: i64) -> Result<Option<TimerRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_row::<TimerRow>(
                tx,
                &inner.t.timers,
                "WHERE session_id = ? AND timer_id = ?",
                &[Value::from(sid.as_str()), Value::Int(timer_id)],
            )
        })
        .await
    }

    /// The session's timers in `statuses`, by due time (empty `statuses` → empty list).
    pub async fn list_timers(&self, session_id: &str, statuses: &[&str]) -> Result<Vec<TimerRow>> {
        if statuses.is_empty() {
            return Ok(Vec::new());
        }
        let sid = session_id.to_owned();
        let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} WHERE session_id = ? AND status IN ({}) ORDER BY due_at, timer_id",
                TimerRow::COLUMNS,
                inner.t.timers,
                placeholders(statuses.len())
            );
            let mut params = vec![Value::from(sid.as_str())];
            params.extend(statuses.iter().map(|s| Value::from(s.as_str())));
            tx.fetch_all(&sql, &params)?.iter().map(TimerRow::from_row).collect()
        })
        .await
    }

    /// Live timers (`armed` and `firing`), by due time.
    pub async fn list_live_timers(&self, session_id: &str) -> Result<Vec<TimerRow>> {
        self.list_timers(session_id, &[timer_status::ARMED, timer_status::FIRING])
            .await
    }

    /// Cross-session: `armed` timers due at `now` (default: the clock), earliest first.
    pub async fn due_timers(&self, now: Option<i64>, limit: usize) -> Result<Vec<TimerRow>> {
        let now = now.unwrap_or_else(now_ms);
        self.read(move |inner, tx| {
            select_rows::<TimerRow>(
                tx,
                &inner.t.timers,
                &format!("WHERE status = ? AND due_at <= ? ORDER BY due_at, session_id, timer_id LIMIT {}", limit),
                &[Value::from(timer_status::ARMED), Value::Int(now)],
            )
        })
        .await
    }

    /// Compare-and-set: `from_status → to_status` (and `due_at` if given); true iff it matched.
    pub async fn transition_timer(
        &self,
        session_id: &str,
        timer_id: i64,
        from_status: &str,
        to_status: &str,
        due_at: Option<i64>,
    ) -> Result<bool> {
        let sid = session_id.to_owned();
        let (from, to) = (from_status.to_owned(), to_status.to_owned());
        self.write(move |inner, tx| {
            let now = now_ms();
            let (sql, params) = match due_at {
                Some(d) => (
                    format!(
                        "UPDATE {} SET status = ?, due_at = ?, updated_at = ? WHERE session_id = ? AND timer_id = ? AND status = ?",
                        inner.t.timers
                    ),
                    vec![
                        Value::from(to.as_str()),
                        Value::Int(d),
                        Value::Int(now),
                        Value::from(sid.as_str()),
                        Value::Int(timer_id),
                        Value::from(from.as_str()),
                    ],
                ),
                None => (
                    format!(
                        "UPDATE {} SET status = ?, updated_at = ? WHERE session_id = ? AND timer_id = ? AND status = ?",
                        inner.t.timers
                    ),
                    vec![
                        Value::from(to.as_str()),
                        Value::Int(now),
                        Value::from(sid.as_str()),
                        Value::Int(timer_id),
                        Value::from(from.as_str()),
                    ],
                ),
            };
            Ok(tx.execute(&sql, &params)? > 0)
        })
        .await
    }

    /// Cancels an armed timer (`armed → cancelled`); true iff it was armed.
    pub async fn cancel_timer(&self, session_id: &str, timer_id: i64) -> Result<bool> {
        self.transition_timer(
            session_id,
            timer_id,
            timer_status::ARMED,
            timer_status::CANCELLED,
            None,
        )
        .await
    }

    /// Gives a claimed timer back (`firing → armed` at `due_at`); false if the claim was lost.
    pub async fn rearm_timer(&self, session_id: &str, timer_id: i64, due_at: i64) -> Result<bool> {
        self.transition_timer(
            session_id,
            timer_id,
            timer_status::FIRING,
            timer_status::ARMED,
            Some(due_at),
        )
        .await
    }

    /// Completes a firing: one-shot → `fired`; recurring → `armed` at now + interval (missed
    /// periods collapse). `fire_count += 1`, `last_fired_at = now`. False if not `firing`.
    pub async fn finish_firing_timer(&self, session_id: &str, timer_id: i64) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let now = now_ms();
            let sql = format!(
                "UPDATE {} SET status = CASE WHEN interval_s IS NULL THEN ? ELSE ? END, \
                 due_at = CASE WHEN interval_s IS NULL THEN due_at ELSE ? + interval_s * 1000 END, \
                 fire_count = fire_count + 1, last_fired_at = ?, updated_at = ? \
                 WHERE session_id = ? AND timer_id = ? AND status = ?",
                inner.t.timers
            );
            Ok(tx.execute(
                &sql,
                &[
                    Value::from(timer_status::FIRED),
                    Value::from(timer_status::ARMED),
                    Value::Int(now),
                    Value::Int(now),
                    Value::Int(now),
                    Value::from(sid.as_str()),
                    Value::Int(timer_id),
                    Value::from(timer_status::FIRING),
                ],
            )? > 0)
        })
        .await
    }

    /// Refreshes a live claim (`updated_at = now` where `firing`); false ⇒ the claim was lost.
    pub async fn heartbeat_firing_timer(&self, session_id: &str, timer_id: i64) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET updated_at = ? WHERE session_id = ? AND timer_id = ? AND status = ?",
                inner.t.timers
            );
            Ok(tx.execute(
                &sql,
                &[
                    Value::Int(now_ms()),
                    Value::from(sid.as_str()),
                    Value::Int(timer_id),
                    Value::from(timer_status::FIRING),
                ],
            )? > 0)
        })
        .await
    }

    /// Cross-session: re-arms `firing` rows whose claim is older than `older_than_ms`
    /// (due time unchanged, so they are due at once). Returns the count.
    pub async fn recover_stale_firing_timers(&self, older_than_ms: i64) -> Result<u64> {
        self.write(move |inner, tx| {
            let now = now_ms();
            let sql = format!(
                "UPDATE {} SET status = ?, updated_at = ? WHERE status = ? AND updated_at < ?",
                inner.t.timers
            );
            tx.execute(
                &sql,
                &[
                    Value::from(timer_status::ARMED),
                    Value::Int(now),
                    Value::from(timer_status::FIRING),
                    Value::Int(now - older_than_ms),
                ],
            )
        })
        .await
    }

    /// Deletes the session's timers in `statuses` (optionally only those last updated more
    /// than `older_than_ms` ago). Empty `statuses` → 0.
    pub async fn prune_timers(
        &self,
        session_id: &str,
        statuses: &[&str],
        older_than_ms: Option<i64>,
    ) -> Result<u64> {
        if statuses.is_empty() {
            return Ok(0);
        }
        let sid = session_id.to_owned();
        let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
        self.write(move |inner, tx| {
            let mut sql = format!(
                "DELETE FROM {} WHERE session_id = ? AND status IN ({})",
                inner.t.timers,
                placeholders(statuses.len())
            );
            let mut params = vec![Value::from(sid.as_str())];
            params.extend(statuses.iter().map(|s| Value::from(s.as_str())));
            if let Some(age) = older_than_ms {
                sql.push_str(" AND updated_at < ?");
                params.push(Value::Int(now_ms() - age));
            }
            tx.execute(&sql, &params)
        })
        .await
    }

    /// Fleet claim: atomically takes up to `limit` timers that are `armed` and due at `now`, or
    /// `firing` with a claim older than `lease_ms` (a crashed runner), marks them `firing` with
    /// `updated_at` = claim time, and returns them. Rows locked by a concurrent claimer are
    /// skipped (`FOR UPDATE SKIP LOCKED`), so each due firing is claimed exactly once across
    /// processes. Finish with [`SessionStore::finish_firing_timer`] or
    /// [`SessionStore::rearm_timer`]; keep long deliveries alive with
    /// [`SessionStore::heartbeat_firing_timer`].
    ///
    /// Each claim increments the timer's claim token in the same transaction and returns it
    /// ([`TimerClaim`]): act on the claim through `self.fenced(claim.fence())`, so that a runner
    /// whose claim was taken over (its heartbeat stalled past the lease) can neither complete
    /// nor deliver the firing (`timer.claim_lost`).
    pub async fn claim_due_timers(
        &self,
        now: i64,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<TimerClaim>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if lease_ms < 0 {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                format!("lease_ms must be ≥ 0, got {lease_ms}"),
            ));
        }
        self.write(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} WHERE (status = ? AND due_at <= ?) OR (status = ? AND updated_at < ?) \
                 ORDER BY due_at, session_id, timer_id LIMIT {}{}",
                TimerRow::COLUMNS,
                inner.t.timers,
                limit,
                tx.dialect().for_update_skip_locked()
            );
            let rows = tx.fetch_all(
                &sql,
                &[
                    Value::from(timer_status::ARMED),
                    Value::Int(now),
                    Value::from(timer_status::FIRING),
                    Value::Int(now - lease_ms),
                ],
            )?;
            let claim_at = now_ms();
            let upd = format!(
                "UPDATE {} SET status = ?, updated_at = ? WHERE session_id = ? AND timer_id = ?",
                inner.t.timers
            );
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut t = TimerRow::from_row(r)?;
                tx.execute(
                    &upd,
                    &[
                        Value::from(timer_status::FIRING),
                        Value::Int(claim_at),
                        Value::from(t.session_id.as_str()),
                        Value::Int(t.timer_id),
                    ],
                )?;
                t.status = timer_status::FIRING.to_owned();
                t.updated_at = claim_at;
                let fence_name = timer_fence_name(&inner.t.prefix, &t.session_id, t.timer_id);
                let token = bump_fence(tx, &inner.t.lease_fences, &fence_name)?;
                out.push(TimerClaim {
                    timer: t,
                    token,
                    fence_name,
                });
            }
            Ok(out)
        })
        .await
    }
}

/// Arms a timer inside the caller's write transaction: allocates the session's next
/// `timer_id` under the session-state row lock and inserts the row (`interval` already
/// normalized: `None` = one-shot). Shared by [`SessionStore::create_timer`] and the workflow
/// finish that arms its wake atomically. A concurrent id collision surfaces as
/// `store.constraint`, which the callers retry.
pub(crate) fn insert_timer(
    inner: &Inner,
    tx: &mut dyn Transaction,
    session_id: &str,
    due_at: i64,
    note: &str,
    interval: Option<i64>,
) -> Result<TimerRow> {
    inner.sql.state.lock(tx, session_id)?;
    let sql = format!(
        "SELECT timer_id FROM {} WHERE session_id = ? ORDER BY timer_id DESC LIMIT 1{}",
        inner.t.timers,
        tx.dialect().for_update()
    );
    let next = match tx.fetch_optional(&sql, &[Value::from(session_id)])? {
        Some(r) => r.i64("timer_id")? + 1,
        None => 1,
    };
    let now = now_ms();
    let sql = insert_row_sql::<TimerRow>(&inner.t.timers);
    tx.execute(
        &sql,
        &[
            Value::from(session_id),
            Value::Int(next),
            Value::Int(due_at),
            Value::from(note),
            Value::from(timer_status::ARMED),
            Value::from(interval),
            Value::Int(0),
            Value::Null,
            Value::Int(now),
            Value::Int(now),
        ],
    )?;
    Ok(TimerRow {
        session_id: session_id.to_owned(),
        timer_id: next,
        due_at,
        note: note.to_owned(),
        status: timer_status::ARMED.to_owned(),
        interval_s: interval,
        fire_count: 0,
        last_fired_at: None,
        created_at: now,
        updated_at: now,
    })
}
