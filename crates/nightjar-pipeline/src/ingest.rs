//! The ingestion loop: read a micro-batch of messages, decode it, run the science modules and
//! the filters on it, store the alerts (with the modules' outputs) and the dead letters, hand
//! what each filter passed to its sinks, and report. Decoding, the modules and the filters run
//! on their own thread, one batch ahead of the store, with a bounded queue between them, so
//! memory stays flat however long the input is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nightjar_core::Alert;
use nightjar_decode::Decoder;
use nightjar_metrics::{ModuleTotals, PipelineMetrics};
use nightjar_modules::{ModuleRunner, ModuleStats};
use nightjar_registry::{SchemaRegistry, decode_with_registry};
use nightjar_store::{DeadLetter, Store, StoreError, WriteSummary};
use thiserror::Error;

use crate::filters::{FilterPass, FilterSinks, FilterStage};
use crate::source::{MessageSource, SourceError};

/// How the pipeline batches and what it keeps.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Messages per micro-batch.
    pub batch_size: usize,
    /// Store the cutouts (three FITS stamps per alert, ~75% of the bytes).
    pub keep_cutouts: bool,
    /// Where each batch is counted.
    pub metrics: Arc<PipelineMetrics>,
    /// Names the input in the files of filter sinks (`{label}_b{batch}`): the same input read
    /// again overwrites them. `[A-Za-z0-9_.-]`.
    pub input_label: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            batch_size: 500,
            keep_cutouts: true,
            metrics: Arc::default(),
            input_label: "files".to_string(),
        }
    }
}

/// Why ingestion stopped.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("storing batch {batch}: {error}")]
    Store { batch: u64, error: StoreError },
    #[error("the decoding thread stopped unexpectedly")]
    DecoderGone,
    #[error("batch {batch}: {error}")]
    Outbox {
        batch: u64,
        error: crate::filters::OutboxError,
    },
}

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    /// Messages (files, Kafka records) read.
    pub messages: u64,
    /// Alerts decoded.
    pub alerts_read: u64,
    /// Alerts that could not be decoded, by reason; each is a dead letter.
    pub rejected: BTreeMap<String, u64>,
    /// What the store added.
    pub stored: WriteSummary,
    /// Micro-batches written.
    pub batches: u64,
    /// Per science module: alerts, time, errors and panics (empty when no module ran).
    pub modules: Vec<ModuleStats>,
    /// Per filter loaded at some point of the run: alerts passed.
    pub filtered: BTreeMap<String, u64>,
    /// Time spent decoding, in the science modules, in the filters, and storing.
    pub decode_time: Duration,
    pub modules_time: Duration,
    pub filters_time: Duration,
    pub store_time: Duration,
    /// Wall time of the run (for a Kafka stream: to its last committed batch).
    pub elapsed: Duration,
}

