//! Extracting a JSON object from model text. The helpers live in the contracts crate (the agent's
//! structured output uses them too); they are re-exported here under their old path.

pub use power_loop_contracts::llm::json::{
    JsonExtraction, extract_json_substring, parse_json_from_model_output,
    parse_json_from_model_output_detailed, remove_trailing_commas, strip_code_fences,
};
