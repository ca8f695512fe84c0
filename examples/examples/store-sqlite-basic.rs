//! The store on its own: sessions, messages with gap-free seq, export and import.
//!
//! Run: `cargo run -p examples --example store-sqlite-basic`

use power_loop::{NewMessage, NewSession, StoreOptions};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;
    let dsn = format!("sqlite://{}", dir.path().join("store.db").display());
    let store = power_loop::open_store(&dsn, StoreOptions::default()).await?;

    let sid = store.create_session(NewSession::new()).await?;
    let a = store
        .append_message(&sid, NewMessage::user("hello"))
        .await?;
    let b = store
        .append_message(&sid, NewMessage::assistant("hi there"))
        .await?;
    println!("session {sid}: seqs {a}, {b}");

    let archive = store.export_session(&sid).await?;
    let copy = store
        .import_session(&archive, Some("copy-of-first"))
        .await?;
    let rows = store.load_active_messages(&copy, None).await?;
    println!("imported {copy} with {} messages", rows.len());
    assert_eq!(rows.len(), 2);

    store.close().await
}
