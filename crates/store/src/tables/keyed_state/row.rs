//! The `session_runtime_state` and `shared_state` tables: keyed JSON values per session and
//! per free owner — the tables' definitions (their values are plain JSON, no row type).

use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Int, Key, Text};

/// The `session_runtime_state` table.
pub(crate) const RUNTIME_TABLE: Table = Table::new(
    "session_runtime_state",
    &[
        col("session_id", Key),
        col("state_key", Key),
        col("value_json", Text).null(),
        col("updated_at", Int),
    ],
    &["session_id", "state_key"],
);

/// The `shared_state` table.
pub(crate) const SHARED_TABLE: Table = Table::new(
    "shared_state",
    &[
        col("owner", Key),
        col("state_key", Key),
        col("value_json", Text).null(),
        col("updated_at", Int),
    ],
    &["owner", "state_key"],
);
