//! The pending-state record: the durable marker that a transcript ends with
//! assistant tool calls that do not all have results yet.

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::{JsonMap, decode_json, encode_json};

/// A paused `request_user_input` call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct PendingInteraction {
    /// `input_<16 hex>`.
    pub interaction_id: String,
    /// The tool call waiting for the answer.
    pub tool_call_id: String,
    /// Tool name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Interaction kind (free string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Question shown to the human.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Choices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Json>,
    /// Free metadata.
    #[serde(default, skip_serializing_if = "JsonMap::is_empty")]
    pub metadata: JsonMap,
}

impl PendingInteraction {
    /// An interaction waiting on `tool_call_id`.
    pub fn new(interaction_id: impl Into<String>, tool_call_id: impl Into<String>) -> Self {
        PendingInteraction {
            interaction_id: interaction_id.into(),
            tool_call_id: tool_call_id.into(),
            ..Default::default()
        }
    }
}

/// `session_state.pending_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct PendingState {
    /// Position of the assistant message in the working history (not a store seq).
    #[serde(default)]
    pub assistant_seq: i64,
    /// Round of the tool calls (or of the last resolving tool row).
    #[serde(default)]
    pub round_index: i64,
    /// Unresolved tool call ids.
    #[serde(default)]
    pub tool_call_ids: Vec<String>,
    /// Unresolved tool-call objects.
    #[serde(default)]
    pub tool_calls: Vec<Json>,
    /// Paused human-input interactions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_interactions: Vec<PendingInteraction>,
    /// Unknown keys, preserved verbatim.
    #[serde(flatten)]
    pub extra: JsonMap,
}

fn call_id(call: &Json) -> Option<&str> {
    call.get("id").and_then(Json::as_str)
}

impl PendingState {
    /// Pending state after an assistant message with `tool_calls` (ids taken from the calls;
    /// empty ids are not tracked in `tool_call_ids`).
    pub fn from_tool_calls(assistant_seq: i64, round_index: i64, tool_calls: Vec<Json>) -> Self {
        let tool_call_ids = tool_calls
            .iter()
            .filter_map(call_id)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
        PendingState {
            assistant_seq,
            round_index,
            tool_call_ids,
            tool_calls,
            ..Default::default()
        }
    }

    /// True when nothing is unresolved and no interaction waits.
    pub fn is_empty(&self) -> bool {
        self.tool_call_ids.is_empty()
            && self.tool_calls.is_empty()
            && self.pending_interactions.is_empty()
    }

    /// Every unresolved id: `tool_call_ids` ∪ ids of `tool_calls`, sorted and de-duplicated.
    pub fn unresolved_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.tool_call_ids.clone();
        ids.extend(
            self.tool_calls
                .iter()
                .filter_map(call_id)
                .map(str::to_owned),
        );
        ids.sort();
        ids.dedup();
        ids
    }

    /// Marks `tool_call_id` resolved by a tool row of `round_index`: removes it from
    /// both lists (remaining ids sorted) and drops interactions no longer unresolved. Returns true
    /// if the id was unresolved.
    pub fn resolve(&mut self, tool_call_id: &str, round_index: Option<i64>) -> bool {
        let before = self.tool_call_ids.len() + self.tool_calls.len();
        self.tool_call_ids.retain(|id| id != tool_call_id);
        self.tool_calls.retain(|c| call_id(c) != Some(tool_call_id));
        let hit = self.tool_call_ids.len() + self.tool_calls.len() != before;
        if hit {
            self.tool_call_ids.sort();
            if let Some(r) = round_index {
                self.round_index = r;
            }
            let unresolved = self.unresolved_ids();
            self.pending_interactions
                .retain(|i| unresolved.contains(&i.tool_call_id));
        }
        hit
    }

    /// Whether unresolved tool calls remain (interactions alone do not keep a state pending
    /// once their tool calls are resolved).
    pub fn has_unresolved(&self) -> bool {
        !self.tool_call_ids.is_empty() || !self.tool_calls.is_empty()
    }

    pub(crate) fn decode(text: Option<String>) -> Result<Option<Self>> {
        match decode_json("pending_json", text)? {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(m)) if m.is_empty() => Ok(None),
            Some(v) => serde_json::from_value(v).map(Some).map_err(|e| {
                Error::new(
                    ErrorCode::StoreDecode,
                    format!("column `pending_json` does not hold a pending-state record: {e}"),
                )
                .with_source(e)
            }),
        }
    }

    /// Encodes for storage; an empty record (or `None`) is stored as NULL.
    pub(crate) fn encode(p: Option<&PendingState>) -> Result<Option<String>> {
        match p {
            None => Ok(None),
            Some(p) if p.is_empty() && p.extra.is_empty() && p.assistant_seq == 0 => Ok(None),
            Some(p) => Ok(Some(encode_json(&serde_json::to_value(p)?))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolving_the_last_call_empties_the_record() {
        let mut p = PendingState::from_tool_calls(
            3,
            1,
            vec![
                json!({"id": "b", "name": "x"}),
                json!({"id": "a", "name": "y"}),
            ],
        );
        assert_eq!(p.tool_call_ids, vec!["b", "a"]);
        assert!(p.resolve("b", Some(2)));
        assert_eq!(p.tool_call_ids, vec!["a"]);
        assert_eq!(p.round_index, 2);
        assert!(!p.resolve("zzz", None));
        assert!(p.resolve("a", None));
        assert!(!p.has_unresolved());
    }

    #[test]
    fn empty_record_encodes_to_null_and_round_trips() {
        assert_eq!(
            PendingState::encode(Some(&PendingState::default())).unwrap(),
            None
        );
        let p = PendingState::from_tool_calls(1, 0, vec![json!({"id": "x"})]);
        let text = PendingState::encode(Some(&p)).unwrap().unwrap();
        assert_eq!(PendingState::decode(Some(text)).unwrap(), Some(p));
        assert_eq!(PendingState::decode(Some("{}".into())).unwrap(), None);
    }
}
