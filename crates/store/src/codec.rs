//! How values are stored in columns: JSON documents and objects as compact text, string enums
//! as their labels, and typed rows read back from result rows ([`StoredRow`]).

use power_loop_contracts::{Error, ErrorCode, Result};
use serde_json::Value as Json;

use crate::db::{Row, Transaction, Value};

/// A JSON object (config, metadata, message meta).
pub type JsonMap = serde_json::Map<String, Json>;

/// A typed row of one table: its column list (in table order) and how to read it back.
pub(crate) trait StoredRow: Sized {
    /// The table's columns in DDL order, comma-separated (the `SELECT` and `INSERT` list).
    const COLUMNS: &'static str;

    /// Reads one row selected with [`StoredRow::COLUMNS`].
    fn from_row(r: &Row) -> Result<Self>;
}

/// `SELECT {R::COLUMNS} FROM {table} {rest}`: every matching row, decoded.
pub(crate) fn select_rows<R: StoredRow>(
    tx: &mut dyn Transaction,
    table: &str,
    rest: &str,
    params: &[Value],
) -> Result<Vec<R>> {
    let sql = format!("SELECT {} FROM {table} {rest}", R::COLUMNS);
    tx.fetch_all(&sql, params)?
        .iter()
        .map(R::from_row)
        .collect()
}

/// `SELECT {R::COLUMNS} FROM {table} {rest}`: the first matching row, decoded.
pub(crate) fn select_row<R: StoredRow>(
    tx: &mut dyn Transaction,
    table: &str,
    rest: &str,
    params: &[Value],
) -> Result<Option<R>> {
    let sql = format!("SELECT {} FROM {table} {rest}", R::COLUMNS);
    tx.fetch_optional(&sql, params)?
        .map(|r| R::from_row(&r))
        .transpose()
}

/// `UPDATE {table} SET {sets} WHERE {guard}`: `params` bind the placeholders of `sets`, then
/// `guard_params` those of `guard`. `true` iff a row matched (the guarded writes of the journal:
/// a live attempt, a held leaf claim).
pub(crate) fn update_guarded(
    tx: &mut dyn Transaction,
    table: &str,
    sets: &str,
    mut params: Vec<Value>,
    guard: &str,
    guard_params: impl IntoIterator<Item = Value>,
) -> Result<bool> {
    params.extend(guard_params);
    let sql = format!("UPDATE {table} SET {sets} WHERE {guard}");
    Ok(tx.execute(&sql, &params)? > 0)
}

/// `INSERT INTO {table} ({R::COLUMNS}) VALUES (?, …)`: a whole row, bound in column order.
pub(crate) fn insert_row_sql<R: StoredRow>(table: &str) -> String {
    let cols: Vec<&str> = R::COLUMNS.split(", ").collect();
    crate::db::sql::insert_sql(table, &cols)
}

/// Defines a stored string enum: `as_str`, `parse` (unknown labels are `store.decode`) and
/// `Display`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $s:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $s)] $variant, )*
        }

        impl $name {
            /// The stored string form.
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $s, )* }
            }

            /// Parses the stored string form; an unknown value is a `store.decode` error.
            pub fn parse(s: &str) -> power_loop_contracts::Result<Self> {
                match s {
                    $( $s => Ok($name::$variant), )*
                    other => Err(power_loop_contracts::Error::new(
                        power_loop_contracts::ErrorCode::StoreDecode,
                        format!(concat!("unknown ", stringify!($name), " value `{}` in the store"), other),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;

/// Reads a string-enum column with its `parse`.
pub(crate) fn enum_col<T>(row: &Row, col: &str, parse: fn(&str) -> Result<T>) -> Result<T> {
    parse(&row.text(col)?)
}

/// Encodes a JSON value compactly (no spaces, non-ASCII kept literally), as the store writes it.
pub(crate) fn encode_json(value: &Json) -> String {
    // serde_json's compact writer uses `,`/`:` without spaces and never escapes non-ASCII.
    value.to_string()
}

/// Compact JSON text of a map (for callers building rows).
pub(crate) fn map_text(m: &JsonMap) -> String {
    encode_json(&Json::Object(m.clone()))
}

/// Encodes a JSON object, or SQL NULL for `None`.
pub(crate) fn encode_map(map: Option<&JsonMap>) -> Value {
    match map {
        Some(m) => Value::Text(map_text(m)),
        None => Value::Null,
    }
}

/// Decodes a JSON column: NULL or empty text → `None`, otherwise the parsed document.
pub(crate) fn decode_json(column: &str, text: Option<String>) -> Result<Option<Json>> {
    match text {
        None => Ok(None),
        Some(t) if t.is_empty() => Ok(None),
        Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| {
            Error::new(
                ErrorCode::StoreDecode,
                format!("column `{column}` holds invalid JSON ({e}); the row was not written by this store"),
            )
            .with_source(e)
        }),
    }
}

/// Decodes a JSON-object column; NULL/empty → empty object.
pub(crate) fn decode_map(column: &str, text: Option<String>) -> Result<JsonMap> {
    match decode_json(column, text)? {
        None | Some(Json::Null) => Ok(JsonMap::new()),
        Some(Json::Object(m)) => Ok(m),
        Some(other) => Err(Error::new(
            ErrorCode::StoreDecode,
            format!("column `{column}` holds JSON `{other}` where an object was expected"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_and_keeps_non_ascii() {
        let v = serde_json::json!({"a": [1, 2], "b": "héllo ☃", "c": null});
        assert_eq!(encode_json(&v), r#"{"a":[1,2],"b":"héllo ☃","c":null}"#);
    }

    #[test]
    fn empty_and_null_json_decode_to_none() {
        assert_eq!(decode_json("x", None).unwrap(), None);
        assert_eq!(decode_json("x", Some(String::new())).unwrap(), None);
        assert!(decode_json("x", Some("{".into())).is_err());
        assert_eq!(decode_map("x", None).unwrap(), JsonMap::new());
        assert!(decode_map("x", Some("[1]".into())).is_err());
    }
}
