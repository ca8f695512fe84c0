//! The workflow-journal operations: create, record steps, finish (with its wake), resume by
//! compare-and-set, heartbeats and the deletion of a session's runs.

use power_loop_contracts::clock::now_ms;
use power_loop_contracts::{Error, ErrorCode, Result};

use super::inputs::{NewWorkflowRun, WorkflowRunFinish, WorkflowStepInput, check_key};
use super::rows::{WorkflowRunRow, WorkflowRunStatus, WorkflowStepRow};
use crate::codec::{
    StoredRow, encode_json, insert_row_sql, select_row, select_rows, update_guarded,
};
use crate::db::{Transaction, Value};
use crate::store::{Inner, SessionStore};
use crate::tables::timers::ops::insert_timer;

const RUNNING: &str = WorkflowRunStatus::Running.as_str();

impl SessionStore {
    /// Creates a run in status `running`, attempt 1, heartbeat = `run.now_ms`. The parent
    /// session, if given, must exist (`session.not_found`); a taken `run_id` is
    /// `store.constraint`; an empty or over-long id is `invalid_argument`. Creation times are
    /// kept strictly increasing per parent (a run created in the same millisecond as, or with
    /// an explicit time before, the parent's latest run gets that time + 1), so
    /// [`SessionStore::list_workflow_runs`] returns a parent's runs in exact creation order.
    pub async fn create_workflow_run(&self, run: NewWorkflowRun) -> Result<()> {
        run.validate()?;
        self.write(move |inner, tx| {
            let now = run.now_ms.unwrap_or_else(now_ms);
            let mut created = now;
            if let Some(parent) = &run.parent_session_id {
                let sql = format!(
                    "SELECT session_id FROM {} WHERE session_id = ?{}",
                    inner.t.sessions,
                    tx.dialect().for_update()
                );
                if tx
                    .fetch_optional(&sql, &[Value::from(parent.as_str())])?
                    .is_none()
                {
                    return Err(Error::session_not_found(parent));
                }
                let sql = format!(
                    "SELECT created_at_ms FROM {} WHERE parent_session_id = ? ORDER BY created_at_ms DESC LIMIT 1",
                    inner.t.workflow_runs
                );
                if let Some(r) = tx.fetch_optional(&sql, &[Value::from(parent.as_str())])? {
                    created = created.max(r.i64("created_at_ms")? + 1);
                }
            }
            if fetch_run(inner, tx, &run.run_id)?.is_some() {
                return Err(Error::new(
                    ErrorCode::StoreConstraint,
                    format!(
                        "workflow run `{}` already exists; choose a fresh run id",
                        run.run_id
                    ),
                )
                .with_detail("run_id", run.run_id.as_str()));
            }
            let sql = insert_row_sql::<WorkflowRunRow>(&inner.t.workflow_runs);
            tx.execute(
                &sql,
                &[
                    Value::from(run.run_id.as_str()),
                    Value::from(run.parent_session_id.clone()),
                    Value::from(run.workflow.as_str()),
                    Value::Text(encode_json(&run.spec)),
                    Value::from(run.input.as_str()),
                    Value::from(RUNNING),
                    Value::from(run.detached),
                    Value::Int(1),
                    Value::Int(0),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                    Value::from(run.owner.clone()),
                    Value::Int(now),
                    Value::Int(created),
                    Value::Int(created),
                    Value::Null,
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// One run, or `None`.
    pub async fn get_workflow_run(&self, run_id: &str) -> Result<Option<WorkflowRunRow>> {
        let id = run_id.to_owned();
        self.read(move |inner, tx| fetch_run(inner, tx, &id)).await
    }

    /// Up to `limit` runs in creation order (oldest first): those of `parent_session_id`, or
    /// every run for `None`.
    pub async fn list_workflow_runs(
        &self,
        parent_session_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkflowRunRow>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let parent = parent_session_id.map(str::to_owned);
        self.read(move |inner, tx| {
            let (filter, params) = match &parent {
                Some(p) => (
                    " WHERE parent_session_id = ?",
                    vec![Value::from(p.as_str())],
                ),
                None => ("", Vec::new()),
            };
            let sql = format!(
                "SELECT {} FROM {}{filter} ORDER BY created_at_ms, run_id LIMIT {limit}",
                WorkflowRunRow::COLUMNS,
                inner.t.workflow_runs
            );
            tx.fetch_all(&sql, &params)?
                .iter()
                .map(WorkflowRunRow::from_row)
                .collect()
        })
        .await
    }

    /// Journals one settled step of attempt `attempt`: inserts it, or replaces the row of the
    /// same `step_key`, giving it the run's next `seq` (so a re-recorded step moves last), and
    /// bumps the run's `updated_at_ms`. Only if the run exists, is `running` and is at attempt
    /// `attempt`; otherwise returns `false` and writes nothing. One transaction; concurrent
    /// recorders of one run serialize on the run row, so `seq` never repeats.
    pub async fn record_workflow_step(
        &self,
        run_id: &str,
        attempt: i64,
        step: WorkflowStepInput,
    ) -> Result<bool> {
        self.record_workflow_steps(run_id, attempt, vec![step])
            .await
    }

    /// [`SessionStore::record_workflow_step`] for several steps in one transaction (all or
    /// none; `seq` assigned in the given order, a repeated `step_key` keeps its last version):
    /// a journal writer that drains the leaves settled meanwhile pays one commit for all of
    /// them instead of one each. An empty batch only checks the run (`true` iff it is
    /// `running` at `attempt`). Every step is validated before anything is written.
    pub async fn record_workflow_steps(
        &self,
        run_id: &str,
        attempt: i64,
        steps: Vec<WorkflowStepInput>,
    ) -> Result<bool> {
        check_key("run_id", run_id)?;
        for step in &steps {
            step.validate()?;
        }
        let id = run_id.to_owned();
        self.write(move |inner, tx| {
            let now = now_ms();
            let live = update_live_attempt(
                inner,
                tx,
                &id,
                attempt,
                "updated_at_ms = ?",
                vec![Value::Int(now)],
            )?;
            if !live {
                return Ok(false);
            }
            if steps.is_empty() {
                return Ok(true);
            }
            let sql = format!(
                "SELECT seq FROM {} WHERE run_id = ? ORDER BY seq DESC LIMIT 1{}",
                inner.t.workflow_steps,
                tx.dialect().for_update()
            );
            let mut seq = match tx.fetch_optional(&sql, &[Value::from(id.as_str())])? {
                Some(r) => r.i64("seq")?,
                None => 0,
            };
            let sql = tx.dialect().upsert(
                &inner.t.workflow_steps,
                &["run_id", "step_key"],
                &[
                    "node_id",
                    "item_index",
                    "parent_key",
                    "status",
                    "session_id",
                    "text",
                    "payload_json",
                    "usage_json",
                    "error",
                    "attempt",
                    "seq",
                    "finished_at_ms",
                ],
                &[],
                &[],
            );
            for step in &steps {
                seq += 1;
                tx.execute_deferred(
                    &sql,
                    &[
                        Value::from(id.as_str()),
                        Value::from(step.step_key.as_str()),
                        Value::from(step.node_id.as_str()),
                        Value::from(step.item_index),
                        Value::from(step.parent_key.clone()),
                        Value::from(step.status.as_str()),
                        Value::from(step.session_id.clone()),
                        Value::from(step.text.as_str()),
                        Value::from(step.payload.as_ref().map(encode_json)),
                        Value::Text(encode_json(&step.usage)),
                        Value::from(step.error.clone()),
                        Value::Int(attempt),
                        Value::Int(seq),
                        Value::Int(step.finished_at_ms.unwrap_or(now)),
                    ],
                )?;
            }
            Ok(true)
        })
        .await
    }

    /// The run's journaled steps in recording order (`seq`).
    pub async fn list_workflow_steps(&self, run_id: &str) -> Result<Vec<WorkflowStepRow>> {
        let id = run_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<WorkflowStepRow>(
                tx,
                &inner.t.workflow_steps,
                "WHERE run_id = ? ORDER BY seq",
                &[Value::from(id.as_str())],
            )
        })
        .await
    }

    /// Ends attempt `attempt`: sets the final status, result, error and finish time and clears
    /// the owner — only if the run is still `running` at that attempt (the first finish wins;
    /// `false` otherwise, nothing written). With `finish.wake`, a durable timer due at once
    /// with the wake note is armed for the parent session in the same transaction: a finish
    /// that fails or loses leaves no timer, and a finish that commits always has exactly one.
    /// A wake for a run without a parent session is `invalid_argument`; status `running` is
    /// `invalid_argument`.
    pub async fn finish_workflow_run(
        &self,
        run_id: &str,
        attempt: i64,
        finish: WorkflowRunFinish,
    ) -> Result<bool> {
        finish.validate()?;
        let id = run_id.to_owned();
        self.write_retrying(move |inner, tx| {
            let wake_target = match &finish.wake {
                Some(wake) => match fetch_run(inner, tx, &id)? {
                    None => return Ok(false),
                    Some(run) => match run.parent_session_id {
                        Some(parent) => Some((parent, wake.note.clone())),
                        None => {
                            return Err(Error::invalid_argument(format!(
                                "workflow run `{id}` has no parent session to wake; finish it without a wake"
                            ))
                            .with_detail("run_id", id.as_str()));
                        }
                    },
                },
                None => None,
            };
            let now = now_ms();
            let params = vec![
                Value::from(finish.status.as_str()),
                Value::from(finish.result.as_ref().map(encode_json)),
                Value::from(finish.error.clone()),
                Value::Int(finish.finished_at_ms.unwrap_or(now)),
                Value::Int(now),
            ];
            let sets = "status = ?, result_json = ?, error = ?, finished_at_ms = ?, updated_at_ms = ?, owner = NULL";
            if !update_live_attempt(inner, tx, &id, attempt, sets, params)? {
                return Ok(false);
            }
            if let Some((parent, note)) = wake_target {
                insert_timer(inner, tx, &parent, now, &note, None)?;
            }
            Ok(true)
        })
        .await
    }

    /// Compare-and-set for a resume: if the run is at attempt `expected_attempt` (whatever its
    /// status: a finished run, or a `running` one whose process crashed), makes it `running`
    /// at attempt `expected_attempt + 1` with `owner` and heartbeat `now_ms`, and clears
    /// `finished_at_ms`, `error` and `woke` (steps and result stay until overwritten). Returns
    /// the new attempt, or `None` when the run is missing or another resumer won.
    pub async fn begin_workflow_attempt(
        &self,
        run_id: &str,
        expected_attempt: i64,
        owner: &str,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        check_key("owner", owner)?;
        let (id, owner) = (run_id.to_owned(), owner.to_owned());
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET status = ?, attempts = attempts + 1, finished_at_ms = NULL, error = NULL, woke = 0, \
                 owner = ?, heartbeat_at_ms = ?, updated_at_ms = ? WHERE run_id = ? AND attempts = ?",
                inner.t.workflow_runs
            );
            let n = tx.execute(
                &sql,
                &[
                    Value::from(RUNNING),
                    Value::from(owner.as_str()),
                    Value::Int(now_ms),
                    Value::Int(now_ms),
                    Value::from(id.as_str()),
                    Value::Int(expected_attempt),
                ],
            )?;
            Ok((n > 0).then_some(expected_attempt + 1))
        })
        .await
    }

