//! [`AgentLoopConfig`]: the loop configuration (plain data, `#[non_exhaustive]`, `with_*` builder).
//!
//! Retry is not configured here: wrap the provider once before handing it to the loop (e.g.
//! `power_loop::with_retry(provider, policy)`); the retry layer reports its attempts to the loop
//! through the request's `LlmCallObserver`, so the loop still emits `llm_retry_attempted`.

use std::path::PathBuf;
use std::sync::Arc;

use power_loop_contracts::ResponseFormat;
use power_loop_tools::NotesPolicy;

use crate::compaction::Compactor;
use crate::memory::MemoryProvider;
use crate::projectors::{BackgroundProjector, RuntimeProjector, TodoProjector};
use crate::structured::StructuredOutputSpec;

/// Configuration of a [`StatefulAgentLoop`](crate::StatefulAgentLoop).
#[derive(Clone)]
#[non_exhaustive]
pub struct AgentLoopConfig {
    /// System prompt (`None` → the default agent prompt). Per-call > session > config.
    pub system_prompt: Option<String>,
    /// Round cap per run (default 24).
    pub max_rounds: u32,
    /// Sampling temperature sent on every call (default `None`: the provider's own setting, e.g.
    /// `POWER_LOOP_TEMPERATURE`, goes on the wire; a loop default never overrides it).
    pub temperature: Option<f64>,
    /// Completion cap per call (default `None`: the provider's own setting, e.g.
    /// `POWER_LOOP_MAX_TOKENS`, goes on the wire); also the compactor's context budget (8000
    /// when unset).
    pub max_tokens: Option<u32>,
    /// Model override placed on every request.
    pub model: Option<String>,
    /// `response_format` forwarded on every main call (overridden by `structured_output`).
    pub response_format: Option<ResponseFormat>,
    /// Structured output: the schema the final answer must match (parsed, validated, retried).
    pub structured_output: Option<StructuredOutputSpec>,
    /// Extra rounds allowed to repair a final answer that does not validate (default 2).
    pub structured_output_retries: u32,
    /// Hard per-run token budget (prompt + completion); `None` disables.
    pub max_tokens_per_run: Option<u64>,
    /// Long-term memory provider.
    pub memory: Option<Arc<dyn MemoryProvider>>,
    /// Token budget passed to `recall` (default 1500).
    pub memory_budget_tokens: u64,
    /// Context compactor (none by default).
    pub compactor: Option<Arc<dyn Compactor>>,
    /// Append the tool catalog to the system prompt (default true).
    pub inject_tool_descriptions: bool,
    /// Catalog header (default `# Available Tools`).
    pub tool_catalog_header: String,
    /// Max concurrent calls of a concurrency-safe tool batch (default 8).
    pub tool_batch_concurrency: usize,
    /// Tool results longer than this many characters are truncated (default 50 000).
    pub tool_result_max_chars: usize,
    /// LRU size of the active-window cache (default 256; 0 disables).
    pub session_cache_size: usize,
    /// Take the store's cross-process session writer lease around every run (default true).
    pub use_session_lease: bool,
    /// Directory of skills (`<name>/SKILL.md`). When set, the system prompt gets a section
    /// listing each skill's name and description (from its front matter), and the `load_skill`
    /// tool of this loop reads from it (it overrides the runtime environment's skills dir).
    /// It must exist: `build()` fails otherwise. Default `None`.
    pub skills_dir: Option<PathBuf>,
    /// Bounds of the note tools (`note_add`, `note_update`) of this loop: how many notes, how
    /// long each, and what happens when full. Overrides the runtime environment's policy;
    /// `None` keeps it (default: 50 notes of at most 1000 characters, refuse when full).
    pub notes_policy: Option<NotesPolicy>,
    /// Transient messages rebuilt from the store before each round's model call and put after
    /// the history (never persisted). Default: [`TodoProjector`] then [`BackgroundProjector`];
    /// an empty list disables them.
    pub runtime_projectors: Vec<Arc<dyn RuntimeProjector>>,
}

