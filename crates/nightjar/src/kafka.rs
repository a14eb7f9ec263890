//! Kafka on the command line: `nightjar run --source kafka://HOST:PORT/TOPIC` (the live
//! stream, at least once), `nightjar produce` (a survey-stream simulator) and
//! `nightjar consume` (the livestream client).

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nightjar_core::{Origin, Survey};
use nightjar_kafka::{
    AlertSink, DeadLetterSink, KafkaConfig, KafkaConnection, KafkaSource, KafkaSourceConfig, KafkaUrl, MessageProducer,
    OutputReader, SOURCE_ID_HEADER, StartOffset, StreamOptions, StreamParts, StreamSummary, TopicSpec,
};
use nightjar_simulate::{Amplifier, AmplifyConfig, Template, TemplateOptions};
use nightjar_store::Store;
use tokio::sync::watch;

use crate::config::Config;
use crate::run::RunArgs;

/// Options of `nightjar run` that apply to a Kafka source.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KafkaRunArgs {
    /// Also publish every alert to a Kafka topic, kafka://HOST:PORT/TOPIC (overrides
    /// kafka.sink.topic; the topic is created when missing).
    #[arg(long, value_name = "URL")]
    pub sink: Option<String>,
    /// Consumer group of a Kafka source (overrides kafka.source.group_id).
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// Stop a Kafka source once no message has arrived for this many seconds (replays,
    /// tests); by default it runs until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "SECONDS")]
    pub until_idle: Option<f64>,
    /// How long to wait for the Kafka brokers at start-up, retrying with backoff.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub connect_timeout: f64,
}

/// A flag that turns true on Ctrl-C or SIGTERM.
fn shutdown_flag() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        crate::serve::stop_requested().await;
        tracing::info!("stop requested: finishing the batch in hand, committing, exiting");
        let _ = sender.send(true);
        // Keep the sender so that the flag stays readable.
        std::future::pending::<()>().await;
    });
    receiver
}

fn seconds(value: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{what} {value}: expected a number of seconds"))
}

/// The Kafka configuration with a source address (`kafka://HOST:PORT/TOPIC`, or `kafka` for
/// the configuration file's) applied.
pub fn source_config(config: &Config, source: &str, group: Option<&str>) -> anyhow::Result<KafkaConfig> {
    let mut kafka = config.kafka.clone();
    if source != "kafka" {
        let url = KafkaUrl::parse(source).context("not a kafka:// address")??;
        kafka.brokers = url.brokers;
        if !url.topics.is_empty() {
            kafka.source.topics = url.topics;
        }
    }
    if let Some(group) = group {
        kafka.source.group_id = group.to_string();
    }
    kafka.validate()?;
    if kafka.source.topics.is_empty() {
        bail!("no topic to read: name it in the source (kafka://HOST:PORT/TOPIC) or in kafka.source.topics");
    }
    Ok(kafka)
}

/// True when `source` names a Kafka source.
pub fn is_kafka_source(source: &str) -> bool {
    source == "kafka" || source.starts_with("kafka://")
}

