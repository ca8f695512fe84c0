//! `StoreOptions`: how a store is opened (table prefix, schema policy, spawn depth, connection);
//! [`crate::connect`] opens it.

use power_loop_contracts::{Error, Result};

use crate::backend::ConnectOptions;
use crate::schema::{
    DEFAULT_MAX_SPAWN_DEPTH, DEFAULT_TABLE_PREFIX, SchemaPolicy, validate_table_prefix,
};

/// How a store is opened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Prefix of every table and index (default `pl_`; empty or `[A-Za-z_][A-Za-z0-9_]*`, ≤ 24).
    pub table_prefix: String,
    /// Schema policy (default `AutoCreate`).
    pub schema_policy: SchemaPolicy,
    /// Sub-agent nesting ceiling (≥ 1, default 3).
    pub max_spawn_depth: u32,
    /// Backend connection options.
    pub connect: ConnectOptions,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            table_prefix: DEFAULT_TABLE_PREFIX.to_owned(),
            schema_policy: SchemaPolicy::AutoCreate,
            max_spawn_depth: DEFAULT_MAX_SPAWN_DEPTH,
            connect: ConnectOptions::default(),
        }
    }
}

impl StoreOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the table prefix.
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }
    /// Sets the schema policy.
    pub fn with_schema_policy(mut self, policy: SchemaPolicy) -> Self {
        self.schema_policy = policy;
        self
    }
    /// Sets the maximum spawn depth.
    pub fn with_max_spawn_depth(mut self, depth: u32) -> Self {
        self.max_spawn_depth = depth;
        self
    }
    /// Sets the connection options.
    pub fn with_connect(mut self, connect: ConnectOptions) -> Self {
        self.connect = connect;
        self
    }

    /// Checks every option (prefix shape and length, spawn depth ≥ 1).
    pub fn validate(&self) -> Result<()> {
        validate_table_prefix(&self.table_prefix)?;
        validate_spawn_depth(self.max_spawn_depth)?;
        Ok(())
    }
}

/// Checks a sub-agent nesting ceiling (≥ 1, else `invalid_argument`).
pub(crate) fn validate_spawn_depth(depth: u32) -> Result<()> {
    if depth < 1 {
        return Err(Error::invalid_argument(format!(
            "max_spawn_depth must be ≥ 1, got {depth}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_validate() {
        assert!(StoreOptions::default().validate().is_ok());
        assert_eq!(StoreOptions::default().table_prefix, "pl_");
        assert!(
            StoreOptions::new()
                .with_max_spawn_depth(0)
                .validate()
                .is_err()
        );
        assert!(
            StoreOptions::new()
                .with_table_prefix("bad prefix")
                .validate()
                .is_err()
        );
        assert!(StoreOptions::new().with_table_prefix("").validate().is_ok());
    }
}