    /// Records the session driving attempt `attempt`; `false` unless the run is `running` at
    /// that attempt.
    pub async fn set_workflow_driver_session(
        &self,
        run_id: &str,
        attempt: i64,
        driver_session_id: &str,
    ) -> Result<bool> {
        check_key("driver_session_id", driver_session_id)?;
        let (id, driver) = (run_id.to_owned(), driver_session_id.to_owned());
        self.write(move |inner, tx| {
            update_live_attempt(
                inner,
                tx,
                &id,
                attempt,
                "driver_session_id = ?, updated_at_ms = ?",
                vec![Value::from(driver.as_str()), Value::Int(now_ms())],
            )
        })
        .await
    }

    /// Refreshes the owner's heartbeat (`heartbeat_at_ms = now_ms`) of attempt `attempt`:
    /// `false` unless the run is `running` at that attempt and owned by `owner` (or by nobody,
    /// in which case `owner` takes it). A `false` tells a worker it lost the run.
    pub async fn heartbeat_workflow_run(
        &self,
        run_id: &str,
        attempt: i64,
        owner: &str,
        now_ms: i64,
    ) -> Result<bool> {
        check_key("owner", owner)?;
        let (id, owner) = (run_id.to_owned(), owner.to_owned());
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET heartbeat_at_ms = ?, owner = ? \
                 WHERE run_id = ? AND status = ? AND attempts = ? AND (owner IS NULL OR owner = ?)",
                inner.t.workflow_runs
            );
            Ok(tx.execute(
                &sql,
                &[
                    Value::Int(now_ms),
                    Value::from(owner.as_str()),
                    Value::from(id.as_str()),
                    Value::from(RUNNING),
                    Value::Int(attempt),
                    Value::from(owner.as_str()),
                ],
            )? > 0)
        })
        .await
    }

    /// Up to `limit` `running` runs whose last heartbeat (or, without one, last write) is more
    /// than `older_than_ms` before now, oldest first: the candidates for a resume after their
    /// process crashed. Negative `older_than_ms` is `invalid_argument`.
    pub async fn stale_workflow_runs(
        &self,
        older_than_ms: i64,
        limit: usize,
    ) -> Result<Vec<WorkflowRunRow>> {
        if older_than_ms < 0 {
            return Err(Error::invalid_argument(format!(
                "older_than_ms must be ≥ 0, got {older_than_ms}"
            )));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} WHERE status = ? AND COALESCE(heartbeat_at_ms, updated_at_ms) < ? \
                 ORDER BY COALESCE(heartbeat_at_ms, updated_at_ms), run_id LIMIT {limit}",
                WorkflowRunRow::COLUMNS,
                inner.t.workflow_runs
            );
            let cutoff = now_ms().saturating_sub(older_than_ms);
            tx.fetch_all(&sql, &[Value::from(RUNNING), Value::Int(cutoff)])?
                .iter()
                .map(WorkflowRunRow::from_row)
                .collect()
        })
        .await
    }

    /// Flips the run's `woke` flag 0 → 1; `true` only for the one call that flipped it (the
    /// wake guard: deliver the parent's wake only then). `false` for a missing run.
    pub async fn mark_workflow_woke(&self, run_id: &str) -> Result<bool> {
        let id = run_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET woke = 1 WHERE run_id = ? AND woke = 0",
                inner.t.workflow_runs
            );
            Ok(tx.execute(&sql, &[Value::from(id.as_str())])? > 0)
        })
        .await
    }
}