/// `nightjar run --source kafka://...`: consume, decode, store, publish, commit, until
/// stopped.
pub async fn run_stream(
    config: &Config,
    args: &RunArgs,
    store_label: &str,
    store: Arc<dyn Store>,
    worker: crate::worker::Worker,
) -> anyhow::Result<StreamSummary> {
    let mut kafka = source_config(config, &args.source, args.kafka.group.as_deref())?;
    if let Some(batch_size) = args.batch_size {
        kafka.source.max_batch = batch_size;
    }
    let connect_timeout = seconds(args.kafka.connect_timeout, "--connect-timeout")?;
    let connection = kafka.connection();
    let source = KafkaSource::connect(&connection, &kafka.source, connect_timeout)
        .await
        .context("starting the kafka source")?;
    let sink = match &args.kafka.sink {
        Some(url) => {
            let url = KafkaUrl::parse(url).context("--sink expects kafka://HOST:PORT/TOPIC")??;
            let [topic] = url.topics.as_slice() else {
                bail!("--sink names one topic: kafka://HOST:PORT/TOPIC");
            };
            let mut sink_config = kafka.sink.clone();
            sink_config.topic = topic.clone();
            let sink_connection = KafkaConnection {
                brokers: url.brokers,
                ..connection.clone()
            };
            Some(AlertSink::connect(&sink_connection, &sink_config, connect_timeout).await?)
        }
        None if !kafka.sink.topic.is_empty() => {
            Some(AlertSink::connect(&connection, &kafka.sink, connect_timeout).await?)
        }
        // Only filter topics: on the input cluster, with the kafka.sink settings.
        None if worker.has_kafka_filter_sinks() => {
            Some(AlertSink::connect_for_filters(&connection, &kafka.sink, connect_timeout).await?)
        }
        None => None,
    };
    let dead_letter_sink = match kafka.sink.dead_letter_topic.is_empty() {
        true => None,
        false => Some(DeadLetterSink::connect(&connection, &kafka.sink, connect_timeout).await?),
    };
    tracing::info!(
        brokers = %connection.brokers,
        topics = ?kafka.source.topics,
        group = %kafka.source.group_id,
        store = %store_label,
        sink = sink.as_ref().map(AlertSink::topic).filter(|topic| !topic.is_empty()).unwrap_or("none"),
        "streaming"
    );
    let mut decoder = crate::run::decoder_for(config);
    let mut registry = crate::run::registry_for(config, args.schema_registry.as_ref())?;
    // Crash tests name a point where the worker aborts: NIGHTJAR_CRASH_AT=after_store:2.
    let crash_at = match std::env::var("NIGHTJAR_CRASH_AT") {
        Ok(text) => Some(
            text.parse::<nightjar_kafka::CrashAt>()
                .map_err(|reason| anyhow::anyhow!("NIGHTJAR_CRASH_AT: {reason}"))?,
        ),
        Err(_) => None,
    };
    let options = StreamOptions {
        keep_cutouts: !args.no_cutouts,
        max_messages: None,
        crash_at,
        stop_when_idle: args
            .kafka
            .until_idle
            .map(|idle| seconds(idle, "--until-idle"))
            .transpose()?,
    };
    let mut progress = StreamProgress::new(Duration::from_secs(10));
    let crate::worker::Worker {
        metrics,
        mut modules,
        mut filters,
        mut sinks,
        services,
    } = worker;
    let summary = nightjar_kafka::run_stream(
        StreamParts {
            source: &source,
            decoder: &mut decoder,
            registry: registry.as_mut(),
            store,
            sink: sink.as_ref(),
            dead_letter_sink: dead_letter_sink.as_ref(),
            modules: &mut modules,
            filters: &mut filters,
            sinks: &mut sinks,
            metrics,
        },
        &options,
        shutdown_flag(),
        |summary| progress.report(summary),
    )
    .await;
    services.finish(Duration::from_secs(5)).await;
    let summary = summary?;
    if let Some(sink) = &sink {
        sink.flush(Duration::from_secs(30))?;
    }
    source.close();
    Ok(summary)
}

/// A progress line every `every`: alerts/s in and out since the last line, lag, batches.
struct StreamProgress {
    every: Duration,
    last: Instant,
    last_alerts: u64,
    last_delivered: u64,
}

impl StreamProgress {
    fn new(every: Duration) -> StreamProgress {
        StreamProgress {
            every,
            last: Instant::now(),
            last_alerts: 0,
            last_delivered: 0,
        }
    }

