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

/// Defines a stored string enum: `as_str`, `parse` (unknown labels are `store.decode`),
/// `Display` and [`StoredLabel`] (so a row reads it with [`read::label`]).
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

        impl $crate::codec::StoredLabel for $name {
            fn parse_label(s: &str) -> power_loop_contracts::Result<Self> {
                $name::parse(s)
            }
        }
    };
}

pub(crate) use string_enum;

/// A string enum stored as its label (implemented by [`string_enum!`]).
pub(crate) trait StoredLabel: Sized {
    /// Parses the stored label; an unknown one is a `store.decode` error.
    fn parse_label(s: &str) -> Result<Self>;
}

/// Defines a row type of one table and its [`StoredRow`] impl from ONE field list, so the column
/// list and the decoder cannot drift apart. Each field is written
///
/// - `pub name: Type => decoder,` for column `name`, or
/// - `pub name: Type = "column" => decoder,` for a column named otherwise (`payload_json`),
///
/// with its doc comment and attributes before it. `decoder` is a function
/// `fn(&Row, &str) -> Result<Type>` given the row and the column name: one of [`read`] (in scope
/// inside the generated `from_row`, so written bare: `text`, `opt_i64`, `label`, …) or any other
/// path. `COLUMNS` lists the columns in field order.
macro_rules! stored_row {
    (@column $field:ident) => { stringify!($field) };
    (@column $field:ident $column:literal) => { $column };
    (@columns $first:expr $(, $rest:expr)*) => { concat!($first $(, ", ", $rest)*) };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $ty:ty $(= $column:literal)? => $decode:path
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $ty, )+
        }

        impl $crate::codec::StoredRow for $name {
            const COLUMNS: &'static str = $crate::codec::stored_row!(
                @columns $( $crate::codec::stored_row!(@column $field $($column)?) ),+
            );

            fn from_row(r: &$crate::db::Row) -> power_loop_contracts::Result<Self> {
                #[allow(unused_imports)]
                use $crate::codec::read::*;
                Ok($name {
                    $( $field: $decode(r, $crate::codec::stored_row!(@column $field $($column)?))?, )+
                })
            }
        }
    };
}

pub(crate) use stored_row;

/// The column readers of [`stored_row!`]: each reads the named column of a result row.
pub(crate) mod read {
    use power_loop_contracts::{Error, ErrorCode, Result};
    use serde_json::Value as Json;

    use super::{JsonMap, StoredLabel, decode_json, decode_map};
    use crate::db::Row;

    /// Non-NULL text.
    pub(crate) fn text(r: &Row, column: &str) -> Result<String> {
        r.text(column)
    }

    /// Text or NULL.
    pub(crate) fn opt_text(r: &Row, column: &str) -> Result<Option<String>> {
        r.opt_text(column)
    }

    /// A non-NULL integer.
    pub(crate) fn i64(r: &Row, column: &str) -> Result<i64> {
        r.i64(column)
    }

    /// An integer or NULL.
    pub(crate) fn opt_i64(r: &Row, column: &str) -> Result<Option<i64>> {
        r.opt_i64(column)
    }

    /// A 0/1 flag (any non-zero integer is `true`).
    pub(crate) fn flag(r: &Row, column: &str) -> Result<bool> {
        Ok(r.i64(column)? != 0)
    }

    /// A string enum stored as its label.
    pub(crate) fn label<T: StoredLabel>(r: &Row, column: &str) -> Result<T> {
        T::parse_label(&r.text(column)?)
    }

    /// A JSON object; NULL or empty text is the empty object.
    pub(crate) fn map(r: &Row, column: &str) -> Result<JsonMap> {
        decode_map(column, r.opt_text(column)?)
    }

    /// A JSON document or NULL (empty text is `None` too).
    pub(crate) fn opt_json(r: &Row, column: &str) -> Result<Option<Json>> {
        decode_json(column, r.opt_text(column)?)
    }

    /// A NOT NULL JSON document: an empty text is a decode error (never written so).
    pub(crate) fn json(r: &Row, column: &str) -> Result<Json> {
        decode_json(column, Some(r.text(column)?))?.ok_or_else(|| {
            Error::new(
                ErrorCode::StoreDecode,
                format!("column `{column}` is empty where a JSON document was expected"),
            )
        })
    }

    /// A NOT NULL JSON document whose empty text reads as JSON `null`.
    pub(crate) fn json_or_null(r: &Row, column: &str) -> Result<Json> {
        Ok(decode_json(column, Some(r.text(column)?))?.unwrap_or(Json::Null))
    }
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
    use crate::SessionKind;

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

    stored_row! {
        /// A test row: one field per reader, one renamed column.
        #[derive(Debug, PartialEq)]
        struct Probe {
            id: String => text,
            seq: i64 => i64,
            kind: SessionKind => label,
            on: bool => flag,
            doc: Option<Json> = "doc_json" => opt_json,
        }
    }

    #[test]
    fn stored_row_derives_columns_and_decoder_from_one_list() {
        assert_eq!(Probe::COLUMNS, "id, seq, kind, on, doc_json");
        let names: Vec<String> = Probe::COLUMNS.split(", ").map(str::to_owned).collect();
        let row = Row::new(
            names.into(),
            vec![
                Value::Text("a".into()),
                Value::Int(7),
                Value::Text("subagent".into()),
                Value::Int(1),
                Value::Text(r#"{"k":1}"#.into()),
            ],
        );
        let probe = Probe::from_row(&row).unwrap();
        assert_eq!(
            probe,
            Probe {
                id: "a".into(),
                seq: 7,
                kind: SessionKind::Subagent,
                on: true,
                doc: Some(serde_json::json!({"k": 1})),
            }
        );
    }
}
