#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every error code of the spec exists with its exact string, and codes are unique.

use std::collections::HashSet;

use power_loop_contracts::{Error, ErrorCode};

/// The codes the reference (Python) kernel already emits: frozen, as users match on them.
const SPEC_CODES: &[(&str, ErrorCode)] = &[
    ("power_loop.error", ErrorCode::Internal),
    ("session.not_found", ErrorCode::SessionNotFound),
    ("session.pending", ErrorCode::SessionPending),
    ("llm.timeout", ErrorCode::LlmTimeout),
    ("llm.retry_exhausted", ErrorCode::LlmRetryExhausted),
    ("cancelled", ErrorCode::Cancelled),
    ("compaction.failed", ErrorCode::CompactionFailed),
    ("tool.not_found", ErrorCode::ToolNotFound),
    ("tool.invalid_args", ErrorCode::ToolInvalidArgs),
    ("spec.invalid", ErrorCode::SpecInvalid),
];

#[test]
fn every_spec_code_exists_with_its_exact_string() {
    for (s, code) in SPEC_CODES {
        assert_eq!(code.as_str(), *s);
        assert!(
            ErrorCode::ALL.contains(code),
            "{s} missing from ErrorCode::ALL"
        );
        assert_eq!(ErrorCode::from_code_str(s), Some(*code));
    }
}

#[test]
fn codes_are_unique_and_round_trip() {
    let mut seen = HashSet::new();
    for code in ErrorCode::ALL {
        assert!(
            seen.insert(code.as_str()),
            "duplicate code {}",
            code.as_str()
        );
        assert_eq!(ErrorCode::from_code_str(code.as_str()), Some(*code));
        let json = serde_json::to_string(code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
        let back: ErrorCode = serde_json::from_str(&json).unwrap();
        assert_eq!(back, *code);
        assert!(
            code.as_str()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
            "code {} must be lower-case dotted",
            code.as_str()
        );
    }
    assert!(serde_json::from_str::<ErrorCode>("\"no.such_code\"").is_err());
}

#[test]
fn retryability_matches_the_kind_of_failure() {
    assert!(ErrorCode::LlmRateLimited.is_retryable());
    assert!(ErrorCode::LlmServer.is_retryable());
    assert!(ErrorCode::StoreConflict.is_retryable());
    assert!(!ErrorCode::LlmAuth.is_retryable());
    assert!(!ErrorCode::LlmBadRequest.is_retryable());
    assert!(!ErrorCode::LlmRetryExhausted.is_retryable());
}

#[test]
fn display_names_the_code_and_prints_the_ddl() {
    let e = Error::new(
        ErrorCode::StoreSchemaMissing,
        "the store schema is not initialized",
    )
    .with_ddl(vec![
        "CREATE TABLE a (x INT)".into(),
        "CREATE TABLE b (y INT)".into(),
    ]);
    let s = e.to_string();
    assert!(s.starts_with("[store.schema_missing] the store schema is not initialized"));
    assert!(s.contains("CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);"));
    assert_eq!(e.ddl().len(), 2);
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing);

    let nf = Error::session_not_found("sess_1");
    assert_eq!(nf.code().as_str(), "session.not_found");
    assert_eq!(
        nf.detail("session_id").and_then(|v| v.as_str()),
        Some("sess_1")
    );
    assert!(nf.to_string().contains("sess_1"));
}

#[test]
fn sources_are_kept() {
    let io = std::io::Error::other("disk on fire");
    let e: Error = io.into();
    assert_eq!(e.code(), ErrorCode::Io);
    let src = std::error::Error::source(&e).unwrap();
    assert_eq!(src.to_string(), "disk on fire");
}
