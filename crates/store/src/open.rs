//! `StoreOptions` and `open_store(dsn, options, backends)`.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::backend::{BackendDescriptor, ConnectOptions};
use crate::db::Database;
use crate::dsn::{parse_dsn, redact_dsn};
use crate::migrate::ensure_schema;
use crate::schema::{
    DEFAULT_MAX_SPAWN_DEPTH, DEFAULT_TABLE_PREFIX, SchemaPolicy, validate_table_prefix,
};
use crate::store::SessionStore;

/// How a store is opened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Prefix of every table and index (default `pl_`; empty or `[A-Za-z_][A-Za-z0-9_]*`, ≤ 24).
    pub table_prefix: String,
    /// Schema policy (default `AutoCreate`).
    pub schema_policy: SchemaPolicy,
    /// Sub-agent nesting ceiling (≥ 1, default 3).
    pub max_spawn_depth: u32,
    /// Backend connection options.
    pub connect: ConnectOptions,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            table_prefix: DEFAULT_TABLE_PREFIX.to_owned(),
            schema_policy: SchemaPolicy::AutoCreate,
            max_spawn_depth: DEFAULT_MAX_SPAWN_DEPTH,
            connect: ConnectOptions::default(),
        }
    }
}

impl StoreOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the table prefix.
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }
    /// Sets the schema policy.
    pub fn with_schema_policy(mut self, policy: SchemaPolicy) -> Self {
        self.schema_policy = policy;
        self
    }
    /// Sets the maximum spawn depth.
    pub fn with_max_spawn_depth(mut self, depth: u32) -> Self {
        self.max_spawn_depth = depth;
        self
    }
    /// Sets the connection options.
    pub fn with_connect(mut self, connect: ConnectOptions) -> Self {
        self.connect = connect;
        self
    }

    /// Checks every option (prefix shape and length, spawn depth ≥ 1).
    pub fn validate(&self) -> Result<()> {
        validate_table_prefix(&self.table_prefix)?;
        validate_spawn_depth(self.max_spawn_depth)?;
        Ok(())
    }
}

pub(crate) fn validate_spawn_depth(depth: u32) -> Result<()> {
    if depth < 1 {
        return Err(Error::invalid_argument(format!(
            "max_spawn_depth must be ≥ 1, got {depth}"
        )));
    }
    Ok(())
}

/// The cargo feature of the `power-loop` crate that compiles a backend in.
fn feature_of(backend: &str) -> &'static str {
    match backend {
        "postgres" => "postgres",
        "mysql" => "mysql",
        _ => "sqlite",
    }
}

/// Opens a store: parses `dsn` strictly, picks the backend among `backends` (the ones compiled
/// in), connects, applies the schema policy, and returns the store.
///
/// Errors: `store.dsn_invalid` (malformed DSN or unknown scheme; nothing is created),
/// `store.backend_unavailable` (backend not compiled in; names the cargo feature),
/// `invalid_argument` (bad options), the backend's connection errors, and the schema errors of
/// [`ensure_schema`].
pub async fn open_store(
    dsn: &str,
    options: StoreOptions,
    backends: &[BackendDescriptor],
) -> Result<SessionStore> {
    options.validate()?;
    let parsed = parse_dsn(dsn)?;
    let Some(desc) = backends.iter().find(|b| b.name == parsed.backend) else {
        let feature = feature_of(parsed.backend);
        return Err(Error::new(
            ErrorCode::StoreBackendUnavailable,
            format!(
                "the DSN `{}` needs the {} backend, which is not compiled in; enable the `{feature}` cargo feature of power-loop",
                redact_dsn(dsn),
                parsed.backend
            ),
        )
        .with_detail("backend", parsed.backend)
        .with_detail("feature", feature));
    };
    let db: Arc<dyn Database> = (desc.open)(parsed, options.connect.clone()).await?;
    match SessionStore::open_database(Arc::clone(&db), &options).await {
        Ok(store) => Ok(store),
        Err(e) => {
            // Do not leak the pool/connection of a store that failed to open.
            let _ = db.close().await;
            Err(e)
        }
    }
}

impl SessionStore {
    /// Wraps an open database after applying the schema policy of `options`.
    pub async fn open_database(db: Arc<dyn Database>, options: &StoreOptions) -> Result<Self> {
        options.validate()?;
        ensure_schema(&*db, &options.table_prefix, options.schema_policy).await?;
        SessionStore::new(db, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_validate() {
        assert!(StoreOptions::default().validate().is_ok());
        assert_eq!(StoreOptions::default().table_prefix, "pl_");
        assert!(
            StoreOptions::new()
                .with_max_spawn_depth(0)
                .validate()
                .is_err()
        );
        assert!(
            StoreOptions::new()
                .with_table_prefix("bad prefix")
                .validate()
                .is_err()
        );
        assert!(StoreOptions::new().with_table_prefix("").validate().is_ok());
    }

    #[tokio::test]
    async fn unknown_backend_and_bad_dsn_errors() {
        let e = open_store("postgres://u@h/db", StoreOptions::default(), &[])
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreBackendUnavailable);
        assert!(e.message().contains("`postgres` cargo feature"), "{e}");
        let e = open_store("ftp://x", StoreOptions::default(), &[])
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreDsnInvalid);
        let e = open_store("x.db", StoreOptions::default().with_table_prefix("1"), &[])
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
    }
}
