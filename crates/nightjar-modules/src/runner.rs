//! [`ModuleRunner`]: orders modules by their dependencies, runs them per batch, contains
//! errors and panics, and keeps per-module statistics.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use nightjar_core::Alert;
use serde::Serialize;

use crate::error::ModuleError;
use crate::module::{OutputColumn, Row, ScienceModule};
use crate::outputs::{Column, ModuleFailure, ModuleFailureKind, ModuleOutputs};

/// Running totals for one module, for metrics and the run summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModuleStats {
    pub module: String,
    pub version: String,
    /// Batches the module was run on (skipped ones not counted).
    pub batches: u64,
    /// Alerts in those batches.
    pub alerts: u64,
    /// Wall time spent in the module's `run`.
    pub total_time: Duration,
    /// Batches where the module returned an error or malformed rows.
    pub errors: u64,
    /// Batches where the module panicked.
    pub panics: u64,
    /// Batches skipped because a module it depends on failed.
    pub skipped: u64,
}

impl ModuleStats {
    /// Alerts per second of module time; `None` before any time was spent.
    pub fn alerts_per_second(&self) -> Option<f64> {
        let seconds = self.total_time.as_secs_f64();
        (seconds > 0.0).then(|| self.alerts as f64 / seconds)
    }
}

/// Runs a fixed set of modules on each batch, dependencies first.
#[derive(Debug)]
pub struct ModuleRunner {
    /// Modules in run order.
    modules: Vec<Box<dyn ScienceModule>>,
    /// For each module (run order), the run-order positions of its direct dependencies.
    dependencies: Vec<Vec<usize>>,
    stats: Vec<ModuleStats>,
}

impl ModuleRunner {
    /// Orders `modules` so that every module runs after those it depends on (otherwise keeping
    /// the given order), checking names and declarations.
    ///
    /// Errors: a duplicate module name, a dependency that is not in the list, a cycle, or an
    /// invalid declaration (empty name, a dot in a name, duplicate column names).
    pub fn new(modules: Vec<Box<dyn ScienceModule>>) -> Result<ModuleRunner, ModuleError> {
        let mut position_of: HashMap<String, usize> = HashMap::new();
        for (position, module) in modules.iter().enumerate() {
            check_declaration(module.as_ref())?;
            if position_of.insert(module.name().to_owned(), position).is_some() {
                return Err(ModuleError::DuplicateModule {
                    module: module.name().to_owned(),
                });
            }
        }
        check_global_columns(&modules)?;
        let mut direct: Vec<Vec<usize>> = Vec::with_capacity(modules.len());
        for module in &modules {
            let mut deps = Vec::new();
            for &dependency in module.depends_on() {
                let position = *position_of
                    .get(dependency)
                    .ok_or_else(|| ModuleError::MissingDependency {
                        module: module.name().to_owned(),
                        dependency: dependency.to_owned(),
                    })?;
                deps.push(position);
            }
            direct.push(deps);
        }
        let order = topological_order(&modules, &direct)?;

        let mut new_position = vec![0; modules.len()];
        for (run_position, &original) in order.iter().enumerate() {
            new_position[original] = run_position;
        }
        let dependencies = order
            .iter()
            .map(|&original| direct[original].iter().map(|&dep| new_position[dep]).collect())
            .collect();
        let mut slots: Vec<Option<Box<dyn ScienceModule>>> = modules.into_iter().map(Some).collect();
        let modules: Vec<Box<dyn ScienceModule>> =
            order.iter().filter_map(|&original| slots[original].take()).collect();
        let stats = modules
            .iter()
            .map(|module| ModuleStats {
                module: module.name().to_owned(),
                version: module.version().to_owned(),
                ..ModuleStats::default()
            })
            .collect();
        Ok(ModuleRunner {
            modules,
            dependencies,
            stats,
        })
    }

    /// Module names in run order.
    pub fn module_names(&self) -> Vec<&str> {
        self.modules.iter().map(|module| module.name()).collect()
    }

    /// The modules in run order, for their declarations (outputs, versions).
    pub fn modules(&self) -> &[Box<dyn ScienceModule>] {
        &self.modules
    }

    /// Every output column as (module name, declaration), in run order: the schema of
    /// [`ModuleOutputs`] for the store, filters and output streams.
    pub fn columns(&self) -> Vec<(&str, OutputColumn)> {
        self.modules
            .iter()
            .flat_map(|module| module.outputs().iter().map(move |column| (module.name(), *column)))
            .collect()
    }

