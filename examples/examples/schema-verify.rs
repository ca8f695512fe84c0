//! Schema provisioning: let the application create its tables, or only verify them.
//!
//! Shows: `SchemaPolicy::Verify` (for an application user without CREATE rights) failing with
//! `store.schema_missing` and the exact script to run, `provisioning_ddl` printing that script
//! (what `power-loop schema print-ddl` prints), and a second open succeeding once an operator
//! has provisioned the schema (here with the default `AutoCreate` policy).
//!
//! Run: `cargo run -p examples --example schema-verify`
// An example asserts what it demonstrates: an unexpected outcome should stop it loudly.
#![allow(clippy::expect_used)]

use power_loop::{ErrorCode, SchemaPolicy, SqliteDialect, StoreOptions};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;
    let dsn = dir.path().join("prod.db").display().to_string();

    // 1. Verify on an empty database: refused, with the DDL attached.
    let verify = StoreOptions::default().with_schema_policy(SchemaPolicy::Verify);
    let err = power_loop::open_store(&dsn, verify.clone())
        .await
        .expect_err("no schema yet");
    println!("verify → {}", err.code());
    assert_eq!(err.code(), ErrorCode::StoreSchemaMissing);

    // 2. The script an operator runs (per backend dialect and table prefix).
    let ddl = power_loop::provisioning_ddl(&SqliteDialect, "pl_")?;
    println!("{} statements; the first:\n{}", ddl.len(), ddl[0]);

    // 3. Provision (AutoCreate is the default policy), then verify passes.
    power_loop::open_store(&dsn, StoreOptions::default())
        .await?
        .close()
        .await?;
    let store = power_loop::open_store(&dsn, verify).await?;
    println!(
        "verify → ok on {} (schema version {})",
        store.backend_name(),
        power_loop::CURRENT_SCHEMA_VERSION
    );
    store.close().await
}