    fn report(&mut self, summary: &StreamSummary) {
        let elapsed = self.last.elapsed();
        if elapsed < self.every {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        tracing::info!(
            alerts = summary.ingest.alerts_read,
            published = summary.delivered,
            batches = summary.ingest.batches,
            alerts_per_s_in = ((summary.ingest.alerts_read - self.last_alerts) as f64 / seconds).round(),
            alerts_per_s_out = ((summary.delivered - self.last_delivered) as f64 / seconds).round(),
            lag = summary.lag.unwrap_or(-1),
            "streaming"
        );
        self.last = Instant::now();
        self.last_alerts = summary.ingest.alerts_read;
        self.last_delivered = summary.delivered;
    }
}

/// The Kafka part of the run summary.
pub fn print_stream_summary(summary: &StreamSummary) {
    eprintln!("  batches committed    {:>10}", summary.commits);
    if summary.commit_failures > 0 {
        eprintln!("  commits failed       {:>10}", summary.commit_failures);
    }
    eprintln!("  largest batch        {:>10}", summary.max_batch);
    eprintln!("  alerts published     {:>10}", summary.delivered);
    if summary.not_published > 0 {
        eprintln!("  not published        {:>10}", summary.not_published);
    }
    if summary.dead_letters_published > 0 {
        eprintln!("  dead letters out     {:>10}", summary.dead_letters_published);
    }
    let elapsed = summary.ingest.elapsed.as_secs_f64().max(1e-9);
    eprintln!(
        "  MB/s in              {:>10.2}",
        summary.received_bytes as f64 / 1e6 / elapsed
    );
    eprintln!(
        "  MB/s out             {:>10.2}",
        summary.delivered_bytes as f64 / 1e6 / elapsed
    );
    if let Some((p50, p99, max)) = nightjar_kafka::latency_quantiles(&summary.latencies_ms) {
        eprintln!("  latency p50/p99/max  {p50} / {p99} / {max} ms (input record to delivery)");
    }
    if let Some(lag) = summary.lag {
        eprintln!("  consumer lag         {lag:>10}");
    }
    let stages = &summary.stages;
    eprintln!(
        "  time: poll {:.2}s, decode {:.2}s, modules {:.2}s, filters {:.2}s, store {:.2}s, publish {:.2}s, commit {:.2}s",
        stages.poll.as_secs_f64(),
        stages.decode.as_secs_f64(),
        stages.modules.as_secs_f64(),
        stages.filters.as_secs_f64(),
        stages.store.as_secs_f64(),
        stages.sink.as_secs_f64(),
        stages.commit.as_secs_f64()
    );
}

/// `nightjar produce`: replay alert files into a topic.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Where to: kafka://HOST:PORT/TOPIC (the topic is created when missing).
    #[arg(long, value_name = "URL")]
    to: String,
    /// Alert files or directories (searched recursively for .avro files).
    #[arg(long, value_name = "PATH", required = true)]
    from: Vec<PathBuf>,
    /// Number of alerts to send. Without it, each file is sent once as it is (one message
    /// per file); with it, the files' alerts are amplified into this many unique alerts
    /// (new ids, positions and times), one message each in the survey's own wire format.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Alerts per second (a steady stream); default: as fast as the broker takes them.
    #[arg(long, value_name = "ALERTS_PER_S")]
    rate: Option<f64>,
    /// Send in bursts of this many alerts (a telescope visit), every --every seconds.
    #[arg(long, value_name = "K", requires = "every")]
    burst: Option<u64>,
    /// Seconds between bursts.
    #[arg(long, value_name = "SECONDS", requires = "burst")]
    every: Option<f64>,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Seed of the amplification.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// With --count: leave the cutouts out of the amplified alerts (a few KB each instead of
    /// 70-180 KB), for load and crash tests of everything but the stamps.
    #[arg(long, requires = "count")]
    no_cutouts: bool,
    /// How long to wait for the brokers at start-up, retrying with backoff.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    connect_timeout: f64,
}

