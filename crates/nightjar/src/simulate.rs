//! `nightjar simulate`: amplify real sample alerts into many unique alert files.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use nightjar_core::Survey;
use nightjar_simulate::{Amplifier, AmplifyConfig, Template};

use crate::files::alert_files;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Survey of the alerts to make.
    #[arg(long, value_enum)]
    survey: SurveyArg,
    /// Number of alerts to write.
    #[arg(long)]
    count: u64,
    /// Directory to write them to (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Real alert files or directories to use as templates [default: tests/data/ztf/alerts for
    /// ZTF, tests/data/lsst for Rubin].
    #[arg(long, value_name = "PATH")]
    from: Vec<PathBuf>,
    /// Seed: the same templates and seed give the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Observation time (MJD) of the first alert; default: each template's own time.
    #[arg(long, value_name = "MJD")]
    start_mjd: Option<f64>,
    /// Seconds between consecutive alerts.
    #[arg(long, default_value_t = 0.1, value_name = "SECONDS")]
    cadence_s: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SurveyArg {
    Ztf,
    Rubin,
}

impl From<SurveyArg> for Survey {
    fn from(survey: SurveyArg) -> Survey {
        match survey {
            SurveyArg::Ztf => Survey::Ztf,
            SurveyArg::Rubin => Survey::Rubin,
        }
    }
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let survey = Survey::from(args.survey);
    let sources = if args.from.is_empty() {
        vec![PathBuf::from(match survey {
            Survey::Ztf => "tests/data/ztf/alerts",
            Survey::Rubin => "tests/data/lsst",
        })]
    } else {
        args.from.clone()
    };
    let mut templates = Vec::new();
    let mut n_skipped = 0usize;
    for file in alert_files(&sources).context("finding template alerts (use --from to name them)")? {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let records = match Template::records_from_message(&file.display().to_string(), &bytes) {
            Ok(records) => records,
            Err(error) => vec![Err(error)],
        };
        for template in records {
            match template {
                Ok(template) if template.survey() == survey => templates.push(template),
                Ok(_) => {}
                Err(error) => {
                    n_skipped += 1;
                    tracing::warn!("skipping template: {error}");
                }
            }
        }
    }
    if templates.is_empty() {
        bail!("no usable {survey} template alerts under {}", display_paths(&sources));
    }
    let n_templates = templates.len();
    let config = AmplifyConfig {
        seed: args.seed,
        start_mjd: args.start_mjd,
        cadence_s: args.cadence_s,
        ..AmplifyConfig::default()
    };
    let amplifier = Amplifier::new(templates, config)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;

    let progress = ProgressBar::new(args.count).with_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} alerts, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut message = Vec::new();
    let mut n_bytes = 0u64;
    for index in 0..args.count {
        message.clear();
        amplifier.write_message(index, &mut message)?;
        let path = args.out.join(format!("{}_{index:09}.avro", survey.as_str()));
        std::fs::write(&path, &message).with_context(|| format!("writing {}", path.display()))?;
        n_bytes += message.len() as u64;
        progress.inc(1);
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} {survey} alerts ({:.1} MB) from {n_templates} templates to {} in {elapsed:.1} s ({:.0} alerts/s){}",
        args.count,
        n_bytes as f64 / 1e6,
        args.out.display(),
        args.count as f64 / elapsed.max(1e-9),
        if n_skipped > 0 {
            format!("; {n_skipped} sample records skipped (see the log)")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
