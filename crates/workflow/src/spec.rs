//! The workflow DSL as typed values.
//!
//! A [`WorkflowSpec`] is only ever built by validation ([`WorkflowSpec::from_value`] /
//! [`WorkflowSpec::from_json_str`]) or by hand in Rust; either way [`WorkflowSpec::to_value`] gives
//! the JSON form that parses back to an equal spec.

use power_loop_agent::AgentSpec;
use serde_json::{Map, Value};

/// The default template of an agent node's input: the workflow's own input.
pub const DEFAULT_AGENT_INPUT: &str = "{{input}}";
/// The default `max_concurrency` of `parallel` and `foreach` nodes.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 5;
/// How deep nodes may nest (the root is depth 1). Deeper nodes are a validation problem, which
/// keeps every walk over a spec (validation, serialization, drop) far from the stack limit.
pub const MAX_NODE_DEPTH: usize = 50;

/// A validated workflow: a tree of nodes whose leaves are sub-agents.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkflowSpec {
    /// Non-blank name of the workflow.
    pub name: String,
    /// The node the run starts at.
    pub root: Node,
    /// The run's input, available to templates as `{{input}}` (default empty).
    pub input: String,
    /// An optional token pool shared by every leaf of a run.
    pub budget: Option<BudgetSpec>,
    /// Opaque metadata, kept as given.
    pub metadata: Map<String, Value>,
}

impl WorkflowSpec {
    /// A spec with an empty input, no budget and no metadata.
    pub fn new(name: impl Into<String>, root: Node) -> Self {
        WorkflowSpec {
            name: name.into(),
            root,
            input: String::new(),
            budget: None,
            metadata: Map::new(),
        }
    }
}

/// The `budget` object of a spec: a soft token ceiling across all leaves of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BudgetSpec {
    /// Total tokens (`total_tokens` of every leaf) the run may spend; positive.
    pub max_tokens: u64,
    /// Stop starting new leaves once no more than this share (0–100 %) of the pool remains.
    pub stop_at_remaining_pct: f64,
}

impl BudgetSpec {
    /// A budget of `max_tokens` with no reserve floor.
    pub fn new(max_tokens: u64) -> Self {
        BudgetSpec {
            max_tokens,
            stop_at_remaining_pct: 0.0,
        }
    }
}

/// One node of the workflow tree.
// A spec is built once and read many times; keeping leaves unboxed keeps `Node::Agent(a)`
// patterns simple for the engine at the cost of some bytes per container node.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A leaf: one sub-agent run.
    Agent(AgentNode),
    /// Children run one after another.
    Sequence(SequenceNode),
    /// Children run concurrently; the node finishes when all have.
    Parallel(ParallelNode),
    /// A body node run once per item of a list.
    Foreach(ForeachNode),
    /// One child picked by the value of an earlier result.
    Branch(BranchNode),
}

/// What a `parallel` or `foreach` node does when a child fails with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnError {
    /// Cancel the still-running siblings and fail (the default).
    #[default]
    Halt,
    /// Record the error and let the other children finish.
    Continue,
}

impl OnError {
    /// The JSON spelling: `halt` or `continue`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OnError::Halt => "halt",
            OnError::Continue => "continue",
        }
    }

    /// Parses the JSON spelling.
    pub fn parse(s: &str) -> Option<OnError> {
        match s {
            "halt" => Some(OnError::Halt),
            "continue" => Some(OnError::Continue),
            _ => None,
        }
    }
}

/// The structured answer a leaf must give: the model is asked for JSON matching `schema`, and
/// the engine parses the final text into the result's payload.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OutputSchema {
    /// Schema name sent to the provider (`Output` when the JSON form has none).
    pub name: String,
    /// The JSON Schema object.
    pub schema: Value,
}

impl OutputSchema {
    /// A named schema.
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        OutputSchema {
            name: name.into(),
            schema,
        }
    }

    /// The JSON form `{"name", "schema"}` (also what an [`AgentSpec`]'s `output_schema` takes).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert("schema".into(), self.schema.clone());
        Value::Object(m)
    }
}

/// `agent`: run one sub-agent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentNode {
    /// Unique, non-blank node id (the key of its result).
    pub id: String,
    /// The sub-agent to run. Its `system_prompt` is a template too.
    pub spec: AgentSpec,
    /// Template of the user message (default `{{input}}`).
    pub input: String,
    /// Ids of earlier nodes whose text is appended to the input as context, in this order.
    pub inputs_from: Vec<String>,
    /// Parse the final text into a structured payload.
    pub output_schema: Option<OutputSchema>,
}

