//! `nightjar filter`: check a filter file, test it on alerts (with its fixture, if it has one),
//! list the columns filters can read, and benchmark filter evaluation.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nightjar_core::{Alert, Origin};
use nightjar_decode::Decoder;
use nightjar_filter::{
    AlertBatch, AlertSchema, ColumnSelection, CompiledFilter, FilterDefinition, FilterEngine, FilterLimits,
    FilterOutput, Fixture, value_text,
};
use nightjar_modules::{ModuleOutputs, ModuleRunner};

use crate::config::Config;
use crate::files::alert_files;
use crate::run::module_runner;

#[derive(Debug, clap::Subcommand)]
pub enum FilterCommand {
    /// Parse and type-check a filter file (or every filter file of a directory) against the
    /// alerts schema, and print its pass rate on sample alerts.
    ///
    /// Errors point at the spot (line and column) and suggest close column names. A filter
    /// that passes more than --max-pass-share of the sample alerts is refused unless
    /// --allow-broad is given. Exit status: 0 accepted, 1 refused or invalid.
    Check(CheckArgs),
    /// Run a filter file on alerts and show which pass and the values of the fields it reads.
    ///
    /// When a fixture sits next to the filter (NAME.fixture.toml for NAME.toml), its alerts
    /// are used unless --alerts is given, and the result is compared with it: exit status 1
    /// on any mismatch.
    Test(TestArgs),
    /// List the columns of the `alerts` table that filters read, with their types.
    Columns,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The filter file (TOML), or a directory of them.
    file: PathBuf,
    /// Sample alerts (files or directories) to measure the pass rate on.
    #[arg(long, value_name = "PATH", default_value = "tests/data")]
    alerts: Vec<PathBuf>,
    /// Largest share of the sample alerts a filter may pass.
    #[arg(long, default_value_t = 0.05, value_name = "SHARE")]
    max_pass_share: f64,
    /// Accept a filter that passes more than --max-pass-share.
    #[arg(long)]
    allow_broad: bool,
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The filter file (TOML).
    file: PathBuf,
    /// Alerts (files or directories) to run the filter on; default: the fixture's.
    #[arg(long, value_name = "PATH")]
    alerts: Vec<PathBuf>,
    /// Print only the passing alerts.
    #[arg(long)]
    only_passing: bool,
}

/// The alerts of the given files, the module outputs for them and the schema.
struct Prepared {
    alerts: Vec<Alert>,
    outputs: ModuleOutputs,
    schema: AlertSchema,
}

fn prepare(config: &Config, paths: &[PathBuf]) -> anyhow::Result<Prepared> {
    let mut runner = module_runner(config)?;
    let schema = alert_schema(&runner)?;
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for path in alert_files(paths)? {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        for result in decoder.decode(&bytes, &Origin::file(&path)) {
            match result {
                Ok(alert) => alerts.push(alert),
                Err(error) => tracing::warn!(error = %error, "alert skipped"),
            }
        }
    }
    let outputs = runner.run(&alerts);
    Ok(Prepared {
        alerts,
        outputs,
        schema,
    })
}

fn alert_schema(runner: &ModuleRunner) -> anyhow::Result<AlertSchema> {
    let columns: Vec<_> = runner.columns().into_iter().map(|(_, column)| column).collect();
    AlertSchema::new(columns.iter()).context("building the alerts schema")
}

fn load_definition(file: &Path) -> anyhow::Result<FilterDefinition> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(FilterDefinition::parse(&text, &file.display().to_string())?)
}

/// The fixture next to a filter file: `NAME.fixture.toml` for `NAME.toml`.
pub fn fixture_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    file.with_file_name(format!("{stem}.fixture.toml"))
}

fn evaluate(prepared: &Prepared, filter: &mut CompiledFilter) -> anyhow::Result<(AlertBatch, FilterOutput)> {
    let batch = AlertBatch::build(
        &prepared.schema,
        &prepared.alerts,
        &prepared.outputs,
        filter.selection(),
    )?;
    let output = filter.evaluate(&batch)?;
    Ok((batch, output))
}