pub async fn produce(config: &Config, args: ProduceArgs) -> anyhow::Result<ExitCode> {
    let url = KafkaUrl::parse(&args.to).context("--to expects kafka://HOST:PORT/TOPIC")??;
    let [topic] = url.topics.as_slice() else {
        bail!("--to names one topic: kafka://HOST:PORT/TOPIC");
    };
    if args.rate.is_some() && args.burst.is_some() {
        bail!("--rate and --burst are alternatives; give one");
    }
    let connection = KafkaConnection {
        brokers: url.brokers.clone(),
        ..config.kafka.connection()
    };
    let connect_timeout = seconds(args.connect_timeout, "--connect-timeout")?;
    nightjar_kafka::wait_for_brokers(&connection, connect_timeout).await?;
    nightjar_kafka::ensure_topics(&connection, &[TopicSpec::new(topic, args.partitions)]).await?;
    let mut producer = MessageProducer::connect(&connection, &config.kafka.sink, topic, connect_timeout).await?;

    let files = crate::files::alert_files(&args.from)?;
    if files.is_empty() {
        bail!("no .avro files in {:?}", args.from);
    }
    // The messages to send, made lazily: the files themselves, or amplified copies.
    let amplifier = match args.count {
        Some(_) => {
            let mut templates = Vec::new();
            for file in &files {
                let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let options = TemplateOptions {
                    drop_cutouts: args.no_cutouts,
                };
                match Template::records_from_message_with(&file.display().to_string(), &bytes, options) {
                    Ok(records) => templates.extend(records.into_iter().filter_map(Result::ok)),
                    Err(error) => tracing::warn!("skipping template: {error}"),
                }
            }
            if templates.is_empty() {
                bail!("none of the files holds an alert usable as a template");
            }
            let amplify = AmplifyConfig {
                seed: args.seed,
                ..AmplifyConfig::default()
            };
            Some(Amplifier::new(templates, amplify)?)
        }
        None => None,
    };
    let total = args.count.unwrap_or(files.len() as u64);
    let started = Instant::now();
    let mut message = Vec::new();
    let mut bytes_sent = 0u64;
    for index in 0..total {
        match &amplifier {
            Some(amplifier) => {
                message.clear();
                amplifier.write_message(index, &mut message)?;
            }
            None => {
                let file = &files[index as usize];
                message = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            }
        }
        // Pace: a steady rate, or bursts of K every S seconds.
        let due = if let Some(rate) = args.rate {
            Some(Duration::from_secs_f64(index as f64 / rate.max(1e-6)))
        } else if let (Some(burst), Some(every)) = (args.burst, args.every) {
            Some(Duration::from_secs_f64((index / burst.max(1)) as f64 * every.max(0.0)))
        } else {
            None
        };
        if let Some(due) = due {
            let elapsed = started.elapsed();
            if due > elapsed {
                producer.flush().await?;
                tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
            }
        }
        producer.send(None, &message, None, &[]).await?;
        bytes_sent += message.len() as u64;
    }
    let delivered = producer.flush().await?;
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "produced {delivered} alerts to {topic} on {} in {elapsed:.2}s ({:.0} alerts/s, {:.1} MB/s)",
        url.brokers,
        delivered as f64 / elapsed,
        bytes_sent as f64 / 1e6 / elapsed
    );
    Ok(ExitCode::SUCCESS)
}

/// `nightjar consume`: the livestream client.
#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// What to read: kafka://HOST:PORT/TOPIC[,TOPIC] (nightjar's output topics).
    #[arg(long, value_name = "URL")]
    from: String,
    /// Consumer group; a fresh one by default, which reads each topic from its start.
    #[arg(long, value_name = "ID")]
    group: Option<String>,
    /// Only messages produced from now on (a fresh group otherwise starts at the oldest).
    #[arg(long, conflicts_with = "since")]
    latest: bool,
    /// Only messages published at or after this time (UTC): YYYY-MM-DD, optionally with
    /// THH:MM[:SS[.fff]]. Every partition is read from the first record at or after it,
    /// found with the brokers' time index (older records a broker still returns are
    /// skipped); the group's committed place is not used.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Stop after this many alerts.
    #[arg(long, value_name = "N")]
    max: Option<u64>,
    /// Stop once no alert has arrived for this many seconds; default: until Ctrl-C.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Save the alerts instead of printing summaries: FILE.avro (one Avro container per
    /// schema, FILE-2.avro... for further schemas), FILE.parquet (the published records, module
    /// columns included, one file per schema likewise) or FILE.json (one JSON object per line).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// How long to wait for the brokers, retrying with backoff.
    #[arg(long, value_name = "SECONDS", default_value_t = 15.0)]
    connect_timeout: f64,
}

