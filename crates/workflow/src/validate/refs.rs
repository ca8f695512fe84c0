//! Reference checks of validation: `items_from`, `branch.on` and each `inputs_from` entry.
//!
//! Beyond the reference's rules (target must be referenceable; never a node inside a foreach
//! body) we reject what can only fail at run time: an `inputs_from` id that names no
//! referenceable node, an `inputs_from` entry with a `.key`, and any reference to a node that
//! cannot have finished when the referencing node starts (see docs/workflows.md).

use super::node::Walker;
use super::prewalk::{OrderFault, order_fault};

impl Walker<'_> {
    /// Checks one reference made by the node at `path` (and [`Walker::pos`]); at most one
    /// problem.
    pub(super) fn check_reference(&mut self, raw: &str, what: &str, path: &str) {
        let target = raw.split_once('.').map_or(raw, |(id, _)| id);
        if self.ids.body_ids.contains(target) {
            self.problems.push(
                path,
                format!(
                    "'{what}' references '{target}', which is a node inside a foreach body — foreach-body nodes are not individually addressable (their id is shared across iterations and not replayed on resume); reference the foreach's aggregate id instead"
                ),
            );
            return;
        }
        if what == "inputs_from" && raw.contains('.') {
            self.problems.push(
                path,
                format!(
                    "'inputs_from' entry '{raw}' has a '.key' suffix; list whole node ids (the context is each node's text)"
                ),
            );
            return;
        }
        let Some(target_pos) = self.ids.referenceable.get(target) else {
            self.problems.push(
                path,
                format!(
                    "'{what}' references unknown node '{target}' (known: {})",
                    self.known
                ),
            );
            return;
        };
        let why = match order_fault(target_pos, &self.pos) {
            None => return,
            Some(OrderFault::SelfRef) => "which is this node itself".to_owned(),
            Some(OrderFault::Encloses) => {
                "which encloses this node and finishes only after it".to_owned()
            }
            Some(OrderFault::Later) => {
                "which runs after this node starts, so it has no result yet".to_owned()
            }
            Some(OrderFault::Concurrent) => "which runs concurrently with this node (another branch of the same parallel), so its result may not exist yet".to_owned(),
            Some(OrderFault::OtherArm) => {
                "which is in another arm of the same branch and never runs when this node does"
                    .to_owned()
            }
        };
        self.problems
            .push(path, format!("'{what}' references '{target}', {why}"));
    }
}
