//! [`ModuleOutputs`]: the columnar results of every module for one batch.

use std::collections::HashMap;
use std::sync::Arc;

use nightjar_core::{Alert, ModuleValues};

use serde::Serialize;

use crate::module::{ColumnType, Value};

/// One output column of one module for a whole batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    /// The column's name as declared (`real_bogus`, `lc_features_g.amplitude`).
    pub name: String,
    pub column_type: ColumnType,
    /// One value per alert of the batch, in batch order; `None` is null.
    pub values: Vec<Option<Value>>,
}

/// Why a module produced no outputs for a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum ModuleFailureKind {
    /// The module returned an error (or rows that do not match its declaration).
    Error(String),
    /// The module panicked; the panic message.
    Panic(String),
    /// A module it depends on failed or was skipped; that module's name.
    DependencyFailed(String),
}

/// A module that produced nulls for a batch, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleFailure {
    pub module: String,
    pub kind: ModuleFailureKind,
}

/// The outputs of every module for one batch, column by column, plus the failures.
///
/// Columns carry their declared names, unique across modules. A module that failed still has its columns, all null.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleOutputs {
    n_alerts: usize,
    columns: Vec<Column>,
    index: HashMap<String, usize>,
    failures: Vec<ModuleFailure>,
}

impl ModuleOutputs {
    /// Empty outputs for a batch of `n_alerts` alerts.
    pub fn new(n_alerts: usize) -> ModuleOutputs {
        ModuleOutputs {
            n_alerts,
            ..ModuleOutputs::default()
        }
    }

    /// The number of alerts in the batch.
    pub fn n_alerts(&self) -> usize {
        self.n_alerts
    }

    /// The value of `column` for the alert at `alert_index`; `None` when
    /// the value is null, the column unknown or the index out of range.
    pub fn get(&self, alert_index: usize, column: &str) -> Option<&Value> {
        self.column(column)?.values.get(alert_index)?.as_ref()
    }

    /// The whole column with this name.
    pub fn column(&self, column: &str) -> Option<&Column> {
        self.index.get(column).map(|&position| &self.columns[position])
    }

    /// Every column, in the order modules ran and declared them.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The modules that produced nulls for this batch, and why.
    pub fn failures(&self) -> &[ModuleFailure] {
        &self.failures
    }

    /// Every output of one alert as a flat JSON object `{"column": value-or-null, ...}`.
    pub fn alert_json(&self, alert_index: usize) -> serde_json::Value {
        let map = self
            .columns
            .iter()
            .map(|column| {
                let value = column.values.get(alert_index).and_then(Option::as_ref);
                (
                    column.name.clone(),
                    value.map_or(serde_json::Value::Null, Value::to_json),
                )
            })
            .collect();
        serde_json::Value::Object(map)
    }

    /// Copies every non-null output into its alert's [`Alert::module_values`] (replacing what
    /// was there), so the store and the output streams carry them with the alert. `alerts` is
    /// the batch these outputs were computed for.
    pub fn attach_to(&self, alerts: &mut [Alert]) {
        let names: Vec<Arc<str>> = self
            .columns
            .iter()
            .map(|column| Arc::from(column.name.as_str()))
            .collect();
        for (alert_index, alert) in alerts.iter_mut().enumerate() {
            let mut values = ModuleValues::new();
            for (column, name) in self.columns.iter().zip(&names) {
                if let Some(Some(value)) = column.values.get(alert_index) {
                    values.push(Arc::clone(name), value.clone());
                }
            }
            alert.module_values = values;
        }
    }

    /// Adds a column; the runner calls this once per declared output. A column already present
    /// is replaced.
    pub(crate) fn push_column(&mut self, column: Column) {
        match self.index.get(&column.name) {
            Some(&position) => self.columns[position] = column,
            None => {
                self.index.insert(column.name.clone(), self.columns.len());
                self.columns.push(column);
            }
        }
    }

    pub(crate) fn push_failure(&mut self, failure: ModuleFailure) {
        self.failures.push(failure);
    }
}
