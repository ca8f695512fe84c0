//! The session archive document: what `export_session` produces and `import_session` reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codec::JsonMap;

/// A session archive: raw column values per logical table (JSON columns stay JSON text,
/// `pinned` is 0/1, enums are strings, timestamps integers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionArchive {
    /// Schema version of the exporting build.
    pub schema_version: i64,
    /// Source session id.
    pub session_id: String,
    /// Logical table name → rows (all nine keys present on export).
    pub tables: BTreeMap<String, Vec<JsonMap>>,
}
