//! The data tables of the store (plus the workflow journal), in DDL order: the one
//! list every dialect's DDL, the migration ladder and the table names are derived from. Each
//! table's definition lives with the table's rows and operations under `crate::tables`.

use super::model::Table;
use crate::tables::background_tasks::row::TABLE as BACKGROUND_TASKS;
use crate::tables::compactions::row::TABLE as COMPACTIONS;
use crate::tables::fences::row::TABLE as FENCES;
use crate::tables::keyed_state::row::{RUNTIME_TABLE, SHARED_TABLE};
use crate::tables::messages::row::TABLE as MESSAGES;
use crate::tables::notes::row::TABLE as NOTES;
use crate::tables::session_state::row::TABLE as SESSION_STATE;
use crate::tables::sessions::row::TABLE as SESSIONS;
use crate::tables::timers::row::TABLE as TIMERS;
use crate::tables::usage::row::{SESSION_STATS_TABLE, USAGE_ROUNDS_TABLE};
use crate::tables::workflows::leaf_rows::LEAVES_TABLE;
use crate::tables::workflows::rows::{RUNS_TABLE, STEPS_TABLE};

/// The 15 data tables in DDL order.
pub const TABLES: [Table; 15] = [
    SESSIONS,
    MESSAGES,
    COMPACTIONS,
    USAGE_ROUNDS_TABLE,
    SESSION_STATE,
    RUNTIME_TABLE,
    SHARED_TABLE,
    BACKGROUND_TASKS,
    SESSION_STATS_TABLE,
    TIMERS,
    NOTES,
    RUNS_TABLE,
    STEPS_TABLE,
    FENCES,
    LEAVES_TABLE,
];

/// The logical names of [`TABLES`], in the same order (the version table excluded).
pub const LOGICAL_TABLES: [&str; TABLES.len()] = {
    let mut names = [""; TABLES.len()];
    let mut i = 0;
    while i < TABLES.len() {
        names[i] = TABLES[i].name;
        i += 1;
    }
    names
};
