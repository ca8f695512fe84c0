//! The types of the data-table model: tables, columns with a logical type, indexes.

/// The logical type of a column; each dialect maps it to one physical type.
///
/// Deliberately exhaustive: a new logical type must be mapped by every dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// An identifier or short key: session, task and tool-call ids, model names, state keys
    /// (indexable; MySQL `VARCHAR(255)`).
    Key,
    /// A short enumerated label such as `'active'` or `'root'` (MySQL `VARCHAR(32)`).
    Label,
    /// Free text or a JSON document of any length (MySQL `LONGTEXT`).
    Text,
    /// A 64-bit integer: counts, sequence numbers, epoch milliseconds.
    Int,
    /// A 0/1 flag stored in the smallest integer type (PostgreSQL `SMALLINT`, MySQL `TINYINT`).
    Flag,
}

/// A column's `DEFAULT` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnDefault {
    /// An integer literal, rendered as is.
    Int(i64),
    /// A string literal, rendered in single quotes (the model's literals contain no quote).
    Str(&'static str),
}

impl std::fmt::Display for ColumnDefault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColumnDefault::Int(v) => write!(f, "{v}"),
            ColumnDefault::Str(s) => write!(f, "'{s}'"),
        }
    }
}

/// One column of a data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Column {
    /// Column name (no prefix).
    pub name: &'static str,
    /// Logical type.
    pub ty: ColumnType,
    /// `true` when the column accepts NULL.
    pub nullable: bool,
    /// The `DEFAULT`, if any.
    pub default: Option<ColumnDefault>,
}

impl Column {
    /// A `NOT NULL` column without default.
    pub(crate) const fn new(name: &'static str, ty: ColumnType) -> Self {
        Column {
            name,
            ty,
            nullable: false,
            default: None,
        }
    }

    /// The same column, nullable.
    pub(crate) const fn null(self) -> Self {
        Column {
            nullable: true,
            ..self
        }
    }

    /// The same column with an integer default.
    pub(crate) const fn default_int(self, v: i64) -> Self {
        Column {
            default: Some(ColumnDefault::Int(v)),
            ..self
        }
    }

    /// The same column with a string default.
    pub(crate) const fn default_str(self, s: &'static str) -> Self {
        Column {
            default: Some(ColumnDefault::Str(s)),
            ..self
        }
    }
}

/// A secondary (non-unique) index of a data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Index {
    /// Logical index name; the physical name is `{prefix}{name}`.
    pub name: &'static str,
    /// The name used instead where the index is declared inside `CREATE TABLE` (MySQL), if it
    /// differs: MySQL schemas have always carried the shorter `idx_bgtasks_session_status`.
    pub in_table_name: Option<&'static str>,
    /// Indexed columns, in order.
    pub columns: &'static [&'static str],
}

impl Index {
    /// An index `name` on `columns`, declared under the same name everywhere.
    pub(crate) const fn on(name: &'static str, columns: &'static [&'static str]) -> Self {
        Index {
            name,
            in_table_name: None,
            columns,
        }
    }

    /// The same index, declared as `name` where indexes live inside `CREATE TABLE`.
    pub(crate) const fn declared_in_table_as(self, name: &'static str) -> Self {
        Index {
            in_table_name: Some(name),
            ..self
        }
    }

    /// The logical name for a dialect that declares indexes inside `CREATE TABLE`.
    pub fn in_table_name(&self) -> &'static str {
        self.in_table_name.unwrap_or(self.name)
    }
}

/// One data table of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Table {
    /// Logical table name; the physical name is `{prefix}{name}`.
    pub name: &'static str,
    /// Columns in DDL order.
    pub columns: &'static [Column],
    /// Primary-key columns, in order.
    pub primary_key: &'static [&'static str],
    /// Secondary indexes, in DDL order.
    pub indexes: &'static [Index],
    /// The schema version that introduced the table (1 = the base schema): the migration step
    /// to this version creates it on an older database.
    pub since_version: i64,
}

/// A `NOT NULL` column without default (shorthand for the table definitions).
pub(crate) const fn col(name: &'static str, ty: ColumnType) -> Column {
    Column::new(name, ty)
}

impl Table {
    /// A base-schema table (version 1) without secondary indexes.
    pub(crate) const fn new(
        name: &'static str,
        columns: &'static [Column],
        primary_key: &'static [&'static str],
    ) -> Self {
        Table {
            name,
            columns,
            primary_key,
            indexes: &[],
            since_version: 1,
        }
    }

    /// The same table with these secondary indexes.
    pub(crate) const fn with_indexes(self, indexes: &'static [Index]) -> Self {
        Table { indexes, ..self }
    }

    /// The same table, introduced at schema version `version`.
    pub(crate) const fn since(self, version: i64) -> Self {
        Table {
            since_version: version,
            ..self
        }
    }
}