/// `UPDATE … SET {sets}` of the run, only if it is `running` at `attempt` (the guard of every
/// write of an attempt); `params` bind the placeholders of `sets`. `true` iff the run matched.
fn update_live_attempt(
    inner: &Inner,
    tx: &mut dyn Transaction,
    run_id: &str,
    attempt: i64,
    sets: &str,
    params: Vec<Value>,
) -> Result<bool> {
    let guard = "run_id = ? AND status = ? AND attempts = ?";
    let guard_params = [
        Value::from(run_id),
        Value::from(RUNNING),
        Value::Int(attempt),
    ];
    update_guarded(
        tx,
        &inner.t.workflow_runs,
        sets,
        params,
        guard,
        guard_params,
    )
}

fn fetch_run(
    inner: &Inner,
    tx: &mut dyn Transaction,
    run_id: &str,
) -> Result<Option<WorkflowRunRow>> {
    select_row::<WorkflowRunRow>(
        tx,
        &inner.t.workflow_runs,
        "WHERE run_id = ?",
        &[Value::from(run_id)],
    )
}

/// Inside a session deletion: deletes the runs `session_id` parents and their steps, so no run
/// outlives its parent (a resume would find no session to wake or to hang leaves under).
pub(crate) fn delete_parented_runs(
    inner: &Inner,
    tx: &mut dyn Transaction,
    session_id: &str,
) -> Result<()> {
    let sql = format!(
        "DELETE FROM {} WHERE run_id IN (SELECT run_id FROM {} WHERE parent_session_id = ?)",
        inner.t.workflow_steps, inner.t.workflow_runs
    );
    tx.execute(&sql, &[Value::from(session_id)])?;
    let sql = format!(
        "DELETE FROM {} WHERE run_id IN (SELECT run_id FROM {} WHERE parent_session_id = ?)",
        inner.t.workflow_leaves, inner.t.workflow_runs
    );
    tx.execute(&sql, &[Value::from(session_id)])?;
    let sql = format!(
        "DELETE FROM {} WHERE parent_session_id = ?",
        inner.t.workflow_runs
    );
    tx.execute(&sql, &[Value::from(session_id)])?;
    Ok(())
}
