//! The library's first lines: `StatefulAgentLoop::builder(llm).dsn("app.db").build()?` is
//! enough; bad DSNs fail at `build()`; `open()` / `connect()` fail fast on an unreachable server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use power_loop::{ErrorCode, NewSessionOptions, ScriptedLlm, StatefulAgentLoop, StoreOptions};

fn llm() -> Arc<ScriptedLlm> {
    Arc::new(ScriptedLlm::new().text("hi there"))
}

#[tokio::test]
async fn dsn_alone_is_enough_and_finds_the_compiled_backends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let agent = StatefulAgentLoop::builder(llm())
        .dsn(path.to_str().unwrap())
        .build()
        .unwrap();
    assert!(!path.exists(), "build() does no I/O");
    let sid = agent
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    assert_eq!(
        agent.send(&sid, "hello").await.unwrap().final_text,
        "hi there"
    );
    assert!(path.exists());
    agent
        .close(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_dsns_fail_at_build() {
    for (dsn, code) in [
        ("redis://localhost/0", ErrorCode::StoreDsnInvalid),
        ("sqlite:x.db", ErrorCode::StoreDsnInvalid),
        ("", ErrorCode::StoreDsnInvalid),
    ] {
        let e = StatefulAgentLoop::builder(llm())
            .dsn(dsn)
            .build()
            .unwrap_err();
        assert_eq!(e.code(), code, "{dsn}: {e}");
    }
    let e = StatefulAgentLoop::builder(llm())
        .dsn(":memory:")
        .store_options(StoreOptions::default().with_table_prefix("bad prefix"))
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{e}");
    // A backend left out of the list is named.
    let e = StatefulAgentLoop::builder(llm())
        .dsn(":memory:")
        .backends(&[])
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreBackendUnavailable, "{e}");
    let e = StatefulAgentLoop::builder(llm()).build().unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn open_fails_fast_on_an_unreachable_server() {
    let mut connect = power_loop::ConnectOptions::default();
    connect.connect_timeout_ms = 2_000;
    let opts = StoreOptions::default().with_connect(connect);
    let start = std::time::Instant::now();
    let r = StatefulAgentLoop::builder(llm())
        .dsn("postgres://nobody@127.0.0.1:9/none")
        .store_options(opts)
        .open()
        .await;
    let e = r.unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(30));
    assert!(e.code().as_str().starts_with("store."), "{e}");
}

#[tokio::test]
async fn open_and_connect_open_the_store_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eager.db");
    let agent = StatefulAgentLoop::builder(llm())
        .dsn(path.to_str().unwrap())
        .open()
        .await
        .unwrap();
    assert!(path.exists(), "open() created the store");
    agent.connect().await.unwrap();
    agent
        .close(std::time::Duration::from_secs(5))
        .await
        .unwrap();
}
