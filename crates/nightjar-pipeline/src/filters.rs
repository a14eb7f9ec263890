//! The filter stage of the ingestion loops: the filters of a directory, compiled against the
//! `alerts` schema of the modules that run, evaluated on every micro-batch, reloaded when the
//! directory changes or on request (SIGHUP), with their counters in the metrics; and the
//! payload each filter sends for the alerts it passes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use nightjar_core::Alert;
use nightjar_filter::arrow::array::RecordBatch;
use nightjar_filter::arrow::json::ArrayWriter;
use nightjar_filter::{AlertSchema, FilterDefinition, FilterEngine, FilterError, FiltersConfig, Payload, SinkConfig};
use nightjar_metrics::{FilterTotals, PipelineMetrics};
use nightjar_modules::{ModuleOutputs, ModuleRunner};
use nightjar_sinks::{Delivery, FileSink, Outbox, SinkError, WebhookConfig};
use nightjar_store::Night;
use thiserror::Error;

/// How often the filter directory is looked at for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// Points of history a `lite` payload carries: the latest detections.
pub const LITE_LIGHT_CURVE_POINTS: usize = 10;

/// Why the filter stage could not start.
#[derive(Debug, Error)]
pub enum FilterStageError {
    #[error("filters: {0}")]
    Config(String),
    #[error("reading the filter directory {}: {error}", directory.display())]
    Directory { directory: PathBuf, error: std::io::Error },
    #[error("building the alerts schema from the science modules' columns: {0}")]
    Schema(String),
}

/// Every filter file (`*.toml`, not `*.fixture.toml`) directly in `directory`, sorted by
/// name: the definitions that parse, and the errors of those that do not.
pub fn load_filter_dir(directory: &Path) -> Result<(Vec<FilterDefinition>, Vec<FilterError>), FilterStageError> {
    let directory_error = |error| FilterStageError::Directory {
        directory: directory.to_path_buf(),
        error,
    };
    let mut definitions = Vec::new();
    let mut errors = Vec::new();
    for file in filter_files(directory).map_err(directory_error)? {
        let name = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => match FilterDefinition::parse(&text, &name) {
                Ok(definition) => definitions.push(definition),
                Err(error) => errors.push(error),
            },
            Err(error) => errors.push(FilterError::Definition {
                source_name: name,
                message: format!("cannot be read: {error}"),
            }),
        }
    }
    Ok((definitions, errors))
}

