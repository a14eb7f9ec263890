//! `nightjar run`: ingest alert files end to end into the science database, and `nightjar demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use nightjar_decode::Decoder;
use nightjar_pipeline::{FileSource, IngestConfig, IngestSummary};
use nightjar_registry::SchemaRegistry;
use nightjar_store::Store;
use nightjar_store_postgres::PostgresStore;
use nightjar_store_sqlite::SqliteStore;

use crate::config::{Config, without_password};
use crate::worker::Worker;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Where alerts come from: an Avro file, a directory of .avro files (searched
    /// recursively), or a glob such as 'alerts/2024*/*.avro'. Each file is one message: an
    /// Avro container (one or many alerts) or a Confluent wire-format message. Or a Kafka
    /// stream: kafka://HOST:PORT/TOPIC[,TOPIC] (a topic starting with ^ is a pattern), or
    /// `kafka` for the [kafka] settings of the configuration file; it runs until Ctrl-C or
    /// SIGTERM, which finish and commit the batch in hand.
    #[arg(long, value_name = "FILE|DIR|GLOB|kafka://HOST:PORT/TOPIC")]
    pub source: String,
    /// Data directory of the embedded store (overrides store.path).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Messages per micro-batch (overrides pipeline.batch_size).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Do not store cutouts (the three FITS stamps, ~75% of an alert's bytes).
    #[arg(long)]
    pub no_cutouts: bool,
    /// Schema registry URL for unknown Rubin schema ids (overrides schema_registry.url).
    #[arg(long, value_name = "URL")]
    pub schema_registry: Option<String>,
    /// No progress bar (also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Also serve the API (as `nightjar serve`, on serve.listen) while ingesting, and keep
    /// serving after the input ends until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub serve: bool,
    /// Serve the ingestion metrics (Prometheus text at /metrics) on this address while
    /// running (overrides metrics.listen); with --serve, the API's /metrics has them too.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub metrics_listen: Option<String>,
    /// Kafka options.
    #[command(flatten)]
    pub kafka: crate::kafka::KafkaRunArgs,
}

/// Peak resident memory of this process so far, bytes (Linux; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Opens the configured store for writing: PostgreSQL when `store.url` is set, else the
/// embedded store in `data_dir` (or `store.path`). Returns a label for messages (the data
/// directory, or the URL without its password) and the store.
pub async fn open_store(config: &Config, data_dir: Option<&Path>) -> anyhow::Result<(String, Arc<dyn Store>)> {
    open(config, data_dir, false).await
}

/// Opens the configured store for reading only: no writer lock is taken on the embedded store.
pub async fn open_reader(config: &Config, data_dir: Option<&Path>) -> anyhow::Result<(String, Arc<dyn Store>)> {
    open(config, data_dir, true).await
}

async fn open(config: &Config, data_dir: Option<&Path>, read_only: bool) -> anyhow::Result<(String, Arc<dyn Store>)> {
    if let Some(url) = &config.store.url {
        let store = PostgresStore::connect(url).await?;
        return Ok((without_password(url), Arc::new(store)));
    }
    let data_dir = data_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.store.path.clone());
    let context = || format!("opening the store in {}", data_dir.display());
    let store = if read_only {
        SqliteStore::open_read_only(&data_dir).with_context(context)?
    } else {
        let store = SqliteStore::open(&data_dir).with_context(context)?;
        if let Some(max_bytes) = config.store.max_bytes {
            store.set_size_limit(max_bytes)?;
        }
        store
    };
    Ok((data_dir.display().to_string(), Arc::new(store)))
}

pub fn decoder_for(config: &Config) -> Decoder {
    match config.decode.survey {
        Some(survey) => Decoder::expecting(survey),
        None => Decoder::new(),
    }
}

pub fn registry_for(config: &Config, url: Option<&String>) -> anyhow::Result<Option<SchemaRegistry>> {
    let url = url.or(config.schema_registry.url.as_ref());
    Ok(url
        .map(|url| SchemaRegistry::new(url, Duration::from_millis(config.schema_registry.timeout_ms)))
        .transpose()?)
}

/// Ingests `args.source` and prints the summary; the outcome for the caller to build on.
pub async fn ingest(config: &Config, args: &RunArgs) -> anyhow::Result<(String, IngestSummary)> {
    let (store_label, store) = open_store(config, args.data_dir.as_deref()).await?;
    let worker = Worker::start(config, args).await?;
    let summary = ingest_into(config, args, &store_label, store, worker).await?;
    Ok((store_label, summary))
}

/// How long a run on files waits at its end for pending webhook posts.
const WEBHOOK_DRAIN: Duration = Duration::from_secs(10);

