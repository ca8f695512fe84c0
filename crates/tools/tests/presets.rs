//! Presets and the default registry factory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use power_loop_contracts::ErrorCode;
use power_loop_tools::{
    CORE_TOOL_NAMES, EXPLORE_TOOL_NAMES, FULL_TOOL_NAMES, RuntimeEnv, ToolRegistry, ToolSelection,
    default_registry, register_blackboard_tools,
};

#[test]
fn presets_have_exact_membership_and_order() {
    let d = tempfile::tempdir().unwrap();
    let env = RuntimeEnv::new().with_workspace(d.path()).unwrap();
    let core = default_registry(&env, &ToolSelection::preset("core")).unwrap();
    assert_eq!(core.names(), CORE_TOOL_NAMES);
    let explore = default_registry(&env, &ToolSelection::preset("explore")).unwrap();
    assert_eq!(explore.names(), EXPLORE_TOOL_NAMES);
    assert_eq!(FULL_TOOL_NAMES.len(), 20);
    let full = default_registry(&env, &ToolSelection::default()).unwrap();
    // timers and recall_compacted come from the agent crate (ToolSelection::external)
    let expected: Vec<&str> = FULL_TOOL_NAMES
        .iter()
        .copied()
        .filter(|n| {
            !matches!(
                *n,
                "schedule_wakeup"
                    | "list_wakeups"
                    | "cancel_wakeup"
                    | "current_time"
                    | "recall_compacted"
            )
        })
        .collect();
    assert_eq!(full.names(), expected);
}

#[test]
fn external_tools_take_their_preset_position() {
    use std::sync::Arc;
    let d = tempfile::tempdir().unwrap();
    let env = RuntimeEnv::new().with_workspace(d.path()).unwrap();
    let clock = power_loop_tools::tool_fn(
        power_loop_contracts::ToolDefinition::new(
            "current_time",
            "now",
            serde_json::json!({"type": "object"}),
        ),
        |_c, _a| async { Ok(power_loop_contracts::ToolOutput::ok("now")) },
    );
    let mut sel = ToolSelection::default();
    sel.external.push(Arc::new(clock));
    let reg = default_registry(&env, &sel).unwrap();
    let names = reg.names();
    let pos = names.iter().position(|n| n == "current_time").unwrap();
    assert_eq!(names[pos - 1], "note_delete");
    assert_eq!(names[pos + 1], "background_run");
}

#[test]
fn include_exclude_and_errors() {
    let d = tempfile::tempdir().unwrap();
    let env = RuntimeEnv::new().with_workspace(d.path()).unwrap();
    let sel = ToolSelection::include(&["grep", "bash"]).excluding(&["bash"]);
    assert_eq!(default_registry(&env, &sel).unwrap().names(), vec!["grep"]);
    let sel = ToolSelection {
        include: Some(vec!["todo".into()]),
        preset: Some("core".into()),
        ..ToolSelection::default()
    };
    assert_eq!(default_registry(&env, &sel).unwrap().names(), vec!["todo"]);
    let e = default_registry(&env, &ToolSelection::preset("mega")).unwrap_err();
    assert_eq!(
        e.message(),
        "Unknown preset 'mega'. Choose from: core, explore, full"
    );
    let e = default_registry(&env, &ToolSelection::include(&["nuke"])).unwrap_err();
    assert_eq!(e.message(), "Unknown default tool: 'nuke'");
}

#[test]
fn workspace_required_only_for_workspace_tools() {
    let env = RuntimeEnv::new();
    let e = default_registry(&env, &ToolSelection::preset("core")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::RuntimeEnvMissing);
    let ok = default_registry(
        &env,
        &ToolSelection::include(&["todo", "note_add", "request_user_input"]),
    );
    assert!(ok.is_ok());
}

#[test]
fn blackboard_tools_register_separately() {
    let mut reg = ToolRegistry::new();
    register_blackboard_tools(&mut reg, None, None, None, false).unwrap();
    assert_eq!(
        reg.names(),
        vec!["board_read", "board_post", "board_update", "board_remove"]
    );
    assert!(register_blackboard_tools(&mut reg, None, None, None, false).is_err());
    assert!(register_blackboard_tools(&mut reg, None, None, None, true).is_ok());
}