    /// Statistics per module, in run order.
    pub fn stats(&self) -> &[ModuleStats] {
        &self.stats
    }

    /// Runs every module on `batch`. Never fails and never panics because of a module: a
    /// module that errors or panics, and every module depending on it, gets null columns for
    /// this batch, and the failure is counted and listed in [`ModuleOutputs::failures`].
    pub fn run(&mut self, batch: &[Alert]) -> ModuleOutputs {
        let mut outputs = ModuleOutputs::new(batch.len());
        let mut failed = vec![false; self.modules.len()];
        for position in 0..self.modules.len() {
            let module = self.modules[position].as_ref();
            let stats = &mut self.stats[position];
            let failed_dependency = self.dependencies[position]
                .iter()
                .find(|&&dep| failed[dep])
                .map(|&dep| self.modules[dep].name().to_owned());
            let result = match failed_dependency {
                Some(dependency) => {
                    stats.skipped += 1;
                    Err(ModuleFailureKind::DependencyFailed(dependency))
                }
                None => {
                    let started = Instant::now();
                    let caught = catch_unwind(AssertUnwindSafe(|| module.run(batch, &outputs)));
                    stats.total_time += started.elapsed();
                    stats.batches += 1;
                    stats.alerts += batch.len() as u64;
                    match caught {
                        Ok(Ok(rows)) => match check_rows(module, batch.len(), rows) {
                            Ok(rows) => Ok(rows),
                            Err(error) => {
                                stats.errors += 1;
                                Err(ModuleFailureKind::Error(error.to_string()))
                            }
                        },
                        Ok(Err(error)) => {
                            stats.errors += 1;
                            Err(ModuleFailureKind::Error(error.to_string()))
                        }
                        Err(payload) => {
                            stats.panics += 1;
                            Err(ModuleFailureKind::Panic(panic_message(payload.as_ref())))
                        }
                    }
                }
            };
            match result {
                Ok(rows) => push_rows(&mut outputs, module, rows, batch.len()),
                Err(kind) => {
                    failed[position] = true;
                    tracing::warn!(
                        module = module.name(),
                        n_alerts = batch.len(),
                        failure = ?kind,
                        "science module produced no outputs for the batch"
                    );
                    push_rows(&mut outputs, module, Vec::new(), batch.len());
                    outputs.push_failure(ModuleFailure {
                        module: module.name().to_owned(),
                        kind,
                    });
                }
            }
        }
        outputs
    }
}

/// Kahn's algorithm, taking the lowest original position first so the order is stable.
fn topological_order(modules: &[Box<dyn ScienceModule>], direct: &[Vec<usize>]) -> Result<Vec<usize>, ModuleError> {
    let n_modules = modules.len();
    let mut remaining_deps: Vec<usize> = direct.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n_modules];
    for (module, deps) in direct.iter().enumerate() {
        for &dep in deps {
            dependents[dep].push(module);
        }
    }
    let mut done = vec![false; n_modules];
    let mut order = Vec::with_capacity(n_modules);
    while order.len() < n_modules {
        let next = (0..n_modules).find(|&module| !done[module] && remaining_deps[module] == 0);
        let Some(next) = next else {
            return Err(ModuleError::DependencyCycle {
                cycle: find_cycle(modules, direct, &done),
            });
        };
        done[next] = true;
        order.push(next);
        for &dependent in &dependents[next] {
            remaining_deps[dependent] -= 1;
        }
    }
    Ok(order)
}

/// A cycle among the modules not yet ordered: walk dependencies until a module repeats.
fn find_cycle(modules: &[Box<dyn ScienceModule>], direct: &[Vec<usize>], done: &[bool]) -> Vec<String> {
    let Some(start) = (0..modules.len()).find(|&module| !done[module]) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut seen = HashSet::from([start]);
    let mut current = start;
    // Every unordered module has an unordered dependency, so the walk always continues.
    while let Some(&next) = direct[current].iter().find(|&&dep| !done[dep]) {
        if !seen.insert(next) {
            let cycle_start = path.iter().position(|&module| module == next).unwrap_or(0);
            let mut cycle: Vec<String> = path[cycle_start..]
                .iter()
                .map(|&module| modules[module].name().to_owned())
                .collect();
            cycle.push(modules[next].name().to_owned());
            return cycle;
        }
        path.push(next);
        current = next;
    }
    path.iter().map(|&module| modules[module].name().to_owned()).collect()
}

