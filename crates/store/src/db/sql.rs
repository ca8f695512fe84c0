//! SQL text helpers shared by the store's operations and the backends' dialects.

/// `?, ?, …` with `n` placeholders (empty for 0).
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// `INSERT INTO {table} ({cols}) VALUES (?, …)`: one placeholder per column, bound in `cols`
/// order (the head of every insert and of each dialect's upsert).
pub fn insert_sql(table: &str, cols: &[&str]) -> String {
    format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        cols.join(", "),
        placeholders(cols.len())
    )
}

/// The columns of a [`Dialect::upsert`](super::Dialect::upsert) in their bind order: `key_cols`, `val_cols`,
/// `add_cols`, then `insert_only_cols`.
pub fn upsert_columns<'a>(
    key_cols: &[&'a str],
    val_cols: &[&'a str],
    add_cols: &[&'a str],
    insert_only_cols: &[&'a str],
) -> Vec<&'a str> {
    key_cols
        .iter()
        .chain(val_cols)
        .chain(add_cols)
        .chain(insert_only_cols)
        .copied()
        .collect()
}

/// How an engine spells an upsert: the only part of [`Dialect::upsert`](super::Dialect::upsert)
/// that differs between engines ([`upsert_sql`] writes the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertSyntax {
    /// `… ON CONFLICT (keys) DO UPDATE SET c = {excluded}.c, n = {table}.n + {excluded}.n`, or
    /// `DO NOTHING` when there is nothing to set (SQLite, PostgreSQL).
    OnConflict {
        /// How the row being inserted is named (`excluded`, `EXCLUDED`).
        excluded: &'static str,
    },
    /// `… ON DUPLICATE KEY UPDATE c = VALUES(c), n = n + VALUES(n)`, or with a row alias
    /// `… VALUES (…) AS {alias} ON DUPLICATE KEY UPDATE c = {alias}.c`; a no-op `key = key`
    /// assignment when there is nothing to set (MySQL, MariaDB).
    OnDuplicateKey {
        /// The row alias (MySQL ≥ 8.0.19), or `None` for the `VALUES(c)` function.
        row_alias: Option<&'static str>,
    },
}

impl UpsertSyntax {
    /// How the update names a column's value in the row being inserted.
    fn new_value(self, col: &str) -> String {
        match self {
            UpsertSyntax::OnConflict { excluded } => format!("{excluded}.{col}"),
            UpsertSyntax::OnDuplicateKey {
                row_alias: Some(alias),
            } => format!("{alias}.{col}"),
            UpsertSyntax::OnDuplicateKey { row_alias: None } => format!("VALUES({col})"),
        }
    }
}

/// `INSERT … VALUES (…)` followed by the engine's conflict clause: `val_cols` are overwritten
/// with the new row's values, `add_cols` are added to the stored values, and `insert_only_cols`
/// are only written by the insert. Params are bound in the order `key_cols + val_cols + add_cols
/// + insert_only_cols`.
pub fn upsert_sql(
    table: &str,
    key_cols: &[&str],
    val_cols: &[&str],
    add_cols: &[&str],
    insert_only_cols: &[&str],
    syntax: UpsertSyntax,
) -> String {
    let cols = upsert_columns(key_cols, val_cols, add_cols, insert_only_cols);
    let mut sql = insert_sql(table, &cols);
    // `ON CONFLICT` needs the stored value qualified by the table; `ON DUPLICATE KEY` takes it bare.
    let stored_prefix = match syntax {
        UpsertSyntax::OnConflict { .. } => format!("{table}."),
        UpsertSyntax::OnDuplicateKey { row_alias } => {
            if let Some(alias) = row_alias {
                sql.push_str(" AS ");
                sql.push_str(alias);
            }
            String::new()
        }
    };
    let mut sets: Vec<String> = val_cols
        .iter()
        .map(|c| format!("{c} = {}", syntax.new_value(c)))
        .collect();
    sets.extend(
        add_cols
            .iter()
            .map(|c| format!("{c} = {stored_prefix}{c} + {}", syntax.new_value(c))),
    );
    match syntax {
        UpsertSyntax::OnConflict { .. } => {
            sql.push_str(&format!(" ON CONFLICT ({}) ", key_cols.join(", ")));
            if sets.is_empty() {
                // Nothing to update: keep the statement valid and idempotent.
                sql.push_str("DO NOTHING");
            } else {
                sql.push_str("DO UPDATE SET ");
                sql.push_str(&sets.join(", "));
            }
        }
        UpsertSyntax::OnDuplicateKey { .. } => {
            if sets.is_empty() {
                // Nothing to overwrite: keep the statement valid and the existing row unchanged.
                if let Some(k) = key_cols.first().or(cols.first()) {
                    sets.push(format!("{k} = {k}"));
                }
            }
            sql.push_str(" ON DUPLICATE KEY UPDATE ");
            sql.push_str(&sets.join(", "));
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_bind_one_placeholder_per_column() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(3), "?, ?, ?");
        assert_eq!(
            insert_sql("t", &["a", "b"]),
            "INSERT INTO t (a, b) VALUES (?, ?)"
        );
        assert_eq!(
            upsert_columns(&["k"], &["v"], &["n"], &["c"]),
            vec!["k", "v", "n", "c"]
        );
    }

    #[test]
    fn upserts_render_each_conflict_clause() {
        let keys = UpsertSyntax::OnConflict {
            excluded: "excluded",
        };
        assert_eq!(
            upsert_sql("t", &["k"], &["v"], &["n"], &["c"], keys),
            "INSERT INTO t (k, v, n, c) VALUES (?, ?, ?, ?) ON CONFLICT (k) DO UPDATE SET \
             v = excluded.v, n = t.n + excluded.n"
        );
        assert_eq!(
            upsert_sql("t", &["k"], &[], &[], &["c"], keys),
            "INSERT INTO t (k, c) VALUES (?, ?) ON CONFLICT (k) DO NOTHING"
        );
        let values = UpsertSyntax::OnDuplicateKey { row_alias: None };
        assert_eq!(
            upsert_sql("t", &["k"], &["v"], &["n"], &[], values),
            "INSERT INTO t (k, v, n) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE \
             v = VALUES(v), n = n + VALUES(n)"
        );
        let alias = UpsertSyntax::OnDuplicateKey {
            row_alias: Some("r"),
        };
        assert_eq!(
            upsert_sql("t", &["k"], &["v"], &[], &[], alias),
            "INSERT INTO t (k, v) VALUES (?, ?) AS r ON DUPLICATE KEY UPDATE v = r.v"
        );
        assert_eq!(
            upsert_sql("t", &["k"], &[], &[], &[], alias),
            "INSERT INTO t (k) VALUES (?) AS r ON DUPLICATE KEY UPDATE k = k"
        );
    }
}
