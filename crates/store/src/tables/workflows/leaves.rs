//! The `workflow_leaves` table (schema version 4): the leaves a run publishes for a fleet of
//! workers, and their claims.
//!
//! ```text
//! publish ──► ready ──claim (SKIP LOCKED, lease, token, claims+1)──► claimed ──complete(token)──► done
//!               ▲                                                      │
//!               └──────── release(token), or the lease expired ◄───────┘ (claimable again)
//! ```
//! The process holding the run publishes a leaf (only while its attempt is live) and waits for
//! `done`; a worker claims it with a lease it renews, runs it and completes it with its claim
//! token in one transaction: a worker whose claim expired and was taken by another one gets
//! `workflow.claim_lost`, so every leaf's result is recorded exactly once.

use power_loop_contracts::clock::now_ms;
use power_loop_contracts::{Error, ErrorCode, Result};
use serde_json::Value as Json;

use super::inputs::check_key;
use super::leaf_rows::{WorkflowLeafRow, WorkflowLeafState};
use super::rows::WorkflowRunStatus;
use crate::codec::{
    StoredRow, encode_json, insert_row_sql, select_row, select_rows, update_guarded,
};
use crate::db::{Transaction, Value};
use crate::store::{Inner, SessionStore};

const READY: &str = WorkflowLeafState::Ready.as_str();
const CLAIMED: &str = WorkflowLeafState::Claimed.as_str();
const DONE: &str = WorkflowLeafState::Done.as_str();

