//! Registry: schema validation, decoding, registration rules, failures, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use power_loop_contracts::{ErrorCode, ToolCall, ToolDefinition, ToolOutput};
use power_loop_tools::{RuntimeEnv, ToolContext, ToolRegistry, decode_arguments, tool_fn};
use serde_json::json;

fn counting_tool(name: &str, counter: Arc<AtomicUsize>) -> power_loop_tools::FnTool {
    tool_fn(
        ToolDefinition::new(
            name,
            "test tool",
            json!({
                "type": "object",
                "properties": {
                    "count": {"type": "integer", "minimum": 0},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "nested": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}
                },
                "required": ["count"],
                "additionalProperties": false
            }),
        ),
        move |_ctx, args| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(ToolOutput::ok(format!("count={}", args["count"])))
            }
        },
    )
}

fn ctx() -> ToolContext {
    ToolContext::new(Arc::new(RuntimeEnv::new()))
}

async fn call(reg: &ToolRegistry, name: &str, raw: &str) -> power_loop_tools::ToolOutcome {
    reg.invoke(ctx(), &ToolCall::new("c1", name, raw)).await
}

#[tokio::test]
async fn validation_names_field_and_rule_and_skips_handler() {
    let n = Arc::new(AtomicUsize::new(0));
    let mut reg = ToolRegistry::new();
    reg.register(counting_tool("t", n.clone())).unwrap();

    let cases = [
        (r#"{"count": "x"}"#, "/count", "type"),
        (r#"{}"#, "(root)", "required"),
        (r#"{"count": -1}"#, "/count", "minimum"),
        (r#"{"count": 1, "mode": "z"}"#, "/mode", "enum"),
        (
            r#"{"count": 1, "extra": 1}"#,
            "(root)",
            "additionalProperties",
        ),
        (r#"{"count": 1, "nested": {}}"#, "/nested", "required"),
        (r#"{"count": 1, "nested": {"x": 3}}"#, "/nested/x", "type"),
    ];
    for (raw, field, rule) in cases {
        let o = call(&reg, "t", raw).await;
        assert!(!o.output.ok, "{raw}");
        assert_eq!(o.error_code, Some(ErrorCode::ToolInvalidArgs), "{raw}");
        assert!(!o.handler_ran);
        let c = &o.output.content;
        assert!(c.contains(field), "{raw}: {c}");
        assert!(c.contains(&format!("(rule: {rule})")), "{raw}: {c}");
        assert!(c.contains("was not run"), "{c}");
    }
    let o = call(&reg, "t", r#"{"count": "x"}"#).await;
    assert!(
        o.output
            .content
            .contains(r#"/count: "x" is not of type "integer""#),
        "{}",
        o.output.content
    );
    assert_eq!(
        n.load(Ordering::SeqCst),
        0,
        "handler must not run on invalid args"
    );

    let o = call(&reg, "t", r#"{"count": 3}"#).await;
    assert!(o.output.ok);
    assert_eq!(o.output.content, "count=3");
    assert_eq!(n.load(Ordering::SeqCst), 1, "handler runs exactly once");
}

#[tokio::test]
async fn arguments_decoding() {
    assert_eq!(decode_arguments("").unwrap(), json!({}));
    assert_eq!(
        decode_arguments("{\"a\": \"line1\nline2\tx\"}").unwrap(),
        json!({"a": "line1\nline2\tx"})
    );
    assert!(decode_arguments("[1]").unwrap_err().contains("JSON object"));
    assert!(
        decode_arguments("{nope")
            .unwrap_err()
            .contains("not valid JSON")
    );

    let n = Arc::new(AtomicUsize::new(0));
    let mut reg = ToolRegistry::new();
    reg.register(counting_tool("t", n.clone())).unwrap();
    let o = call(&reg, "t", "{broken").await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolInvalidArgs));
    assert!(o.output.content.contains("not valid JSON"));
    let o = call(&reg, "t", "42").await;
    assert!(o.output.content.contains("must be a JSON object"));
    assert_eq!(n.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_tool_lists_available() {
    let n = Arc::new(AtomicUsize::new(0));
    let mut reg = ToolRegistry::new();
    reg.register(counting_tool("alpha", n.clone())).unwrap();
    reg.register(counting_tool("beta", n)).unwrap();
    let o = call(&reg, "gamma", "{}").await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolNotFound));
    assert!(!o.output.ok);
    assert!(o.output.content.contains("gamma"));
    assert!(
        o.output.content.contains("alpha, beta"),
        "{}",
        o.output.content
    );
}

#[tokio::test]
async fn registration_rules() {
    let n = Arc::new(AtomicUsize::new(0));
    let mut reg = ToolRegistry::new();
    reg.register(counting_tool("a", n.clone())).unwrap();
    reg.register(counting_tool("b", n.clone())).unwrap();
    reg.register(counting_tool("c", n.clone())).unwrap();
    let e = reg.register(counting_tool("b", n.clone())).unwrap_err();
    assert!(e.message().contains("already registered"), "{e}");
    // overwrite keeps position
    reg.register_overwrite(tool_fn(
        ToolDefinition::new("b", "new b", json!({"type": "object"})),
        |_c, _a| async { Ok(ToolOutput::ok("new")) },
    ))
    .unwrap();
    assert_eq!(reg.names(), vec!["a", "b", "c"]);
    assert_eq!(reg.get("b").unwrap().definition().description, "new b");
    // bad schema is a registration error
    let e = reg
        .register(tool_fn(
            ToolDefinition::new("bad", "x", json!({"type": 12})),
            |_c, _a| async { Ok(ToolOutput::ok("")) },
        ))
        .unwrap_err();
    assert!(e.message().contains("not a valid JSON Schema"), "{e}");
    let e = reg
        .register(tool_fn(
            ToolDefinition::new("bad name!", "x", json!({"type": "object"})),
            |_c, _a| async { Ok(ToolOutput::ok("")) },
        ))
        .unwrap_err();
    assert!(e.message().contains("invalid tool name"));
    // subset keeps registry order, filtered keeps whitelist order, unknown skipped
    assert_eq!(reg.subset(&["c", "a", "zz"]).names(), vec!["a", "c"]);
    let wl = vec!["c".to_owned(), "zz".to_owned(), "a".to_owned()];
    assert_eq!(reg.filtered(Some(&wl)).names(), vec!["c", "a"]);
    assert_eq!(reg.filtered(None).names(), vec!["a", "b", "c"]);
    assert_eq!(reg.to_openai_tools()[0]["function"]["name"], "a");
    reg.unregister("b");
    assert_eq!(reg.names(), vec!["a", "c"]);
    assert!(reg.get("c").is_some());
}

#[tokio::test]
async fn handler_failures_and_panics_become_failed_results() {
    let mut reg = ToolRegistry::new();
    reg.register(tool_fn(
        ToolDefinition::new("boom", "x", json!({"type": "object"})),
        |_c, _a| async { panic!("kaboom") },
    ))
    .unwrap();
    reg.register(tool_fn(
        ToolDefinition::new("err", "x", json!({"type": "object"})),
        |_c, _a| async {
            Err(power_loop_contracts::Error::new(
                ErrorCode::ToolDenied,
                "nope",
            ))
        },
    ))
    .unwrap();
    reg.register(tool_fn(
        ToolDefinition::new("soft", "x", json!({"type": "object"})),
        |_c, _a| async { Ok(ToolOutput::failed("soft failure")) },
    ))
    .unwrap();
    let o = call(&reg, "boom", "{}").await;
    assert!(!o.output.ok);
    assert!(o.handler_ran);
    assert!(o.output.content.contains("kaboom"), "{}", o.output.content);
    let o = call(&reg, "err", "{}").await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    assert_eq!(o.output.content, "Error: nope");
    assert_eq!(o.output.data["error_code"], "tool.denied");
    let r = o.to_result();
    assert!(r.failed);
    let o = call(&reg, "soft", "{}").await;
    assert!(!o.output.ok);
    assert_eq!(o.error_code, Some(ErrorCode::ToolFailed));
}

#[tokio::test]
async fn cancellation_stops_a_running_handler() {
    let mut reg = ToolRegistry::new();
    reg.register(tool_fn(
        ToolDefinition::new("slow", "x", json!({"type": "object"})),
        |_c, _a| async {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            Ok(ToolOutput::ok("late"))
        },
    ))
    .unwrap();
    let c = ctx();
    let token = c.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        token.cancel();
    });
    let t0 = std::time::Instant::now();
    let o = reg.invoke(c, &ToolCall::new("c1", "slow", "{}")).await;
    assert!(t0.elapsed().as_secs() < 5);
    assert_eq!(o.error_code, Some(ErrorCode::Cancelled));
    assert!(!o.output.ok);
}

#[tokio::test]
async fn extensions_reach_tools() {
    struct LoopHandle(&'static str);
    let mut reg = ToolRegistry::new();
    reg.register(tool_fn(
        ToolDefinition::new("ext", "x", json!({"type": "object"})),
        |c, _a| async move {
            let h = c.extension::<LoopHandle>();
            Ok(ToolOutput::ok(h.map_or("none", |h| h.0)))
        },
    ))
    .unwrap();
    let c = ctx().with_extension(Arc::new(LoopHandle("loop-1")));
    let o = reg.invoke(c, &ToolCall::new("c1", "ext", "{}")).await;
    assert_eq!(o.output.content, "loop-1");
}