/// Where consumed alerts go.
enum ConsumeOutput {
    Summary(std::io::StdoutLock<'static>),
    Json(std::io::BufWriter<std::fs::File>),
    /// Avro containers or Parquet files, written at the end: the datums by schema.
    Files {
        path: PathBuf,
        parquet: bool,
        by_schema: Vec<(Arc<nightjar_avro::WriterSchema>, Vec<Vec<u8>>)>,
    },
}

pub async fn consume(config: &Config, args: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let url = KafkaUrl::parse(&args.from).context("--from expects kafka://HOST:PORT/TOPIC")??;
    if url.topics.is_empty() {
        bail!("--from names no topic: kafka://HOST:PORT/TOPIC[,TOPIC]");
    }
    let connection = KafkaConnection {
        brokers: url.brokers.clone(),
        ..config.kafka.connection()
    };
    let source_config = KafkaSourceConfig {
        topics: url.topics.clone(),
        group_id: args
            .group
            .clone()
            .unwrap_or_else(|| format!("nightjar-consume-{}-{}", std::process::id(), now_ms())),
        start_offset: if args.latest {
            StartOffset::Latest
        } else {
            StartOffset::Earliest
        },
        max_wait_ms: 500,
        ..config.kafka.source.clone()
    };
    let connect_timeout = seconds(args.connect_timeout, "--connect-timeout")?;
    let since_ms = match &args.since {
        Some(since) => {
            let mjd = nightjar_core::calendar::iso_to_mjd(since)
                .with_context(|| format!("--since {since:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fff]]"))?;
            Some(((mjd - UNIX_EPOCH_MJD) * 86_400_000.0).round() as i64)
        }
        None => None,
    };
    let source = match since_ms {
        Some(since_ms) => KafkaSource::connect_since(&connection, &source_config, since_ms, connect_timeout).await,
        None => KafkaSource::connect(&connection, &source_config, connect_timeout).await,
    }
    .with_context(|| format!("cannot reach the alert server at {}", url.brokers))?;
    let idle = args.timeout.map(|timeout| seconds(timeout, "--timeout")).transpose()?;
    let mut output = match &args.out {
        None => ConsumeOutput::Summary(std::io::stdout().lock()),
        Some(path)
            if path
                .extension()
                .is_some_and(|extension| extension == "json" || extension == "jsonl") =>
        {
            ConsumeOutput::Json(std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
            ))
        }
        Some(path)
            if path
                .extension()
                .is_some_and(|extension| extension == "avro" || extension == "parquet") =>
        {
            ConsumeOutput::Files {
                path: path.clone(),
                parquet: path.extension().is_some_and(|extension| extension == "parquet"),
                by_schema: Vec::new(),
            }
        }
        Some(path) => bail!("--out {}: expected a .avro, .parquet or .json file", path.display()),
    };
    let shutdown = shutdown_flag();
    let mut reader = OutputReader::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let (mut n_alerts, mut n_duplicates, mut n_bad) = (0u64, 0u64, 0u64);
    let mut last_alert = Instant::now();
    'consume: while !*shutdown.borrow() {
        let batch = source.next_batch().await?;
        if batch.is_empty() {
            if idle.is_some_and(|idle| last_alert.elapsed() >= idle) {
                break;
            }
            continue;
        }
        last_alert = Instant::now();
        for record in &batch.records {
            // A broker may start a partition early (its time index can be coarser than a
            // record); records from before --since are skipped.
            if let (Some(since_ms), Some(timestamp_ms)) = (since_ms, record.timestamp_ms)
                && timestamp_ms < since_ms
            {
                continue;
            }
            let origin = record.origin();
            // At-least-once delivery can repeat an alert; its source id says so.
            if let Some(source_id) = record
                .header(SOURCE_ID_HEADER)
                .and_then(|value| std::str::from_utf8(value).ok())
                .and_then(|text| text.parse::<i64>().ok())
                && !seen.insert(source_id)
            {
                n_duplicates += 1;
                continue;
            }
            let Some(key) = record.key.as_deref() else {
                n_bad += 1;
                tracing::warn!(origin = %origin, "a record without a schema key");
                continue;
            };
            match write_alert(&mut output, &mut reader, key, &record.payload, &origin) {
                Ok(()) => n_alerts += 1,
                Err(error) => {
                    n_bad += 1;
                    tracing::warn!(origin = %origin, "{error:#}");
                }
            }
            if args.max.is_some_and(|max| n_alerts >= max) {
                break 'consume;
            }
        }
        // The client keeps its place in the group: the next run goes on from here.
        if let Err(error) = source.commit(&batch.offsets()) {
            tracing::warn!("{error}");
        }
    }
    match output {
        ConsumeOutput::Summary(mut out) => out.flush()?,
        ConsumeOutput::Json(mut out) => out.flush()?,
        ConsumeOutput::Files {
            path,
            parquet,
            by_schema,
        } => {
            let extension = if parquet { "parquet" } else { "avro" };
            for (index, (schema, datums)) in by_schema.iter().enumerate() {
                let file = if index == 0 {
                    path.clone()
                } else {
                    let stem = path.file_stem().map(|stem| stem.to_string_lossy()).unwrap_or_default();
                    path.with_file_name(format!("{stem}-{}.{extension}", index + 1))
                };
                let datums = datums.iter().map(Vec::as_slice);
                let bytes = if parquet {
                    crate::parquet_file::records_to_parquet(&schema.json, datums)
                        .with_context(|| format!("converting the alerts of schema {} to Parquet", schema.name))?
                } else {
                    nightjar_avro::write_container(schema, datums)?
                };
                std::fs::write(&file, bytes).with_context(|| format!("writing {}", file.display()))?;
            }
        }
    }
    source.close();
    eprintln!("{n_alerts} alerts, {n_duplicates} duplicates dropped, {n_bad} unreadable");
    Ok(if n_bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_alert(
    output: &mut ConsumeOutput,
    reader: &mut OutputReader,
    key: &[u8],
    value: &[u8],
    origin: &Origin,
) -> anyhow::Result<()> {
    match output {
        ConsumeOutput::Summary(out) => {
            let alert = reader.decode(key, value, origin)?;
            let detection = &alert.detection;
            let brightness = match (alert.survey, detection.magnitude, detection.flux) {
                (Survey::Ztf, Some(magnitude), _) => format!("mag {magnitude:.3}"),
                (_, _, Some(flux)) => format!("flux {flux:.1} nJy"),
                (_, Some(magnitude), None) => format!("mag {magnitude:.3}"),
                _ => "-".to_string(),
            };
            writeln!(
                out,
                "{} {} {} mjd {:.5} {} ra {:.6} dec {:.6} {} history {} ({origin})",
                alert.survey,
                alert.object_id,
                alert.source_id(),
                detection.mjd,
                detection.band.map(|band| band.as_str()).unwrap_or("-"),
                detection.ra,
                detection.dec,
                brightness,
                alert.history.len(),
            )?;
        }
        ConsumeOutput::Json(out) => {
            let alert = reader.decode(key, value, origin)?;
            serde_json::to_writer(&mut *out, &alert.to_json())?;
            out.write_all(b"\n")?;
        }
        ConsumeOutput::Files { by_schema, .. } => {
            let schema = reader.schema(key, origin)?;
            match by_schema.iter_mut().find(|(known, _)| known.json == schema.json) {
                Some((_, datums)) => datums.push(value.to_vec()),
                None => by_schema.push((schema, vec![value.to_vec()])),
            }
        }
    }
    Ok(())
}

/// The MJD of 1970-01-01 00:00 UTC.
const UNIX_EPOCH_MJD: f64 = 40_587.0;

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or(0)
}
