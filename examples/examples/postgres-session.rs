//! A durable session on PostgreSQL (or MySQL / MariaDB): same code as SQLite, another DSN.
//!
//! Shows: opening the store by DSN with a table prefix, a session written by one loop and
//! continued by a second, independent loop (as another process would), and cleaning up.
//! Needs a server; CI only builds it.
//!
//! Run:
//! ```sh
//! POWER_LOOP_PG_DSN=postgres://postgres@127.0.0.1:5432/test cargo run -p examples --example postgres-session
//! ```
//! A `mysql://…` DSN in the same variable works too. With the variable unset it exits with
//! status 2 and says what to set.

use std::sync::Arc;

use power_loop::{NewSessionOptions, ScriptedLlm, StatefulAgentLoop, StoreOptions};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let Some(dsn) = std::env::var("POWER_LOOP_PG_DSN")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!(
            "postgres-session: set POWER_LOOP_PG_DSN to a database it may create tables in, \
             e.g. postgres://postgres@127.0.0.1:5432/test"
        );
        std::process::exit(2);
    };
    // A prefix keeps the example's tables apart from anything else in that database.
    let options = StoreOptions::default().with_table_prefix("plex_");
    let llm = Arc::new(
        ScriptedLlm::new()
            .text("Noted: your order number is 4711.")
            .then_text("Your order number is 4711."),
    );

    let first = StatefulAgentLoop::builder(llm.clone())
        .dsn(dsn.clone())
        .store_options(options.clone())
        .build()?;
    let sid = first.new_session(NewSessionOptions::default()).await?;
    println!(
        "{}",
        first
            .send(&sid, "My order number is 4711.")
            .await?
            .final_text
    );
    first.close(std::time::Duration::from_secs(5)).await?;

    // A second loop, sharing nothing with the first but the DSN.
    let second = StatefulAgentLoop::builder(llm)
        .dsn(dsn)
        .store_options(options)
        .build()?;
    let answer = second.send(&sid, "What is my order number?").await?;
    println!("{}", answer.final_text);
    let history = second.get_messages(&sid, false).await?;
    println!(
        "{} messages stored on {}",
        history.len(),
        second.store().await?.backend_name()
    );
    second.close_session(&sid, true).await?;
    second.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
