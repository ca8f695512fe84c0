//! The data-table model — one source for every dialect's DDL.
//!
//! [`TABLES`] lists the 15 data tables in DDL order: each column with a logical [`ColumnType`],
//! its nullability and default, the primary key, the secondary indexes and the schema version
//! that introduced the table (the migration ladder creates a table on an older database from
//! the same model). A dialect renders it
//! with [`render_ddl`] and a [`DdlStyle`] saying how its SQL differs: the physical type of each
//! logical type, whether nullable columns say `NULL`, where a one-column primary key goes, and
//! whether indexes are separate statements or declared inside `CREATE TABLE`. Differences that are
//! part of the schema itself (an index's shorter in-table name) are fields of the model, not
//! string edits in a dialect.

use power_loop_contracts::Result;

use crate::db::Dialect;
use crate::schema::provisioning_ddl;

pub(crate) mod model;
pub(crate) mod tables;

pub use model::{Column, ColumnDefault, ColumnType, Index, Table};
pub use tables::{LOGICAL_TABLES, TABLES};

/// Where a dialect puts a one-column primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SingleColumnKey {
    /// On the column: `id TEXT NOT NULL PRIMARY KEY` (SQLite).
    InlineNotNull,
    /// On the column, NOT NULL left implicit: `id TEXT PRIMARY KEY` (PostgreSQL).
    Inline,
    /// As a table constraint like a composite key: `…, PRIMARY KEY (id)` (MySQL).
    Constraint,
}

/// Where a dialect declares secondary indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IndexPlacement {
    /// `CREATE INDEX IF NOT EXISTS {p}name ON {p}table (cols)` right after the table's statement.
    Statements,
    /// `KEY {p}name (cols)` inside `CREATE TABLE`, after the primary key (using
    /// [`Index::in_table_name`]).
    InTable,
}

/// How one dialect renders [`TABLES`]. Build with [`DdlStyle::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DdlStyle {
    /// The physical type of each logical type.
    pub column_type: fn(ColumnType) -> &'static str,
    /// `true`: nullable columns say `NULL` explicitly.
    pub explicit_null: bool,
    /// Where a one-column primary key goes (composite keys are always a table constraint).
    pub single_column_key: SingleColumnKey,
    /// Where secondary indexes go.
    pub indexes: IndexPlacement,
    /// Appended after the closing parenthesis of every `CREATE TABLE`, after a space (`""`: none).
    pub table_options: &'static str,
}

impl DdlStyle {
    /// A style with `column_type`; nullable columns implicit, one-column keys
    /// [`SingleColumnKey::InlineNotNull`], indexes as statements, no table options.
    pub const fn new(column_type: fn(ColumnType) -> &'static str) -> Self {
        DdlStyle {
            column_type,
            explicit_null: false,
            single_column_key: SingleColumnKey::InlineNotNull,
            indexes: IndexPlacement::Statements,
            table_options: "",
        }
    }

    /// Nullable columns say `NULL` (or not).
    pub const fn with_explicit_null(self, explicit_null: bool) -> Self {
        DdlStyle {
            explicit_null,
            ..self
        }
    }

    /// Where a one-column primary key goes.
    pub const fn with_single_column_key(self, single_column_key: SingleColumnKey) -> Self {
        DdlStyle {
            single_column_key,
            ..self
        }
    }

    /// Where secondary indexes go.
    pub const fn with_indexes(self, indexes: IndexPlacement) -> Self {
        DdlStyle { indexes, ..self }
    }

    /// Options after every `CREATE TABLE` (e.g. an engine and character set).
    pub const fn with_table_options(self, table_options: &'static str) -> Self {
        DdlStyle {
            table_options,
            ..self
        }
    }
}

