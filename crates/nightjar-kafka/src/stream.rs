//! The streaming loop: Kafka micro-batch -> decode -> science modules -> filters -> store ->
//! publish (the stream of every alert and each filter's topics) and wait for every delivery ->
//! commit. Offsets are committed only after the store and the sink are done with a
//! batch, so a crash anywhere replays the batch (the store is idempotent; duplicates on the
//! output carry the same `source_id` header).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nightjar_core::Alert;
use nightjar_decode::Decoder;
use nightjar_filter::Payload;
use nightjar_metrics::PipelineMetrics;
use nightjar_modules::ModuleRunner;
use nightjar_pipeline::{
    FilterPass, FilterSinks, FilterStage, IngestSummary, OutboxError, decode_batch, record_decoded,
    record_module_metrics,
};
use nightjar_registry::SchemaRegistry;
use nightjar_store::{DeadLetter, Store, StoreError};
use thiserror::Error;
use tokio::sync::watch;

use crate::consumer::KafkaSource;
use crate::error::KafkaError;
use crate::output::{OutputEnricher, OutputRecord, RawRecords};
use crate::sink::{AlertSink, DeadLetterSink, RecordView};

/// When the loop stops, besides a shutdown request.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Drop cutouts before storing.
    pub keep_cutouts: bool,
    /// Stop after this many messages (tests, benchmarks).
    pub max_messages: Option<u64>,
    /// Stop once no message has arrived for this long (tests, replays); `None` runs until
    /// shutdown.
    pub stop_when_idle: Option<Duration>,
    /// Crash tests: abort the process at this point of this batch.
    pub crash_at: Option<CrashAt>,
}

/// A point in a batch's life where a crash test aborts the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Decoded, nothing stored.
    AfterDecode,
    /// Stored, nothing published.
    AfterStore,
    /// Published, before the delivery reports.
    AfterProduce,
    /// Every delivery report in, not committed.
    AfterDelivery,
}

/// Where a crash test aborts: a point of the batch with this index (0 = the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashAt {
    pub point: CrashPoint,
    pub batch: u64,
}

impl std::str::FromStr for CrashAt {
    type Err = String;

    /// `after_decode`, `after_store`, `after_produce` or `after_delivery`, then `:BATCH`.
    fn from_str(text: &str) -> Result<CrashAt, String> {
        let (point, batch) = text.split_once(':').unwrap_or((text, "0"));
        let point = match point {
            "after_decode" => CrashPoint::AfterDecode,
            "after_store" => CrashPoint::AfterStore,
            "after_produce" => CrashPoint::AfterProduce,
            "after_delivery" => CrashPoint::AfterDelivery,
            other => {
                return Err(format!(
                    "crash point {other:?} (expected after_decode, after_store, after_produce or after_delivery, then :BATCH)"
                ));
            }
        };
        let batch = batch
            .parse()
            .map_err(|_| format!("crash point batch {batch:?} is not a number"))?;
        Ok(CrashAt { point, batch })
    }
}

fn crash_if(options: &StreamOptions, point: CrashPoint, batch: u64) {
    if options.crash_at == Some(CrashAt { point, batch }) {
        tracing::error!(?point, batch, "crash test: aborting");
        std::process::abort();
    }
}

/// Why the loop stopped with an error; the batch it was on is not committed.
#[derive(Debug, Error)]
pub enum StreamError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("storing batch {batch}: {error}")]
    Store { batch: u64, error: StoreError },
    #[error("batch {batch}: {error}")]
    Outbox { batch: u64, error: OutboxError },
}

/// Time spent per stage, summed over batches.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    pub poll: Duration,
    pub decode: Duration,
    pub modules: Duration,
    pub filters: Duration,
    pub store: Duration,
    pub sink: Duration,
    pub commit: Duration,
}