/// Runs `nightjar filter ...`.
pub fn run(config: &Config, command: FilterCommand) -> anyhow::Result<ExitCode> {
    match command {
        FilterCommand::Check(args) => check(config, args),
        FilterCommand::Test(args) => test(config, args),
        FilterCommand::Columns => {
            let runner = module_runner(config)?;
            let schema = alert_schema(&runner)?;
            for leaf in schema.leaves() {
                println!("{}\t{}\t{}", leaf.path, leaf.data_type, leaf.description);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(config: &Config, args: CheckArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.max_pass_share) {
        bail!("--max-pass-share must be between 0 and 1, not {}", args.max_pass_share);
    }
    let definitions = if args.file.is_dir() {
        let (definitions, errors) = nightjar_pipeline::load_filter_dir(&args.file)?;
        for error in &errors {
            eprintln!("error: {error}");
        }
        if !errors.is_empty() {
            return Ok(ExitCode::FAILURE);
        }
        definitions
    } else {
        match load_definition(&args.file) {
            Ok(definition) => vec![definition],
            Err(error) => {
                eprintln!("error: {error:#}");
                return Ok(ExitCode::FAILURE);
            }
        }
    };
    let prepared = prepare(config, &args.alerts)?;
    let mut code = ExitCode::SUCCESS;
    for definition in definitions {
        if check_one(&prepared, &definition, &args)? != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn check_one(prepared: &Prepared, definition: &FilterDefinition, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut filter = match definition.compile(&prepared.schema, &FilterLimits::default()) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let (_, output) = evaluate(prepared, &mut filter)?;
    let n_alerts = prepared.alerts.len();
    let share = if n_alerts == 0 {
        0.0
    } else {
        output.passed.len() as f64 / n_alerts as f64
    };
    println!(
        "filter {}: valid; reads {}",
        definition.name,
        if filter.columns_read().is_empty() {
            "no column".to_string()
        } else {
            filter.columns_read().join(", ")
        }
    );
    println!(
        "pass rate: {} of {} sample alerts ({:.1}%)",
        output.passed.len(),
        n_alerts,
        share * 100.0
    );
    if share > args.max_pass_share {
        if args.allow_broad {
            println!(
                "broad: passes more than {:.1}% of the sample, accepted with --allow-broad",
                args.max_pass_share * 100.0
            );
        } else {
            eprintln!(
                "error: filter {} passes {:.1}% of the sample alerts, more than the {:.1}% allowed; narrow it or pass --allow-broad",
                definition.name,
                share * 100.0,
                args.max_pass_share * 100.0
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn test(config: &Config, args: TestArgs) -> anyhow::Result<ExitCode> {
    let definition = load_definition(&args.file)?;
    let fixture_file = fixture_path(&args.file);
    let fixture = if fixture_file.is_file() {
        let text =
            std::fs::read_to_string(&fixture_file).with_context(|| format!("reading {}", fixture_file.display()))?;
        Some(Fixture::parse(&text, &fixture_file.display().to_string())?)
    } else {
        None
    };
    let paths: Vec<PathBuf> = if !args.alerts.is_empty() {
        args.alerts.clone()
    } else if let Some(fixture) = &fixture {
        let base = fixture_file.parent().unwrap_or(Path::new("."));
        fixture.alerts.iter().map(|path| base.join(path)).collect()
    } else {
        bail!(
            "no alerts to test {} on: pass --alerts or write {}",
            args.file.display(),
            fixture_file.display()
        );
    };
    let prepared = prepare(config, &paths)?;
    let mut filter = definition.compile(&prepared.schema, &FilterLimits::default())?;
    let (batch, output) = evaluate(&prepared, &mut filter)?;
    let record = batch.record_batch();
    for (row, alert) in prepared.alerts.iter().enumerate() {
        let passes = output.passed.binary_search(&row).is_ok();
        if args.only_passing && !passes {
            continue;
        }
        let values: Vec<String> = filter
            .columns_read()
            .iter()
            .map(|column| format!("{column}={}", value_text(record, column, row)))
            .collect();
        println!(
            "{}\t{}\t{}\t{}",
            if passes { "PASS" } else { "fail" },
            alert.object_id,
            alert.source_id(),
            values.join(" ")
        );
    }
    println!(
        "{} of {} alerts pass filter {}",
        output.passed.len(),
        prepared.alerts.len(),
        definition.name
    );
    if let Some(fixture) = fixture.filter(|_| args.alerts.is_empty()) {
        let problems = fixture.check(&filter, &batch, &output);
        if !problems.is_empty() {
            for problem in &problems {
                eprintln!("fixture {}: {problem}", fixture_file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
        println!("fixture {}: as expected", fixture_file.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct FilterBenchArgs {
    /// Alerts (files or directories) repeated into batches.
    #[arg(long, value_name = "PATH", default_value = "tests/data")]
    alerts: Vec<PathBuf>,
    /// Alerts per micro-batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

/// 100 distinct filters of the shapes users write: a cut on a raw field, a module output, a
/// history column, a mix across surveys.
fn bench_filters(count: usize) -> Vec<FilterDefinition> {
    (0..count)
        .filter_map(|index| {
            let cut = 15.0 + (index % 50) as f64 * 0.1;
            let sql = match index % 5 {
                0 => format!("candidate.magpsf < {cut} AND candidate.drb > 0.{}", index % 9 + 1),
                1 => format!(
                    "SELECT objectId, candidate.magpsf, real_bogus FROM alerts WHERE is_good_quality AND magnitude < {cut}"
                ),
                2 => format!("n_detections >= {} AND (mag_rate_g < -0.{} OR mag_rate_r < -0.{})", index % 4 + 1, index % 9 + 1, index % 9 + 1),
                3 => format!("diaSource.reliability > 0.{} AND diaSource.snr > {}", index % 9 + 1, index % 20 + 5),
                _ => format!("survey = 'ztf' AND abs(dec - {}) < 20 AND band IN ('g', 'r')", index % 90),
            };
            let text = format!("name = \"bench_{index}\"\ndescription = \"benchmark filter {index}\"\nsql = {sql:?}\n");
            FilterDefinition::parse(&text, "bench").ok()
        })
        .collect()
}

/// `nightjar bench filters`.
pub fn bench(args: FilterBenchArgs) -> anyhow::Result<ExitCode> {
    let config = Config::default();
    let prepared = prepare(&config, &args.alerts)?;
    if prepared.alerts.is_empty() {
        bail!("no alerts to benchmark on");
    }
    // Batches of real alerts (repeated to --batch-size) with their module outputs.
    let mut alerts = Vec::with_capacity(args.batch_size);
    while alerts.len() < args.batch_size {
        let take = (args.batch_size - alerts.len()).min(prepared.alerts.len());
        alerts.extend(prepared.alerts[..take].iter().cloned());
    }
    let mut runner = module_runner(&config)?;
    let outputs = runner.run(&alerts);
    let budget = Duration::from_secs_f64(args.seconds);
    let measure = |work: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut n_alerts = 0usize;
        while started.elapsed() < budget {
            work()?;
            n_alerts += alerts.len();
        }
        Ok(n_alerts as f64 / started.elapsed().as_secs_f64())
    };
    // Reference: converting the batch to Arrow with every column filled.
    let all = ColumnSelection::all(&prepared.schema);
    let reference = measure(&mut || {
        AlertBatch::build(&prepared.schema, &alerts, &outputs, &all)?;
        Ok(())
    })?;
    println!(
        "reference: Arrow conversion of every column ({} columns), {:.0} alerts/s",
        prepared.schema.leaves().len(),
        reference
    );
    println!(
        "batch of {} real alerts; conversion of the columns read included",
        alerts.len()
    );
    for count in [1, 10, 100] {
        let mut engine = FilterEngine::new(
            prepared.schema.clone(),
            FilterLimits {
                time_budget: Duration::from_secs(60),
                ..FilterLimits::default()
            },
        );
        let report = engine.update(bench_filters(count));
        if let Some(error) = report.rejected.first() {
            bail!("benchmark filter rejected: {error}");
        }
        let rate = measure(&mut || {
            for (_, result) in engine.run(&alerts, &outputs)? {
                result?;
            }
            Ok(())
        })?;
        println!(
            "{count:>3} filters: {rate:>10.0} alerts/s ({:.2}x the reference)",
            rate / reference
        );
    }
    Ok(ExitCode::SUCCESS)
}