/// Renders every data table of [`TABLES`] (and its indexes) for `prefix` in `style`: the statements
/// a [`crate::db::Dialect::ddl`] returns. The prefix is used as is (callers validate it).
pub fn render_ddl(style: &DdlStyle, prefix: &str) -> Vec<String> {
    let p = prefix;
    let mut out = Vec::with_capacity(TABLES.len() + 4);
    for table in &TABLES {
        let inline_key = match (table.primary_key, style.single_column_key) {
            ([key], SingleColumnKey::InlineNotNull | SingleColumnKey::Inline) => Some(*key),
            _ => None,
        };
        let mut parts: Vec<String> = table
            .columns
            .iter()
            .map(|col| {
                let mut s = format!("{} {}", col.name, (style.column_type)(col.ty));
                let is_key = inline_key == Some(col.name);
                // With `Inline`, NOT NULL is left implied by PRIMARY KEY.
                let implied = is_key && style.single_column_key == SingleColumnKey::Inline;
                if !col.nullable && !implied {
                    s.push_str(" NOT NULL");
                } else if col.nullable && style.explicit_null {
                    s.push_str(" NULL");
                }
                if is_key {
                    s.push_str(" PRIMARY KEY");
                }
                if let Some(d) = col.default {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                s
            })
            .collect();
        if inline_key.is_none() {
            parts.push(format!("PRIMARY KEY ({})", table.primary_key.join(", ")));
        }
        if style.indexes == IndexPlacement::InTable {
            parts.extend(
                table
                    .indexes
                    .iter()
                    .map(|i| format!("KEY {p}{} ({})", i.in_table_name(), i.columns.join(", "))),
            );
        }
        let options = if style.table_options.is_empty() {
            String::new()
        } else {
            format!(" {}", style.table_options)
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {p}{} ({}){options}",
            table.name,
            parts.join(", ")
        ));
        if style.indexes == IndexPlacement::Statements {
            out.extend(table.indexes.iter().map(|i| {
                format!(
                    "CREATE INDEX IF NOT EXISTS {p}{} ON {p}{} ({})",
                    i.name,
                    table.name,
                    i.columns.join(", ")
                )
            }));
        }
    }
    out
}

/// The data table a statement of [`render_ddl`] creates (its `CREATE TABLE`) or indexes (its
/// `CREATE INDEX … ON`), or `None` for any other statement. `prefix` is the one the statement was
/// rendered for.
pub fn statement_table(stmt: &str, prefix: &str) -> Option<&'static Table> {
    let name = if let Some(rest) = stmt.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
        rest.strip_prefix(prefix)?.split([' ', '(']).next()?
    } else if let Some(rest) = stmt.strip_prefix("CREATE INDEX IF NOT EXISTS ") {
        let (_, target) = rest.split_once(" ON ")?;
        target.strip_prefix(prefix)?.split([' ', '(']).next()?
    } else {
        return None;
    };
    TABLES.iter().find(|t| t.name == name)
}

/// The statements of `ddl` (a dialect's [`crate::db::Dialect::ddl`] for `prefix`) that belong to
/// the tables introduced at schema version `version`, in order.
pub fn statements_since_version(ddl: &[String], prefix: &str, version: i64) -> Vec<String> {
    ddl.iter()
        .filter(|s| statement_table(s, prefix).is_some_and(|t| t.since_version == version))
        .cloned()
        .collect()
}

/// The table prefixes [`assert_ddl_golden`] covers: none, the default, and a mixed-case one with a
/// digit.
pub const GOLDEN_PREFIXES: [&str; 3] = ["", "pl_", "Zz9_"];

/// The full provisioning script ([`crate::schema::provisioning_ddl`]) of `dialect` for each of
/// `prefixes`, as one text: per prefix a `-- prefix` comment line naming it, then one statement
/// per line ending in `;`.
pub fn provisioning_dump(dialect: &dyn Dialect, prefixes: &[&str]) -> Result<String> {
    let mut out = String::new();
    for prefix in prefixes {
        out.push_str(&format!("-- prefix `{prefix}`\n"));
        for stmt in provisioning_ddl(dialect, prefix)? {
            out.push_str(&stmt);
            out.push_str(";\n");
        }
    }
    Ok(out)
}

