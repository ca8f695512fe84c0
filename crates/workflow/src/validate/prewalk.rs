//! The id pre-walk of validation: every id in the raw JSON tree, which of them other nodes may
//! reference, which live inside foreach bodies, and where each referenceable node sits.
//!
//! Like the reference it walks `steps`, `branches`, `body`, `default` and `cases` of every
//! object it meets, whatever the object's `type` — but never descends past
//! [`MAX_NODE_DEPTH`], never fails on odd shapes (a `cases` list is simply not walked), and keeps
//! the position of each id so ordering rules can be checked.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::spec::MAX_NODE_DEPTH;

/// One step of a node's position in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Comp {
    /// `steps[i]` of a sequence.
    Step(usize),
    /// `branches[i]` of a parallel.
    Branch(usize),
    /// `body` of a foreach.
    Body,
    /// `cases[key]` of a branch.
    Case(String),
    /// `default` of a branch.
    Default,
}

/// What the pre-walk found.
#[derive(Debug, Default)]
pub(crate) struct IdIndex {
    /// Ids seen more than once (any node kind), sorted.
    pub(crate) duplicates: BTreeSet<String>,
    /// Agent and foreach ids outside foreach bodies, with the position of their first occurrence.
    pub(crate) referenceable: BTreeMap<String, Vec<Comp>>,
    /// Agent and foreach ids inside foreach bodies.
    pub(crate) body_ids: HashSet<String>,
}

impl IdIndex {
    pub(crate) fn build(root: &Value) -> IdIndex {
        let mut idx = IdIndex::default();
        let mut seen = HashSet::new();
        let mut pos = Vec::new();
        idx.walk(root, &mut pos, false, 1, &mut seen);
        idx
    }

    fn walk(
        &mut self,
        v: &Value,
        pos: &mut Vec<Comp>,
        in_body: bool,
        depth: usize,
        seen: &mut HashSet<String>,
    ) {
        if depth > MAX_NODE_DEPTH {
            return;
        }
        let Some(obj) = v.as_object() else { return };
        let ntype = obj.get("type").and_then(Value::as_str);
        if let Some(id) = obj
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
        {
            if !seen.insert(id.to_owned()) {
                self.duplicates.insert(id.to_owned());
            }
            if matches!(ntype, Some("agent" | "foreach")) {
                if in_body {
                    self.body_ids.insert(id.to_owned());
                } else {
                    self.referenceable
                        .entry(id.to_owned())
                        .or_insert_with(|| pos.clone());
                }
            }
        }
        for (key, comp) in [
            ("steps", Comp::Step as fn(usize) -> Comp),
            ("branches", Comp::Branch),
        ] {
            if let Some(children) = obj.get(key).and_then(Value::as_array) {
                for (i, child) in children.iter().enumerate() {
                    pos.push(comp(i));
                    self.walk(child, pos, in_body, depth + 1, seen);
                    pos.pop();
                }
            }
        }
        if let Some(body) = obj.get("body").filter(|b| b.is_object()) {
            pos.push(Comp::Body);
            self.walk(
                body,
                pos,
                in_body || ntype == Some("foreach"),
                depth + 1,
                seen,
            );
            pos.pop();
        }
        if let Some(default) = obj.get("default").filter(|d| d.is_object()) {
            pos.push(Comp::Default);
            self.walk(default, pos, in_body, depth + 1, seen);
            pos.pop();
        }
        if let Some(cases) = obj.get("cases").and_then(Value::as_object) {
            for (k, child) in cases {
                pos.push(Comp::Case(k.clone()));
                self.walk(child, pos, in_body, depth + 1, seen);
                pos.pop();
            }
        }
    }
}

/// Why a node at `here` cannot rely on the result of the node at `target`, if it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderFault {
    /// The reference names the referencing node itself.
    SelfRef,
    /// The target encloses the referencing node, so it finishes after it.
    Encloses,
    /// The target starts after the referencing node (later step, or inside it).
    Later,
    /// Both sit in different branches of one `parallel`.
    Concurrent,
    /// Both sit in different arms of one `branch`.
    OtherArm,
}

/// Decides whether `target` can have finished before `here` starts. `None` means it can (a
/// target inside a branch arm may still not have run; that stays a run-time error).
pub(crate) fn order_fault(target: &[Comp], here: &[Comp]) -> Option<OrderFault> {
    let common = target.iter().zip(here).take_while(|(a, b)| a == b).count();
    match (target.get(common), here.get(common)) {
        (None, None) => Some(OrderFault::SelfRef),
        (None, Some(_)) => Some(OrderFault::Encloses),
        (Some(_), None) => Some(OrderFault::Later),
        (Some(Comp::Step(a)), Some(Comp::Step(b))) => (a > b).then_some(OrderFault::Later),
        (Some(Comp::Branch(_)), Some(Comp::Branch(_))) => Some(OrderFault::Concurrent),
        (Some(Comp::Case(_) | Comp::Default), Some(Comp::Case(_) | Comp::Default)) => {
            Some(OrderFault::OtherArm)
        }
        // mixed kinds only arise on nodes that are invalid for other reasons
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::Comp::*;
    use super::*;

    #[test]
    fn ordering_rules() {
        assert_eq!(order_fault(&[Step(0)], &[Step(1)]), None);
        assert_eq!(order_fault(&[Step(2)], &[Step(1)]), Some(OrderFault::Later));
        assert_eq!(
            order_fault(&[Step(1)], &[Step(1)]),
            Some(OrderFault::SelfRef)
        );
        assert_eq!(
            order_fault(&[Step(1)], &[Step(1), Body]),
            Some(OrderFault::Encloses)
        );
        assert_eq!(
            order_fault(&[Step(1), Body], &[Step(1)]),
            Some(OrderFault::Later)
        );
        assert_eq!(
            order_fault(&[Branch(0)], &[Branch(1), Step(0)]),
            Some(OrderFault::Concurrent)
        );
        assert_eq!(
            order_fault(&[Case("a".into())], &[Default]),
            Some(OrderFault::OtherArm)
        );
        assert_eq!(order_fault(&[Step(0), Case("a".into())], &[Step(1)]), None);
        assert_eq!(
            order_fault(&[Step(0), Branch(1)], &[Step(1), Branch(0)]),
            None
        );
    }
}