impl IngestSummary {
    /// Alerts not decoded.
    pub fn n_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Alerts decoded per second of the whole run.
    pub fn alerts_per_second(&self) -> f64 {
        self.alerts_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Progress after each stored batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub messages: u64,
    pub alerts: u64,
}

/// A decoded micro-batch on its way to the store.
struct DecodedBatch {
    n_messages: u64,
    /// Alerts with their module outputs attached.
    alerts: Vec<Alert>,
    dead_letters: Vec<DeadLetter>,
    /// What each filter passed, with its payload rows.
    passes: Vec<(FilterPass, Vec<serde_json::Value>)>,
    decode_time: Duration,
    modules_time: Duration,
    filters_time: Duration,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Decodes one batch of messages; failures become dead letters with the raw bytes.
pub fn decode_batch(
    decoder: &mut Decoder,
    mut registry: Option<&mut SchemaRegistry>,
    messages: Vec<crate::source::Message>,
    keep_cutouts: bool,
) -> (Vec<Alert>, Vec<DeadLetter>) {
    let mut alerts = Vec::with_capacity(messages.len());
    let mut dead_letters = Vec::new();
    for message in messages {
        let results = decode_with_registry(decoder, registry.as_deref_mut(), &message.bytes, &message.origin);
        let first_letter = dead_letters.len();
        for result in results {
            match result {
                Ok(mut alert) => {
                    if !keep_cutouts {
                        alert.cutouts.clear();
                    }
                    alerts.push(alert);
                }
                Err(error) => {
                    tracing::warn!(origin = %error.origin, reason = error.reason(), "undecodable message: {error}");
                    dead_letters.push(DeadLetter {
                        id: None,
                        origin: match error.record {
                            Some(record) => format!("{} record {record}", error.origin),
                            None => error.origin.to_string(),
                        },
                        reason: error.reason().to_string(),
                        message: error.to_string(),
                        bytes: Vec::new(),
                        received_unix: now_unix(),
                    });
                }
            }
        }
        // The whole message is kept once, with its first failure, so a replay can retry it.
        if let Some(letter) = dead_letters.get_mut(first_letter) {
            letter.bytes = message.bytes;
        }
    }
    (alerts, dead_letters)
}

/// Reports the module runner's totals to the metrics.
pub fn record_module_metrics(metrics: &PipelineMetrics, modules: &ModuleRunner) {
    for stats in modules.stats() {
        metrics.module_totals(
            &stats.module,
            &ModuleTotals {
                alerts: stats.alerts,
                time: stats.total_time,
                errors: stats.errors,
                panics: stats.panics,
                skipped: stats.skipped,
            },
        );
    }
}

/// Counts a decoded batch: messages, their bytes, alerts by survey.
pub fn record_decoded(metrics: &PipelineMetrics, n_messages: u64, bytes: u64, alerts: &[Alert]) {
    metrics.messages_read(n_messages, bytes);
    let mut by_survey: BTreeMap<&'static str, u64> = BTreeMap::new();
    for alert in alerts {
        *by_survey.entry(alert.survey.as_str()).or_default() += 1;
    }
    for (survey, count) in by_survey {
        metrics.alerts_decoded(survey, count);
    }
}

/// Runs a source to its end into the store, running `modules` (which may hold no module) and
/// then `filters` on every batch before it is stored.
#[allow(clippy::too_many_arguments)]
pub async fn ingest<S: MessageSource>(
    mut source: S,
    decoder: Decoder,
    registry: Option<SchemaRegistry>,
    modules: ModuleRunner,
    filters: FilterStage,
    mut sinks: FilterSinks,
    store: Arc<dyn Store>,
    config: IngestConfig,
    mut on_progress: impl FnMut(Progress),
) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    // Two batches in flight at most: one being decoded, one being stored.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<DecodedBatch, SourceError>>(1);
    // The module statistics come back when the decoding thread ends.
    let (stats_sender, stats_receiver) = std::sync::mpsc::channel::<Vec<ModuleStats>>();
    let batch_size = config.batch_size;
    let keep_cutouts = config.keep_cutouts;
    let metrics = Arc::clone(&config.metrics);
    let decode_metrics = Arc::clone(&config.metrics);
    let decoding = std::thread::Builder::new()
        .name("nightjar-decode".to_string())
        .spawn(move || {
            let mut decoder = decoder;
            let mut registry = registry;
            let mut modules = modules;
            let mut filters = filters;
            let metrics = decode_metrics;
            loop {
                let batch = match source.next_batch(batch_size) {
                    Ok(Some(messages)) => {
                        let n_messages = messages.len() as u64;
                        let bytes: u64 = messages.iter().map(|message| message.bytes.len() as u64).sum();
                        let decode_started = Instant::now();
                        let (mut alerts, dead_letters) =
                            decode_batch(&mut decoder, registry.as_mut(), messages, keep_cutouts);
                        record_decoded(&metrics, n_messages, bytes, &alerts);
                        let modules_started = Instant::now();
                        let outputs = modules.run(&alerts);
                        outputs.attach_to(&mut alerts);
                        record_module_metrics(&metrics, &modules);
                        let filters_started = Instant::now();
                        let passes = filters
                            .run(&alerts, &outputs)
                            .into_iter()
                            .map(|pass| {
                                let rows = if !pass.has_delivery_sinks() {
                                    Vec::new()
                                } else {
                                    pass.rows(&alerts)
                                };
                                (pass, rows)
                            })
                            .collect();
                        let decode_time = modules_started - decode_started;
                        let modules_time = filters_started - modules_started;
                        let filters_time = filters_started.elapsed();
                        metrics.stage("decode", decode_time);
                        metrics.stage("modules", modules_time);
                        metrics.stage("filters", filters_time);
                        Ok(DecodedBatch {
                            n_messages,
                            alerts,
                            dead_letters,
                            passes,
                            decode_time,
                            modules_time,
                            filters_time,
                        })
                    }
                    Ok(None) => break,
                    Err(error) => Err(error),
                };
                let stop = batch.is_err();
                if sender.blocking_send(batch).is_err() || stop {
                    break;
                }
            }
            // The receiver may be gone already (ingestion failed); the stats are then unused.
            let _ = stats_sender.send(modules.stats().to_vec());
        })
        .map_err(|_| IngestError::DecoderGone)?;

    let mut summary = IngestSummary::default();
    while let Some(batch) = receiver.recv().await {
        let batch = batch?;
        let batch_index = summary.batches;
        let store_error = |error| IngestError::Store {
            batch: batch_index,
            error,
        };
        let store_started = Instant::now();
        if !batch.dead_letters.is_empty() {
            store
                .write_dead_letters(&batch.dead_letters)
                .await
                .map_err(store_error)?;
        }
        let written = store.write_batch(&batch.alerts).await.map_err(store_error)?;
        let store_time = store_started.elapsed();
        metrics.stage("store", store_time);
        metrics.stored(
            written.n_alerts - written.n_duplicate_alerts,
            written.n_duplicate_alerts,
        );
        for letter in &batch.dead_letters {
            metrics.dead_letter(&letter.reason);
        }
        let position = format!("{}_b{batch_index}", config.input_label);
        for (pass, rows) in &batch.passes {
            *summary.filtered.entry(pass.filter.clone()).or_default() += pass.passed.len() as u64;
            sinks
                .deliver(pass, rows, &batch.alerts, &|_| position.clone())
                .map_err(|error| IngestError::Outbox {
                    batch: batch_index,
                    error,
                })?;
        }
        summary.store_time += store_time;
        summary.decode_time += batch.decode_time;
        summary.modules_time += batch.modules_time;
        summary.filters_time += batch.filters_time;
        summary.stored.add(&written);
        summary.messages += batch.n_messages;
        summary.alerts_read += batch.alerts.len() as u64;
        for letter in &batch.dead_letters {
            *summary.rejected.entry(letter.reason.clone()).or_default() += 1;
        }
        summary.batches += 1;
        tracing::debug!(
            batch = batch_index,
            alerts = batch.alerts.len(),
            duplicate_alerts = written.n_duplicate_alerts,
            new_objects = written.new_objects,
            new_detections = written.new_detections,
            new_cutouts = written.new_cutouts,
            dead_letters = batch.dead_letters.len(),
            "stored batch"
        );
        on_progress(Progress {
            messages: summary.messages,
            alerts: summary.alerts_read,
        });
    }
    drop(receiver);
    decoding.join().map_err(|_| IngestError::DecoderGone)?;
    summary.modules = stats_receiver.recv().unwrap_or_default();
    summary.elapsed = started.elapsed();
    Ok(summary)
}
