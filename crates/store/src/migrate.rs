//! `ensure_schema` and the portable `schema_migrations` version ladder.
//!
//! The version lives in the single-row table `{p}schema_migrations` (never in `PRAGMA
//! user_version`), so the ladder is the same on every backend. `AutoCreate` runs under
//! [`Database::transact_exclusive`], so concurrent first boots serialize on a cross-process lock:
//! the first creates and stamps, the others find the stamp.

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::db::run::{run_tx, run_tx_exclusive};
use crate::db::{Database, Dialect, Transaction, TxMode, Value};
use crate::ddl::{TABLES, statement_table, statements_since_version};
use crate::schema::{
    CURRENT_SCHEMA_VERSION, SchemaPolicy, provisioning_ddl, schema_migrations_ddl,
    validate_table_prefix,
};

/// The statements that upgrade a schema from `to_version - 1` to `to_version`: the dialect's DDL
/// of every table of the model introduced at `to_version` (all `IF NOT EXISTS`). An error if the
/// dialect renders no statement for such a table (a dialect that does not follow the model).
///
/// Version 2 adds the workflow journal (`workflow_runs`, `workflow_steps`); version 3 the fencing
/// tokens of session leases and timer claims (`lease_fences`); version 4 the fleet's leaf claims
/// (`workflow_leaves`). All only create tables, so the printed upgrade script stays re-runnable
/// and a failed step leaves nothing half-altered.
fn migration_step(dialect: &dyn Dialect, prefix: &str, to_version: i64) -> Result<Vec<String>> {
    let mut stmts = statements_since_version(&dialect.ddl(prefix), prefix, to_version);
    stmts.extend(changes_beyond_new_tables(to_version));
    for table in TABLES.iter().filter(|t| t.since_version == to_version) {
        if !stmts
            .iter()
            .any(|s| statement_table(s, prefix).is_some_and(|t| t.name == table.name))
        {
            return Err(Error::new(
                ErrorCode::Internal,
                format!(
                    "the {} dialect renders no DDL for table `{}` (schema version {to_version})",
                    dialect.name(),
                    table.name
                ),
            ));
        }
    }
    Ok(stmts)
}

/// The statements of a migration step that are not new tables of the model (changes to
/// existing tables), by target version.
fn changes_beyond_new_tables(to_version: i64) -> Vec<String> {
    match to_version {
        // v3: only the new `lease_fences` table
        3 => Vec::new(),
        // v4: only the new `workflow_leaves` table (rendered from the model above)
        4 => Vec::new(),
        _ => Vec::new(),
    }
}

/// The name of the cross-process schema-boot lock of a prefix.
pub fn schema_lock_name(prefix: &str) -> String {
    format!("power_loop_schema_{prefix}")
}

fn ddl_for(dialect: &dyn Dialect, prefix: &str) -> Vec<String> {
    provisioning_ddl(dialect, prefix).unwrap_or_default()
}

fn missing_error(dialect: &dyn Dialect, prefix: &str, what: &str) -> Error {
    Error::new(
        ErrorCode::StoreSchemaMissing,
        format!(
            "store schema not initialized: {what} (table prefix `{prefix}`); open with SchemaPolicy::AutoCreate, or run the provisioning script as a user with DDL rights"
        ),
    )
    .with_detail("table_prefix", prefix)
    .with_ddl(ddl_for(dialect, prefix))
}

fn newer_error(prefix: &str, found: i64, code_version: i64) -> Error {
    Error::new(
        ErrorCode::StoreSchemaNewer,
        format!(
            "store schema version {found} is newer than this power_loop build supports (max {code_version}); upgrade power-loop or use another table prefix"
        ),
    )
    .with_detail("table_prefix", prefix)
    .with_detail("found_version", found)
    .with_detail("code_version", code_version)
}

/// Refuses a schema stamped newer than `code_version`, the newest this build knows: a build
/// that predates a schema change (e.g. fencing, version 3) must not write to a database whose
/// writers rely on it.
fn refuse_newer(prefix: &str, found: i64, code_version: i64) -> Result<()> {
    if found > code_version {
        return Err(newer_error(prefix, found, code_version));
    }
    Ok(())
}

