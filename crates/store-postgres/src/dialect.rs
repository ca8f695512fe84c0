//! The PostgreSQL [`Dialect`]: `$n` placeholders, the PostgreSQL DDL of the store tables, `ON CONFLICT`
//! upserts and `FOR UPDATE` row locks.

use std::borrow::Cow;
use std::fmt::Write as _;

use power_loop_store::db::Dialect;
use power_loop_store::db::sql::{UpsertSyntax, insert_sql};
use power_loop_store::ddl::{ColumnType, DdlStyle, SingleColumnKey, render_ddl};

/// SQL rendering for PostgreSQL.
///
/// * placeholders: each `?` becomes `$1`, `$2`, … left to right (store SQL never contains a `?`
///   inside a literal, so no quote awareness is needed);
/// * DDL: `BIGINT` for integer columns, `TEXT` for strings, `SMALLINT` for `notes.pinned`;
///   13 `CREATE TABLE IF NOT EXISTS` + 7 `CREATE INDEX IF NOT EXISTS`, every name prefixed;
/// * upserts: `INSERT … ON CONFLICT (keys) DO UPDATE SET col = EXCLUDED.col` (accumulated columns
///   `col = {table}.col + EXCLUDED.col`); insert-if-absent: `ON CONFLICT DO NOTHING`;
/// * row locks: `FOR UPDATE` and `FOR UPDATE SKIP LOCKED`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PostgresDialect;

/// The one dialect instance handed out by the database and its transactions.
pub(crate) static DIALECT: PostgresDialect = PostgresDialect;

/// PostgreSQL DDL: one-column keys inline as `PRIMARY KEY` (NOT NULL implied), indexes as separate
/// statements.
const DDL_STYLE: DdlStyle =
    DdlStyle::new(column_type).with_single_column_key(SingleColumnKey::Inline);

/// The PostgreSQL type of each logical column type.
const fn column_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Key | ColumnType::Label | ColumnType::Text => "TEXT",
        ColumnType::Int => "BIGINT",
        ColumnType::Flag => "SMALLINT",
    }
}

impl Dialect for PostgresDialect {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn translate<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        if !sql.contains('?') {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let mut n = 0usize;
        for ch in sql.chars() {
            if ch == '?' {
                n += 1;
                // Writing to a String cannot fail.
                let _ = write!(out, "${n}");
            } else {
                out.push(ch);
            }
        }
        Cow::Owned(out)
    }

    fn ddl(&self, prefix: &str) -> Vec<String> {
        render_ddl(&DDL_STYLE, prefix)
    }

    fn upsert_syntax(&self) -> UpsertSyntax {
        UpsertSyntax::OnConflict {
            excluded: "EXCLUDED",
        }
    }

    fn insert_ignore(&self, table: &str, cols: &[&str], _key_cols: &[&str]) -> String {
        format!("{} ON CONFLICT DO NOTHING", insert_sql(table, cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translate_numbers_placeholders_left_to_right() {
        let d = PostgresDialect;
        assert_eq!(
            d.translate("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert!(matches!(d.translate("SELECT 1"), Cow::Borrowed(_)));
        let many = ["?"; 12].join(",");
        assert!(d.translate(&many).ends_with("$11,$12"));
    }

    #[test]
    fn ddl_has_fifteen_tables_and_eight_indexes_all_prefixed() {
        let ddl = PostgresDialect.ddl("zz_");
        assert_eq!(ddl.len(), 23);
        let tables = ddl
            .iter()
            .filter(|s| s.starts_with("CREATE TABLE IF NOT EXISTS zz_"))
            .count();
        let indexes = ddl
            .iter()
            .filter(|s| s.starts_with("CREATE INDEX IF NOT EXISTS zz_idx_"))
            .count();
        assert_eq!((tables, indexes), (15, 8));
        assert!(ddl[14].contains("pinned SMALLINT NOT NULL DEFAULT 0"));
        assert!(!ddl.iter().any(|s| s.contains("INTEGER")));
        let order: Vec<&str> = ddl
            .iter()
            .map(|s| s.split_whitespace().nth(5).unwrap_or_default())
            .collect();
        assert_eq!(
            order,
            [
                "zz_sessions",
                "zz_idx_sessions_parent",
                "zz_messages",
                "zz_idx_messages_session_state",
                "zz_compactions",
                "zz_usage_rounds",
                "zz_session_state",
                "zz_session_runtime_state",
                "zz_shared_state",
                "zz_background_tasks",
                "zz_idx_background_tasks_session_status",
                "zz_session_stats",
                "zz_timers",
                "zz_idx_timers_due",
                "zz_notes",
                "zz_workflow_runs",
                "zz_idx_workflow_runs_parent",
                "zz_idx_workflow_runs_status",
                "zz_workflow_steps",
                "zz_idx_workflow_steps_seq",
                "zz_lease_fences",
                "zz_workflow_leaves",
                "zz_idx_workflow_leaves_state",
            ]
        );
    }

    #[test]
    fn upsert_overwrites_accumulates_and_preserves() {
        let sql = PostgresDialect.upsert(
            "p_session_stats",
            &["session_id"],
            &["last_send_at"],
            &["sends", "rounds"],
            &["first_send_at"],
        );
        assert_eq!(
            sql,
            "INSERT INTO p_session_stats (session_id, last_send_at, sends, rounds, first_send_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET \
             last_send_at = EXCLUDED.last_send_at, \
             sends = p_session_stats.sends + EXCLUDED.sends, \
             rounds = p_session_stats.rounds + EXCLUDED.rounds"
        );
        let nothing = PostgresDialect.upsert("t", &["k"], &[], &[], &["x"]);
        assert!(nothing.ends_with("ON CONFLICT (k) DO NOTHING"));
    }

    #[test]
    fn insert_ignore_and_locks() {
        assert_eq!(
            PostgresDialect.insert_ignore("t", &["id", "version"], &["id"]),
            "INSERT INTO t (id, version) VALUES (?, ?) ON CONFLICT DO NOTHING"
        );
        assert_eq!(PostgresDialect.for_update(), " FOR UPDATE");
        assert_eq!(
            PostgresDialect.for_update_skip_locked(),
            " FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(PostgresDialect.name(), "postgres");
    }
}
