//! Walks over a validated [`WorkflowSpec`]: node counts and the ids other nodes may reference.

use std::collections::BTreeSet;

use crate::spec::{Node, WorkflowSpec};

impl WorkflowSpec {
    /// Every node in depth-first document order, each with whether it sits inside a foreach
    /// body. Iterative, so it is safe on any tree.
    pub fn nodes(&self) -> Vec<(&Node, bool)> {
        let mut out = Vec::new();
        let mut stack: Vec<(&Node, bool)> = vec![(&self.root, false)];
        while let Some((node, in_body)) = stack.pop() {
            out.push((node, in_body));
            let child_in_body = in_body || matches!(node, Node::Foreach(_));
            for child in node.children().into_iter().rev() {
                stack.push((child, child_in_body));
            }
        }
        out
    }

    /// Total number of nodes (containers and leaves), for progress reporting.
    pub fn node_count(&self) -> usize {
        self.nodes().len()
    }

    /// Number of agent leaves in the tree (a foreach body counts once, not once per item).
    pub fn leaf_count(&self) -> usize {
        self.nodes()
            .iter()
            .filter(|(n, _)| matches!(n, Node::Agent(_)))
            .count()
    }

    /// Ids that `items_from`, `on` and `inputs_from` may name: agent ids and foreach ids that are
    /// not inside any foreach body, sorted.
    pub fn referenceable_ids(&self) -> BTreeSet<String> {
        self.nodes()
            .into_iter()
            .filter(|(n, in_body)| !in_body && matches!(n, Node::Agent(_) | Node::Foreach(_)))
            .filter_map(|(n, _)| n.id().map(str::to_owned))
            .collect()
    }

    /// Ids whose results a run journals and a resume replays: the same set as
    /// [`WorkflowSpec::referenceable_ids`] — leaves outside foreach bodies and foreach aggregates
    /// that are not themselves inside a body.
    pub fn replayable_node_ids(&self) -> BTreeSet<String> {
        self.referenceable_ids()
    }
}