/// The script that upgrades a schema stamped `from` to [`CURRENT_SCHEMA_VERSION`]: every
/// migration step after `from`, then a stamp update that only moves the version forward (so
/// re-running it is harmless).
fn upgrade_ddl(dialect: &dyn Dialect, prefix: &str, from: i64) -> Vec<String> {
    let mut out = Vec::new();
    for to in (from + 1)..=CURRENT_SCHEMA_VERSION {
        out.extend(migration_step(dialect, prefix, to).unwrap_or_default());
    }
    out.push(format!(
        "UPDATE {prefix}schema_migrations SET version = {CURRENT_SCHEMA_VERSION} WHERE id = 1 AND version < {CURRENT_SCHEMA_VERSION}"
    ));
    out
}

fn outdated_error(dialect: &dyn Dialect, prefix: &str, found: i64) -> Error {
    Error::new(
        ErrorCode::StoreSchemaOutdated,
        format!(
            "store schema version {found} != code {CURRENT_SCHEMA_VERSION}: an upgrade is needed and auto-create is off; open once with SchemaPolicy::AutoCreate or run the upgrade script"
        ),
    )
    .with_detail("table_prefix", prefix)
    .with_detail("found_version", found)
    .with_detail("code_version", CURRENT_SCHEMA_VERSION)
    .with_ddl(upgrade_ddl(dialect, prefix, found))
}

fn create_failed(dialect: &dyn Dialect, prefix: &str, cause: Error) -> Error {
    Error::new(
        ErrorCode::StoreSchemaCreateFailed,
        format!(
            "failed to auto-create the store schema (does the database user have CREATE rights?): {}; run the script as a privileged user and reopen with SchemaPolicy::Verify",
            cause.message()
        ),
    )
    .with_detail("table_prefix", prefix)
    .with_ddl(ddl_for(dialect, prefix))
    .with_source(cause)
}

/// Whether a failed version read means "the table is not there" (as opposed to a connection,
/// authentication or permission problem, which is reported as such).
fn means_absent(e: &Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::StoreQuery
            | ErrorCode::StoreSchemaMissing
            | ErrorCode::StoreDecode
            | ErrorCode::Internal
    )
}

fn read_version(tx: &mut dyn Transaction, prefix: &str) -> Result<Option<i64>> {
    let sql = format!("SELECT version FROM {prefix}schema_migrations WHERE id = ?");
    match tx.fetch_optional(&sql, &[Value::Int(1)])? {
        Some(row) => Ok(Some(row.i64("version")?)),
        None => Ok(None),
    }
}

