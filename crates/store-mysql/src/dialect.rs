//! `MySqlDialect`: SQL rendering for MySQL 8 and MariaDB 10.6+.

use std::borrow::Cow;

use power_loop_store::db::Dialect;
use power_loop_store::db::sql::{UpsertSyntax, insert_sql};
use power_loop_store::ddl::{ColumnType, DdlStyle, IndexPlacement, SingleColumnKey, render_ddl};

/// How `INSERT … ON DUPLICATE KEY UPDATE` refers to the values of the row being inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertStyle {
    /// `col = VALUES(col)`: MariaDB and MySQL before 8.0.19 (deprecated from MySQL 8.0.20 on).
    ValuesFunction,
    /// `INSERT … VALUES (…) AS new_row ON DUPLICATE KEY UPDATE col = new_row.col`: MySQL ≥ 8.0.19.
    RowAlias,
}

/// The MySQL/MariaDB [`Dialect`]: `?` placeholders kept, InnoDB/utf8mb4 DDL with `LONGTEXT` for
/// free text and JSON (no 64 KiB limit), and an upsert form matching the server flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MySqlDialect {
    upsert_style: UpsertStyle,
}

/// The portable dialect (`VALUES(col)` upserts), accepted by MariaDB and every MySQL 8.x: the
/// default, and the one the backend descriptor carries for connection-free rendering.
pub(crate) const PORTABLE: MySqlDialect = MySqlDialect {
    upsert_style: UpsertStyle::ValuesFunction,
};

impl Default for MySqlDialect {
    /// The portable form (`VALUES(col)`), accepted by MariaDB and every MySQL 8.x.
    fn default() -> Self {
        PORTABLE
    }
}

/// Alias used for the inserted row in the MySQL ≥ 8.0.19 upsert form.
const NEW_ROW: &str = "new_row";

impl MySqlDialect {
    /// A dialect with an explicit upsert style.
    pub fn new(upsert_style: UpsertStyle) -> Self {
        MySqlDialect { upsert_style }
    }

    /// Picks the dialect for a server from its `SELECT VERSION()` string: MariaDB (any version)
    /// and MySQL before 8.0.19 use `VALUES(col)`; MySQL 8.0.19 and later use the row alias.
    pub fn for_server_version(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") {
            return MySqlDialect::new(UpsertStyle::ValuesFunction);
        }
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u32>().unwrap_or(0));
        let v = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        if v >= (8, 0, 19) {
            MySqlDialect::new(UpsertStyle::RowAlias)
        } else {
            MySqlDialect::new(UpsertStyle::ValuesFunction)
        }
    }

    /// The upsert style this dialect renders.
    pub fn upsert_style(&self) -> UpsertStyle {
        self.upsert_style
    }
}

/// Table options appended to every data table.
const TABLE_OPTS: &str = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// MySQL DDL (the 15 data tables of the store's DDL model): explicit `NULL`, every primary key and index
/// declared inside `CREATE TABLE`, InnoDB/utf8mb4.
const DDL_STYLE: DdlStyle = DdlStyle::new(column_type)
    .with_explicit_null(true)
    .with_single_column_key(SingleColumnKey::Constraint)
    .with_indexes(IndexPlacement::InTable)
    .with_table_options(TABLE_OPTS);

/// The MySQL type of each logical column type: indexable keys fit `VARCHAR(255)` (utf8mb4 key
/// length limit), free text and JSON are `LONGTEXT` (no 64 KiB limit).
const fn column_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Key => "VARCHAR(255)",
        ColumnType::Label => "VARCHAR(32)",
        ColumnType::Text => "LONGTEXT",
        ColumnType::Int => "BIGINT",
        ColumnType::Flag => "TINYINT",
    }
}

