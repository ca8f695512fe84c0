//! Small shared helpers: the clock, id generation, JSON column encoding and the transaction runner.

use std::sync::{Arc, Mutex};

use power_loop_contracts::{Error, ErrorCode, Result};
use serde_json::Value as Json;

use crate::db::{Database, Transaction, TxMode, Value};
use crate::types::JsonMap;

/// Wall-clock time in epoch milliseconds (the store's clock): [`power_loop_contracts::clock::now_ms`].
pub use power_loop_contracts::clock::now_ms;

/// A new store-generated session id: `sess_` + 24 lowercase hex characters (12 random bytes).
pub fn new_session_id() -> String {
    let bytes: [u8; 12] = rand::random();
    let mut id = String::with_capacity(29);
    id.push_str("sess_");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// Encodes a JSON value compactly (no spaces, non-ASCII kept literally), as the store writes it.
/// The longest session id a new session may have.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Checks a caller-chosen id for a NEW session: 1 to [`MAX_SESSION_ID_LEN`] characters from
/// `A-Z a-z 0-9 . _ : -`. Anything else (empty, too long, whitespace, newlines, `/`, non-ASCII)
/// is `invalid_argument` with the detail `session_id` (shortened). Existing rows with other ids
/// stay readable: only creation (`create_session`, `import_session`) enforces this.
pub fn validate_session_id(id: &str) -> Result<()> {
    let bad_char = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')));
    let problem = if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > MAX_SESSION_ID_LEN {
        format!("is {} bytes long (max {MAX_SESSION_ID_LEN})", id.len())
    } else if let Some(c) = bad_char {
        format!("contains {c:?}")
    } else {
        return Ok(());
    };
    let shown: String = id.chars().take(40).collect();
    let shown = if shown.len() < id.len() {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    };
    Err(Error::new(
        ErrorCode::InvalidArgument,
        format!(
            "session id {shown} {problem}; use 1-{MAX_SESSION_ID_LEN} characters from A-Z a-z 0-9 . _ : -"
        ),
    )
    .with_detail("session_id", shown))
}

pub(crate) fn encode_json(value: &Json) -> String {
    // serde_json's compact writer uses `,`/`:` without spaces and never escapes non-ASCII.
    value.to_string()
}

/// Encodes a JSON object, or SQL NULL for `None`.
pub(crate) fn encode_map(map: Option<&JsonMap>) -> Value {
    match map {
        Some(m) => Value::Text(encode_json(&Json::Object(m.clone()))),
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

/// Runs `f` inside one transaction of `db` and returns its result.
///
/// The body is synchronous (see [`crate::db::TxBody`]); its result is passed out through a
/// captured slot. `Ok` commits, `Err` rolls back and is returned unchanged.
pub async fn run_tx<T, F>(db: &dyn Database, mode: TxMode, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Transaction) -> Result<T> + Send + 'static,
{
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    db.transact(
        mode,
        Box::new(move |tx| {
            let v = f(tx)?;
            match out.lock() {
                Ok(mut g) => *g = Some(v),
                Err(p) => *p.into_inner() = Some(v),
            }
            Ok(())
        }),
    )
    .await?;
    take_slot(&slot)
}

/// Runs `f` under the backend's exclusive schema-boot lock (see [`Database::transact_exclusive`]).
pub async fn run_tx_exclusive<T, F>(db: &dyn Database, lock_name: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Transaction) -> Result<T> + Send + 'static,
{
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    db.transact_exclusive(
        lock_name,
        Box::new(move |tx| {
            let v = f(tx)?;
            match out.lock() {
                Ok(mut g) => *g = Some(v),
                Err(p) => *p.into_inner() = Some(v),
            }
            Ok(())
        }),
    )
    .await?;
    take_slot(&slot)
}

fn take_slot<T>(slot: &Mutex<Option<T>>) -> Result<T> {
    let v = match slot.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    v.ok_or_else(|| {
        Error::internal("the backend reported a committed transaction but never ran its body")
    })
}

/// `?, ?, …` with `n` placeholders (n ≥ 1).
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_have_the_documented_shape() {
        let id = new_session_id();
        assert_eq!(id.len(), 29);
        assert!(id.starts_with("sess_"));
        assert!(
            id[5..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(new_session_id(), id);
    }

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

    #[test]
    fn clock_is_epoch_ms() {
        assert!(now_ms() > 1_600_000_000_000);
    }
}