/// Golden-file check for a backend's tests (feature `conformance`): panics, naming the first
/// differing line, unless [`provisioning_dump`] of `dialect` for [`GOLDEN_PREFIXES`] equals the
/// file at `path` byte for byte. With `POWER_LOOP_BLESS_DDL` set it (re)writes the file instead,
/// for a deliberate schema change.
#[cfg(feature = "conformance")]
#[allow(clippy::panic)]
pub fn assert_ddl_golden(dialect: &dyn Dialect, path: &std::path::Path) {
    let actual = match provisioning_dump(dialect, &GOLDEN_PREFIXES) {
        Ok(text) => text,
        Err(e) => panic!("rendering the provisioning DDL failed: {e}"),
    };
    if std::env::var_os("POWER_LOOP_BLESS_DDL").is_some() {
        if let Err(e) = std::fs::write(path, &actual) {
            panic!("writing {}: {e}", path.display());
        }
        return;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "{} DDL drifted from {} (first difference at line {}):\n  now:    {}\n  golden: {}\n\
             after a deliberate schema change, rerun with POWER_LOOP_BLESS_DDL=1",
            dialect.name(),
            path.display(),
            first + 1,
            actual.lines().nth(first).unwrap_or("<end>"),
            expected.lines().nth(first).unwrap_or("<end>")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::ColumnType::{Flag, Int, Key, Label, Text};
    use super::*;

    #[test]
    fn tables_follow_the_logical_order_and_keys_name_real_columns() {
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        assert_eq!(names, LOGICAL_TABLES);
        assert_eq!(names[..2], ["sessions", "messages"]);
        assert_eq!(
            names[11..],
            [
                "workflow_runs",
                "workflow_steps",
                "lease_fences",
                "workflow_leaves"
            ]
        );
        for t in &TABLES {
            let has = |n: &str| t.columns.iter().any(|c| c.name == n);
            for k in t.primary_key {
                assert!(has(k), "{}: key column {k}", t.name);
                let col = t.columns.iter().find(|c| c.name == *k);
                assert!(col.is_some_and(|c| !c.nullable), "{}: {k} nullable", t.name);
            }
            for i in t.indexes {
                assert!(i.columns.iter().all(|c| has(c)), "{}: {}", t.name, i.name);
            }
            assert!(
                (1..=crate::CURRENT_SCHEMA_VERSION).contains(&t.since_version),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn every_statement_maps_to_its_table_and_version() {
        fn ty(t: ColumnType) -> &'static str {
            match t {
                Key | Label | Text => "S",
                Int | Flag => "N",
            }
        }
        for prefix in GOLDEN_PREFIXES {
            for style in [
                DdlStyle::new(ty),
                DdlStyle::new(ty)
                    .with_single_column_key(SingleColumnKey::Constraint)
                    .with_indexes(IndexPlacement::InTable)
                    .with_table_options("ENGINE=X"),
            ] {
                let ddl = render_ddl(&style, prefix);
                assert!(ddl.iter().all(|s| statement_table(s, prefix).is_some()));
                let v1 = statements_since_version(&ddl, prefix, 1);
                let v2 = statements_since_version(&ddl, prefix, 2);
                let v3 = statements_since_version(&ddl, prefix, 3);
                let v4 = statements_since_version(&ddl, prefix, 4);
                assert_eq!(v1.len() + v2.len() + v3.len() + v4.len(), ddl.len());
                assert!(v1.iter().all(|s| !s.contains("workflow_")));
                let tables =
                    |v: &[String]| v.iter().filter(|s| s.starts_with("CREATE TABLE")).count();
                assert_eq!(
                    (tables(&v1), tables(&v2), tables(&v3), tables(&v4)),
                    (11, 2, 1, 1)
                );
                assert!(v2.iter().all(|s| s.contains(&format!("{prefix}workflow_"))));
                assert!(
                    v4.iter()
                        .all(|s| s.contains(&format!("{prefix}workflow_leaves")))
                );
                assert_eq!(v3.len(), 1);
                assert!(v3[0].contains(&format!("{prefix}lease_fences (")), "{v3:?}");
            }
        }
        assert!(statement_table("INSERT INTO pl_sessions VALUES (1)", "pl_").is_none());
        assert!(statement_table("CREATE TABLE IF NOT EXISTS other (x N)", "pl_").is_none());
    }

    #[test]
    fn styles_render_keys_nulls_indexes_and_options() {
        fn ty(t: ColumnType) -> &'static str {
            match t {
                Key | Label | Text => "S",
                Int | Flag => "N",
            }
        }
        let plain = render_ddl(&DdlStyle::new(ty), "q_");
        assert_eq!(plain.len(), 23);
        assert!(plain[0].starts_with(
            "CREATE TABLE IF NOT EXISTS q_sessions (session_id S NOT NULL PRIMARY KEY, created_at N NOT NULL, "
        ));
        assert!(plain[0].ends_with(", metadata_json S)"));
        assert_eq!(
            plain[1],
            "CREATE INDEX IF NOT EXISTS q_idx_sessions_parent ON q_sessions (parent_session_id)"
        );
        let inline = render_ddl(
            &DdlStyle::new(ty).with_single_column_key(SingleColumnKey::Inline),
            "",
        );
        assert!(inline[0].contains("(session_id S PRIMARY KEY, "));
        let in_table = render_ddl(
            &DdlStyle::new(ty)
                .with_explicit_null(true)
                .with_single_column_key(SingleColumnKey::Constraint)
                .with_indexes(IndexPlacement::InTable)
                .with_table_options("ENGINE=X"),
            "",
        );
        assert_eq!(in_table.len(), 15);
        assert!(in_table[0].contains(
            "metadata_json S NULL, PRIMARY KEY (session_id), KEY idx_sessions_parent (parent_session_id)) ENGINE=X"
        ));
        assert!(
            in_table[7].contains("KEY idx_bgtasks_session_status (session_id, status, updated_at)")
        );
        assert!(in_table[10].contains("pinned N NOT NULL DEFAULT 0"));
    }
}
