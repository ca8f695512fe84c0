//! Operating the store: list, export, import, prune folded history, vacuum, checkpoint.
//!
//! Shows the operator side of a long-lived store (what the CLI's `sessions` and `store` commands
//! do): sessions newest first, a session exported to a JSON archive and imported under a new id
//! (into another database file), session stats, deleting a session, and reclaiming space.
//!
//! Run: `cargo run -p examples --example store-maintenance`

use std::sync::Arc;

use power_loop::{NewSessionOptions, ScriptedLlm, ScriptedStep, StatefulAgentLoop, StoreOptions};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;
    let main_db = dir.path().join("main.db").display().to_string();
    let llm = Arc::new(ScriptedLlm::from_fn(|_| {
        ScriptedStep::text("ok").with_tokens(12, 3)
    }));
    let agent = StatefulAgentLoop::builder(llm).dsn(main_db).build()?;
    let mut ids = Vec::new();
    for topic in ["billing", "search", "onboarding"] {
        let sid = agent
            .new_session(NewSessionOptions::default().with_system_prompt(format!("Topic: {topic}")))
            .await?;
        agent
            .send(&sid, format!("a question about {topic}"))
            .await?;
        ids.push(sid);
    }
    let store = agent.store().await?;
    for s in store.list_sessions(10).await? {
        println!(
            "session {} updated_at={} prompt={:?}",
            s.session_id, s.updated_at, s.system_prompt
        );
    }
    if let Some(stats) = agent.get_session_stats(&ids[0]).await? {
        println!("stats of {}: {stats:?}", ids[0]);
    }

    // Export one session and import it into another database under a new id.
    let archive = store.export_session(&ids[0]).await?;
    let json = serde_json::to_string(&archive)?;
    println!("archive: {} bytes of JSON", json.len());
    let other_dsn = dir.path().join("archive.db").display().to_string();
    let other = power_loop::open_store(&other_dsn, StoreOptions::default()).await?;
    let copy = other.import_session(&archive, Some("billing-copy")).await?;
    println!(
        "imported as {copy}: {} messages",
        other.load_active_messages(&copy, None).await?.len()
    );
    other.close().await?;

    // Retention and space.
    let pruned = store.prune_compacted_messages(&ids[1], None, 0).await?;
    println!("pruned {pruned} folded-out messages (none were folded here)");
    println!(
        "deleted {} session(s)",
        agent.close_session(&ids[2], true).await?
    );
    println!(
        "checkpoint did work: {}",
        store.checkpoint("TRUNCATE").await?
    );
    println!("vacuum did work: {}", store.vacuum(false).await?);
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
