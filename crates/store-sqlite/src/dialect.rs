//! [`SqliteDialect`]: SQLite SQL rendering (DDL of spec 6.1, upserts, no row-lock suffixes).

use std::borrow::Cow;

use power_loop_store::db::Dialect;
use power_loop_store::db::sql::{UpsertSyntax, insert_sql};
use power_loop_store::ddl::{ColumnType, DdlStyle, render_ddl};

/// The SQLite dialect: `?` placeholders kept as they are, `ON CONFLICT … DO UPDATE` upserts, and
/// empty row-lock suffixes (writers are serialized by `BEGIN IMMEDIATE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteDialect;

/// The one shared dialect value.
pub(crate) static DIALECT: SqliteDialect = SqliteDialect;

/// SQLite DDL: `TEXT` for every string, `INTEGER` for every number (type affinity), one-column
/// keys inline as `NOT NULL PRIMARY KEY`, indexes as separate statements.
const DDL_STYLE: DdlStyle = DdlStyle::new(column_type);

/// The SQLite type of each logical column type.
const fn column_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Key | ColumnType::Label | ColumnType::Text => "TEXT",
        ColumnType::Int | ColumnType::Flag => "INTEGER",
    }
}

impl Dialect for SqliteDialect {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn translate<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(sql)
    }

    fn ddl(&self, prefix: &str) -> Vec<String> {
        render_ddl(&DDL_STYLE, prefix)
    }

    fn upsert_syntax(&self) -> UpsertSyntax {
        UpsertSyntax::OnConflict {
            excluded: "excluded",
        }
    }

    fn insert_ignore(&self, table: &str, cols: &[&str], key_cols: &[&str]) -> String {
        let target = if key_cols.is_empty() {
            String::new()
        } else {
            format!(" ({})", key_cols.join(", "))
        };
        format!("{} ON CONFLICT{target} DO NOTHING", insert_sql(table, cols))
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn for_update_skip_locked(&self) -> &'static str {
        ""
    }
}