fn check_declaration(module: &dyn ScienceModule) -> Result<(), ModuleError> {
    let invalid = |reason: String| ModuleError::InvalidDeclaration {
        module: module.name().to_owned(),
        reason,
    };
    if module.name().is_empty() || module.name().contains('.') {
        return Err(invalid("a module name must be non-empty and have no dot".into()));
    }
    let mut names = HashSet::new();
    for column in module.outputs() {
        if !is_column_name(column.name) {
            return Err(invalid(format!(
                "column name {:?} must be lowercase identifiers ([a-z_][a-z0-9_]*) joined by dots",
                column.name
            )));
        }
        if !names.insert(column.name) {
            return Err(invalid(format!("column {:?} declared twice", column.name)));
        }
    }
    Ok(())
}

/// Whether `name` is a valid output column name: lowercase identifiers joined by dots, the dots
/// nesting a field in a record (`lc_features_g.amplitude`).
fn is_column_name(name: &str) -> bool {
    name.split('.').all(|segment| {
        let mut chars = segment.chars();
        chars
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    })
}

/// Checks that no two modules declare the same output column, and that no column is also the
/// record that holds another (`a` and `a.b`): output names are global, as in the streams.
fn check_global_columns(modules: &[Box<dyn ScienceModule>]) -> Result<(), ModuleError> {
    let mut owner: HashMap<&str, &str> = HashMap::new();
    for module in modules {
        for column in module.outputs() {
            if let Some(first) = owner.insert(column.name, module.name()) {
                return Err(ModuleError::InvalidDeclaration {
                    module: module.name().to_owned(),
                    reason: format!("column {:?} is already an output of module {first:?}", column.name),
                });
            }
        }
    }
    for (&name, &module) in &owner {
        let mut prefix = name;
        while let Some((parent, _)) = prefix.rsplit_once('.') {
            if let Some(other) = owner.get(parent) {
                return Err(ModuleError::InvalidDeclaration {
                    module: module.to_owned(),
                    reason: format!("column {name:?} nests inside {parent:?}, a column of module {other:?}"),
                });
            }
            prefix = parent;
        }
    }
    Ok(())
}

/// Checks that a module returned one row per alert, each matching its declared columns.
fn check_rows(module: &dyn ScienceModule, n_alerts: usize, rows: Vec<Row>) -> Result<Vec<Row>, ModuleError> {
    let bad = |reason: String| ModuleError::BadOutput {
        module: module.name().to_owned(),
        reason,
    };
    if rows.len() != n_alerts {
        return Err(bad(format!("{} rows for a batch of {n_alerts} alerts", rows.len())));
    }
    let columns = module.outputs();
    for (alert_index, row) in rows.iter().enumerate() {
        if row.len() != columns.len() {
            return Err(bad(format!(
                "alert {alert_index}: {} values for {} columns",
                row.len(),
                columns.len()
            )));
        }
        for (value, column) in row.iter().zip(columns) {
            if let Some(value) = value
                && value.column_type() != column.column_type
            {
                return Err(bad(format!(
                    "alert {alert_index}, column {:?}: {} value in a {} column",
                    column.name,
                    value.column_type().as_str(),
                    column.column_type.as_str()
                )));
            }
        }
    }
    Ok(rows)
}

/// Turns rows into the module's columns; no rows gives null columns.
fn push_rows(outputs: &mut ModuleOutputs, module: &dyn ScienceModule, rows: Vec<Row>, n_alerts: usize) {
    let declared = module.outputs();
    let mut values: Vec<Vec<Option<crate::module::Value>>> =
        declared.iter().map(|_| Vec::with_capacity(n_alerts)).collect();
    if rows.is_empty() {
        for column in &mut values {
            column.resize(n_alerts, None);
        }
    } else {
        for row in rows {
            for (column, value) in values.iter_mut().zip(row) {
                column.push(value);
            }
        }
    }
    for (column, values) in declared.iter().zip(values) {
        outputs.push_column(Column {
            name: column.name.to_owned(),
            column_type: column.column_type,
            values,
        });
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
