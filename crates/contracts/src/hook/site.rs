//! [`ToolCallSite`]: the call the three tool hook points share, and the constructors that turn
//! it into each point's context.

use super::{
    ToolAfterCtx, ToolAfterDirective, ToolBeforeCtx, ToolBeforeDirective, ToolErrorCtx,
    ToolErrorDirective,
};
use crate::message::ToolCall;

/// The call a tool hook point is about: which session, round and tool call, and the tool and
/// arguments about to run (or that ran). `tool.before`, `tool.after` and `tool.error` all start
/// from it, so a pipeline builds it once per call and turns it into each point's context with
/// [`ToolBeforeCtx::new`], [`ToolAfterCtx::new`] and [`ToolErrorCtx::new`].
#[derive(Debug, Clone, Default)]
pub struct ToolCallSite {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The call as the model sent it.
    pub tool_call: Option<ToolCall>,
    /// Tool name.
    pub tool_name: String,
    /// Arguments.
    pub tool_args: serde_json::Value,
}

/// `$ctx { <the five fields of $site>, <the point's own fields> }`: the site's fields are listed
/// here once for the three tool contexts.
macro_rules! with_site {
    ($ctx:ident, $site:expr, { $($field:ident $(: $value:expr)?),* $(,)? }) => {{
        let site: ToolCallSite = $site;
        $ctx {
            session_id: site.session_id,
            round_index: site.round_index,
            tool_call: site.tool_call,
            tool_name: site.tool_name,
            tool_args: site.tool_args,
            $($field $(: $value)?),*
        }
    }};
}

impl ToolBeforeCtx {
    /// The `tool.before` context of `site`, answering with `output` if a hook vetoes the call
    /// (directive `Continue`).
    pub fn new(site: ToolCallSite, output: impl Into<String>) -> Self {
        with_site!(ToolBeforeCtx, site, {
            output: output.into(),
            directive: ToolBeforeDirective::Continue,
        })
    }
}

impl ToolAfterCtx {
    /// The `tool.after` context of `site` with its result text and whether it failed
    /// (directive `Continue`).
    pub fn new(site: ToolCallSite, output: impl Into<String>, failed: bool) -> Self {
        with_site!(ToolAfterCtx, site, {
            output: output.into(),
            failed,
            directive: ToolAfterDirective::Continue,
        })
    }
}

impl ToolErrorCtx {
    /// The `tool.error` context of `site` with the failure's error code and message (empty
    /// `output`, directive `Continue`).
    pub fn new(
        site: ToolCallSite,
        error_code: impl Into<String>,
        error_message: impl Into<String>,
    ) -> Self {
        with_site!(ToolErrorCtx, site, {
            error_code: error_code.into(),
            error_message: error_message.into(),
            output: String::new(),
            directive: ToolErrorDirective::Continue,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_context_carries_the_site() {
        let site = ToolCallSite {
            session_id: "s".into(),
            round_index: 3,
            tool_call: None,
            tool_name: "read_file".into(),
            tool_args: serde_json::json!({"path": "a"}),
        };
        let before = ToolBeforeCtx::new(site.clone(), "[skipped]");
        assert_eq!(
            (before.round_index, before.output.as_str()),
            (3, "[skipped]")
        );
        assert_eq!(before.directive, ToolBeforeDirective::Continue);
        let after = ToolAfterCtx::new(site.clone(), "ok", true);
        assert_eq!(
            (after.tool_name.as_str(), after.failed),
            ("read_file", true)
        );
        let error = ToolErrorCtx::new(site, "tool.failed", "boom");
        assert_eq!(error.tool_args["path"], "a");
        assert_eq!(
            (error.error_code.as_str(), error.output.as_str()),
            ("tool.failed", "")
        );
        assert_eq!(error.directive, ToolErrorDirective::Continue);
    }
}