impl std::fmt::Debug for AgentLoopConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLoopConfig")
            .field("system_prompt", &self.system_prompt)
            .field("max_rounds", &self.max_rounds)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .field("model", &self.model)
            .field("response_format", &self.response_format)
            .field("structured_output", &self.structured_output)
            .field("max_tokens_per_run", &self.max_tokens_per_run)
            .field("memory", &self.memory.is_some())
            .field("compactor", &self.compactor.is_some())
            .field("tool_batch_concurrency", &self.tool_batch_concurrency)
            .field("session_cache_size", &self.session_cache_size)
            .field("skills_dir", &self.skills_dir)
            .field("notes_policy", &self.notes_policy)
            .field("runtime_projectors", &self.runtime_projectors.len())
            .finish_non_exhaustive()
    }
}

impl Default for AgentLoopConfig {
    fn default() -> Self {
        AgentLoopConfig {
            system_prompt: None,
            max_rounds: 24,
            temperature: None,
            max_tokens: None,
            model: None,
            response_format: None,
            structured_output: None,
            structured_output_retries: 2,
            max_tokens_per_run: None,
            memory: None,
            memory_budget_tokens: 1500,
            compactor: None,
            inject_tool_descriptions: true,
            tool_catalog_header: "# Available Tools".to_owned(),
            tool_batch_concurrency: 8,
            tool_result_max_chars: 50_000,
            session_cache_size: 256,
            use_session_lease: true,
            skills_dir: None,
            notes_policy: None,
            runtime_projectors: vec![Arc::new(TodoProjector), Arc::new(BackgroundProjector)],
        }
    }
}

macro_rules! setters {
    ($( $(#[$m:meta])* $name:ident($field:ident: $ty:ty) $(=> $wrap:expr)? ;)*) => {
        impl AgentLoopConfig {
            $(
                $(#[$m])*
                pub fn $name(mut self, v: $ty) -> Self {
                    self.$field = setters!(@wrap v $(, $wrap)?);
                    self
                }
            )*
        }
    };
    (@wrap $v:ident) => { $v };
    (@wrap $v:ident, $w:expr) => { $w($v) };
}

setters! {
    /// Sets the round cap.
    with_max_rounds(max_rounds: u32);
    /// Sets the temperature (`None` defers to the provider).
    with_temperature(temperature: Option<f64>);
    /// Sets the per-call completion cap (`None` defers to the provider).
    with_max_tokens(max_tokens: Option<u32>);
    /// Sets the model override.
    with_model(model: Option<String>);
    /// Sets the `response_format`.
    with_response_format(response_format: Option<ResponseFormat>);
    /// Sets the structured-output spec.
    with_structured_output(structured_output: Option<StructuredOutputSpec>);
    /// Sets how many repair rounds a non-validating structured answer gets.
    with_structured_output_retries(structured_output_retries: u32);
    /// Sets the per-run token budget.
    with_max_tokens_per_run(max_tokens_per_run: Option<u64>);
    /// Sets the memory provider.
    with_memory(memory: Option<Arc<dyn MemoryProvider>>);
    /// Sets the memory budget.
    with_memory_budget_tokens(memory_budget_tokens: u64);
    /// Sets the compactor.
    with_compactor(compactor: Option<Arc<dyn Compactor>>);
    /// Sets whether the tool catalog is appended to the system prompt.
    with_inject_tool_descriptions(inject_tool_descriptions: bool);
    /// Sets the concurrency of safe tool batches (≥ 1).
    with_tool_batch_concurrency(tool_batch_concurrency: usize) => |v: usize| v.max(1);
    /// Sets the tool-result truncation length.
    with_tool_result_max_chars(tool_result_max_chars: usize);
    /// Sets the active-window cache size (0 disables).
    with_session_cache_size(session_cache_size: usize);
    /// Sets whether runs take the cross-process session lease.
    with_session_lease(use_session_lease: bool);
    /// Sets the notes policy (`None` keeps the runtime environment's).
    with_notes_policy(notes_policy: Option<NotesPolicy>);
    /// Sets the runtime projectors (empty disables them).
    with_runtime_projectors(runtime_projectors: Vec<Arc<dyn RuntimeProjector>>);
}

impl AgentLoopConfig {
    /// The default configuration (same as `Default`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the system prompt.
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }

    /// Sets the skills directory (listed in the system prompt, read by `load_skill`).
    pub fn with_skills_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.skills_dir = Some(dir.into());
        self
    }

    /// The `response_format` sent on main calls.
    pub(crate) fn effective_response_format(&self) -> Option<ResponseFormat> {
        self.structured_output
            .as_ref()
            .map(StructuredOutputSpec::to_response_format)
            .or_else(|| self.response_format.clone())
    }
}
