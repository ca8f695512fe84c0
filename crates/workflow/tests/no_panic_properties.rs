#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Arbitrary JSON (and spec-shaped JSON with garbage in its fields) never panics validation,
//! every valid result round-trips, deep nesting is a problem rather than a stack overflow, and
//! template rendering is panic-free and linear.

use power_loop_workflow::{MAX_NODE_DEPTH, WorkflowSpec, render_template};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z{}. '\"]{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "agent",
            "sequence",
            "parallel",
            "foreach",
            "branch",
            "halt",
            "continue",
            "a",
            "a.k",
            "{{input}}",
            "",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    // The keys of the node types and of an agent spec, then two stray ones.
    const KEYS: &str = "type id spec input inputs_from output_schema steps branches \
        max_concurrency on_error items items_from as body parallel on cases default name \
        system_prompt schema k it's";
    prop::sample::select(KEYS.split_whitespace().collect::<Vec<_>>()).prop_map(str::to_owned)
}

/// A node-shaped object: a real type, plausible keys, arbitrary values in them.
fn node_like(depth: u32) -> BoxedStrategy<Value> {
    let agent = (any_json(), any_json(), any_json(), any_json()).prop_map(|(id, input, from, os)| {
        json!({"type": "agent", "id": pick(id, json!("a")), "spec": {"name": "n", "system_prompt": "p"},
               "input": pick(input, json!("{{input}}")), "inputs_from": pick(from, json!([])),
               "output_schema": os})
    });
    if depth == 0 {
        return agent.boxed();
    }
    let child = node_like(depth - 1);
    prop_oneof![
        agent,
        prop::collection::vec(child.clone(), 0..4)
            .prop_map(|steps| json!({"type": "sequence", "steps": steps})),
        (prop::collection::vec(child.clone(), 0..4), any_json(), any_json()).prop_map(
            |(b, mc, oe)| json!({"type": "parallel", "branches": b, "max_concurrency": mc, "on_error": oe})
        ),
        (child.clone(), any_json(), any_json(), any_json()).prop_map(|(body, items, from, par)| {
            json!({"type": "foreach", "id": "f", "as": "x", "items": items, "items_from": from, "parallel": par, "body": body})
        }),
        (prop::collection::vec((key(), child.clone()), 0..3), any_json(), child).prop_map(
            |(cases, on, d)| json!({"type": "branch", "on": pick(on, json!("a")),
                 "cases": cases.into_iter().collect::<Map<_, _>>(), "default": d})
        ),
    ]
    .boxed()
}

/// Half the time the generated garbage, half the time a plausible value.
fn pick(garbage: Value, good: Value) -> Value {
    if garbage.is_boolean() || garbage.is_null() {
        good
    } else {
        garbage
    }
}

fn check(v: &Value) {
    match WorkflowSpec::from_value(v) {
        Ok(spec) => {
            let back = WorkflowSpec::from_value(&spec.to_value()).unwrap();
            assert_eq!(back, spec);
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            assert!(e.to_string().starts_with("invalid WorkflowSpec — "));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in any_json()) {
        check(&v);
        check(&json!({"name": "w", "root": v}));
        let _ = WorkflowSpec::from_json_str(&v.to_string());
    }

    #[test]
    fn spec_shaped_garbage_never_panics_and_valid_specs_round_trip(root in node_like(3), input in any_json(), budget in any_json()) {
        check(&json!({"name": "w", "root": root.clone()}));
        check(&json!({"name": "w", "root": root, "input": input, "budget": budget}));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        let _ = WorkflowSpec::from_json_str(&text);
    }

    #[test]
    fn templates_never_panic(t in "[{} a-z_.é\\t]{0,64}") {
        let env = json!({"a": "x", "b": 1, "_": {"k": "v"}}).as_object().cloned().unwrap();
        let _ = render_template(&t, &env);
    }
}

/// Runs `f` on a thread with a big stack: building and dropping a 10,000-level `Value` is deep
/// recursion inside serde_json itself (not in our code).
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn ten_thousand_nested_sequences_are_one_problem_not_a_stack_overflow() {
    with_big_stack(|| {
        let mut node =
            json!({"type": "agent", "id": "leaf", "spec": {"name": "n", "system_prompt": "p"}});
        for _ in 0..10_000 {
            // by hand: `json!` would re-serialize `node` each time (quadratic)
            let mut m = Map::new();
            m.insert("type".into(), json!("sequence"));
            m.insert("steps".into(), Value::Array(vec![node]));
            node = Value::Object(m);
        }
        let spec = json!({"name": "deep", "root": node});
        // validate on a small stack, as a library caller would
        let handle = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let err = WorkflowSpec::from_value(&spec).unwrap_err();
                (err, spec)
            })
            .unwrap();
        let (err, spec) = handle.join().unwrap();
        let path = format!("root{}", ".steps[0]".repeat(MAX_NODE_DEPTH));
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].path, path);
        assert_eq!(
            err.problems[0].message,
            format!("nodes nest deeper than {MAX_NODE_DEPTH} levels; flatten the workflow")
        );
        drop(spec);
    });
}

#[test]
fn deep_json_text_is_a_parse_problem() {
    with_big_stack(|| {
        let text = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = WorkflowSpec::from_json_str(&text).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].path, "");
        assert!(
            err.problems[0]
                .message
                .starts_with("JSON parse error: recursion limit exceeded")
        );
    });
}

#[test]
fn nesting_at_the_limit_is_valid_and_round_trips_as_text() {
    // a chain of foreach bodies reaches the node limit with few JSON levels
    let mut node =
        json!({"type": "agent", "id": "leaf", "spec": {"name": "n", "system_prompt": "p"}});
    for _ in 1..MAX_NODE_DEPTH {
        node = json!({"type": "sequence", "steps": [node]});
    }
    let spec = WorkflowSpec::from_value(&json!({"name": "w", "root": node})).unwrap();
    assert_eq!(spec.node_count(), MAX_NODE_DEPTH);
    assert_eq!(
        WorkflowSpec::from_json_str(&spec.to_json_string()).unwrap(),
        spec
    );
}

#[test]
fn template_rendering_of_large_pathological_inputs() {
    // (the step-count proof of linearity is the unit test `template::tests::steps_are_linear`)
    let env = json!({"a": "x"}).as_object().cloned().unwrap();
    for unit in ["{{", "{{ a", "{{a}", "{{{", "{{ aaaaaaaa "] {
        let t = unit.repeat(200_000);
        let out = render_template(&t, &env);
        assert_eq!(out, t);
    }
    let t = "{{a}}".repeat(200_000);
    assert_eq!(render_template(&t, &env), "x".repeat(200_000));
}
