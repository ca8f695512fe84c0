//! What travels through the `workflow_leaves` table: the leaf a run publishes ([`FleetJob`],
//! column `request_json`) and the result a worker records ([`FleetResult`], column
//! `result_json`). Both are versioned JSON documents.

use power_loop_agent::{AgentSpec, RunUsage};
use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::executor::{LeafOutcome, LeafRequest};
use crate::result::LeafStatus;

/// Version of the [`FleetJob`] / [`FleetResult`] documents.
pub const FLEET_JOB_VERSION: u32 = 1;

/// A published leaf: everything a fleet worker needs to run it on the shared store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetJob {
    /// Document version ([`FLEET_JOB_VERSION`]).
    pub version: u32,
    /// The effective sub-agent (rendered prompt, run metadata).
    pub spec: AgentSpec,
    /// The rendered user input.
    pub input: String,
    /// The run's driver session: the leaf's session becomes its linked child.
    pub driver_session_id: Option<String>,
    /// The leaf's step key.
    pub step_key: String,
}

impl FleetJob {
    /// The job of an engine's leaf request.
    pub fn from_request(r: &LeafRequest) -> Self {
        FleetJob {
            version: FLEET_JOB_VERSION,
            spec: r.spec.clone(),
            input: r.input.clone(),
            driver_session_id: r.driver_session_id.clone(),
            step_key: r.step_key.clone(),
        }
    }

    /// Reads a published job; another version or a malformed document is
    /// `workflow.worker_protocol`.
    pub fn from_value(v: &Value) -> Result<Self> {
        let job: FleetJob = serde_json::from_value(v.clone()).map_err(|e| {
            Error::new(
                ErrorCode::WorkerProtocol,
                format!("a published fleet leaf is not a readable job: {e}"),
            )
        })?;
        if job.version != FLEET_JOB_VERSION {
            return Err(Error::new(
                ErrorCode::WorkerProtocol,
                format!(
                    "a published fleet leaf has job version {}; this worker reads version {FLEET_JOB_VERSION}",
                    job.version
                ),
            ));
        }
        Ok(job)
    }
}

/// A leaf's recorded result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetResult {
    /// Document version ([`FLEET_JOB_VERSION`]).
    pub version: u32,
    /// The leaf's session (in the shared store).
    pub session_id: Option<String>,
    /// The leaf status (`completed`, `failed`, …).
    pub status: String,
    /// The final text.
    pub final_text: String,
    /// Rounds run.
    pub rounds: u32,
    /// Tokens used.
    pub usage: RunUsage,
    /// The validated structured answer.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Why the leaf failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The worker that ran it.
    #[serde(default)]
    pub worker: Option<String>,
}

impl FleetResult {
    /// The result document of an outcome, run by `worker`.
    pub fn from_outcome(o: &LeafOutcome, worker: &str) -> Self {
        FleetResult {
            version: FLEET_JOB_VERSION,
            session_id: o.session_id.clone(),
            status: o.status.as_str().to_owned(),
            final_text: o.final_text.clone(),
            rounds: o.rounds,
            usage: o.usage,
            payload: o.payload.clone(),
            error: o.error.clone(),
            worker: Some(worker.to_owned()),
        }
    }

    /// The outcome a recorded result stands for (an unreadable document is a failed leaf
    /// saying so, never a hung run).
    pub fn outcome_of(v: Option<&Value>) -> LeafOutcome {
        let parsed = v.and_then(|v| serde_json::from_value::<FleetResult>(v.clone()).ok());
        match parsed {
            Some(r) => {
                let status = LeafStatus::parse(&r.status).unwrap_or(LeafStatus::Failed);
                let mut o = LeafOutcome::new(status, r.final_text);
                o.session_id = r.session_id;
                o.rounds = r.rounds;
                o.usage = r.usage;
                o.payload = r.payload;
                o.error = r.error;
                o
            }
            None => {
                let mut o = LeafOutcome::new(
                    LeafStatus::Failed,
                    "[the fleet recorded an unreadable result]",
                );
                o.error = Some("the fleet recorded an unreadable leaf result".into());
                o
            }
        }
    }
}