/// A fresh claim token.
fn new_token() -> String {
    let bytes: [u8; 12] = rand::random();
    let mut t = String::with_capacity(30);
    t.push_str("claim_");
    for b in bytes {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

fn claim_lost(run_id: &str, step_key: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::WorkflowClaimLost,
        format!("the claim on leaf '{step_key}' of run '{run_id}' is lost: {why}"),
    )
    .with_detail("run_id", run_id)
    .with_detail("step_key", step_key)
}

fn check_lease(lease_ms: i64) -> Result<()> {
    if lease_ms <= 0 {
        return Err(Error::invalid_argument(format!(
            "a leaf lease must be > 0 ms, got {lease_ms}"
        )));
    }
    Ok(())
}

/// The guard of a write by the holder of a leaf claim (see [`held_claim`]): the update matches
/// only while the leaf is claimed with the token.
const HELD_CLAIM: &str = "run_id = ? AND step_key = ? AND state = ? AND claim_token = ?";

/// The parameters of [`HELD_CLAIM`] for leaf `(run_id, step_key)` and claim `token`.
fn held_claim(run_id: &str, step_key: &str, token: &str) -> [Value; 4] {
    [
        Value::from(run_id),
        Value::from(step_key),
        Value::from(CLAIMED),
        Value::from(token),
    ]
}

fn fetch_leaf(
    inner: &Inner,
    tx: &mut dyn Transaction,
    run_id: &str,
    step_key: &str,
    lock: bool,
) -> Result<Option<WorkflowLeafRow>> {
    let lock = if lock { tx.dialect().for_update() } else { "" };
    select_row::<WorkflowLeafRow>(
        tx,
        &inner.t.workflow_leaves,
        &format!("WHERE run_id = ? AND step_key = ?{lock}"),
        &[Value::from(run_id), Value::from(step_key)],
    )
}

impl SessionStore {
    /// Publishes a leaf of attempt `attempt` of `run_id` for the fleet, and returns its row.
    /// Only while the run is `running` at that attempt (`None` otherwise, nothing written).
    /// A new leaf is `ready`; a leaf already there is kept as it is (a `claimed` leaf keeps
    /// running, a `done` one keeps its result, so a new holder of the run never runs a leaf
    /// twice), except a `done` leaf of an earlier attempt whose result is not `completed`,
    /// which is made `ready` again (a resume re-runs failed leaves).
    pub async fn publish_workflow_leaf(
        &self,
        run_id: &str,
        attempt: i64,
        step_key: &str,
        request: Json,
    ) -> Result<Option<WorkflowLeafRow>> {
        check_key("run_id", run_id)?;
        check_key("step_key", step_key)?;
        let (id, key) = (run_id.to_owned(), step_key.to_owned());
        self.write_retrying(move |inner, tx| {
            let now = now_ms();
            let sql = format!(
                "UPDATE {} SET updated_at_ms = ? WHERE run_id = ? AND status = ? AND attempts = ?",
                inner.t.workflow_runs
            );
            let live = tx.execute(
                &sql,
                &[
                    Value::Int(now),
                    Value::from(id.as_str()),
                    Value::from(WorkflowRunStatus::Running.as_str()),
                    Value::Int(attempt),
                ],
            )? > 0;
            if !live {
                return Ok(None);
            }
            let req = encode_json(&request);
            match fetch_leaf(inner, tx, &id, &key, true)? {
                None => {
                    let sql = insert_row_sql::<WorkflowLeafRow>(&inner.t.workflow_leaves);
                    tx.execute(
                        &sql,
                        &[
                            Value::from(id.as_str()),
                            Value::from(key.as_str()),
                            Value::from(READY),
                            Value::Int(attempt),
                            Value::Text(req),
                            Value::Null,
                            Value::Null,
                            Value::Null,
                            Value::Int(0),
                            Value::Null,
                            Value::Null,
                            Value::Int(now),
                            Value::Int(now),
                            Value::Null,
                        ],
                    )?;
                }
                Some(row)
                    if row.state == WorkflowLeafState::Done
                        && row.attempt < attempt
                        && row.result_status.as_deref() != Some("completed") =>
                {
                    let sql = format!(
                        "UPDATE {} SET state = ?, attempt = ?, request_json = ?, claimed_by = NULL, claim_token = NULL, \
                         claim_expires_at_ms = NULL, result_status = NULL, result_json = NULL, finished_at_ms = NULL, \
                         updated_at_ms = ? WHERE run_id = ? AND step_key = ?",
                        inner.t.workflow_leaves
                    );
                    tx.execute(
                        &sql,
                        &[
                            Value::from(READY),
                            Value::Int(attempt),
                            Value::Text(req),
                            Value::Int(now),
                            Value::from(id.as_str()),
                            Value::from(key.as_str()),
                        ],
                    )?;
                }
                Some(_) => {
                    let sql = format!(
                        "UPDATE {} SET attempt = ?, updated_at_ms = ? WHERE run_id = ? AND step_key = ?",
                        inner.t.workflow_leaves
                    );
                    tx.execute(
                        &sql,
                        &[
                            Value::Int(attempt),
                            Value::Int(now),
                            Value::from(id.as_str()),
                            Value::from(key.as_str()),
                        ],
                    )?;
                }
            }
            fetch_leaf(inner, tx, &id, &key, false)
        })
        .await
    }

    /// Claims the oldest leaf that is `ready`, or `claimed` under a lease that ran out (its
    /// worker died): makes it `claimed` by `worker` with a fresh token and a lease of
    /// `lease_ms`, counts the claim, and returns it (`claim_token` set). Rows another claimer
    /// holds locked are skipped (`FOR UPDATE SKIP LOCKED` on server backends), so a leaf is
    /// never handed to two workers at once. `None` when nothing is claimable.
    pub async fn claim_workflow_leaf(
        &self,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<WorkflowLeafRow>> {
        check_key("worker", worker)?;
        check_lease(lease_ms)?;
        let worker = worker.to_owned();
        self.write_retrying(move |inner, tx| {
            let now = now_ms();
            let sql = format!(
                "SELECT {} FROM {} WHERE state = ? OR (state = ? AND claim_expires_at_ms < ?) \
                 ORDER BY created_at_ms, run_id, step_key LIMIT 1{}",
                WorkflowLeafRow::COLUMNS,
                inner.t.workflow_leaves,
                tx.dialect().for_update_skip_locked()
            );
            let Some(r) = tx.fetch_optional(
                &sql,
                &[Value::from(READY), Value::from(CLAIMED), Value::Int(now)],
            )?
            else {
                return Ok(None);
            };
            let mut row = WorkflowLeafRow::from_row(&r)?;
            let token = new_token();
            let expires = now.saturating_add(lease_ms);
            let sql = format!(
                "UPDATE {} SET state = ?, claimed_by = ?, claim_token = ?, claim_expires_at_ms = ?, \
                 claims = claims + 1, updated_at_ms = ? WHERE run_id = ? AND step_key = ?",
                inner.t.workflow_leaves
            );
            tx.execute(
                &sql,
                &[
                    Value::from(CLAIMED),
                    Value::from(worker.as_str()),
                    Value::from(token.as_str()),
                    Value::Int(expires),
                    Value::Int(now),
                    Value::from(row.run_id.as_str()),
                    Value::from(row.step_key.as_str()),
                ],
            )?;
            row.state = WorkflowLeafState::Claimed;
            row.claimed_by = Some(worker.clone());
            row.claim_token = Some(token);
            row.claim_expires_at_ms = Some(expires);
            row.claims += 1;
            row.updated_at_ms = now;
            Ok(Some(row))
        })
        .await
    }

    /// Extends the lease of the claim `token` to `lease_ms` from now; `false` when the claim is
    /// no longer this token's (the worker must stop: another worker took the leaf over).
    pub async fn renew_workflow_leaf_claim(
        &self,
        run_id: &str,
        step_key: &str,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool> {
        check_lease(lease_ms)?;
        let (id, key, token) = (run_id.to_owned(), step_key.to_owned(), token.to_owned());
        self.write(move |inner, tx| {
            let now = now_ms();
            let set = "claim_expires_at_ms = ?, updated_at_ms = ?";
            let values = vec![Value::Int(now.saturating_add(lease_ms)), Value::Int(now)];
            let guard = held_claim(&id, &key, &token);
            update_guarded(tx, &inner.t.workflow_leaves, set, values, HELD_CLAIM, guard)
        })
        .await
    }

    /// Records the result of the leaf claimed with `token`, in one transaction that checks
    /// the token: the leaf becomes `done` with `status` and `result`. A leaf that is not
    /// claimed with this token (another worker took it over after the lease ran out, it was
    /// released, or it is already done) is `workflow.claim_lost` and nothing is written, so a
    /// leaf's result is recorded exactly once. An empty or over-long status is
    /// `invalid_argument`.
    pub async fn complete_workflow_leaf(
        &self,
        run_id: &str,
        step_key: &str,
        token: &str,
        status: &str,
        result: Json,
    ) -> Result<()> {
        check_key("status", status)?;
        let (id, key, token, status) = (
            run_id.to_owned(),
            step_key.to_owned(),
            token.to_owned(),
            status.to_owned(),
        );
        self.write_retrying(move |inner, tx| {
            let Some(row) = fetch_leaf(inner, tx, &id, &key, true)? else {
                return Err(claim_lost(&id, &key, "the leaf is gone"));
            };
            if row.state != WorkflowLeafState::Claimed
                || row.claim_token.as_deref() != Some(token.as_str())
            {
                return Err(claim_lost(
                    &id,
                    &key,
                    &format!(
                        "it is {} under another claim (claimed {} time(s))",
                        row.state, row.claims
                    ),
                ));
            }
            let now = now_ms();
            let sql = format!(
                "UPDATE {} SET state = ?, result_status = ?, result_json = ?, finished_at_ms = ?, \
                 claim_expires_at_ms = NULL, updated_at_ms = ? WHERE run_id = ? AND step_key = ? AND claim_token = ?",
                inner.t.workflow_leaves
            );
            tx.execute(
                &sql,
                &[
                    Value::from(DONE),
                    Value::from(status.as_str()),
                    Value::Text(encode_json(&result)),
                    Value::Int(now),
                    Value::Int(now),
                    Value::from(id.as_str()),
                    Value::from(key.as_str()),
                    Value::from(token.as_str()),
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Gives a claimed leaf back (a draining worker): `ready` again, claimable at once, its
    /// claim count kept. `false` when the claim is no longer this token's.
    pub async fn release_workflow_leaf_claim(
        &self,
        run_id: &str,
        step_key: &str,
        token: &str,
    ) -> Result<bool> {
        let (id, key, token) = (run_id.to_owned(), step_key.to_owned(), token.to_owned());
        self.write(move |inner, tx| {
            let set =
                "state = ?, claim_token = NULL, claim_expires_at_ms = NULL, updated_at_ms = ?";
            let values = vec![Value::from(READY), Value::Int(now_ms())];
            let guard = held_claim(&id, &key, &token);
            update_guarded(tx, &inner.t.workflow_leaves, set, values, HELD_CLAIM, guard)
        })
        .await
    }

    /// Withdraws a leaf nobody claimed yet (its run was cancelled): deletes it if it is
    /// `ready`; `true` iff it was deleted.
    pub async fn withdraw_workflow_leaf(&self, run_id: &str, step_key: &str) -> Result<bool> {
        let (id, key) = (run_id.to_owned(), step_key.to_owned());
        self.write(move |inner, tx| {
            let sql = format!(
                "DELETE FROM {} WHERE run_id = ? AND step_key = ? AND state = ?",
                inner.t.workflow_leaves
            );
            Ok(tx.execute(
                &sql,
                &[
                    Value::from(id.as_str()),
                    Value::from(key.as_str()),
                    Value::from(READY),
                ],
            )? > 0)
        })
        .await
    }

    /// One published leaf, or `None`.
    pub async fn get_workflow_leaf(
        &self,
        run_id: &str,
        step_key: &str,
    ) -> Result<Option<WorkflowLeafRow>> {
        let (id, key) = (run_id.to_owned(), step_key.to_owned());
        self.read(move |inner, tx| fetch_leaf(inner, tx, &id, &key, false))
            .await
    }

    /// The published leaves of a run, by step key.
    pub async fn list_workflow_leaves(&self, run_id: &str) -> Result<Vec<WorkflowLeafRow>> {
        let id = run_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<WorkflowLeafRow>(
                tx,
                &inner.t.workflow_leaves,
                "WHERE run_id = ? ORDER BY step_key",
                &[Value::from(id.as_str())],
            )
        })
        .await
    }
}
