//! Session ids: the generated `sess_…` form and the rule for caller-chosen ids.

use power_loop_contracts::{Error, ErrorCode, Result};

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
        assert!(validate_session_id(&id).is_ok());
        assert!(validate_session_id("").is_err());
        assert!(validate_session_id("a/b").is_err());
    }
}
