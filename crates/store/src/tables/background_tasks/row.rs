//! The `background_tasks` table: records of the agent's background commands — the row, the
//! input of `upsert_background_task` and the table's definition.

use serde::{Deserialize, Serialize};

use crate::codec::stored_row;
use crate::ddl::model::{ColumnType, Index, Table, col};

use ColumnType::{Int, Key, Label, Text};

stored_row! {
    /// A background task record (table `background_tasks`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct BackgroundTaskRow {
        /// Session id.
        pub session_id: String => text,
        /// Task id.
        pub task_id: String => text,
        /// Command line.
        pub command: String => text,
        /// Free status string (`running`, `completed`, `failed(<rc>)`, …).
        pub status: String => text,
        /// Exit code.
        pub return_code: Option<i64> => opt_i64,
        /// Tail of the output.
        pub output_tail: Option<String> => opt_text,
        /// Path of the full output.
        pub output_path: Option<String> => opt_text,
        /// When the agent last saw it, epoch ms.
        pub last_seen_at: i64 => i64,
        /// Creation time, epoch ms.
        pub created_at: i64 => i64,
        /// Last update, epoch ms (`> last_seen_at` means unseen).
        pub updated_at: i64 => i64,
    }
}

/// A background task write (`upsert_background_task`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackgroundTaskUpdate {
    /// Task id within the session: a task already stored under it is overwritten.
    pub task_id: String,
    /// The command line that started the task.
    pub command: String,
    /// The status to record (free string: `running`, `completed`, `failed(<rc>)`, …).
    pub status: String,
    /// The exit code once the task has ended (`None` stores NULL).
    pub return_code: Option<i64>,
    /// The latest lines of the task's output (`None` stores NULL).
    pub output_tail: Option<String>,
    /// Where the task's full output is written (`None` stores NULL).
    pub output_path: Option<String>,
}

impl BackgroundTaskUpdate {
    /// A task update.
    pub fn new(
        task_id: impl Into<String>,
        command: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        BackgroundTaskUpdate {
            task_id: task_id.into(),
            command: command.into(),
            status: status.into(),
            ..Default::default()
        }
    }
    /// Sets the exit code.
    pub fn with_return_code(mut self, rc: i64) -> Self {
        self.return_code = Some(rc);
        self
    }
    /// Sets the output tail.
    pub fn with_output_tail(mut self, t: impl Into<String>) -> Self {
        self.output_tail = Some(t.into());
        self
    }
    /// Sets the output path.
    pub fn with_output_path(mut self, p: impl Into<String>) -> Self {
        self.output_path = Some(p.into());
        self
    }
}

/// The `background_tasks` table.
pub(crate) const TABLE: Table = Table::new(
    "background_tasks",
    &[
        col("session_id", Key),
        col("task_id", Key),
        col("command", Text),
        col("status", Label),
        col("return_code", Int).null(),
        col("output_tail", Text).null(),
        col("output_path", Text).null(),
        col("last_seen_at", Int).default_int(0),
        col("created_at", Int),
        col("updated_at", Int),
    ],
    &["session_id", "task_id"],
)
.with_indexes(&[Index::on(
    "idx_background_tasks_session_status",
    &["session_id", "status", "updated_at"],
)
.declared_in_table_as("idx_bgtasks_session_status")]);
