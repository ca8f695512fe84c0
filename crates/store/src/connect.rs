//! `open_store(dsn, options, backends)` and [`SessionStore::open_database`]: connecting with
//! [`StoreOptions`] and applying the schema policy.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::backend::BackendDescriptor;
use crate::db::Database;
use crate::dsn::{parse_dsn, redact_dsn};
use crate::migrate::ensure_schema;
use crate::open::StoreOptions;
use crate::store::SessionStore;

/// The cargo feature of the `power-loop` crate that compiles a backend in.
fn feature_of(backend: &str) -> &'static str {
    match backend {
        "postgres" => "postgres",
        "mysql" => "mysql",
        _ => "sqlite",
    }
}

/// The descriptor among `backends` (the ones compiled in) that serves `dsn`, without
/// connecting: what `open_store` would use, e.g. for its [`BackendDescriptor::dialect`].
///
/// Errors: `store.dsn_invalid` (malformed DSN or unknown scheme) and
/// `store.backend_unavailable` (backend not compiled in; names the cargo feature).
pub fn backend_for_dsn<'a>(
    dsn: &str,
    backends: &'a [BackendDescriptor],
) -> Result<&'a BackendDescriptor> {
    find_backend(dsn, backends).map(|(desc, _)| desc)
}

/// [`backend_for_dsn`], also returning the parsed DSN.
fn find_backend<'a>(
    dsn: &str,
    backends: &'a [BackendDescriptor],
) -> Result<(&'a BackendDescriptor, crate::backend::ParsedDsn)> {
    let parsed = parse_dsn(dsn)?;
    match backends.iter().find(|b| b.name == parsed.backend) {
        Some(desc) => Ok((desc, parsed)),
        None => {
            let feature = feature_of(parsed.backend);
            Err(Error::new(
                ErrorCode::StoreBackendUnavailable,
                format!(
                    "the DSN `{}` needs the {} backend, which is not compiled in; enable the `{feature}` cargo feature of power-loop",
                    redact_dsn(dsn),
                    parsed.backend
                ),
            )
            .with_detail("backend", parsed.backend)
            .with_detail("feature", feature))
        }
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
    let (desc, parsed) = find_backend(dsn, backends)?;
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

    #[test]
    fn backend_for_dsn_picks_the_descriptor_or_says_why_not() {
        let e = backend_for_dsn("postgres://u@h/db", &[]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreBackendUnavailable);
        let e = backend_for_dsn("ftp://x", &[]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreDsnInvalid);
    }
}