/// What a streaming run did.
#[derive(Debug, Clone, Default)]
pub struct StreamSummary {
    /// Messages read, alerts decoded and stored, dead letters, batches (as file ingestion).
    pub ingest: IngestSummary,
    /// Bytes of the messages read (values).
    pub received_bytes: u64,
    /// Records published and acknowledged by the brokers.
    pub delivered: u64,
    /// Bytes published (keys and values).
    pub delivered_bytes: u64,
    /// Stored alerts not published (their message had an undecodable record), by reason.
    pub not_published: u64,
    /// Dead letters published to the dead-letter topic.
    pub dead_letters_published: u64,
    /// Batches committed.
    pub commits: u64,
    /// Commits that failed (their records are read again after a restart or rebalance).
    pub commit_failures: u64,
    /// Largest batch, messages.
    pub max_batch: usize,
    /// Consumer lag at the end, when known.
    pub lag: Option<i64>,
    /// Time per stage.
    pub stages: StageTimes,
    /// Input-record timestamp to delivery, ms, one sample per published alert (capped).
    pub latencies_ms: Vec<i64>,
}

/// How much longer than `stop_when_idle` a worker waits for partitions before it stops.
const UNASSIGNED_GRACE: Duration = Duration::from_secs(60);

/// Most latency samples kept.
const MAX_LATENCY_SAMPLES: usize = 1_000_000;

/// Where a streaming run gets its parts.
#[allow(missing_debug_implementations)]
pub struct StreamParts<'a> {
    pub source: &'a KafkaSource,
    pub decoder: &'a mut Decoder,
    pub registry: Option<&'a mut SchemaRegistry>,
    pub store: Arc<dyn Store>,
    pub sink: Option<&'a AlertSink>,
    /// Where undecodable messages are published besides the store, if anywhere.
    pub dead_letter_sink: Option<&'a DeadLetterSink>,
    /// The science modules, run on every batch before it is stored; their outputs are stored
    /// and published with the alerts.
    pub modules: &'a mut ModuleRunner,
    /// The filters, run after the modules; what each passes goes to its Kafka topics (through
    /// `sink`) and its other sinks (through `on_filtered`).
    pub filters: &'a mut FilterStage,
    /// The filters' webhook and file sinks.
    pub sinks: &'a mut FilterSinks,
    /// Where each batch is counted.
    pub metrics: Arc<PipelineMetrics>,
}

/// The name of a filter's Kafka topic: `{filter}` and `{survey}` in the pattern replaced.
pub fn filter_topic_name(pattern: &str, filter: &str, survey: &str) -> String {
    pattern.replace("{filter}", filter).replace("{survey}", survey)
}

/// One record of a filter's topic.
enum FilterRecord {
    /// The enriched Avro output record of the alert (payload `full`), by index.
    Output(usize),
    /// A JSON row (payloads `lite` and `ids`), with the alert's ids.
    Json {
        value: Vec<u8>,
        object_id: String,
        source_id: i64,
        survey: nightjar_core::Survey,
    },
}

/// The records of every filter topic of one batch, by topic. `rows` are each pass's payload
/// rows (empty where no sink needs them).
fn filter_records(
    passes: &[FilterPass],
    rows: &[Vec<serde_json::Value>],
    alerts: &[Alert],
    output_of_alert: &[Option<usize>],
) -> Vec<(String, Vec<FilterRecord>)> {
    let mut topics: std::collections::BTreeMap<String, Vec<FilterRecord>> = std::collections::BTreeMap::new();
    for (pass, rows) in passes.iter().zip(rows) {
        let patterns: Vec<&str> = pass.kafka_topics().collect();
        if patterns.is_empty() {
            continue;
        }
        for (row, &index) in pass.passed.iter().enumerate() {
            let Some(alert) = alerts.get(index) else { continue };
            for pattern in &patterns {
                let topic = filter_topic_name(pattern, &pass.filter, alert.survey.as_str());
                let record = match pass.payload {
                    Payload::Full => match output_of_alert.get(index).copied().flatten() {
                        Some(output) => FilterRecord::Output(output),
                        None => continue,
                    },
                    Payload::Lite | Payload::Ids => FilterRecord::Json {
                        value: rows
                            .get(row)
                            .map(|row| row.to_string().into_bytes())
                            .unwrap_or_default(),
                        object_id: alert.object_id.clone(),
                        source_id: alert.detection.source_id,
                        survey: alert.survey,
                    },
                };
                topics.entry(topic).or_default().push(record);
            }
        }
    }
    topics.into_iter().collect()
}

