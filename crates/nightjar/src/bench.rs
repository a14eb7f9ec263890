//! `nightjar bench`: end-to-end benchmarks, reported as ratios against a reference that is
//! measured in the same run on the same input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nightjar_core::{Origin, Survey};
use nightjar_decode::Decoder;
use serde::Deserialize;

use crate::files::alert_files;
use crate::run::peak_rss_bytes;
use nightjar_pipeline::{IngestConfig, Message, MessageSource, SourceError};
use nightjar_simulate::{Amplifier, AmplifyConfig, Template};
use nightjar_store::Store;
use nightjar_store_sqlite::SqliteStore;
use std::sync::Arc;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Decoding speed on one core, ZTF and Rubin, against fastavro on the same messages.
    ///
    /// Messages are loaded into memory first and decoded over and over for --seconds, into
    /// the full alert model (typed survey record, core fields, history, cutouts). The
    /// reference is scripts/bench_fastavro.py (fastavro, which Python brokers decode with),
    /// run on the same files right after; install it with
    /// `pip install -r scripts/requirements.txt`.
    Decode(DecodeBenchArgs),
    /// Ingestion into the embedded store: alerts/s and new rows/s, with and without cutouts.
    ///
    /// Amplifies the real ZTF sample alerts into --count unique alerts in memory (new ids,
    /// positions and times) and runs the full pipeline (decode, store in micro-batches) into a
    /// fresh store in a temporary directory, once with cutouts and once without. The
    /// reference, measured in the same run on the same messages, is decoding alone.
    Ingest(IngestBenchArgs),
    /// Filter evaluation: alerts/s for 1, 10 and 100 distinct filters over batches of real
    /// alerts, the conversion to Arrow included; the reference is converting every column.
    Filters(crate::filter_cmds::FilterBenchArgs),
    /// API latency under load: p50/p99 of light curves (/api/v1/objects) and cone searches
    /// (/api/v1/conesearch) from concurrent clients while ingestion runs, against the same
    /// requests on the idle store; the embedded store, and PostgreSQL with --postgres.
    ///
    /// Fills a fresh store with --count unique alerts amplified from the real ZTF alerts (new
    /// ids, positions and times; stored without cutouts, which these routes do not read) and
    /// reports the fill rate (alerts/s and new rows/s, histories included) and the rate of a
    /// replay of stored alerts (every row already there), then serves the API on a local port
    /// and measures.
    Api(crate::bench_api::ApiBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct IngestBenchArgs {
    /// Number of unique alerts to ingest per measurement.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Template alerts: one-alert ZTF Avro files.
    #[arg(long, default_value = "tests/data/ztf/alerts", value_name = "PATH")]
    templates: PathBuf,
    /// Messages per micro-batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Where the temporary stores go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Only the run with cutouts.
    #[arg(long)]
    only_with_cutouts: bool,
}

/// Copies of template alerts, made on demand: a source of the unique messages `next..count`,
/// which ends early once `stop` is set.
pub(crate) struct SimulatedSource {
    pub(crate) amplifier: Arc<Amplifier>,
    pub(crate) next: u64,
    pub(crate) count: u64,
    pub(crate) stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl MessageSource for SimulatedSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Message>>, SourceError> {
        let stopped = self
            .stop
            .as_ref()
            .is_some_and(|stop| stop.load(std::sync::atomic::Ordering::Relaxed));
        if self.next >= self.count || stopped {
            return Ok(None);
        }
        let end = (self.next + max as u64).min(self.count);
        let mut batch = Vec::with_capacity((end - self.next) as usize);
        for index in self.next..end {
            let bytes = self.amplifier.message(index).map_err(|error| SourceError::File {
                path: PathBuf::from(format!("simulated copy {index}")),
                reason: error.to_string(),
            })?;
            batch.push(Message {
                bytes,
                origin: Origin::memory(format!("simulated copy {index}")),
            });
        }
        self.next = end;
        Ok(Some(batch))
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.count - self.next)
    }
}

#[derive(Debug, clap::Args)]
pub struct DecodeBenchArgs {
    /// ZTF alert messages: one-alert Avro containers, as ZTF publishes on Kafka.
    #[arg(long, default_value = "tests/data/ztf/alerts", value_name = "PATH")]
    ztf: PathBuf,
    /// Rubin alert messages in the Confluent wire format.
    #[arg(long, default_value = "tests/data/lsst/wire", value_name = "PATH")]
    rubin: PathBuf,
    /// Seconds to spend on each measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// The fastavro reference script; `--no-reference` skips it.
    #[arg(long, default_value = "scripts/bench_fastavro.py", value_name = "FILE")]
    reference_script: PathBuf,
    /// Python interpreter for the reference.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Measure nightjar only.
    #[arg(long)]
    no_reference: bool,
}

