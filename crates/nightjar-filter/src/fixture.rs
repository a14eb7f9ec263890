//! Fixtures: the expected result of a filter on real alerts, in a TOML file next to the filter
//! (`early_sn_ia.toml` has `early_sn_ia.fixture.toml`).
//!
//! ```toml
//! # Alert files or directories, relative to the fixture file.
//! alerts = ["../tests/data/ztf/alerts/boom_20240715_v4.02"]
//! # Source ids (ZTF candid, Rubin diaSourceId) of exactly the alerts that pass.
//! passes = [2752190655615010046]
//! # Alerts that must fail, with every column the filter reads non-null on them.
//! fails = [2752190655615010063]
//! ```

use std::collections::BTreeSet;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StructArray};
use datafusion::arrow::util::display::array_value_to_string;
use serde::Deserialize;

use crate::batch::AlertBatch;
use crate::compile::{CompiledFilter, FilterOutput};
use crate::error::FilterError;

/// A parsed fixture file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Alert files or directories, relative to the fixture file.
    pub alerts: Vec<String>,
    /// Source ids of exactly the alerts that pass.
    pub passes: Vec<i64>,
    /// Source ids of alerts that must fail.
    pub fails: Vec<i64>,
}

impl Fixture {
    /// Parses a fixture file's text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Fixture, FilterError> {
        toml::from_str(text).map_err(|error| FilterError::Definition {
            source_name: source_name.to_string(),
            message: error.to_string(),
        })
    }

    /// Compares a filter's result on the fixture's alerts with the expectation; returns one
    /// line per mismatch (empty: the fixture holds).
    pub fn check(&self, filter: &CompiledFilter, batch: &AlertBatch, output: &FilterOutput) -> Vec<String> {
        let mut problems = Vec::new();
        let record = batch.record_batch();
        let source_ids = column_by_path(record, "source_id");
        let source_ids = source_ids
            .as_ref()
            .and_then(|array| array.as_any().downcast_ref::<Int64Array>());
        let Some(source_ids) = source_ids else {
            return vec!["the batch has no source_id column".to_string()];
        };
        let passed: BTreeSet<i64> = output.passed.iter().map(|&row| source_ids.value(row)).collect();
        let expected: BTreeSet<i64> = self.passes.iter().copied().collect();
        for id in expected.difference(&passed) {
            problems.push(format!("alert {id} should pass but does not"));
        }
        for id in passed.difference(&expected) {
            problems.push(format!("alert {id} passes but the fixture does not list it in passes"));
        }
        if self.passes.is_empty() {
            problems.push("the fixture lists no passing alert".to_string());
        }
        if self.fails.is_empty() {
            problems.push("the fixture lists no failing alert".to_string());
        }
        for id in &self.fails {
            if passed.contains(id) {
                problems.push(format!("alert {id} should fail but passes"));
            }
        }
        for id in self.passes.iter().chain(&self.fails) {
            let Some(row) = (0..source_ids.len()).find(|&row| source_ids.value(row) == *id) else {
                problems.push(format!("alert {id} is not among the fixture's alerts"));
                continue;
            };
            for column in filter.columns_read() {
                let is_null = column_by_path(record, column).is_none_or(|array| array.is_null(row));
                if is_null {
                    problems.push(format!("alert {id}: column {column}, which the filter reads, is null"));
                }
            }
        }
        problems
    }
}

/// The column at a dotted path (`candidate.magpsf`), looking into struct columns.
pub fn column_by_path(batch: &RecordBatch, path: &str) -> Option<ArrayRef> {
    let mut parts = path.split('.');
    let mut array = batch.column_by_name(parts.next()?)?.clone();
    for part in parts {
        let structs = array.as_any().downcast_ref::<StructArray>()?;
        array = structs.column_by_name(part)?.clone();
    }
    Some(array)
}

/// The value of a column at a row as text (`null` for a null).
pub fn value_text(batch: &RecordBatch, path: &str, row: usize) -> String {
    match column_by_path(batch, path) {
        Some(array) if array.is_null(row) => "null".to_string(),
        Some(array) => array_value_to_string(&array, row).unwrap_or_else(|error| format!("<{error}>")),
        None => "<no such column>".to_string(),
    }
}
