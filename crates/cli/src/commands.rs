//! The loop every model-driven command builds,
//! and the `schema` commands.

use std::sync::Arc;

use power_loop::{
    AgentLoopConfig, Error, ErrorCode, LlmService, Result, SchemaPolicy, SessionStore,
    StatefulAgentLoop, ToolRegistry,
};

use crate::open::{Access, open_store, store_options};
use crate::{Cli, SchemaCommand, output};

/// Opens the store for a command that writes (created on first use).
pub(crate) async fn open(cli: &Cli) -> Result<SessionStore> {
    open_store(cli, Access::Create).await
}

/// `schema print-ddl` and `schema verify`.
pub(crate) async fn schema(cli: &Cli, cmd: &SchemaCommand) -> Result<()> {
    match cmd {
        SchemaCommand::PrintDdl => {
            let backend = power_loop::backend_for_dsn(&cli.dsn, power_loop::BACKENDS)?;
            let mut text = String::new();
            for stmt in power_loop::provisioning_ddl(backend.dialect, &cli.table_prefix)? {
                text.push_str(&stmt);
                text.push_str(";\n");
            }
            output::out(&text)
        }
        SchemaCommand::Verify => {
            let store = crate::open::open_store(cli, Access::ReadOnly).await?;
            debug_assert_eq!(
                store_options(cli)
                    .with_schema_policy(SchemaPolicy::Verify)
                    .schema_policy,
                SchemaPolicy::Verify
            );
            let r = output::line(format!(
                "schema ok: version {} on {}",
                store.schema_version(),
                store.backend_name()
            ));
            store.close().await?;
            r
        }
    }
}

/// The loop of a model-driven command: the provider comes with its own retry and timeout
/// layers (from its configuration), so none is added here; `config` carries the command
/// line's per-call settings (unset values defer to the provider's).
pub(crate) fn build_loop_with(
    llm: Arc<dyn LlmService>,
    store: SessionStore,
    config: AgentLoopConfig,
    tools: Option<ToolRegistry>,
) -> Result<StatefulAgentLoop> {
    let mut b = StatefulAgentLoop::builder(llm).store(store).config(config);
    if let Some(t) = tools {
        b = b.tools(t);
    }
    b.build()
}

/// [`build_loop_with`] and the default configuration.
pub(crate) fn build_loop(
    llm: Arc<dyn LlmService>,
    store: SessionStore,
    tools: Option<power_loop::ToolRegistry>,
) -> Result<StatefulAgentLoop> {
    build_loop_with(llm, store, AgentLoopConfig::default(), tools)
}

/// A registry with the durable timer tools (`schedule_wakeup`, `list_wakeups`,
/// `cancel_wakeup`, `current_time`): `--timer-tools` of `send`, `chat` and `timers run`.
pub(crate) fn timer_registry() -> Result<ToolRegistry> {
    let mut registry = ToolRegistry::new();
    power_loop::register_timer_tools(&mut registry)?;
    Ok(registry)
}

/// `session.not_found` for `--session ID` with the way out.
pub(crate) fn unknown_session(id: &str) -> Error {
    Error::new(
        ErrorCode::SessionNotFound,
        format!(
            "session not found: `{id}`; list sessions with `power-loop sessions list`, or create it with `--new-session {id}`"
        ),
    )
    .with_detail("session_id", id)
}
