//! The subcommands.

use std::io::Write;
use std::sync::Arc;

use power_loop::{
    AgentLoopConfig, Error, ErrorCode, EventPayload, EventType, LlmService, NewSessionOptions,
    Result, SchemaPolicy, SessionArchive, SessionStore, StatefulAgentLoop, StatefulResult,
    StoreOptions,
};
use tokio::io::AsyncBufReadExt;

use crate::{Cli, Command, SchemaCommand, SessionsCommand, provider};

pub(crate) fn store_options(cli: &Cli) -> StoreOptions {
    StoreOptions::default().with_table_prefix(cli.table_prefix.clone())
}

pub(crate) async fn open(cli: &Cli) -> Result<SessionStore> {
    power_loop::open_store(&cli.dsn, store_options(cli)).await
}

/// Runs the command; `Ok(false)` exits 1 without an error message (the output said why).
pub(crate) async fn run(cli: Cli) -> Result<bool> {
    if let Command::Workflow(cmd) = &cli.command {
        return crate::workflow::run(&cli, cmd).await;
    }
    if let Command::Mcp(cmd) = &cli.command {
        return crate::mcp::run(cli.mcp_config.as_deref(), cmd).await;
    }
    run_other(cli).await.map(|()| true)
}

async fn run_other(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Send {
            session,
            json,
            system,
            text,
        } => {
            let (llm, _offline) = provider::choose(cli.offline)?;
            let store = open(&cli).await?;
            let tools = crate::mcp::registry(cli.mcp_config.as_deref()).await?;
            let agent = build_loop(llm, store.clone(), tools)?;
            let sid = ensure_session(&agent, &store, session.as_deref(), system.as_deref()).await?;
            let result = agent.send(&sid, text.as_str()).await;
            agent.close(std::time::Duration::from_secs(10)).await?;
            let result = result?;
            print_send(&result, *json)?;
            store.close().await
        }
        Command::Chat { session, system } => {
            let (llm, _offline) = provider::choose(cli.offline)?;
            let store = open(&cli).await?;
            let tools = crate::mcp::registry(cli.mcp_config.as_deref()).await?;
            let agent = build_loop(llm, store.clone(), tools)?;
            let sid = ensure_session(&agent, &store, session.as_deref(), system.as_deref()).await?;
            chat(&agent, &sid).await?;
            agent.close(std::time::Duration::from_secs(10)).await?;
            store.close().await
        }
        Command::Sessions(cmd) => {
            let store = open(&cli).await?;
            let r = sessions(&store, cmd).await;
            store.close().await?;
            r
        }
        Command::Schema(SchemaCommand::PrintDdl) => {
            let parsed = power_loop::parse_dsn(&cli.dsn)?;
            let dialect: Box<dyn power_loop_dialects::Dialect> =
                power_loop_dialects::for_backend(parsed.backend)?;
            for stmt in power_loop::provisioning_ddl(dialect.as_ref(), &cli.table_prefix)? {
                println!("{stmt};");
            }
            Ok(())
        }
        Command::Workflow(_) | Command::Mcp(_) => Err(Error::new(
            ErrorCode::Internal,
            "workflow and mcp commands are dispatched before this point",
        )),
        Command::Schema(SchemaCommand::Verify) => {
            let store = power_loop::open_store(
                &cli.dsn,
                store_options(&cli).with_schema_policy(SchemaPolicy::Verify),
            )
            .await?;
            println!(
                "schema ok: version {} on {}",
                store.schema_version(),
                store.backend_name()
            );
            store.close().await
        }
    }
}

/// Dialects by backend name, for `schema print-ddl` (no connection needed).
mod power_loop_dialects {
    pub(crate) use power_loop::Dialect;
    use power_loop::{Error, Result};

    pub(crate) fn for_backend(name: &str) -> Result<Box<dyn Dialect>> {
        match name {
            "sqlite" => Ok(Box::new(power_loop::SqliteDialect)),
            "postgres" => Ok(Box::new(power_loop::PostgresDialect)),
            "mysql" => Ok(Box::new(power_loop::MySqlDialect::default())),
            other => Err(Error::config(format!("no dialect for backend `{other}`"))),
        }
    }
}

