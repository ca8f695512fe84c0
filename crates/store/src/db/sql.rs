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
}