pub fn run(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Decode(args) => decode(args),
        BenchCommand::Ingest(args) => ingest(args),
        BenchCommand::Filters(args) => crate::filter_cmds::bench(args),
        BenchCommand::Api(args) => crate::bench_api::api(args),
    }
}

/// One measured rate.
#[derive(Debug, Clone, Copy)]
struct Rate {
    alerts_per_s: f64,
    mb_per_s: f64,
}

#[derive(Debug, Deserialize)]
struct ReferenceMode {
    alerts_per_s: f64,
    mb_per_s: f64,
}

#[derive(Debug, Deserialize)]
struct ReferenceResult {
    version: String,
    per_message_schema: ReferenceMode,
    schema_parsed_once: ReferenceMode,
}

fn load_messages(path: &Path, survey: Survey) -> anyhow::Result<(Vec<PathBuf>, Vec<Vec<u8>>)> {
    let mut decoder = Decoder::expecting(survey);
    let mut paths = Vec::new();
    let mut messages = Vec::new();
    for file in alert_files(&[path.to_path_buf()])? {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let results = decoder.decode(&bytes, &Origin::file(&file));
        // Only messages that hold exactly one decodable alert, as a survey's Kafka topic does.
        if results.len() == 1 && results[0].is_ok() {
            paths.push(file);
            messages.push(bytes);
        }
    }
    if messages.is_empty() {
        bail!("no decodable {survey} alert messages under {}", path.display());
    }
    Ok((paths, messages))
}

/// Decodes every message again and again on this thread for `seconds`.
fn measure(messages: &[Vec<u8>], seconds: f64) -> anyhow::Result<Rate> {
    let origin = Origin::memory("bench");
    let mut decoder = Decoder::new();
    let run_once = |decoder: &mut Decoder| -> anyhow::Result<usize> {
        let mut n_alerts = 0;
        for message in messages {
            for result in decoder.decode(message, &origin) {
                let alert = result?;
                n_alerts += usize::from(alert.detection.source_id != 0);
            }
        }
        Ok(n_alerts)
    };
    run_once(&mut decoder)?; // warm-up
    let bytes_per_pass: usize = messages.iter().map(Vec::len).sum();
    let (mut n_alerts, mut n_bytes) = (0usize, 0usize);
    let started = Instant::now();
    let budget = Duration::from_secs_f64(seconds);
    while started.elapsed() < budget {
        n_alerts += run_once(&mut decoder)?;
        n_bytes += bytes_per_pass;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Rate {
        alerts_per_s: n_alerts as f64 / elapsed,
        mb_per_s: n_bytes as f64 / 1e6 / elapsed,
    })
}