pub(crate) fn build_loop(
    llm: Arc<dyn LlmService>,
    store: SessionStore,
    tools: Option<power_loop::ToolRegistry>,
) -> Result<StatefulAgentLoop> {
    // The loop's default retry layer, now wrapped around the provider by the caller.
    let llm = power_loop::with_retry(llm, power_loop::RetryPolicy::default());
    let mut builder = StatefulAgentLoop::builder(llm)
        .store(store)
        .config(AgentLoopConfig::default());
    if let Some(tools) = tools {
        builder = builder.tools(tools);
    }
    builder.build()
}

async fn ensure_session(
    agent: &StatefulAgentLoop,
    store: &SessionStore,
    session: Option<&str>,
    system: Option<&str>,
) -> Result<String> {
    match session {
        Some(id) if store.session_exists(id).await? => Ok(id.to_owned()),
        Some(id) => {
            let mut new = power_loop::NewSession::new().with_id(id);
            new.system_prompt = system.map(str::to_owned);
            store.create_session(new).await
        }
        None => {
            let mut opts = NewSessionOptions::default();
            if let Some(s) = system {
                opts = opts.with_system_prompt(s);
            }
            agent.new_session(opts).await
        }
    }
}

fn print_send(result: &StatefulResult, json: bool) -> Result<()> {
    if json {
        let v = serde_json::json!({
            "session_id": result.session_id,
            "final_text": result.final_text,
            "status": result.status.as_str(),
            "rounds": result.rounds,
            "usage": serde_json::to_value(result.usage)?,
        });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("{}", result.final_text);
        println!("session: {}", result.session_id);
    }
    Ok(())
}

async fn chat(agent: &StatefulAgentLoop, sid: &str) -> Result<()> {
    let streamed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = streamed.clone();
    agent
        .event_bus()
        .subscribe(EventType::StreamDelta, move |ev| {
            if let EventPayload::StreamDelta(d) = &ev.payload {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(d.text.as_bytes());
                let _ = out.flush();
            }
            Ok(())
        });
    eprintln!("session: {sid}  (type /exit to quit, /session to print the id)");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next_line().await.map_err(Error::from)? else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/session" => {
                println!("{sid}");
                continue;
            }
            _ => {}
        }
        streamed.store(false, std::sync::atomic::Ordering::Relaxed);
        match agent.send(sid, line).await {
            Ok(r) => {
                if !streamed.load(std::sync::atomic::Ordering::Relaxed) {
                    print!("{}", r.final_text);
                }
                println!();
                if r.status.as_str() != "completed" {
                    eprintln!("[{}]", r.status.as_str());
                }
            }
            Err(e) if e.code() == ErrorCode::SessionPending => {
                eprintln!("{e}");
                let healed = agent.heal_pending(sid).await?;
                eprintln!("healed {healed} unfinished tool call(s); send again");
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}

async fn sessions(store: &SessionStore, cmd: &SessionsCommand) -> Result<()> {
    match cmd {
        SessionsCommand::List { limit } => {
            for s in store.list_sessions(*limit).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.session_id,
                    s.kind.as_str(),
                    s.status.as_str(),
                    s.updated_at
                );
            }
        }
        SessionsCommand::Show { id, all } => {
            if !store.session_exists(id).await? {
                return Err(Error::session_not_found(id));
            }
            let rows = if *all {
                store.load_all_messages(id).await?
            } else {
                store.load_active_messages(id, None).await?
            };
            for m in rows {
                let calls = m.tool_calls.as_ref().map_or(0, Vec::len);
                let suffix = if calls > 0 {
                    format!(" [{calls} tool call(s)]")
                } else {
                    String::new()
                };
                println!(
                    "#{} {}: {}{suffix}",
                    m.seq,
                    m.role,
                    m.content.unwrap_or_default()
                );
            }
        }
        SessionsCommand::Export { id, out } => {
            let archive = store.export_session(id).await?;
            let text = serde_json::to_string_pretty(&archive)?;
            match out {
                Some(path) => std::fs::write(path, text)?,
                None => println!("{text}"),
            }
        }
        SessionsCommand::Import { file, id } => {
            let text = std::fs::read_to_string(file)?;
            let archive: SessionArchive = serde_json::from_str(&text).map_err(|e| {
                Error::new(
                    ErrorCode::StoreArchiveInvalid,
                    format!("`{}` is not a session archive: {e}", file.display()),
                )
            })?;
            println!("{}", store.import_session(&archive, id.as_deref()).await?);
        }
    }
    Ok(())
}
