//! [`FilterEngine`]: the active filters, one Arrow batch built per micro-batch for all of them,
//! and versioned updates that keep the old version of a filter when its new one is broken.

use std::collections::BTreeMap;

use nightjar_core::Alert;
use nightjar_modules::ModuleOutputs;

use crate::batch::{AlertBatch, ColumnSelection};
use crate::compile::{CompiledFilter, FilterLimits, FilterOutput};
use crate::definition::FilterDefinition;
use crate::error::FilterError;
use crate::schema::AlertSchema;

/// Each active filter's name and its result on one batch.
pub type BatchResults = Vec<(String, Result<FilterOutput, FilterError>)>;

/// One active filter: its definition and its compiled plan.
#[derive(Debug)]
pub struct ActiveFilter {
    pub definition: FilterDefinition,
    pub compiled: CompiledFilter,
}

/// The outcome of [`FilterEngine::update`].
#[derive(Debug, Default)]
pub struct UpdateReport {
    /// Filters compiled from a new or changed definition, now active.
    pub activated: Vec<String>,
    /// Filters whose definition is unchanged (same version), kept as they were.
    pub unchanged: Vec<String>,
    /// Filters no longer defined, removed.
    pub removed: Vec<String>,
    /// Definitions rejected; an older version of the same filter, if any, keeps running.
    pub rejected: Vec<FilterError>,
}

/// The active filters and the `alerts` schema they are compiled against.
#[derive(Debug)]
pub struct FilterEngine {
    schema: AlertSchema,
    limits: FilterLimits,
    filters: BTreeMap<String, ActiveFilter>,
    selection: ColumnSelection,
}

impl FilterEngine {
    /// An engine without filters.
    pub fn new(schema: AlertSchema, limits: FilterLimits) -> FilterEngine {
        let selection = ColumnSelection::none(&schema);
        FilterEngine {
            schema,
            limits,
            filters: BTreeMap::new(),
            selection,
        }
    }

    /// The `alerts` schema.
    pub fn schema(&self) -> &AlertSchema {
        &self.schema
    }

    /// Replaces the set of definitions: new and changed ones are compiled (a broken one is
    /// rejected and its previous version, if any, keeps running), unchanged ones are kept with
    /// their counters, missing ones are removed. Names must be unique; a second definition with
    /// a name already seen is rejected.
    pub fn update(&mut self, definitions: Vec<FilterDefinition>) -> UpdateReport {
        let mut report = UpdateReport::default();
        let mut next: BTreeMap<String, ActiveFilter> = BTreeMap::new();
        for definition in definitions {
            let name = definition.name.clone();
            if next.contains_key(&name) {
                report.rejected.push(FilterError::Definition {
                    source_name: definition.source_name.clone(),
                    message: format!("a filter named {name} is already defined"),
                });
                continue;
            }
            match self.filters.remove(&name) {
                Some(active) if active.definition.version == definition.version => {
                    report.unchanged.push(name.clone());
                    next.insert(name, active);
                }
                previous => match definition.compile(&self.schema, &self.limits) {
                    Ok(compiled) => {
                        report.activated.push(name.clone());
                        next.insert(name, ActiveFilter { definition, compiled });
                    }
                    Err(error) => {
                        report.rejected.push(error);
                        if let Some(previous) = previous {
                            next.insert(name, previous);
                        }
                    }
                },
            }
        }
        report.removed = self.filters.keys().cloned().collect();
        self.filters = next;
        self.selection = ColumnSelection::none(&self.schema);
        for active in self.filters.values() {
            self.selection.union(active.compiled.selection());
        }
        report
    }

    /// The active filters by name.
    pub fn filters(&self) -> impl Iterator<Item = &ActiveFilter> {
        self.filters.values()
    }

    /// Converts a micro-batch to Arrow once, with the columns any active filter reads.
    pub fn batch(&self, alerts: &[Alert], outputs: &ModuleOutputs) -> Result<AlertBatch, FilterError> {
        AlertBatch::build(&self.schema, alerts, outputs, &self.selection)
    }

    /// Runs every active filter on a micro-batch: one result per filter, by name.
    pub fn run(&mut self, alerts: &[Alert], outputs: &ModuleOutputs) -> Result<BatchResults, FilterError> {
        let batch = self.batch(alerts, outputs)?;
        Ok(self
            .filters
            .iter_mut()
            .map(|(name, active)| (name.clone(), active.compiled.evaluate(&batch)))
            .collect())
    }
}
