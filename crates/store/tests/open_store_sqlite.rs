//! `open_store` end to end on the SQLite backend: DSN forms, schema policies, strict errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use power_loop_contracts::ErrorCode;
use power_loop_store::{
    CURRENT_SCHEMA_VERSION, NewMessage, NewSession, SchemaPolicy, StoreOptions, TurnCommit,
    open_store,
};
use power_loop_store_sqlite::BACKEND;

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("pl-open-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn absolute_sqlite_url_and_bare_path_open_the_same_file() {
    let dir = tmpdir("abs");
    let file = dir.join("x.db");
    let dsn = format!("sqlite://{}", file.display());
    assert!(dsn.starts_with("sqlite:///"));
    let s = open_store(&dsn, StoreOptions::default(), &[BACKEND])
        .await
        .unwrap();
    let sid = s.create_session(NewSession::new()).await.unwrap();
    s.commit_turn(
        &sid,
        TurnCommit::new(vec![NewMessage::user("hi"), NewMessage::assistant("yo")]),
    )
    .await
    .unwrap();
    s.close().await.unwrap();
    assert!(file.exists(), "sqlite:///abs means the absolute path");
    let opts = StoreOptions::default().with_schema_policy(SchemaPolicy::Verify);
    let s = open_store(file.to_str().unwrap(), opts, &[BACKEND])
        .await
        .unwrap();
    assert_eq!(s.load_active_messages(&sid, None).await.unwrap().len(), 2);
    assert_eq!(s.schema_version(), CURRENT_SCHEMA_VERSION);
    s.close().await.unwrap();
}

#[tokio::test]
async fn memory_dsns_work() {
    for dsn in [
        ":memory:",
        "sqlite://",
        "sqlite://:memory:",
        "SQLITE3://:memory:",
    ] {
        let s = open_store(dsn, StoreOptions::default(), &[BACKEND])
            .await
            .unwrap();
        let sid = s.create_session(NewSession::new()).await.unwrap();
        assert_eq!(
            s.append_message(&sid, NewMessage::user("x")).await.unwrap(),
            1
        );
        s.close().await.unwrap();
    }
}

#[tokio::test]
async fn verify_on_a_fresh_file_gives_the_ddl_and_creates_no_tables() {
    let dir = tmpdir("verify");
    let file = dir.join("fresh.db");
    let opts = StoreOptions::default()
        .with_schema_policy(SchemaPolicy::Verify)
        .with_table_prefix("app_");
    let e = open_store(file.to_str().unwrap(), opts.clone(), &[BACKEND])
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing);
    let shown = e.to_string();
    assert!(
        shown.contains("CREATE TABLE IF NOT EXISTS app_sessions"),
        "{shown}"
    );
    assert!(shown.contains("app_schema_migrations"), "{shown}");
    let s = open_store(
        file.to_str().unwrap(),
        opts.clone().with_schema_policy(SchemaPolicy::AutoCreate),
        &[BACKEND],
    )
    .await
    .unwrap();
    s.close().await.unwrap();
    open_store(file.to_str().unwrap(), opts, &[BACKEND])
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
}

#[tokio::test]
async fn unknown_schemes_create_nothing() {
    let dir = tmpdir("unknown");
    let before = std::fs::read_dir(&dir).unwrap().count();
    for dsn in [
        "redis://localhost/0",
        "sqlite:relative.db",
        "postgresql+psycopg:/x",
    ] {
        let e = open_store(dsn, StoreOptions::default(), &[BACKEND])
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{dsn}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before);
    let e = open_store(
        "mysql://root@localhost/test",
        StoreOptions::default(),
        &[BACKEND],
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreBackendUnavailable);
    assert!(e.message().contains("`mysql` cargo feature"), "{e}");
}

#[tokio::test]
async fn a_non_database_file_is_a_typed_error_and_is_not_overwritten() {
    let dir = tmpdir("garbage");
    let file = dir.join("notes.txt");
    std::fs::write(&file, "this is not a database, just text ".repeat(200)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let e = open_store(file.to_str().unwrap(), StoreOptions::default(), &[BACKEND])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e.code(),
            ErrorCode::StoreCorrupt | ErrorCode::StoreSchemaCreateFailed
        ),
        "{e}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}
