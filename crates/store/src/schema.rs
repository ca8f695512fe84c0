//! Table names, table-prefix validation, the schema-version table and `SchemaPolicy`.

use power_loop_contracts::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::db::Dialect;

/// The schema version this build writes and accepts.
///
/// 1: the base schema. 2: adds the workflow journal (`workflow_runs`, `workflow_steps`).
/// 3: adds the fencing tokens of session leases and timer claims (`lease_fences`).
/// 4: adds the fleet's leaf claims (`workflow_leaves`).
pub const CURRENT_SCHEMA_VERSION: i64 = 4;
/// Default prefix of every table and index name.
pub const DEFAULT_TABLE_PREFIX: &str = "pl_";
/// Default sub-agent nesting ceiling.
pub const DEFAULT_MAX_SPAWN_DEPTH: u32 = 3;
/// Longest accepted table prefix: keeps `{p}idx_background_tasks_session_status` (35 + prefix)
/// and lock names well inside MySQL's 64-character identifier limit.
pub const MAX_TABLE_PREFIX_LEN: usize = 24;

/// The logical tables of the store, in DDL order (the version table excluded): the names of
/// [`crate::ddl::TABLES`].
pub use crate::ddl::tables::LOGICAL_TABLES;

/// How `open_store` treats the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SchemaPolicy {
    /// Create missing tables and stamp the version (under a cross-process lock).
    #[default]
    AutoCreate,
    /// Only check the stamped version; fail with the provisioning DDL when missing or stale.
    Verify,
}

impl SchemaPolicy {
    /// `"auto_create"` or `"verify"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SchemaPolicy::AutoCreate => "auto_create",
            SchemaPolicy::Verify => "verify",
        }
    }
}

impl std::str::FromStr for SchemaPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto_create" => Ok(SchemaPolicy::AutoCreate),
            "verify" => Ok(SchemaPolicy::Verify),
            other => Err(Error::invalid_argument(format!(
                "`{other}` is not a valid schema policy; use `auto_create` or `verify`"
            ))),
        }
    }
}

impl std::fmt::Display for SchemaPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a table prefix: empty or `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_TABLE_PREFIX_LEN`].
pub fn validate_table_prefix(prefix: &str) -> Result<()> {
    if prefix.len() > MAX_TABLE_PREFIX_LEN {
        return Err(Error::invalid_argument(format!(
            "table prefix `{prefix}` is {} characters long; the maximum is {MAX_TABLE_PREFIX_LEN} (MySQL limits identifiers to 64)",
            prefix.len()
        ))
        .with_detail("table_prefix", prefix));
    }
    let mut chars = prefix.chars();
    let ok = match chars.next() {
        None => true,
        Some(c) => {
            (c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
    };
    if !ok {
        return Err(Error::invalid_argument(format!(
            "table prefix `{prefix}` is invalid; use letters, digits and `_` only, not starting with a digit (e.g. `pl_`)"
        ))
        .with_detail("table_prefix", prefix));
    }
    Ok(())
}

/// The resolved physical table names for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TableNames {
    /// The prefix.
    pub prefix: String,
    /// `{p}sessions`.
    pub sessions: String,
    /// `{p}messages`.
    pub messages: String,
    /// `{p}compactions`.
    pub compactions: String,
    /// `{p}usage_rounds`.
    pub usage_rounds: String,
    /// `{p}session_state`.
    pub session_state: String,
    /// `{p}session_runtime_state`.
    pub session_runtime_state: String,
    /// `{p}shared_state`.
    pub shared_state: String,
    /// `{p}background_tasks`.
    pub background_tasks: String,
    /// `{p}session_stats`.
    pub session_stats: String,
    /// `{p}timers`.
    pub timers: String,
    /// `{p}notes`.
    pub notes: String,
    /// `{p}workflow_runs` (schema version 2).
    pub workflow_runs: String,
    /// `{p}workflow_steps` (schema version 2).
    pub workflow_steps: String,
    /// `{p}lease_fences` (schema version 3).
    pub lease_fences: String,
    /// `{p}workflow_leaves` (schema version 4).
    pub workflow_leaves: String,
    /// `{p}schema_migrations`.
    pub schema_migrations: String,
}

impl TableNames {
    /// Names for `prefix` (validated).
    pub fn new(prefix: &str) -> Result<Self> {
        validate_table_prefix(prefix)?;
        let n = |s: &str| format!("{prefix}{s}");
        Ok(TableNames {
            prefix: prefix.to_owned(),
            sessions: n("sessions"),
            messages: n("messages"),
            compactions: n("compactions"),
            usage_rounds: n("usage_rounds"),
            session_state: n("session_state"),
            session_runtime_state: n("session_runtime_state"),
            shared_state: n("shared_state"),
            background_tasks: n("background_tasks"),
            session_stats: n("session_stats"),
            timers: n("timers"),
            notes: n("notes"),
            workflow_runs: n("workflow_runs"),
            workflow_steps: n("workflow_steps"),
            lease_fences: n("lease_fences"),
            workflow_leaves: n("workflow_leaves"),
            schema_migrations: n("schema_migrations"),
        })
    }

    /// Every physical table name (data tables in DDL order, then the version table).
    pub fn all(&self) -> Vec<&str> {
        LOGICAL_TABLES
            .iter()
            .chain(std::iter::once(&"schema_migrations"))
            .filter_map(|logical| self.physical(logical))
            .collect()
    }

    /// The physical name of a logical table (`None` for an unknown name).
    pub fn physical(&self, logical: &str) -> Option<&str> {
        Some(match logical {
            "sessions" => &self.sessions,
            "messages" => &self.messages,
            "compactions" => &self.compactions,
            "usage_rounds" => &self.usage_rounds,
            "session_state" => &self.session_state,
            "session_runtime_state" => &self.session_runtime_state,
            "shared_state" => &self.shared_state,
            "background_tasks" => &self.background_tasks,
            "session_stats" => &self.session_stats,
            "timers" => &self.timers,
            "notes" => &self.notes,
            "workflow_runs" => &self.workflow_runs,
            "workflow_steps" => &self.workflow_steps,
            "lease_fences" => &self.lease_fences,
            "workflow_leaves" => &self.workflow_leaves,
            "schema_migrations" => &self.schema_migrations,
            _ => return None,
        })
    }
}

/// The version-table DDL (identical text on every dialect).
pub fn schema_migrations_ddl(prefix: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {prefix}schema_migrations (id INTEGER PRIMARY KEY CHECK (id=1), version INTEGER NOT NULL)"
    )
}