fn probe_data_tables_sql(prefix: &str) -> String {
    crate::schema::LOGICAL_TABLES
        .iter()
        .map(|t| format!("SELECT 1 AS present FROM {prefix}{t} WHERE 1 = 0"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Makes sure the schema of `prefix` exists and is usable by this build; returns its version.
///
/// - `Verify`: reads the stamp. Missing → `store.schema_missing` (carrying the provisioning DDL);
///   older → `store.schema_outdated` (carrying the upgrade script: the migration steps and a
///   forward-only stamp update), both printed by the error's `Display`; newer →
///   `store.schema_newer`. Also checks that every data table exists.
/// - `AutoCreate`: under the cross-process schema lock, creates the version table, and on a fresh
///   prefix every data table, then stamps [`CURRENT_SCHEMA_VERSION`] (insert-if-absent). A
///   prefix whose data tables exist without the version table lost its stamp out of band:
///   `store.schema_missing`, not re-stamped. A stamped, current schema with a data table
///   missing is `store.schema_missing` too. An older
///   stamp is migrated step by step (each step creates the tables the model introduced at that
///   version; existing tables and rows are untouched); a newer one is refused
///   (`store.schema_newer`). A DDL failure is `store.schema_create_failed` with the DDL attached
///   and the driver error as source.
pub async fn ensure_schema(db: &dyn Database, prefix: &str, policy: SchemaPolicy) -> Result<i64> {
    validate_table_prefix(prefix)?;
    match policy {
        SchemaPolicy::Verify => verify(db, prefix).await,
        SchemaPolicy::AutoCreate => auto_create(db, prefix).await,
    }
}

async fn verify(db: &dyn Database, prefix: &str) -> Result<i64> {
    let p = prefix.to_owned();
    let found = run_tx(db, TxMode::Read, move |tx| read_version(tx, &p)).await;
    let version = match found {
        Ok(Some(v)) => v,
        Ok(None) => {
            return Err(missing_error(
                db.dialect(),
                prefix,
                &format!("table `{prefix}schema_migrations` has no version row"),
            ));
        }
        Err(e) if means_absent(&e) => {
            if sessions_present(db, prefix).await? {
                return Err(lost_stamp_error(db.dialect(), prefix).with_source(e));
            }
            return Err(missing_error(
                db.dialect(),
                prefix,
                &format!("table `{prefix}schema_migrations` is missing"),
            )
            .with_source(e));
        }
        Err(e) => return Err(e),
    };
    refuse_newer(prefix, version, CURRENT_SCHEMA_VERSION)?;
    if version < CURRENT_SCHEMA_VERSION {
        return Err(outdated_error(db.dialect(), prefix, version));
    }
    let probe = probe_data_tables_sql(prefix);
    match run_tx(db, TxMode::Read, move |tx| {
        tx.fetch_all(&probe, &[]).map(|_| ())
    })
    .await
    {
        Ok(()) => Ok(version),
        Err(e) if means_absent(&e) => Err(missing_error(
            db.dialect(),
            prefix,
            &format!(
                "the version is stamped but a data table is missing ({})",
                e.message()
            ),
        )
        .with_source(e)),
        Err(e) => Err(e),
    }
}

/// Whether the version table of `prefix` exists (with or without its row).
async fn version_table_present(db: &dyn Database, prefix: &str) -> Result<bool> {
    let p = prefix.to_owned();
    match run_tx(db, TxMode::Read, move |tx| read_version(tx, &p)).await {
        Ok(_) => Ok(true),
        Err(e) if means_absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether the `sessions` table of `prefix` exists (part of the schema since version 1).
async fn sessions_present(db: &dyn Database, prefix: &str) -> Result<bool> {
    let probe = format!("SELECT 1 AS present FROM {prefix}sessions WHERE 1 = 0");
    match run_tx(db, TxMode::Read, move |tx| {
        tx.fetch_all(&probe, &[]).map(|_| ())
    })
    .await
    {
        Ok(()) => Ok(true),
        Err(e) if means_absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The error for data tables without their version table: the stamp was lost out of band.
fn lost_stamp_error(dialect: &dyn Dialect, prefix: &str) -> Error {
    Error::new(
        ErrorCode::StoreSchemaMissing,
        format!(
            "store schema version lost: table `{prefix}schema_migrations` is missing but the data \
             tables are there (dropped out of band?) (table prefix `{prefix}`); AutoCreate does \
             not re-stamp an existing schema: restore the table, or run the provisioning script \
             (it creates what is missing and stamps the current version), then reopen"
        ),
    )
    .with_detail("table_prefix", prefix)
    .with_ddl(ddl_for(dialect, prefix))
}

/// Refuses a prefix whose version table is gone while its data tables are there: the stamp was
/// lost out of band (a dropped `schema_migrations`), and re-stamping it would hide that. A
/// fresh prefix has neither; a first boot creates the version table before (or with) the data
/// tables, so a concurrent one is told apart by reading the version table again.
async fn refuse_lost_stamp(db: &dyn Database, prefix: &str) -> Result<()> {
    if version_table_present(db, prefix).await?
        || !sessions_present(db, prefix).await?
        || version_table_present(db, prefix).await?
    {
        return Ok(());
    }
    Err(lost_stamp_error(db.dialect(), prefix))
}

async fn auto_create(db: &dyn Database, prefix: &str) -> Result<i64> {
    refuse_lost_stamp(db, prefix).await?;
    let p = prefix.to_owned();
    run_tx_exclusive(db, &schema_lock_name(prefix), move |tx| {
        let dialect_ddl = tx.dialect().ddl(&p);
        if let Err(e) = tx.execute(&schema_migrations_ddl(&p), &[]) {
            return Err(create_failed(tx.dialect(), &p, e));
        }
        match read_version(tx, &p)? {
            None => {
                for stmt in &dialect_ddl {
                    if let Err(e) = tx.execute(stmt, &[]) {
                        return Err(create_failed(tx.dialect(), &p, e));
                    }
                }
                let stamp = tx.dialect().insert_ignore(
                    &format!("{p}schema_migrations"),
                    &["id", "version"],
                    &["id"],
                );
                if let Err(e) =
                    tx.execute(&stamp, &[Value::Int(1), Value::Int(CURRENT_SCHEMA_VERSION)])
                {
                    return Err(create_failed(tx.dialect(), &p, e));
                }
                Ok(CURRENT_SCHEMA_VERSION)
            }
            Some(v) if v > CURRENT_SCHEMA_VERSION => {
                refuse_newer(&p, v, CURRENT_SCHEMA_VERSION).map(|()| v)
            }
            Some(v) if v < CURRENT_SCHEMA_VERSION => {
                for to in (v + 1)..=CURRENT_SCHEMA_VERSION {
                    let step = migration_step(tx.dialect(), &p, to)
                        .map_err(|e| create_failed(tx.dialect(), &p, e))?;
                    for stmt in step {
                        if let Err(e) = tx.execute(&stmt, &[]) {
                            return Err(create_failed(tx.dialect(), &p, e));
                        }
                    }
                    tx.execute(
                        &format!("UPDATE {p}schema_migrations SET version = ? WHERE id = ?"),
                        &[Value::Int(to), Value::Int(1)],
                    )?;
                }
                Ok(CURRENT_SCHEMA_VERSION)
            }
            Some(v) => {
                // Stamped and current: the data tables must all be there (one may have been
                // dropped out of band); report that as the typed schema error, not later as a
                // query failure.
                match tx.fetch_all(&probe_data_tables_sql(&p), &[]) {
                    Ok(_) => Ok(v),
                    Err(e) if means_absent(&e) => Err(missing_error(
                        tx.dialect(),
                        &p,
                        &format!(
                            "the version is stamped but a data table is missing ({})",
                            e.message()
                        ),
                    )
                    .with_source(e)),
                    Err(e) => Err(e),
                }
            }
        }
    })
    .await
}

/// Drops every table of `prefix` (data tables and the version table). For tests and tooling.
pub async fn drop_schema(db: &dyn Database, prefix: &str) -> Result<()> {
    validate_table_prefix(prefix)?;
    let p = prefix.to_owned();
    run_tx(db, TxMode::Write, move |tx| {
        let mut names: Vec<String> = crate::schema::LOGICAL_TABLES
            .iter()
            .map(|t| format!("{p}{t}"))
            .collect();
        names.push(format!("{p}schema_migrations"));
        for name in names {
            tx.execute(&format!("DROP TABLE IF EXISTS {name}"), &[])?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_that_predates_fencing_refuses_a_fenced_schema() {
        // A version-2 build (no fencing tokens) meeting a database stamped 3 by this build.
        let e = refuse_newer("pl_", 3, 2).unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreSchemaNewer);
        assert_eq!(e.detail("found_version").and_then(|v| v.as_i64()), Some(3));
        assert_eq!(e.detail("code_version").and_then(|v| v.as_i64()), Some(2));
        assert!(
            e.message().contains("newer than this power_loop build"),
            "{e}"
        );
        assert!(refuse_newer("pl_", 2, 2).is_ok());
        assert!(refuse_newer("pl_", 1, 2).is_ok());
        // This build writes version 4 and refuses anything newer the same way.
        assert_eq!(CURRENT_SCHEMA_VERSION, 4);
        assert!(refuse_newer("pl_", CURRENT_SCHEMA_VERSION + 1, CURRENT_SCHEMA_VERSION).is_err());
    }

    #[test]
    fn the_step_to_version_3_creates_only_the_fence_table() {
        struct Plain;
        impl Dialect for Plain {
            fn name(&self) -> &'static str {
                "plain"
            }
            fn translate<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str> {
                std::borrow::Cow::Borrowed(sql)
            }
            fn ddl(&self, prefix: &str) -> Vec<String> {
                crate::ddl::render_ddl(&crate::ddl::DdlStyle::new(|_| "T"), prefix)
            }
            fn upsert(&self, _: &str, _: &[&str], _: &[&str], _: &[&str], _: &[&str]) -> String {
                String::new()
            }
            fn insert_ignore(&self, table: &str, _: &[&str], _: &[&str]) -> String {
                format!("INSERT INTO {table} VALUES (?, ?)")
            }
            fn for_update(&self) -> &'static str {
                ""
            }
            fn for_update_skip_locked(&self) -> &'static str {
                ""
            }
        }
        let step = migration_step(&Plain, "q_", 3).unwrap();
        assert_eq!(
            step,
            [
                "CREATE TABLE IF NOT EXISTS q_lease_fences (name T NOT NULL PRIMARY KEY, token T NOT NULL)"
            ]
        );
        let script = upgrade_ddl(&Plain, "q_", 2);
        // From 2: the fence table (v3), the leaf-claims table and its index (v4), the stamp.
        assert_eq!(script.len(), 4, "{script:?}");
        assert!(script[1].contains("q_workflow_leaves ("), "{script:?}");
        assert!(script[3].contains("SET version = 4 WHERE id = 1 AND version < 4"));
    }
}
