//! What travels through the `workflow_leaves` table: the leaf a run publishes ([`FleetJob`],
//! column `request_json`) and the result a worker records ([`FleetResult`], column
//! `result_json`). Both are versioned JSON documents.

use power_loop_agent::AgentSpec;
use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::executor::{LeafOutcome, LeafReport, LeafRequest};
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
    /// The leaf's session (in the shared store), leaf status (`completed`, `failed`, …), final
    /// text, rounds, usage and structured answer.
    #[serde(flatten)]
    pub leaf: LeafReport,
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
            leaf: LeafReport::from_outcome(o),
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
                let mut o = r.leaf.into_outcome(|status, text| {
                    LeafOutcome::new(
                        LeafStatus::parse(status).unwrap_or(LeafStatus::Failed),
                        text,
                    )
                });
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_result_document_keeps_its_keys_and_reads_back() {
        let mut o = LeafOutcome::new(LeafStatus::Failed, "boom");
        o.session_id = Some("s".into());
        o.rounds = 3;
        o.payload = Some(json!({"k": "v"}));
        o.error = Some("the sub-agent ended with status failed".into());
        let doc = serde_json::to_value(FleetResult::from_outcome(&o, "w1")).unwrap();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "version",
                "session_id",
                "status",
                "final_text",
                "rounds",
                "usage",
                "payload",
                "error",
                "worker"
            ]
        );
        assert_eq!(
            (doc["status"].clone(), doc["rounds"].clone()),
            (json!("failed"), json!(3))
        );
        assert_eq!(FleetResult::outcome_of(Some(&doc)), o);

        let bare = json!({"version": 1, "session_id": null, "status": "completed",
            "final_text": "t", "rounds": 1, "usage": doc["usage"].clone()});
        let back = FleetResult::outcome_of(Some(&bare));
        assert_eq!(
            (back.status, back.final_text.as_str()),
            (LeafStatus::Completed, "t")
        );
        assert!(back.payload.is_none() && back.error.is_none());
        let odd = FleetResult::outcome_of(Some(&json!({"status": "completed"})));
        assert_eq!(odd.status, LeafStatus::Failed);
    }
}
