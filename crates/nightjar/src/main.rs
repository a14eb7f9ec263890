//! The `nightjar` binary: parses the command line and configuration, sets up logging, and runs
//! the chosen subcommand.

mod bench;
mod bench_api;
mod config;
mod files;
mod filter_cmds;
mod inspect;
mod kafka;
mod parquet_file;
mod run;
mod serve;
mod simulate;
mod store_cmds;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// nightjar: an alert broker for time-domain astronomy.
///
/// It reads ZTF and Rubin alert streams (Avro object containers and the Confluent wire format),
/// decodes every schema version into a survey-agnostic model with every raw field reachable by
/// name, and stores them in a science database (embedded SQLite by default).
///
/// Start with `nightjar demo`.
#[derive(Debug, Parser)]
#[command(name = "nightjar", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// TOML configuration file (see nightjar.example.toml); NIGHTJAR__SECTION__KEY environment
    /// variables override it.
    #[arg(long, global = true, env = "NIGHTJAR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log level or filter, overriding log.level (e.g. debug, or info,nightjar_decode=trace).
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,

    /// Log format, overriding log.format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,

    /// A PostgreSQL store shared by many workers (postgres://user@host:port/database), instead
    /// of the embedded one; overrides store.url.
    #[arg(long, global = true, value_name = "URL")]
    store: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest alert files into the science database, with a summary at the end.
    ///
    /// Runs the pipeline end to end: read micro-batches of messages, decode, store (idempotent:
    /// running the same input twice adds nothing), and keep undecodable messages as dead
    /// letters with the reason and their bytes.
    Run(run::RunArgs),
    /// Ingest the bundled real alerts into a fresh store and say what to try next.
    Demo(store_cmds::DemoArgs),
    /// Query the science database: light curves, cone searches, latest alerts, nights.
    Query(store_cmds::QueryArgs),
    /// Serve the science database over HTTP: Fink-compatible routes under /api/v1/, SkyPortal's
    /// broker routes (/alerts), /health and an OpenAPI document.
    Serve(serve::ServeArgs),
    /// Show or retry the messages that could not be decoded.
    #[command(subcommand)]
    Deadletter(store_cmds::DeadLetterCommand),
    /// Remove old nights from the science database.
    Prune(store_cmds::PruneArgs),
    /// Decode alert files and print every alert as JSON (one object per line).
    ///
    /// Accepts files and directories (searched recursively for .avro files). Each alert prints
    /// its core fields (ids, time, band, position, photometry, history counts), its cutouts
    /// summarised, and every raw survey field. Undecodable input is reported on stderr with the
    /// file, record index and reason; the exit status is 1 if any input failed.
    Inspect(inspect::InspectArgs),
    /// Amplify real sample alerts into many unique alerts, written as Avro files.
    ///
    /// Each copy gets new ids, a new sky position and shifted times, with its history moved
    /// consistently and its cutouts kept. ZTF copies are one-alert Avro containers (as ZTF
    /// sends on Kafka); Rubin copies are Confluent wire-format messages.
    Simulate(simulate::SimulateArgs),
    /// Replay alert files into a Kafka topic: as they are, or amplified into many unique
    /// alerts, at a steady rate or in bursts like telescope visits.
    Produce(kafka::ProduceArgs),
    /// Read nightjar's output topics: a one-line summary per alert, or save them to Avro or
    /// JSON; duplicates (same source id) are dropped.
    Consume(kafka::ConsumeArgs),
    /// Filters: check a filter file, test it on alerts, list the columns filters read.
    #[command(subcommand)]
    Filter(filter_cmds::FilterCommand),
    /// Print the effective configuration (defaults, file, environment) as TOML.
    Config,
    /// Benchmarks, reported as ratios against a reference measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in files and log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(level) = cli.log_level {
        config.log.level = level;
    }
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    if let Some(url) = cli.store {
        config.store.url = Some(url);
    }
    config.validate()?;
    init_logging(&config);
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
    };
    match cli.command {
        Command::Run(args) => runtime()?.block_on(run::run(&config, args)),
        Command::Demo(args) => runtime()?.block_on(store_cmds::demo(&config, args)),
        Command::Query(args) => runtime()?.block_on(store_cmds::query(&config, args)),
        Command::Serve(args) => runtime()?.block_on(serve::serve(&config, args)),
        Command::Deadletter(command) => runtime()?.block_on(store_cmds::dead_letters(&config, command)),
        Command::Prune(args) => runtime()?.block_on(store_cmds::prune(&config, args)),
        Command::Inspect(args) => inspect::run(&config, args),
        Command::Simulate(args) => simulate::run(args),
        Command::Produce(args) => runtime()?.block_on(kafka::produce(&config, args)),
        Command::Consume(args) => runtime()?.block_on(kafka::consume(&config, args)),
        Command::Filter(command) => filter_cmds::run(&config, command),
        Command::Config => {
            print!("{}", config.to_toml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(command) => bench::run(command),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        // The reader of our output went away (`nightjar query ... | head`): not an error.
        Err(error)
            if error.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
