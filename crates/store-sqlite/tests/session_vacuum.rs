//! Through `SessionStore`: deleting a large session and vacuuming really shrinks the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::footprint;
use support::open_store as open;

use power_loop_store::{NewMessage, NewSession};

async fn shrink_after_close_session(incremental: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = open(&path).await;
    let small = store.create_session(NewSession::new()).await.unwrap();
    store
        .append_message(&small, NewMessage::user("keep me"))
        .await
        .unwrap();
    let big = store.create_session(NewSession::new()).await.unwrap();
    for batch in 0..40 {
        let msgs: Vec<NewMessage> = (0..100)
            .map(|i| NewMessage::assistant(format!("{batch}/{i} ").repeat(700)))
            .collect();
        store.append_messages(&big, msgs).await.unwrap();
    }
    assert!(store.checkpoint("TRUNCATE").await.unwrap());
    let full = footprint(&path);
    assert!(full > 10_000_000, "filled to {full}");
    assert_eq!(store.close_session(&big, true).await.unwrap(), 1);
    assert!(store.vacuum(incremental).await.unwrap());
    let after = footprint(&path);
    eprintln!("incremental={incremental}: {full} -> {after} bytes");
    assert!(
        after < full / 10,
        "vacuum must return the space: {full} -> {after}"
    );
    let msgs = store.load_active_messages(&small, None).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].content.as_deref(), Some("keep me"));
    store.close().await.unwrap();
    let store = open(&path).await;
    assert!(store.get_session(&big).await.unwrap().is_none());
    assert_eq!(
        store
            .load_active_messages(&small, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn incremental_vacuum_after_deleting_a_large_session_shrinks_the_file() {
    shrink_after_close_session(true).await;
}

#[tokio::test]
async fn full_vacuum_after_deleting_a_large_session_shrinks_the_file() {
    shrink_after_close_session(false).await;
}