/// The idempotent version stamp with literals inlined (for the printed provisioning script).
pub(crate) fn stamp_sql_inline(dialect: &dyn Dialect, prefix: &str, version: i64) -> String {
    let sql = dialect.insert_ignore(
        &format!("{prefix}schema_migrations"),
        &["id", "version"],
        &["id"],
    );
    let mut vals = ["1".to_owned(), version.to_string()].into_iter();
    let mut out = String::with_capacity(sql.len());
    for ch in sql.chars() {
        if ch == '?' {
            match vals.next() {
                Some(v) => out.push_str(&v),
                None => out.push(ch),
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// The complete script an operator runs so that a later `Verify` open succeeds:
/// the version table, every data-table statement, then the idempotent version stamp. Re-running
/// it is harmless.
pub fn provisioning_ddl(dialect: &dyn Dialect, prefix: &str) -> Result<Vec<String>> {
    validate_table_prefix(prefix)?;
    let mut out = vec![schema_migrations_ddl(prefix)];
    out.extend(dialect.ddl(prefix));
    out.push(stamp_sql_inline(dialect, prefix, CURRENT_SCHEMA_VERSION));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_validated() {
        for ok in ["", "pl_", "_x", "A1_b", "abcdefghijklmnopqrstuvwx"] {
            assert!(validate_table_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1x",
            "pl-",
            "p l",
            "x;drop",
            "é_",
            "abcdefghijklmnopqrstuvwxy",
            "pl_\"",
        ] {
            let e = validate_table_prefix(bad).unwrap_err();
            assert_eq!(e.code().as_str(), "invalid_argument", "{bad}");
        }
        let longest = format!(
            "{}idx_background_tasks_session_status",
            "a".repeat(MAX_TABLE_PREFIX_LEN)
        );
        assert!(longest.len() <= 64);
    }

    #[test]
    fn table_names_carry_the_prefix() {
        let t = TableNames::new("x_").unwrap();
        assert_eq!(t.sessions, "x_sessions");
        assert_eq!(t.physical("timers"), Some("x_timers"));
        assert_eq!(t.physical("nope"), None);
        assert_eq!(t.all().len(), 16);
        assert_eq!(t.all()[0], "x_sessions");
        assert_eq!(t.all()[13], "x_lease_fences");
        assert_eq!(t.all()[14], "x_workflow_leaves");
        assert_eq!(t.all()[15], "x_schema_migrations");
        for logical in LOGICAL_TABLES {
            assert_eq!(t.physical(logical), Some(format!("x_{logical}").as_str()));
        }
        assert!(TableNames::new("bad-prefix").is_err());
    }

    #[test]
    fn schema_policy_parses() {
        assert_eq!(
            "verify".parse::<SchemaPolicy>().unwrap(),
            SchemaPolicy::Verify
        );
        assert_eq!(
            "auto_create".parse::<SchemaPolicy>().unwrap(),
            SchemaPolicy::AutoCreate
        );
        assert!("nope".parse::<SchemaPolicy>().is_err());
        assert_eq!(SchemaPolicy::default(), SchemaPolicy::AutoCreate);
    }
}
