//! `power-loop workflow …`: validate a spec file, run it as a journaled run (in the foreground
//! or detached in a background process), resume a run, show one run or list them.

mod detach;
mod progress;
mod show;

use std::path::Path;

use power_loop::{
    CancellationToken, Error, ErrorCode, Result, StatefulAgentLoop, WorkflowEngine,
    WorkflowRunOptions as RunOptions, WorkflowRunOutcome as RunOutcome, WorkflowSpec,
};

use crate::commands::{build_loop, open};
use crate::{Cli, WorkflowCommand, provider};

/// Runs a `workflow` subcommand; `Ok(false)` exits 1 (invalid spec, run not ok).
pub(crate) async fn run(cli: &Cli, cmd: &WorkflowCommand) -> Result<bool> {
    match cmd {
        WorkflowCommand::Validate { file, json } => validate(file, *json),
        WorkflowCommand::Run {
            file,
            input,
            session,
            detach,
            json,
            progress,
            internal_detached,
        } => {
            let Some(mut spec) = load_spec(file, *json)? else {
                return Ok(false);
            };
            if let Some(i) = input {
                spec.input.clone_from(i);
            }
            if *internal_detached {
                let Some(parent) = session else {
                    return Err(Error::invalid_argument("the detached half needs --session"));
                };
                return detach::child(cli, &spec, parent).await;
            }
            if *detach {
                let Some(parent) = session else {
                    return Err(Error::invalid_argument("--detach needs --session"));
                };
                return detach::spawn(cli, file, input.as_deref(), parent, *json);
            }
            let (lp, cancel) = start_loop(cli).await?;
            let mut opts = options(cancel, *progress);
            if let Some(p) = session {
                opts = opts.with_parent_session(p.clone());
            }
            let r = WorkflowEngine::new(lp.clone(), opts).run(&spec).await;
            finish(&lp, r, *json).await
        }
        WorkflowCommand::Resume {
            run_id,
            json,
            progress,
        } => {
            let (lp, cancel) = start_loop(cli).await?;
            let r = power_loop::resume_run(&lp, run_id, options(cancel, *progress)).await;
            finish(&lp, r, *json).await
        }
        WorkflowCommand::Status { run_id, json } => {
            let store = open(cli).await?;
            let r = show::status(&store, run_id, *json).await;
            store.close().await?;
            r.map(|()| true)
        }
        WorkflowCommand::List(args) => {
            let store = open(cli).await?;
            let r = show::list(&store, args).await;
            store.close().await?;
            r.map(|()| true)
        }
    }
}

/// The loop of a foreground run (provider as for `send`) and a token that Ctrl-C cancels
/// (the run then ends `cancelled`, journaled, and can be resumed).
async fn start_loop(cli: &Cli) -> Result<(StatefulAgentLoop, CancellationToken)> {
    let (llm, _offline) = provider::choose(cli.offline)?;
    let store = open(cli).await?;
    let lp = build_loop(llm, store, None)?;
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("power-loop: interrupted; cancelling the run (resume it later)");
            on_signal.cancel();
        }
    });
    Ok((lp, cancel))
}

fn options(cancel: CancellationToken, force_progress: bool) -> RunOptions {
    let opts = RunOptions::new().with_cancel(cancel);
    match progress::reporter(force_progress) {
        Some(r) => opts.with_progress(move |p| r.report(p)),
        None => opts,
    }
}

/// Prints a finished run (summary, or one JSON line) and closes the loop; `Ok(ok())`.
async fn finish(lp: &StatefulAgentLoop, r: Result<RunOutcome>, json: bool) -> Result<bool> {
    progress::clear_line();
    let closed = lp.close(std::time::Duration::from_secs(10)).await;
    let out = r?;
    closed?;
    print_outcome(&out, json)?;
    Ok(out.result.ok())
}

/// The result of a run: the summary and its run id, or one JSON line (`to_value()` + `run_id`).
pub(crate) fn print_outcome(out: &RunOutcome, json: bool) -> Result<()> {
    if json {
        let mut v = out.result.to_value();
        if let Some(m) = v.as_object_mut() {
            m.insert(
                "run_id".into(),
                out.run_id
                    .clone()
                    .map_or(serde_json::Value::Null, Into::into),
            );
        }
        crate::output::line(serde_json::to_string(&v)?)?;
    } else {
        crate::output::line(out.result.summary())?;
        if let Some(id) = &out.run_id {
            crate::output::line(format!("run: {id} (attempt {})", out.attempt))?;
        }
    }
    Ok(())
}

/// Reads and validates a spec file: `Some(spec)`, or `None` after printing the `validate`
/// output of an invalid spec. An unreadable file is an `io` error.
fn load_spec(file: &Path, json: bool) -> Result<Option<WorkflowSpec>> {
    let text = read(file)?;
    match WorkflowSpec::from_json_str(&text) {
        Ok(spec) => Ok(Some(spec)),
        Err(e) => {
            print_verdict(&Err(e), json)?;
            Ok(None)
        }
    }
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot read `{}`: {e}", file.display()),
        )
        .with_source(e)
    })
}

/// `workflow validate FILE [--json]`: prints the verdict; `Ok(true)` when the spec is valid.
/// A file that cannot be read is an `io` error; a file that is not JSON is an invalid spec.
pub(crate) fn validate(file: &Path, json: bool) -> Result<bool> {
    let verdict = WorkflowSpec::from_json_str(&read(file)?);
    print_verdict(&verdict, json)?;
    Ok(verdict.is_ok())
}

fn print_verdict(
    verdict: &std::result::Result<WorkflowSpec, power_loop::WorkflowSpecError>,
    json: bool,
) -> Result<()> {
    if json {
        let problems = match verdict {
            Ok(_) => serde_json::Value::Array(Vec::new()),
            Err(e) => e.problems_value(),
        };
        let line = serde_json::json!({"valid": verdict.is_ok(), "problems": problems});
        crate::output::line(serde_json::to_string(&line)?)?;
    } else {
        match verdict {
            Ok(spec) => crate::output::line(format!(
                "valid: {} ({} nodes)",
                spec.name,
                spec.node_count()
            ))?,
            Err(e) => crate::output::line(e)?,
        }
    }
    Ok(())
}