/// Ingests `args.source` into an opened store.
async fn ingest_into(
    config: &Config,
    args: &RunArgs,
    store_label: &str,
    store: Arc<dyn Store>,
    worker: Worker,
) -> anyhow::Result<IngestSummary> {
    let source = FileSource::open(&args.source)?;
    let registry = registry_for(config, args.schema_registry.as_ref())?;
    let Worker {
        metrics,
        modules,
        filters,
        sinks,
        services,
    } = worker;
    let ingest_config = IngestConfig {
        batch_size: args.batch_size.unwrap_or(config.pipeline.batch_size),
        keep_cutouts: !args.no_cutouts,
        metrics,
        // The same input read again overwrites its filter files.
        input_label: format!("files_{:016x}", xxhash_rust::xxh3::xxh3_64(args.source.as_bytes())),
    };
    tracing::info!(
        source = %args.source,
        files = source.len(),
        store = %store_label,
        batch_size = ingest_config.batch_size,
        "ingesting"
    );
    let progress = if args.quiet || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(source.len() as u64).with_style(
            ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} files, {msg} [{elapsed_precise}, eta {eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    };
    let summary = nightjar_pipeline::ingest(
        source,
        decoder_for(config),
        registry,
        modules,
        filters,
        sinks,
        store,
        ingest_config,
        |step| {
            progress.set_position(step.messages);
            progress.set_message(format!("{} alerts", step.alerts));
        },
    )
    .await;
    progress.finish_and_clear();
    services.finish(WEBHOOK_DRAIN).await;
    Ok(summary?)
}

/// The enabled built-in science modules, from the `[modules]` config, ready to run.
pub fn module_runner(config: &Config) -> anyhow::Result<nightjar_modules::ModuleRunner> {
    let modules = nightjar_modules::builtin_modules(&config.modules).context("building the science modules")?;
    nightjar_modules::ModuleRunner::new(modules).context("ordering the science modules")
}

/// The run summary a person reads at the end.
pub fn print_summary(store_label: &str, summary: &IngestSummary) {
    let stored = &summary.stored;
    let new_alerts = stored.n_alerts - stored.n_duplicate_alerts;
    eprintln!("ingested into {store_label}");
    eprintln!("  messages read        {:>10}", summary.messages);
    eprintln!("  alerts read          {:>10}", summary.alerts_read);
    eprintln!("  alerts stored (new)  {:>10}", new_alerts);
    eprintln!("  already stored       {:>10}", stored.n_duplicate_alerts);
    eprintln!("  rejected             {:>10}", summary.n_rejected());
    for (reason, count) in &summary.rejected {
        eprintln!("    {reason:<18} {count:>10}");
    }
    eprintln!("  new objects          {:>10}", stored.new_objects);
    eprintln!("  new detections       {:>10}", stored.new_detections);
    eprintln!("  new upper limits     {:>10}", stored.new_upper_limits);
    eprintln!("  new forced phot.     {:>10}", stored.new_forced_photometry);
    eprintln!("  new cutouts          {:>10}", stored.new_cutouts);
    eprintln!(
        "  elapsed              {:>9.2}s (decode {:.2}s, modules {:.2}s, filters {:.2}s, store {:.2}s)",
        summary.elapsed.as_secs_f64(),
        summary.decode_time.as_secs_f64(),
        summary.modules_time.as_secs_f64(),
        summary.filters_time.as_secs_f64(),
        summary.store_time.as_secs_f64()
    );
    eprintln!("  alerts/s             {:>10.0}", summary.alerts_per_second());
    if let Some(peak) = peak_rss_bytes() {
        eprintln!("  peak memory          {:>7.0} MB", peak as f64 / 1e6);
    }
    if !summary.modules.is_empty() {
        eprintln!("  science modules           alerts/s   errors   panics  skipped");
        for stats in &summary.modules {
            let rate = stats
                .alerts_per_second()
                .map_or_else(|| "-".to_string(), |rate| format!("{rate:.0}"));
            eprintln!(
                "    {:<20} {:>10} {:>8} {:>8} {:>8}",
                format!("{} {}", stats.module, stats.version),
                rate,
                stats.errors,
                stats.panics,
                stats.skipped
            );
        }
    }
    if !summary.filtered.is_empty() {
        eprintln!("  filters                   passed");
        for (filter, passed) in &summary.filtered {
            eprintln!("    {filter:<20} {passed:>10}");
        }
    }
    if summary.n_rejected() > 0 {
        eprintln!(
            "rejected messages are dead letters: `nightjar deadletter list`, with the same --data-dir or --store, shows them"
        );
    }
}

pub async fn run(config: &Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    let (store_label, store) = open_store(config, args.data_dir.as_deref()).await?;
    // The API reads through its own read-only connection, opened once the store exists.
    let worker = Worker::start(config, &args).await?;
    let server = if args.serve {
        let (_, reader) = open_reader(config, args.data_dir.as_deref()).await?;
        let metrics = Some(Arc::clone(&worker.metrics));
        Some(crate::serve::start(config, &config.serve.listen, &store_label, reader, metrics).await?)
    } else {
        None
    };
    if crate::kafka::is_kafka_source(&args.source) {
        let stream = crate::kafka::run_stream(config, &args, &store_label, store, worker).await?;
        print_summary(&store_label, &stream.ingest);
        crate::kafka::print_stream_summary(&stream);
    } else {
        let summary = ingest_into(config, &args, &store_label, store, worker).await?;
        print_summary(&store_label, &summary);
    }
    if let Some(server) = server {
        eprintln!("the input is ingested; still serving until Ctrl-C or SIGTERM");
        server.await??;
    }
    Ok(ExitCode::SUCCESS)
}
