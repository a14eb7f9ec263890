//! The Prometheus series of a running nightjar worker, and their text exposition.
//!
//! [`PipelineMetrics`] is shared (`Arc`) by the ingestion loops, which record what each
//! micro-batch did, and by whatever serves `/metrics` (`nightjar run --metrics-listen`, or the
//! API server of `nightjar run --serve`). Rates (alerts/s in and out, per module, per filter)
//! are what Prometheus computes from the counters, e.g.
//! `rate(nightjar_alerts_decoded_total[1m])`.
//!
//! Series (every counter ends in `_total` in the exposition):
//!
//! | series | labels | what |
//! |---|---|---|
//! | `nightjar_messages_read` | | messages (files, Kafka records) read |
//! | `nightjar_input_bytes` | | bytes of those messages |
//! | `nightjar_alerts_decoded` | `survey` | alerts decoded |
//! | `nightjar_dead_letters` | `reason` | undecodable messages, kept as dead letters |
//! | `nightjar_alerts_stored` | | alerts new to the store |
//! | `nightjar_alerts_duplicate` | | alerts the store already had (replays) |
//! | `nightjar_batches` | | micro-batches finished |
//! | `nightjar_batch_messages` | | histogram of messages per batch |
//! | `nightjar_stage_seconds` | `stage` | time spent per stage (poll, decode, modules, filters, store, sink, commit) |
//! | `nightjar_batch_stage_duration_seconds` | `stage` | histogram of one batch's time in a stage |
//! | `nightjar_records_published` | | output records acknowledged by the brokers |
//! | `nightjar_published_bytes` | | bytes of those records |
//! | `nightjar_commit_failures` | | offset commits that failed (the batch is read again) |
//! | `nightjar_consumer_lag` | | messages behind the end of the input partitions |
//! | `nightjar_output_latency_seconds` | | histogram, input record timestamp to delivery |
//! | `nightjar_module_alerts` | `module` | alerts a science module ran on |
//! | `nightjar_module_seconds` | `module` | time in the module |
//! | `nightjar_module_errors` / `_panics` / `_skipped` | `module` | failed, panicked, skipped batches |
//! | `nightjar_filter_alerts_seen` / `_passed` | `filter` | alerts a filter saw and passed |
//! | `nightjar_filter_seconds` | `filter` | time in the filter |
//! | `nightjar_filter_errors` / `_overruns` | `filter` | failed batches, batches over the time budget |
//! | `nightjar_filter_disabled` | `filter` | 1 when the filter was disabled for its errors |
//! | `nightjar_filters_active` | | filters loaded |
//! | `nightjar_filter_reloads` | `outcome` | reloads of the filter directory: `ok`, `rejected` |
//! | `nightjar_sink_records` | `sink`, `outcome` | records handed to a filter's sinks |
//! | `nightjar_webhook_pending` | | webhook posts waiting in the outbox |
//!
//! Invariant: no I/O; nothing here blocks the loops (atomic counters only; the cumulative
//! observers take a short lock).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label sets: one `(name, value)` pair.
type Labels = Vec<(&'static str, String)>;
type Seconds = Counter<f64, AtomicU64>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn stage_histogram() -> Histogram {
    // 0.1 ms to ~13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Cumulative values reported by a component that keeps its own totals (the module runner,
/// the filters), turned into counter increments.
#[derive(Debug, Default)]
struct Totals {
    last: Mutex<HashMap<(String, &'static str), f64>>,
}

impl Totals {
    /// The increase of `key`'s total since the last call; a total that went down (a filter
    /// recompiled, its counters restarted) counts from zero.
    fn delta(&self, key: &str, series: &'static str, total: f64) -> f64 {
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = last.insert((key.to_string(), series), total).unwrap_or(0.0);
        if total >= previous { total - previous } else { total }
    }
}

/// One science module's totals since the worker started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModuleTotals {
    pub alerts: u64,
    pub time: Duration,
    pub errors: u64,
    pub panics: u64,
    pub skipped: u64,
}

/// One filter's totals since it was (re)compiled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FilterTotals {
    pub alerts_seen: u64,
    pub alerts_passed: u64,
    pub time: Duration,
    pub errors: u64,
    pub overruns: u64,
    pub disabled: bool,
}

/// Every series of a worker.
#[derive(Debug)]
pub struct PipelineMetrics {
    registry: Registry,
    messages: Counter,
    input_bytes: Counter,
    alerts: Family<Labels, Counter>,
    dead_letters: Family<Labels, Counter>,
    stored: Counter,
    duplicates: Counter,
    batches: Counter,
    batch_messages: Histogram,
    stage_seconds: Family<Labels, Seconds>,
    stage_durations: HistogramFamily,
    published: Counter,
    published_bytes: Counter,
    commit_failures: Counter,
    lag: Gauge,
    latency: Histogram,
    module_alerts: Family<Labels, Counter>,
    module_seconds: Family<Labels, Seconds>,
    module_errors: Family<Labels, Counter>,
    module_panics: Family<Labels, Counter>,
    module_skipped: Family<Labels, Counter>,
    filter_seen: Family<Labels, Counter>,
    filter_passed: Family<Labels, Counter>,
    filter_seconds: Family<Labels, Seconds>,
    filter_errors: Family<Labels, Counter>,
    filter_overruns: Family<Labels, Counter>,
    filter_disabled: Family<Labels, Gauge>,
    filters_active: Gauge,
    filter_reloads: Family<Labels, Counter>,
    sink_records: Family<Labels, Counter>,
    webhook_pending: Gauge<i64, AtomicI64>,
    totals: Totals,
}

impl Default for PipelineMetrics {
    fn default() -> PipelineMetrics {
        PipelineMetrics::new()
    }
}

impl PipelineMetrics {
    /// Every series, registered and at zero.
    pub fn new() -> PipelineMetrics {
        let mut registry = Registry::default();
        macro_rules! series {
            ($name:literal, $help:literal, $metric:expr) => {{
                let metric = $metric;
                registry.register($name, $help, metric.clone());
                metric
            }};
        }
        let histograms = || HistogramFamily::new_with_constructor(stage_histogram as fn() -> Histogram);
        PipelineMetrics {
            messages: series!(
                "nightjar_messages_read",
                "messages (files, Kafka records) read",
                Counter::default()
            ),
            input_bytes: series!("nightjar_input_bytes", "bytes of the messages read", Counter::default()),
            alerts: series!(
                "nightjar_alerts_decoded",
                "alerts decoded, by survey",
                Family::default()
            ),
            dead_letters: series!(
                "nightjar_dead_letters",
                "undecodable messages kept as dead letters, by reason",
                Family::default()
            ),
            stored: series!("nightjar_alerts_stored", "alerts new to the store", Counter::default()),
            duplicates: series!(
                "nightjar_alerts_duplicate",
                "alerts the store already had (replays after a restart)",
                Counter::default()
            ),
            batches: series!("nightjar_batches", "micro-batches finished", Counter::default()),
            batch_messages: series!(
                "nightjar_batch_messages",
                "messages per micro-batch",
                Histogram::new(exponential_buckets(1.0, 2.0, 16))
            ),
            stage_seconds: series!(
                "nightjar_stage_seconds",
                "time spent per pipeline stage, seconds",
                Family::default()
            ),
            stage_durations: series!(
                "nightjar_batch_stage_duration_seconds",
                "time of one micro-batch in one stage, seconds",
                histograms()
            ),
            published: series!(
                "nightjar_records_published",
                "output records acknowledged by the Kafka brokers",
                Counter::default()
            ),
            published_bytes: series!(
                "nightjar_published_bytes",
                "bytes (keys and values) of the acknowledged output records",
                Counter::default()
            ),
            commit_failures: series!(
                "nightjar_commit_failures",
                "offset commits that failed; their batches are read again",
                Counter::default()
            ),
            lag: series!(
                "nightjar_consumer_lag",
                "messages between the committed position and the end of the input partitions",
                Gauge::default()
            ),
            latency: series!(
                "nightjar_output_latency_seconds",
                "input record timestamp to the delivery of its output record, seconds",
                Histogram::new(exponential_buckets(0.001, 2.0, 18))
            ),
            module_alerts: series!(
                "nightjar_module_alerts",
                "alerts a science module ran on",
                Family::default()
            ),
            module_seconds: series!(
                "nightjar_module_seconds",
                "time spent in a science module, seconds",
                Family::default()
            ),
            module_errors: series!(
                "nightjar_module_errors",
                "batches where a science module failed",
                Family::default()
            ),
            module_panics: series!(
                "nightjar_module_panics",
                "batches where a science module panicked (contained)",
                Family::default()
            ),
            module_skipped: series!(
                "nightjar_module_skipped",
                "batches a science module skipped because a module it needs failed",
                Family::default()
            ),
            filter_seen: series!("nightjar_filter_alerts_seen", "alerts a filter saw", Family::default()),
            filter_passed: series!(
                "nightjar_filter_alerts_passed",
                "alerts a filter passed",
                Family::default()
            ),
            filter_seconds: series!(
                "nightjar_filter_seconds",
                "time spent evaluating a filter, seconds",
                Family::default()
            ),
            filter_errors: series!(
                "nightjar_filter_errors",
                "batches where a filter failed",
                Family::default()
            ),
            filter_overruns: series!(
                "nightjar_filter_overruns",
                "batches where a filter went over its time budget",
                Family::default()
            ),
            filter_disabled: series!(
                "nightjar_filter_disabled",
                "1 when a filter was disabled for its errors or overruns",
                Family::default()
            ),
            filters_active: series!("nightjar_filters_active", "filters loaded", Gauge::default()),
            filter_reloads: series!(
                "nightjar_filter_reloads",
                "reloads of the filter directory, by outcome (ok, rejected)",
                Family::default()
            ),
            sink_records: series!(
                "nightjar_sink_records",
                "records handed to filter sinks, by sink kind and outcome",
                Family::default()
            ),
            webhook_pending: series!(
                "nightjar_webhook_pending",
                "webhook posts waiting in the outbox",
                Gauge::default()
            ),
            registry,
            totals: Totals::default(),
        }
    }

    /// The text exposition of every series (OpenMetrics 1.0).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// Messages read, and their bytes.
    pub fn messages_read(&self, messages: u64, bytes: u64) {
        self.messages.inc_by(messages);
        self.input_bytes.inc_by(bytes);
        self.batch_messages.observe(messages as f64);
    }

    /// Alerts decoded from one survey.
    pub fn alerts_decoded(&self, survey: &str, alerts: u64) {
        self.alerts
            .get_or_create(&vec![("survey", survey.to_string())])
            .inc_by(alerts);
    }

    /// One dead letter.
    pub fn dead_letter(&self, reason: &str) {
        self.dead_letters
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    /// What the store did with one batch.
    pub fn stored(&self, new_alerts: u64, duplicate_alerts: u64) {
        self.stored.inc_by(new_alerts);
        self.duplicates.inc_by(duplicate_alerts);
        self.batches.inc();
    }

    /// Time one batch spent in `stage`.
    pub fn stage(&self, stage: &'static str, elapsed: Duration) {
        let labels = vec![("stage", stage.to_string())];
        self.stage_seconds.get_or_create(&labels).inc_by(elapsed.as_secs_f64());
        self.stage_durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Output records acknowledged, and their bytes.
    pub fn published(&self, records: u64, bytes: u64) {
        self.published.inc_by(records);
        self.published_bytes.inc_by(bytes);
    }

    /// One failed offset commit.
    pub fn commit_failed(&self) {
        self.commit_failures.inc();
    }

    /// The consumer lag, messages.
    pub fn set_lag(&self, lag: i64) {
        self.lag.set(lag);
    }

    /// One input-to-output latency.
    pub fn output_latency(&self, latency: Duration) {
        self.latency.observe(latency.as_secs_f64());
    }

    /// A science module's totals since the worker started (the loops report them after each
    /// batch; the counters grow by the difference).
    pub fn module_totals(&self, module: &str, totals: &ModuleTotals) {
        let labels = vec![("module", module.to_string())];
        let delta = |series, total: f64| self.totals.delta(module, series, total);
        self.module_alerts
            .get_or_create(&labels)
            .inc_by(delta("alerts", totals.alerts as f64) as u64);
        self.module_seconds
            .get_or_create(&labels)
            .inc_by(delta("seconds", totals.time.as_secs_f64()));
        self.module_errors
            .get_or_create(&labels)
            .inc_by(delta("errors", totals.errors as f64) as u64);
        self.module_panics
            .get_or_create(&labels)
            .inc_by(delta("panics", totals.panics as f64) as u64);
        self.module_skipped
            .get_or_create(&labels)
            .inc_by(delta("skipped", totals.skipped as f64) as u64);
    }

    /// The totals of version `version` of a filter since it was compiled (a new version starts
    /// again from zero; the filter's counters keep growing).
    pub fn filter_totals(&self, filter: &str, version: &str, totals: &FilterTotals) {
        let labels = vec![("filter", filter.to_string())];
        let key = format!("filter {filter} {version}");
        let delta = |series, total: f64| self.totals.delta(&key, series, total);
        self.filter_seen
            .get_or_create(&labels)
            .inc_by(delta("seen", totals.alerts_seen as f64) as u64);
        self.filter_passed
            .get_or_create(&labels)
            .inc_by(delta("passed", totals.alerts_passed as f64) as u64);
        self.filter_seconds
            .get_or_create(&labels)
            .inc_by(delta("seconds", totals.time.as_secs_f64()));
        self.filter_errors
            .get_or_create(&labels)
            .inc_by(delta("errors", totals.errors as f64) as u64);
        self.filter_overruns
            .get_or_create(&labels)
            .inc_by(delta("overruns", totals.overruns as f64) as u64);
        self.filter_disabled
            .get_or_create(&labels)
            .set(i64::from(totals.disabled));
    }

    /// Filters loaded, and one reload's outcome (`ok` or `rejected`).
    pub fn filters_reloaded(&self, active: usize, outcome: &'static str) {
        self.filters_active.set(active as i64);
        self.filter_reloads
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// Records handed to a sink of kind `sink` (`kafka`, `webhook`, `file`) with `outcome`
    /// (`ok`, `error`).
    pub fn sink_records(&self, sink: &'static str, outcome: &'static str, records: u64) {
        self.sink_records
            .get_or_create(&vec![("sink", sink.to_string()), ("outcome", outcome.to_string())])
            .inc_by(records);
    }

    /// Webhook posts waiting in the outbox.
    pub fn set_webhook_pending(&self, pending: usize) {
        self.webhook_pending.set(pending as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|number| number.parse().ok())
    }

    #[test]
    fn cumulative_totals_become_increments() {
        let metrics = PipelineMetrics::new();
        let totals = |alerts, seconds| ModuleTotals {
            alerts,
            time: Duration::from_secs_f64(seconds),
            ..ModuleTotals::default()
        };
        metrics.module_totals("rates", &totals(100, 0.5));
        metrics.module_totals("rates", &totals(250, 1.25));
        let text = metrics.encode().expect("encode");
        assert_eq!(
            value(&text, r#"nightjar_module_alerts_total{module="rates"}"#),
            Some(250.0)
        );
        assert_eq!(
            value(&text, r#"nightjar_module_seconds_total{module="rates"}"#),
            Some(1.25)
        );

        // A new version of a filter: its totals restart, the counter keeps growing.
        let filter = |passed| FilterTotals {
            alerts_seen: 10,
            alerts_passed: passed,
            ..FilterTotals::default()
        };
        metrics.filter_totals("fast", "v1", &filter(7));
        metrics.filter_totals("fast", "v2", &filter(2));
        let text = metrics.encode().expect("encode");
        assert_eq!(
            value(&text, r#"nightjar_filter_alerts_passed_total{filter="fast"}"#),
            Some(9.0)
        );
        assert_eq!(
            value(&text, r#"nightjar_filter_alerts_seen_total{filter="fast"}"#),
            Some(20.0)
        );
    }

    #[test]
    fn exposition_names_every_stage_and_survey() {
        let metrics = PipelineMetrics::new();
        metrics.messages_read(12, 1_000);
        metrics.alerts_decoded("ztf", 12);
        metrics.dead_letter("corrupt");
        metrics.stored(11, 1);
        metrics.stage("decode", Duration::from_millis(3));
        metrics.set_lag(42);
        let text = metrics.encode().expect("encode");
        assert_eq!(value(&text, "nightjar_messages_read_total"), Some(12.0));
        assert_eq!(
            value(&text, r#"nightjar_alerts_decoded_total{survey="ztf"}"#),
            Some(12.0)
        );
        assert_eq!(
            value(&text, r#"nightjar_dead_letters_total{reason="corrupt"}"#),
            Some(1.0)
        );
        assert_eq!(value(&text, "nightjar_alerts_duplicate_total"), Some(1.0));
        assert_eq!(
            value(&text, r#"nightjar_stage_seconds_total{stage="decode"}"#),
            Some(0.003)
        );
        assert_eq!(value(&text, "nightjar_consumer_lag"), Some(42.0));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