fn filter_files(directory: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(directory)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.is_file()
                && path.extension().is_some_and(|ext| ext == "toml")
                && !path.to_string_lossy().ends_with(".fixture.toml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What the directory looks like: each filter file with its modification time and size.
fn fingerprint(directory: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    filter_files(directory)
        .unwrap_or_default()
        .into_iter()
        .map(|path| {
            let metadata = std::fs::metadata(&path).ok();
            let modified = metadata.as_ref().and_then(|metadata| metadata.modified().ok());
            let len = metadata.map_or(0, |metadata| metadata.len());
            (path, modified, len)
        })
        .collect()
}

/// The alerts one filter passed in one batch.
#[derive(Debug, Clone)]
pub struct FilterPass {
    pub filter: String,
    pub payload: Payload,
    pub sinks: Vec<SinkConfig>,
    /// Positions in the batch of the passing alerts, ascending.
    pub passed: Vec<usize>,
    /// The columns the filter selects, one row per passing alert.
    pub selected: RecordBatch,
}

impl FilterPass {
    /// True when the filter has a webhook or file sink (delivered by [`FilterSinks`]).
    pub fn has_delivery_sinks(&self) -> bool {
        self.sinks
            .iter()
            .any(|sink| matches!(sink, SinkConfig::Webhook { .. } | SinkConfig::File { .. }))
    }

    /// The topic patterns of the filter's Kafka sinks.
    pub fn kafka_topics(&self) -> impl Iterator<Item = &str> {
        self.sinks.iter().filter_map(|sink| match sink {
            SinkConfig::Kafka { topic } => Some(topic.as_str()),
            _ => None,
        })
    }

    /// One JSON object per passing alert, shaped by the payload: `ids` (survey, object and
    /// source ids), `lite` (ids, the selected columns and the latest detections) or `full`
    /// (the whole alert, raw survey fields included, and every module output; cutouts are
    /// summarised, not copied).
    pub fn rows(&self, alerts: &[Alert]) -> Vec<serde_json::Value> {
        let selected = match self.payload {
            Payload::Lite => selected_rows(&self.selected),
            Payload::Ids | Payload::Full => Vec::new(),
        };
        self.passed
            .iter()
            .enumerate()
            .filter_map(|(row, &index)| Some((row, alerts.get(index)?)))
            .map(|(row, alert)| match self.payload {
                Payload::Full => {
                    let mut json = alert.to_json();
                    if let Some(object) = json.as_object_mut() {
                        object.insert(
                            "modules".to_string(),
                            serde_json::Value::Object(alert.module_values.to_json()),
                        );
                    }
                    json
                }
                Payload::Ids => ids(alert),
                Payload::Lite => {
                    let mut json = ids(alert);
                    if let (Some(object), Some(serde_json::Value::Object(columns))) =
                        (json.as_object_mut(), selected.get(row))
                    {
                        for (name, value) in columns {
                            object.entry(name.clone()).or_insert_with(|| value.clone());
                        }
                        let points = alert.history.len().min(LITE_LIGHT_CURVE_POINTS.saturating_sub(1));
                        let light_curve: Vec<serde_json::Value> = alert.history[alert.history.len() - points..]
                            .iter()
                            .chain(std::iter::once(&alert.detection))
                            .map(|detection| {
                                serde_json::json!({
                                    "mjd": detection.mjd,
                                    "band": detection.band,
                                    "magnitude": detection.magnitude,
                                    "magnitude_err": detection.magnitude_err,
                                    "flux": detection.flux,
                                    "flux_err": detection.flux_err,
                                })
                            })
                            .collect();
                        object.insert("light_curve".to_string(), serde_json::Value::from(light_curve));
                    }
                    json
                }
            })
            .collect()
    }
}

fn ids(alert: &Alert) -> serde_json::Value {
    serde_json::json!({
        "survey": alert.survey,
        "object_id": alert.object_id,
        "source_id": alert.detection.source_id,
    })
}

/// The rows of a record batch as JSON objects (nulls left out).
fn selected_rows(batch: &RecordBatch) -> Vec<serde_json::Value> {
    if batch.num_rows() == 0 || batch.num_columns() == 0 {
        return Vec::new();
    }
    let mut writer = ArrayWriter::new(Vec::new());
    let written = writer.write(batch).and_then(|()| writer.finish());
    match written {
        Ok(()) => serde_json::from_slice(&writer.into_inner()).unwrap_or_default(),
        Err(error) => {
            tracing::warn!("the selected columns could not be written as JSON: {error}");
            Vec::new()
        }
    }
}

/// The filters of one worker.
#[derive(Debug)]
pub struct FilterStage {
    engine: FilterEngine,
    directory: Option<PathBuf>,
    seen: Vec<(PathBuf, Option<SystemTime>, u64)>,
    last_check: Instant,
    reload_requested: Arc<AtomicBool>,
    metrics: Arc<PipelineMetrics>,
}

impl FilterStage {
    /// Compiles the filters of `config.directory` (none: a stage without filters) against the
    /// columns of `modules`. A filter file that does not parse or compile is logged as an
    /// error and left out; the others run.
    pub fn load(
        config: &FiltersConfig,
        modules: &ModuleRunner,
        metrics: Arc<PipelineMetrics>,
    ) -> Result<FilterStage, FilterStageError> {
        config.validate().map_err(FilterStageError::Config)?;
        let columns: Vec<_> = modules.columns().into_iter().map(|(_, column)| column).collect();
        let schema = AlertSchema::new(columns.iter()).map_err(|error| FilterStageError::Schema(error.to_string()))?;
        let mut stage = FilterStage {
            engine: FilterEngine::new(schema, config.limits()),
            directory: config.directory.clone(),
            seen: Vec::new(),
            last_check: Instant::now(),
            reload_requested: Arc::new(AtomicBool::new(false)),
            metrics,
        };
        if let Some(directory) = &stage.directory {
            if !directory.is_dir() {
                return Err(FilterStageError::Config(format!(
                    "filters.directory {} is not a directory (create it, or leave filters.directory unset to run without filters)",
                    directory.display()
                )));
            }
            stage.reload()?;
        }
        Ok(stage)
    }

    /// A stage without filters.
    pub fn without_filters(modules: &ModuleRunner) -> Result<FilterStage, FilterStageError> {
        FilterStage::load(&FiltersConfig::default(), modules, Arc::default())
    }

    /// A flag that, once set (by a SIGHUP handler), makes the stage reload its directory
    /// before the next batch.
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reload_requested)
    }

    /// True when no filter is loaded.
    pub fn is_empty(&self) -> bool {
        self.engine.filters().next().is_none()
    }

    /// The active filters' definitions.
    pub fn definitions(&self) -> impl Iterator<Item = &FilterDefinition> {
        self.engine.filters().map(|active| &active.definition)
    }

    /// Reads the directory again and updates the filters: new and changed ones compiled,
    /// broken new versions rejected (their previous version keeps running), removed ones
    /// dropped.
    pub fn reload(&mut self) -> Result<(), FilterStageError> {
        let Some(directory) = self.directory.clone() else {
            return Ok(());
        };
        self.seen = fingerprint(&directory);
        self.last_check = Instant::now();
        let (definitions, mut errors) = load_filter_dir(&directory)?;
        let report = self.engine.update(definitions);
        errors.extend(report.rejected);
        for error in &errors {
            tracing::error!(directory = %directory.display(), reason = error.reason(), "filter rejected: {error}");
        }
        for name in &report.activated {
            tracing::info!(filter = %name, "filter active");
        }
        for name in &report.removed {
            tracing::info!(filter = %name, "filter removed");
        }
        let active = self.engine.filters().count();
        self.metrics
            .filters_reloaded(active, if errors.is_empty() { "ok" } else { "rejected" });
        Ok(())
    }

    /// Reloads when asked to, or when a filter file changed since the last look (looked at
    /// every two seconds at most).
    pub fn reload_if_changed(&mut self) {
        let Some(directory) = self.directory.clone() else {
            return;
        };
        let requested = self.reload_requested.swap(false, Ordering::Relaxed);
        if !requested && self.last_check.elapsed() < RELOAD_CHECK {
            return;
        }
        self.last_check = Instant::now();
        if !requested && fingerprint(&directory) == self.seen {
            return;
        }
        if let Err(error) = self.reload() {
            tracing::error!("filters not reloaded, the loaded ones keep running: {error}");
        }
    }

    /// Runs every filter on a batch (after the modules): what each passed. A filter that fails
    /// on the batch passes nothing, is logged, and counts an error.
    pub fn run(&mut self, alerts: &[Alert], outputs: &ModuleOutputs) -> Vec<FilterPass> {
        self.reload_if_changed();
        if self.is_empty() || alerts.is_empty() {
            return Vec::new();
        }
        let results = match self.engine.run(alerts, outputs) {
            Ok(results) => results,
            Err(error) => {
                tracing::error!("the batch could not be converted for the filters: {error}");
                return Vec::new();
            }
        };
        let mut passes = Vec::new();
        for (name, result) in results {
            match result {
                Ok(output) if !output.passed.is_empty() => {
                    if let Some(active) = self.engine.filters().find(|active| active.definition.name == name) {
                        passes.push(FilterPass {
                            filter: name,
                            payload: active.definition.payload,
                            sinks: active.definition.sinks.clone(),
                            passed: output.passed,
                            selected: output.selected,
                        });
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(filter = %name, reason = error.reason(), "filter failed on a batch: {error}")
                }
            }
        }
        for active in self.engine.filters() {
            let counters = active.compiled.metrics();
            self.metrics.filter_totals(
                &active.definition.name,
                &active.definition.version,
                &FilterTotals {
                    alerts_seen: counters.alerts_seen,
                    alerts_passed: counters.alerts_passed,
                    time: counters.time,
                    errors: counters.errors,
                    overruns: counters.overruns,
                    disabled: counters.disabled,
                },
            );
        }
        passes
    }
}

/// The webhook and file sinks of the filters: each filter's passing alerts of a batch, by
/// survey and night, written to its files and enqueued in the webhook outbox.
#[derive(Debug)]
pub struct FilterSinks {
    files: std::collections::HashMap<(String, String), FileSink>,
    outbox: Option<Outbox>,
    metrics: Arc<PipelineMetrics>,
}

/// Why a batch's webhook posts could not be put in the outbox (the batch is not committed).
#[derive(Debug, Error)]
#[error("filter {filter}: the webhook outbox: {error}")]
pub struct OutboxError {
    pub filter: String,
    pub error: SinkError,
}

impl FilterSinks {
    /// Sinks writing webhook posts to `outbox` (none: a filter with a webhook sink is logged
    /// and its posts are not made).
    pub fn new(outbox: Option<Outbox>, metrics: Arc<PipelineMetrics>) -> FilterSinks {
        FilterSinks {
            files: std::collections::HashMap::new(),
            outbox,
            metrics,
        }
    }

    /// The outbox, if any.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.outbox.as_ref()
    }

    /// Hands what `pass` passed (`rows`, from [`FilterPass::rows`]) to its webhook and file
    /// sinks. `position` names the input range each passing alert came from (by its position
    /// in the batch), replay-stable, so that a replay overwrites instead of duplicating.
    ///
    /// A file that cannot be written is logged and counted (`nightjar_sink_records` with
    /// `outcome="error"`): a user's sink never stops the stream. A webhook post that cannot be
    /// put in the outbox is an error: the batch must not be committed.
    pub fn deliver(
        &mut self,
        pass: &FilterPass,
        rows: &[serde_json::Value],
        alerts: &[Alert],
        position: &dyn Fn(usize) -> String,
    ) -> Result<(), OutboxError> {
        if !pass.has_delivery_sinks() {
            return Ok(());
        }
        // Rows grouped by survey, night and input range.
        let mut groups: std::collections::BTreeMap<(&'static str, String, String), Vec<serde_json::Value>> =
            std::collections::BTreeMap::new();
        for (row, &index) in rows.iter().zip(&pass.passed) {
            let Some(alert) = alerts.get(index) else { continue };
            let night = format!("{:08}", Night::of_mjd(alert.detection.mjd).0);
            groups
                .entry((alert.survey.as_str(), night, position(index)))
                .or_default()
                .push(row.clone());
        }
        for ((survey, night, position), rows) in &groups {
            let delivery = Delivery {
                filter: &pass.filter,
                survey,
                night,
                position,
                rows,
            };
            for sink in &pass.sinks {
                match sink {
                    SinkConfig::Kafka { .. } => {}
                    SinkConfig::File { directory, format } => {
                        let written = self.file_sink(directory, format).and_then(|sink| sink.write(&delivery));
                        match written {
                            Ok(_) => self.metrics.sink_records("file", "ok", rows.len() as u64),
                            Err(error) => {
                                self.metrics.sink_records("file", "error", rows.len() as u64);
                                tracing::error!(filter = %pass.filter, directory = %directory, "filter file sink: {error}");
                            }
                        }
                    }
                    SinkConfig::Webhook { url, slack } => {
                        let Some(outbox) = &self.outbox else {
                            self.metrics.sink_records("webhook", "error", rows.len() as u64);
                            tracing::error!(filter = %pass.filter, "filter has a webhook sink but this worker has no outbox");
                            continue;
                        };
                        outbox
                            .enqueue(&WebhookConfig::new(url.clone(), *slack), &delivery)
                            .map_err(|error| OutboxError {
                                filter: pass.filter.clone(),
                                error,
                            })?;
                        self.metrics.sink_records("webhook", "ok", rows.len() as u64);
                    }
                }
            }
        }
        if let Some(outbox) = &self.outbox {
            self.metrics.set_webhook_pending(outbox.pending());
        }
        Ok(())
    }

    fn file_sink(&mut self, directory: &str, format: &str) -> Result<&FileSink, SinkError> {
        let key = (directory.to_string(), format.to_string());
        if !self.files.contains_key(&key) {
            let sink = FileSink::new(directory, format.parse()?)?;
            self.files.insert(key.clone(), sink);
        }
        self.files
            .get(&key)
            .ok_or_else(|| SinkError::Internal("file sink vanished".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nightjar_store::conformance::all_alerts;

    fn filter_file(name: &str, condition: &str) -> String {
        format!(
            "name = \"{name}\"\ndescription = \"test filter\"\npayload = \"ids\"\nsql = \"SELECT object_id FROM alerts WHERE {condition}\"\n"
        )
    }

    fn stage_on(directory: &Path) -> (FilterStage, ModuleRunner, Arc<PipelineMetrics>) {
        let modules = ModuleRunner::new(Vec::new()).expect("no modules");
        let metrics = Arc::new(PipelineMetrics::new());
        let config = FiltersConfig {
            directory: Some(directory.to_path_buf()),
            ..FiltersConfig::default()
        };
        let stage = FilterStage::load(&config, &modules, Arc::clone(&metrics)).expect("load");
        (stage, modules, metrics)
    }

    fn passed(stage: &mut FilterStage, modules: &mut ModuleRunner, alerts: &[Alert]) -> Vec<(String, usize)> {
        let outputs = modules.run(alerts);
        stage
            .run(alerts, &outputs)
            .into_iter()
            .map(|pass| (pass.filter, pass.passed.len()))
            .collect()
    }

    #[test]
    fn a_broken_new_version_is_rejected_and_the_old_one_keeps_running() {
        let alerts = all_alerts();
        let n_ztf = alerts.iter().filter(|alert| alert.survey.as_str() == "ztf").count();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ztf.toml"), filter_file("ztf", "survey = 'ztf'")).expect("write");
        let (mut stage, mut modules, metrics) = stage_on(dir.path());
        assert_eq!(
            passed(&mut stage, &mut modules, &alerts),
            vec![("ztf".to_string(), n_ztf)]
        );

        // A broken new version: rejected on SIGHUP, the loaded one keeps passing.
        std::fs::write(dir.path().join("ztf.toml"), filter_file("ztf", "no_such_column > 1")).expect("write");
        stage.reload_flag().store(true, Ordering::Relaxed);
        assert_eq!(
            passed(&mut stage, &mut modules, &alerts),
            vec![("ztf".to_string(), n_ztf)]
        );
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("nightjar_filter_reloads_total{outcome=\"rejected\"} 1"),
            "{text}"
        );

        // A new file is picked up when the directory is looked at again (no signal).
        std::fs::write(dir.path().join("rubin.toml"), filter_file("rubin", "survey = 'rubin'")).expect("write");
        stage.last_check -= RELOAD_CHECK;
        let n_rubin = alerts.len() - n_ztf;
        assert_eq!(
            passed(&mut stage, &mut modules, &alerts),
            vec![("rubin".to_string(), n_rubin), ("ztf".to_string(), n_ztf)]
        );

        // A removed file removes its filter; a fixed one replaces the old version.
        std::fs::remove_file(dir.path().join("rubin.toml")).expect("remove");
        std::fs::write(
            dir.path().join("ztf.toml"),
            filter_file("ztf", "survey = 'ztf' AND ra < 0"),
        )
        .expect("write");
        stage.reload_flag().store(true, Ordering::Relaxed);
        assert!(passed(&mut stage, &mut modules, &alerts).is_empty());
        assert_eq!(
            stage
                .definitions()
                .map(|definition| definition.name.as_str())
                .collect::<Vec<_>>(),
            ["ztf"]
        );
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let modules = ModuleRunner::new(Vec::new()).expect("no modules");
        let config = FiltersConfig {
            directory: Some(PathBuf::from("/nonexistent/filters")),
            ..FiltersConfig::default()
        };
        let error = FilterStage::load(&config, &modules, Arc::default()).expect_err("no directory");
        assert!(
            error.to_string().contains("/nonexistent/filters is not a directory"),
            "{error}"
        );
    }

    #[test]
    fn payloads_shape_the_rows() {
        let alerts = all_alerts();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("lite.toml"),
            "name = \"lite\"\ndescription = \"d\"\npayload = \"lite\"\nsql = \"SELECT object_id, magnitude AS mag FROM alerts WHERE survey = 'ztf'\"\n",
        )
        .expect("write");
        let (mut stage, mut modules, _) = stage_on(dir.path());
        let outputs = modules.run(&alerts);
        let passes = stage.run(&alerts, &outputs);
        let rows = passes[0].rows(&alerts);
        assert_eq!(rows.len(), passes[0].passed.len());
        let first = &rows[0];
        let alert = &alerts[passes[0].passed[0]];
        assert_eq!(first["object_id"], alert.object_id.as_str());
        assert_eq!(first["source_id"], alert.detection.source_id);
        assert_eq!(first["mag"].as_f64(), alert.detection.magnitude);
        let light_curve = first["light_curve"].as_array().expect("light curve");
        assert_eq!(
            light_curve.len(),
            (alert.history.len() + 1).min(LITE_LIGHT_CURVE_POINTS)
        );
        assert_eq!(light_curve.last().expect("a point")["mjd"], alert.detection.mjd);

        let full = FilterPass {
            payload: Payload::Full,
            ..passes[0].clone()
        };
        let row = &full.rows(&alerts)[0];
        assert_eq!(row["raw"]["objectId"], alert.object_id.as_str());
        assert!(row["modules"].is_object());
    }
}
