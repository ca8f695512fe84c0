//! Writing your own tool: the `Tool` trait on a struct, argument validation, cancellation.
//!
//! Shows: implementing `Tool` (definition, `call`, `concurrency_safe`), state shared by a tool
//! (an `Arc` inside the struct), how the registry validates arguments against the JSON schema
//! before the handler runs (bad arguments go back to the model as a `tool.invalid_args` result,
//! so it can correct itself), and two read-only calls of one round running concurrently.
//!
//! Run: `cargo run -p examples --example custom-tool-trait`
// An example asserts what it demonstrates: an unexpected outcome should stop it loudly.
#![allow(clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use power_loop::{
    BoxFuture, NewSessionOptions, ScriptedLlm, ScriptedStep, StatefulAgentLoop, Tool, ToolContext,
    ToolDefinition, ToolOutput, ToolRegistry,
};
use serde_json::{Value, json};

/// A read-only inventory lookup over shared state.
struct Inventory {
    definition: ToolDefinition,
    stock: Arc<Mutex<HashMap<String, u32>>>,
}

impl Inventory {
    fn new(stock: Arc<Mutex<HashMap<String, u32>>>) -> Self {
        Inventory {
            definition: ToolDefinition::new(
                "stock_level",
                "How many units of an item are in stock.",
                json!({
                    "type": "object",
                    "properties": {"item": {"type": "string", "minLength": 1}},
                    "required": ["item"],
                    "additionalProperties": false
                }),
            ),
            stock,
        }
    }
}

impl Tool for Inventory {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(
        &'a self,
        ctx: ToolContext,
        args: Value,
    ) -> BoxFuture<'a, power_loop::Result<ToolOutput>> {
        Box::pin(async move {
            // Long-running tools watch the run's cancellation token.
            if ctx.cancel.is_cancelled() {
                return Ok(ToolOutput::failed("cancelled"));
            }
            // The schema was checked already: `item` is a non-empty string.
            let item = args["item"].as_str().unwrap_or_default();
            let n = self
                .stock
                .lock()
                .map(|m| m.get(item).copied().unwrap_or(0))
                .unwrap_or(0);
            Ok(ToolOutput::ok(format!("{item}: {n} in stock")).with_data("units", n))
        })
    }

    /// Read-only, so calls in one batch may run at the same time.
    fn concurrency_safe(&self) -> bool {
        true
    }
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let stock = Arc::new(Mutex::new(HashMap::from([
        ("bolts".to_owned(), 120),
        ("nuts".to_owned(), 0),
    ])));
    let mut tools = ToolRegistry::new();
    tools.register(Inventory::new(Arc::clone(&stock)))?;

    // Outside a loop: validation is the same function the loop uses.
    let err = tools
        .validate("stock_level", &json!({"item": 7}))
        .expect_err("7 is not a string");
    println!("validate: {} ({})", err.code(), err.message());

    let llm = Arc::new(ScriptedLlm::new().steps([
        // A bad call first: the model gets the validation error as the tool result.
        ScriptedStep::tool_call("stock_level", json!({"sku": "bolts"})),
        // Then two good ones in one batch (run concurrently).
        ScriptedStep::tool_calls([
            ("stock_level", json!({"item": "bolts"})),
            ("stock_level", json!({"item": "nuts"})),
        ]),
        ScriptedStep::text("120 bolts, no nuts."),
    ]));
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .tools(tools)
        .build()?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&sid, "Do we have bolts and nuts?").await?;
    for m in agent.get_messages(&sid, false).await? {
        if m.role == power_loop::Role::Tool {
            println!("tool result: {}", m.text());
        }
    }
    println!(
        "final: {} ({} handler runs)",
        result.final_text, result.tool_calls
    );
    assert_eq!(
        result.tool_calls, 2,
        "the invalid call never reached the handler"
    );
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