fn reference(args: &DecodeBenchArgs, files: &[PathBuf], rubin: bool) -> anyhow::Result<ReferenceResult> {
    let mut command = std::process::Command::new(&args.python);
    command
        .arg(&args.reference_script)
        .arg("--seconds")
        .arg(args.seconds.to_string());
    if rubin {
        command.arg("--rubin");
    }
    command.args(files);
    let output = command.output().with_context(|| {
        format!(
            "running {} {} (use --no-reference to skip it)",
            args.python,
            args.reference_script.display()
        )
    })?;
    if !output.status.success() {
        bail!(
            "the fastavro reference failed ({}); install it with `pip install -r scripts/requirements.txt`, or use --no-reference: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("reading the reference's output {stdout:?}"))
}

fn decode(args: DecodeBenchArgs) -> anyhow::Result<ExitCode> {
    println!("decode benchmark: one thread, {} s per measurement", args.seconds);
    for (survey, path) in [(Survey::Ztf, &args.ztf), (Survey::Rubin, &args.rubin)] {
        let (files, messages) = load_messages(path, survey)?;
        let n_bytes: usize = messages.iter().map(Vec::len).sum();
        println!(
            "\n{survey}: {} messages, {:.1} KB on average, from {}",
            messages.len(),
            n_bytes as f64 / messages.len() as f64 / 1e3,
            path.display()
        );
        let ours = measure(&messages, args.seconds)?;
        println!(
            "  {:<34} {:>10.0} alerts/s {:>8.1} MB/s",
            "nightjar", ours.alerts_per_s, ours.mb_per_s
        );
        if args.no_reference {
            continue;
        }
        let reference = reference(&args, &files, survey == Survey::Rubin)?;
        let modes: &[(&str, &ReferenceMode)] = if survey == Survey::Rubin {
            &[("fastavro (schema parsed once)", &reference.schema_parsed_once)]
        } else {
            &[
                ("fastavro (schema per message)", &reference.per_message_schema),
                ("fastavro (schema parsed once)", &reference.schema_parsed_once),
            ]
        };
        for (label, mode) in modes {
            println!(
                "  {:<34} {:>10.0} alerts/s {:>8.1} MB/s   nightjar is {:.1}x",
                format!("{label} {}", reference.version),
                mode.alerts_per_s,
                mode.mb_per_s,
                ours.alerts_per_s / mode.alerts_per_s
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An amplifier over the one-alert ZTF messages under `templates`, and their number.
pub(crate) fn ztf_amplifier(templates: &Path, seed: u64) -> anyhow::Result<(usize, Arc<Amplifier>)> {
    let (_, messages) = load_messages(templates, Survey::Ztf)?;
    let mut parsed = Vec::new();
    for message in &messages {
        parsed.extend(Template::from_message(message)?);
    }
    let amplifier = Amplifier::new(
        parsed,
        AmplifyConfig {
            seed,
            ..AmplifyConfig::default()
        },
    )?;
    Ok((messages.len(), Arc::new(amplifier)))
}

fn ingest(args: IngestBenchArgs) -> anyhow::Result<ExitCode> {
    let (n_templates, amplifier) = ztf_amplifier(&args.templates, 1)?;
    let mean_kb = (0..200)
        .map(|index| amplifier.message(index).map(|bytes| bytes.len()))
        .sum::<Result<usize, _>>()? as f64
        / 200.0
        / 1e3;
    println!(
        "ingest benchmark: {} unique ZTF alerts ({mean_kb:.1} KB on average) amplified from {} real ones, batches of {}",
        args.count, n_templates, args.batch_size
    );

    // Reference: decoding alone, same messages, same process.
    let sample: Vec<Vec<u8>> = (0..args.count.min(2_000))
        .map(|index| amplifier.message(index))
        .collect::<Result<_, _>>()?;
    let decode_rate = measure(&sample, 3.0)?;
    println!(
        "  {:<30} {:>9.0} alerts/s  (reference)",
        "decode only", decode_rate.alerts_per_s
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let modes: &[(&str, bool)] = if args.only_with_cutouts {
        &[("store, with cutouts", true)]
    } else {
        &[("store, with cutouts", true), ("store, without cutouts", false)]
    };
    for (label, keep_cutouts) in modes {
        let work_dir = match &args.work_dir {
            Some(dir) => tempfile::tempdir_in(dir)?,
            None => tempfile::tempdir()?,
        };
        let store = Arc::new(SqliteStore::open(work_dir.path())?);
        let source = SimulatedSource {
            amplifier: amplifier.clone(),
            next: 0,
            count: args.count,
            stop: None,
        };
        let config = IngestConfig {
            batch_size: args.batch_size,
            keep_cutouts: *keep_cutouts,
            ..IngestConfig::default()
        };
        let store_dyn: Arc<dyn Store> = store.clone();
        let modules = nightjar_modules::ModuleRunner::new(Vec::new())?;
        let filters = nightjar_pipeline::FilterStage::without_filters(&modules)?;
        let summary = runtime.block_on(nightjar_pipeline::ingest(
            source,
            Decoder::new(),
            None,
            modules,
            filters,
            nightjar_pipeline::FilterSinks::new(None, Arc::default()),
            store_dyn,
            config,
            |_| {},
        ))?;
        let seconds = summary.elapsed.as_secs_f64();
        let disk_mb = directory_bytes(work_dir.path()) as f64 / 1e6;
        println!(
            "  {:<30} {:>9.0} alerts/s {:>9.0} new rows/s   {:.2}x decode   {:.1} s, {} rows, {disk_mb:.0} MB on disk",
            label,
            summary.alerts_per_second(),
            summary.stored.new_rows() as f64 / seconds,
            summary.alerts_per_second() / decode_rate.alerts_per_s,
            seconds,
            summary.stored.new_rows(),
        );
        if summary.n_rejected() > 0 || summary.stored.n_alerts != args.count {
            bail!(
                "expected {} stored alerts, got {} ({} rejected)",
                args.count,
                summary.stored.n_alerts,
                summary.n_rejected()
            );
        }
    }
    if let Some(peak) = peak_rss_bytes() {
        println!("  peak resident memory of this process: {:.0} MB", peak as f64 / 1e6);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn directory_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .map(|meta| meta.len())
                .sum()
        })
        .unwrap_or(0)
}