impl Dialect for MySqlDialect {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn translate<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        // mysql_async binds `?` natively and never formats `%`: nothing to rewrite.
        Cow::Borrowed(sql)
    }

    fn ddl(&self, prefix: &str) -> Vec<String> {
        render_ddl(&DDL_STYLE, prefix)
    }

    fn upsert_syntax(&self) -> UpsertSyntax {
        UpsertSyntax::OnDuplicateKey {
            row_alias: match self.upsert_style {
                UpsertStyle::RowAlias => Some(NEW_ROW),
                UpsertStyle::ValuesFunction => None,
            },
        }
    }

    fn insert_ignore(&self, table: &str, cols: &[&str], key_cols: &[&str]) -> String {
        let mut sql = insert_sql(table, cols);
        if let Some(k) = key_cols.first().or(cols.first()) {
            sql.push_str(&format!(" ON DUPLICATE KEY UPDATE {k} = {k}"));
        }
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavour_detection() {
        let maria = MySqlDialect::for_server_version("10.11.19-MariaDB-0+deb12u1");
        assert_eq!(maria.upsert_style(), UpsertStyle::ValuesFunction);
        let old = MySqlDialect::for_server_version("8.0.18");
        assert_eq!(old.upsert_style(), UpsertStyle::ValuesFunction);
        let new = MySqlDialect::for_server_version("8.0.36-0ubuntu0.22.04.1");
        assert_eq!(new.upsert_style(), UpsertStyle::RowAlias);
        let lts = MySqlDialect::for_server_version("8.4.3");
        assert_eq!(lts.upsert_style(), UpsertStyle::RowAlias);
        let five = MySqlDialect::for_server_version("5.7.44-log");
        assert_eq!(five.upsert_style(), UpsertStyle::ValuesFunction);
    }

    #[test]
    fn upsert_values_function() {
        let d = MySqlDialect::new(UpsertStyle::ValuesFunction);
        let sql = d.upsert(
            "pl_s",
            &["session_id"],
            &["updated_at"],
            &["sends"],
            &["first_send_at"],
        );
        assert_eq!(
            sql,
            "INSERT INTO pl_s (session_id, updated_at, sends, first_send_at) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE updated_at = VALUES(updated_at), sends = sends + VALUES(sends)"
        );
    }

    #[test]
    fn upsert_row_alias() {
        let d = MySqlDialect::new(UpsertStyle::RowAlias);
        let sql = d.upsert("pl_s", &["session_id"], &["updated_at"], &["sends"], &[]);
        assert_eq!(
            sql,
            "INSERT INTO pl_s (session_id, updated_at, sends) VALUES (?, ?, ?) AS new_row \
             ON DUPLICATE KEY UPDATE updated_at = new_row.updated_at, sends = sends + new_row.sends"
        );
    }

    #[test]
    fn insert_ignore_and_locks() {
        let d = MySqlDialect::default();
        assert_eq!(
            d.insert_ignore("pl_schema_migrations", &["id", "version"], &["id"]),
            "INSERT INTO pl_schema_migrations (id, version) VALUES (?, ?) ON DUPLICATE KEY UPDATE id = id"
        );
        assert_eq!(d.for_update(), " FOR UPDATE");
        assert_eq!(d.for_update_skip_locked(), " FOR UPDATE SKIP LOCKED");
        assert_eq!(d.translate("SELECT ? FROM t"), "SELECT ? FROM t");
        assert_eq!(d.name(), "mysql");
    }

    #[test]
    fn ddl_shape() {
        let ddl = MySqlDialect::default().ddl("x_");
        assert_eq!(ddl.len(), 15);
        assert!(
            ddl.iter()
                .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS x_"))
        );
        assert!(ddl.iter().all(|s| s.ends_with(TABLE_OPTS)));
        assert!(ddl.iter().all(|s| !s.contains(" TEXT")));
        assert!(ddl[1].contains("content LONGTEXT NULL"));
        assert!(
            ddl[7].contains("KEY x_idx_bgtasks_session_status (session_id, status, updated_at)")
        );
    }
}