/// Runs the loop until a shutdown request (`*shutdown` becomes true: the batch in hand is
/// finished and committed first), an option's limit, or an error. `on_batch` sees the summary
/// after each committed batch.
pub async fn run_stream(
    parts: StreamParts<'_>,
    options: &StreamOptions,
    shutdown: watch::Receiver<bool>,
    mut on_batch: impl FnMut(&StreamSummary),
) -> Result<StreamSummary, StreamError> {
    let StreamParts {
        source,
        decoder,
        mut registry,
        store,
        sink,
        dead_letter_sink,
        modules,
        filters,
        sinks: filter_sinks,
        metrics,
    } = parts;
    let mut enricher = OutputEnricher::new(
        modules
            .columns()
            .into_iter()
            .map(|(_, column)| nightjar_avro::OutputField {
                name: column.name.to_string(),
                column_type: column.column_type,
                doc: column.description.to_string(),
            })
            .collect(),
        modules
            .modules()
            .iter()
            .map(|module| (module.name().to_string(), module.version().to_string()))
            .collect(),
    );
    let started = Instant::now();
    let mut summary = StreamSummary::default();
    let mut last_message = Instant::now();
    let mut unassigned_since: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            tracing::info!("shutdown requested; the last batch is committed");
            break;
        }
        if options.max_messages.is_some_and(|max| summary.ingest.messages >= max) {
            break;
        }
        let stage = Instant::now();
        // A batch waits at most `max_wait_ms`, so a shutdown request is seen within it.
        let mut batch = source.next_batch().await?;
        summary.stages.poll += stage.elapsed();
        metrics.stage("poll", stage.elapsed());
        if batch.is_empty() {
            if let Some(idle) = options.stop_when_idle {
                // Idle time counts only while partitions are assigned: a worker waiting for
                // the group to rebalance (a dead member's session has not expired yet) is not
                // idle. Unassigned for a minute past the idle time, it gives up.
                if source.assignment().is_empty() {
                    let since = *unassigned_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= idle + UNASSIGNED_GRACE {
                        tracing::warn!(
                            "no partition assigned for {:.0} s; stopping",
                            since.elapsed().as_secs_f64()
                        );
                        break;
                    }
                    last_message = Instant::now();
                } else {
                    unassigned_since = None;
                    if last_message.elapsed() >= idle {
                        break;
                    }
                }
            }
            continue;
        }
        unassigned_since = None;
        last_message = Instant::now();
        let offsets = batch.offsets();
        let timestamps: Vec<Option<i64>> = batch.records.iter().map(|record| record.timestamp_ms).collect();
        let messages = batch.take_messages();
        let n_messages = messages.len();
        let n_bytes: u64 = messages.iter().map(|message| message.bytes.len() as u64).sum();

        // Decode, one message at a time so that each alert keeps its raw record.
        let stage = Instant::now();
        let mut alerts: Vec<Alert> = Vec::with_capacity(n_messages);
        let mut dead_letters: Vec<DeadLetter> = Vec::new();
        let mut dead_letter_origins: Vec<nightjar_core::Origin> = Vec::new();
        let mut outputs: Vec<OutputRecord> = Vec::new();
        // The alert of each output record, by index into `alerts`.
        let mut output_alerts: Vec<usize> = Vec::new();
        // The input partition of each alert, and each partition's offset range in the batch.
        let mut alert_partitions: Vec<usize> = Vec::new();
        let mut partitions: Vec<(String, i32, i64, i64)> = Vec::new();
        for (message, timestamp_ms) in messages.into_iter().zip(timestamps) {
            let origin = message.origin.clone();
            let partition_index = match &origin {
                nightjar_core::Origin::Kafka {
                    topic,
                    partition,
                    offset,
                } => match partitions.iter().position(|(t, p, _, _)| t == topic && p == partition) {
                    Some(index) => {
                        let range = &mut partitions[index];
                        range.2 = range.2.min(*offset);
                        range.3 = range.3.max(*offset);
                        index
                    }
                    None => {
                        partitions.push((topic.clone(), *partition, *offset, *offset));
                        partitions.len() - 1
                    }
                },
                _ => 0,
            };
            let raw = match sink {
                Some(_) => RawRecords::split(decoder, &message.bytes, &origin).ok(),
                None => None,
            };
            let (decoded, letters) =
                decode_batch(decoder, registry.as_deref_mut(), vec![message], options.keep_cutouts);
            if let Some(raw) = raw.filter(|_| !decoded.is_empty()) {
                match raw.into_output(decoder, &decoded, &origin, timestamp_ms) {
                    Ok(records) => {
                        output_alerts.extend(alerts.len()..alerts.len() + records.len());
                        outputs.extend(records);
                    }
                    Err(error) => {
                        tracing::warn!(origin = %origin, "not published: {error}");
                        summary.not_published += decoded.len() as u64;
                    }
                }
            }
            alert_partitions.extend(std::iter::repeat_n(partition_index, decoded.len()));
            alerts.extend(decoded);
            dead_letter_origins.extend(std::iter::repeat_n(origin, letters.len()));
            dead_letters.extend(letters);
        }
        summary.stages.decode += stage.elapsed();
        metrics.stage("decode", stage.elapsed());
        record_decoded(&metrics, n_messages as u64, n_bytes, &alerts);

        // Science modules: outputs attached to each alert, then added to its output record.
        let stage = Instant::now();
        let module_outputs = modules.run(&alerts);
        module_outputs.attach_to(&mut alerts);
        if !enricher.is_empty() {
            for (output, &alert_index) in outputs.iter_mut().zip(&output_alerts) {
                enricher.enrich(output, &alerts[alert_index].module_values)?;
            }
        }
        summary.stages.modules += stage.elapsed();
        metrics.stage("modules", stage.elapsed());
        record_module_metrics(&metrics, modules);

        // Filters: what each passes, and the records of their topics.
        let stage = Instant::now();
        let passes = filters.run(&alerts, &module_outputs);
        drop(module_outputs);
        let mut output_of_alert: Vec<Option<usize>> = vec![None; alerts.len()];
        for (output, &alert_index) in output_alerts.iter().enumerate() {
            output_of_alert[alert_index] = Some(output);
        }
        // Payload rows, once per pass, where a JSON topic or a webhook or file sink needs them.
        let rows: Vec<Vec<serde_json::Value>> = passes
            .iter()
            .map(|pass| {
                let json_topic =
                    sink.is_some() && pass.payload != Payload::Full && pass.kafka_topics().next().is_some();
                if json_topic || pass.has_delivery_sinks() {
                    pass.rows(&alerts)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let topic_records = if sink.is_some() {
            filter_records(&passes, &rows, &alerts, &output_of_alert)
        } else {
            Vec::new()
        };
        for pass in &passes {
            *summary.ingest.filtered.entry(pass.filter.clone()).or_default() += pass.passed.len() as u64;
        }
        summary.stages.filters += stage.elapsed();
        metrics.stage("filters", stage.elapsed());
        crash_if(options, CrashPoint::AfterDecode, summary.ingest.batches);

        // Store.
        let stage = Instant::now();
        let batch_index = summary.ingest.batches;
        let store_error = |error| StreamError::Store {
            batch: batch_index,
            error,
        };
        if !dead_letters.is_empty() {
            store.write_dead_letters(&dead_letters).await.map_err(store_error)?;
            if let Some(dead_letter_sink) = dead_letter_sink {
                let letters: Vec<_> = dead_letter_origins.into_iter().zip(&dead_letters).collect();
                summary.dead_letters_published += dead_letter_sink.send_all(&letters).await?;
            }
        }
        let written = store.write_batch(&alerts).await.map_err(store_error)?;
        summary.stages.store += stage.elapsed();
        metrics.stage("store", stage.elapsed());
        metrics.stored(
            written.n_alerts - written.n_duplicate_alerts,
            written.n_duplicate_alerts,
        );
        for letter in &dead_letters {
            metrics.dead_letter(&letter.reason);
        }
        crash_if(options, CrashPoint::AfterStore, batch_index);

        // The filters' webhook posts (into the outbox) and files.
        let stage = Instant::now();
        let position = |alert_index: usize| {
            alert_partitions
                .get(alert_index)
                .and_then(|&index| partitions.get(index))
                .map_or_else(
                    || format!("batch{batch_index}"),
                    |(topic, partition, first, last)| nightjar_sinks::kafka_position(topic, *partition, *first, *last),
                )
        };
        for (pass, rows) in passes.iter().zip(&rows) {
            filter_sinks
                .deliver(pass, rows, &alerts, &position)
                .map_err(|error| StreamError::Outbox {
                    batch: batch_index,
                    error,
                })?;
        }
        summary.stages.sink += stage.elapsed();

        // Publish and wait for every delivery report.
        let stage = Instant::now();
        if let Some(sink) = sink {
            let mut pending = sink.publish(&outputs).await?;
            for (topic, records) in &topic_records {
                let views = records.iter().filter_map(|record| match record {
                    FilterRecord::Output(index) => outputs.get(*index).map(RecordView::of),
                    FilterRecord::Json {
                        value,
                        object_id,
                        source_id,
                        survey,
                    } => Some(RecordView {
                        key: None,
                        value,
                        content_type: Some("application/json"),
                        object_id,
                        source_id: *source_id,
                        survey: *survey,
                    }),
                });
                let published = sink.publish_to(topic, views).await?;
                metrics.sink_records("kafka", "ok", records.len() as u64);
                pending.extend(published);
            }
            crash_if(options, CrashPoint::AfterProduce, batch_index);
            let delivered = sink.wait(pending).await?;
            summary.delivered += delivered.records;
            summary.delivered_bytes += delivered.bytes;
            metrics.published(delivered.records, delivered.bytes);
            let now_ms = unix_ms();
            for output in &outputs {
                if let Some(input_ms) = output.input_timestamp_ms {
                    metrics.output_latency(Duration::from_millis((now_ms - input_ms).max(0) as u64));
                    if summary.latencies_ms.len() < MAX_LATENCY_SAMPLES {
                        summary.latencies_ms.push(now_ms - input_ms);
                    }
                }
            }
        }
        summary.stages.sink += stage.elapsed();
        metrics.stage("sink", stage.elapsed());

        crash_if(options, CrashPoint::AfterDelivery, batch_index);

        // Commit.
        let stage = Instant::now();
        match source.commit(&offsets) {
            Ok(()) => summary.commits += 1,
            Err(error) => {
                summary.commit_failures += 1;
                metrics.commit_failed();
                tracing::warn!("{error}; the batch will be read again after a restart or rebalance");
            }
        }
        summary.stages.commit += stage.elapsed();
        metrics.stage("commit", stage.elapsed());

        summary.ingest.stored.add(&written);
        summary.ingest.messages += n_messages as u64;
        summary.received_bytes += n_bytes;
        summary.ingest.alerts_read += alerts.len() as u64;
        for letter in &dead_letters {
            *summary.ingest.rejected.entry(letter.reason.clone()).or_default() += 1;
        }
        summary.ingest.batches += 1;
        summary.max_batch = summary.max_batch.max(n_messages);
        summary.lag = source.lag();
        if let Some(lag) = summary.lag {
            metrics.set_lag(lag);
        }
        summary.ingest.elapsed = started.elapsed();
        tracing::debug!(
            batch = batch_index,
            messages = n_messages,
            alerts = alerts.len(),
            dead_letters = dead_letters.len(),
            published = outputs.len(),
            offsets = %offsets,
            "batch committed"
        );
        on_batch(&summary);
    }
    summary.lag = source.lag();
    // Elapsed runs to the last committed batch (idle waiting at the end is not work).
    if summary.ingest.batches == 0 {
        summary.ingest.elapsed = started.elapsed();
    }
    summary.ingest.modules = modules.stats().to_vec();
    summary.ingest.decode_time = summary.stages.decode;
    summary.ingest.modules_time = summary.stages.modules;
    summary.ingest.filters_time = summary.stages.filters;
    summary.ingest.store_time = summary.stages.store;
    Ok(summary)
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Quantiles of latency samples (ms): `(p50, p99, max)`, or `None` without samples.
pub fn latency_quantiles(samples: &[i64]) -> Option<(i64, i64, i64)> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |quantile: f64| sorted[((sorted.len() - 1) as f64 * quantile).round() as usize];
    Some((at(0.5), at(0.99), sorted[sorted.len() - 1]))
}
