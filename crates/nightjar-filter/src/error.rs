//! Errors of the filter engine: schema, definition, compilation and evaluation.

use std::time::Duration;

/// The `alerts` schema could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("column {column} is declared twice")]
    Duplicate { column: String },
    #[error("column {column} has type {first} in one survey and {second} in another")]
    Conflict {
        column: String,
        first: String,
        second: String,
    },
}

/// A place in a filter's SQL text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a filter could not be loaded, compiled or run. Every message names the filter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// The definition file is not valid TOML or misses a field.
    #[error("filter file {source_name}: {message}")]
    Definition { source_name: String, message: String },
    /// The SQL does not parse.
    #[error("filter {filter}: SQL syntax error: {message}")]
    Syntax { filter: String, message: String },
    /// The SQL names a column the `alerts` table lacks.
    #[error("filter {filter}: unknown column {column} at {location}{}", did_you_mean(.suggestions))]
    UnknownColumn {
        filter: String,
        column: String,
        location: Location,
        suggestions: Vec<String>,
    },
    /// The SQL is not one read-only `SELECT ... FROM alerts`: a statement, DDL, DML, join,
    /// aggregate, subquery, table function or another table.
    #[error("filter {filter}: not allowed: {reason}")]
    Forbidden { filter: String, reason: String },
    /// The SQL parses but does not plan (wrong types, unknown function, ...).
    #[error("filter {filter}: {message}")]
    Plan { filter: String, message: String },
    /// Evaluation failed on a batch.
    #[error("filter {filter}: evaluation failed: {message}")]
    Evaluation { filter: String, message: String },
    /// The selected columns of one batch exceed the output cap.
    #[error("filter {filter}: output of {bytes} bytes for one batch exceeds the cap of {cap} bytes")]
    OutputTooLarge { filter: String, bytes: usize, cap: usize },
    /// The filter exceeded its time budget on too many batches in a row and is disabled.
    #[error(
        "filter {filter}: disabled after exceeding its time budget of {budget:?} per batch {overruns} times in a row (last took {last:?})"
    )]
    Disabled {
        filter: String,
        budget: Duration,
        overruns: u32,
        last: Duration,
    },
    /// Converting alerts to Arrow failed (a bug: the schema and the builders disagree).
    #[error("arrow conversion: {0}")]
    Arrow(String),
}

impl FilterError {
    /// A stable short reason, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FilterError::Definition { .. } => "definition",
            FilterError::Syntax { .. } => "syntax",
            FilterError::UnknownColumn { .. } => "unknown_column",
            FilterError::Forbidden { .. } => "forbidden",
            FilterError::Plan { .. } => "plan",
            FilterError::Evaluation { .. } => "evaluation",
            FilterError::OutputTooLarge { .. } => "output_too_large",
            FilterError::Disabled { .. } => "disabled",
            FilterError::Arrow(_) => "arrow",
        }
    }
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}