impl AgentNode {
    /// A leaf with the default input template and no context or schema.
    pub fn new(id: impl Into<String>, spec: AgentSpec) -> Self {
        AgentNode {
            id: id.into(),
            spec,
            input: DEFAULT_AGENT_INPUT.to_owned(),
            inputs_from: Vec::new(),
            output_schema: None,
        }
    }
}

/// `sequence`: run `steps` in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SequenceNode {
    /// Optional id (a string container id; see docs/workflows.md).
    pub id: Option<String>,
    /// Non-empty list of children.
    pub steps: Vec<Node>,
}

impl SequenceNode {
    /// A sequence without an id.
    pub fn new(steps: Vec<Node>) -> Self {
        SequenceNode { id: None, steps }
    }
}

/// `parallel`: run `branches` concurrently, at most `max_concurrency` at a time.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ParallelNode {
    /// Optional id.
    pub id: Option<String>,
    /// Non-empty list of children.
    pub branches: Vec<Node>,
    /// At least 1 (default 5).
    pub max_concurrency: u32,
    /// Halt (default) or continue when a branch fails.
    pub on_error: OnError,
}

impl ParallelNode {
    /// A parallel node with the defaults.
    pub fn new(branches: Vec<Node>) -> Self {
        ParallelNode {
            id: None,
            branches,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            on_error: OnError::Halt,
        }
    }
}

/// Where a `foreach` gets its list.
#[derive(Debug, Clone, PartialEq)]
pub enum ForeachItems {
    /// `items`: a literal list.
    Items(Vec<Value>),
    /// `items_from`: a reference `node_id` or `node_id.key` resolved when the node starts.
    ItemsFrom(String),
}

/// `foreach`: run `body` once per item, with the item bound to the variable `as`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ForeachNode {
    /// Optional id; with one, the node records an aggregate result under it.
    pub id: Option<String>,
    /// The list to map over.
    pub items: ForeachItems,
    /// Template variable bound to the current item (JSON key `as`).
    pub as_name: String,
    /// The node run per item.
    pub body: Box<Node>,
    /// Run items concurrently (default true).
    pub parallel: bool,
    /// At least 1 (default 5).
    pub max_concurrency: u32,
    /// Halt (default) or continue when an item fails.
    pub on_error: OnError,
}

impl ForeachNode {
    /// A foreach with the defaults.
    pub fn new(items: ForeachItems, as_name: impl Into<String>, body: Node) -> Self {
        ForeachNode {
            id: None,
            items,
            as_name: as_name.into(),
            body: Box::new(body),
            parallel: true,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            on_error: OnError::Halt,
        }
    }
}

/// `branch`: resolve `on`, run the case whose key equals the value's rendering, else `default`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BranchNode {
    /// Optional id.
    pub id: Option<String>,
    /// Reference `node_id` or `node_id.key`.
    pub on: String,
    /// Non-empty, ordered list of (case key, node).
    pub cases: Vec<(String, Node)>,
    /// Node run when no case matches.
    pub default: Option<Box<Node>>,
}

impl BranchNode {
    /// A branch without id or default.
    pub fn new(on: impl Into<String>, cases: Vec<(String, Node)>) -> Self {
        BranchNode {
            id: None,
            on: on.into(),
            cases,
            default: None,
        }
    }

    /// The node of case `key`, if any.
    pub fn case(&self, key: &str) -> Option<&Node> {
        self.cases.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
}

impl Node {
    /// The JSON `type` of the node.
    pub const fn type_name(&self) -> &'static str {
        match self {
            Node::Agent(_) => "agent",
            Node::Sequence(_) => "sequence",
            Node::Parallel(_) => "parallel",
            Node::Foreach(_) => "foreach",
            Node::Branch(_) => "branch",
        }
    }

    /// The node's id (always present for agents, optional for containers).
    pub fn id(&self) -> Option<&str> {
        match self {
            Node::Agent(n) => Some(&n.id),
            Node::Sequence(n) => n.id.as_deref(),
            Node::Parallel(n) => n.id.as_deref(),
            Node::Foreach(n) => n.id.as_deref(),
            Node::Branch(n) => n.id.as_deref(),
        }
    }

    /// The direct children in document order (cases in order, then the default).
    pub fn children(&self) -> Vec<&Node> {
        match self {
            Node::Agent(_) => Vec::new(),
            Node::Sequence(n) => n.steps.iter().collect(),
            Node::Parallel(n) => n.branches.iter().collect(),
            Node::Foreach(n) => vec![&*n.body],
            Node::Branch(n) => {
                let mut v: Vec<&Node> = n.cases.iter().map(|(_, c)| c).collect();
                v.extend(n.default.as_deref());
                v
            }
        }
    }
}
