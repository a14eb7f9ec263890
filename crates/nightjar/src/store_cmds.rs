//! Subcommands that work on the science database: `demo`, `deadletter`, `prune`, `query`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use nightjar_core::{Origin, Survey};
use nightjar_pipeline::{Message, decode_batch};
use nightjar_store::{AlertSelection, Night, TimeWindow};

use crate::config::Config;
use crate::run::{RunArgs, decoder_for, ingest, open_reader, open_store, print_summary, registry_for};

/// File that marks a directory as made by `nightjar demo`, so a later demo may replace it.
const DEMO_MARKER: &str = ".nightjar-demo";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to put the demo's store; replaced if an earlier demo made it.
    #[arg(long, default_value = "nightjar-demo", value_name = "DIR")]
    data_dir: PathBuf,
}

/// The bundled sample alerts: `tests/data` of the working directory when run from the
/// repository, else of the source tree nightjar was built from.
fn sample_alerts() -> anyhow::Result<PathBuf> {
    let local = PathBuf::from("tests/data");
    if local.is_dir() {
        return Ok(local);
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    if built.is_dir() {
        return Ok(built);
    }
    bail!("the bundled sample alerts (tests/data) are not here; run the demo from the nightjar repository")
}

pub async fn demo(config: &Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = &args.data_dir;
    if data_dir.exists() {
        if !data_dir.join(DEMO_MARKER).exists() {
            bail!(
                "{} exists and was not made by `nightjar demo`; choose another --data-dir",
                data_dir.display()
            );
        }
        std::fs::remove_dir_all(data_dir).with_context(|| format!("removing the old demo {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    std::fs::write(data_dir.join(DEMO_MARKER), "made by `nightjar demo`; safe to delete\n")?;
    let samples = sample_alerts()?;
    eprintln!(
        "nightjar demo: ingesting the bundled real ZTF and Rubin alerts from {}",
        samples.display()
    );
    let run_args = RunArgs {
        source: samples.display().to_string(),
        data_dir: Some(data_dir.clone()),
        batch_size: None,
        no_cutouts: false,
        schema_registry: None,
        quiet: false,
        serve: false,
        metrics_listen: None,
        kafka: Default::default(),
    };
    // The demo is always the embedded store, whatever store.url says.
    let mut demo_config = config.clone();
    demo_config.store.url = None;
    let (_, summary) = ingest(&demo_config, &run_args).await?;
    print_summary(&data_dir.display().to_string(), &summary);
    let dir = data_dir.display();
    eprintln!(
        "\nTry next:\n\
         \x20 nightjar query nights --data-dir {dir}                      # alerts per observing night\n\
         \x20 nightjar query object ZTF21abiuvdk --data-dir {dir}         # a light curve merged from 12 alerts\n\
         \x20 nightjar query cone 0.81428 16.14568 5 --data-dir {dir}      # objects within 5 arcsec\n\
         \x20 nightjar deadletter list --data-dir {dir}                   # what could not be decoded, and why\n\
         \x20 sqlite3 {dir}/nightjar.sqlite 'select * from objects limit 5' # the tables are plain SQLite\n\
         \x20 nightjar demo                                                  # again: a fresh store, same counts"
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Subcommand)]
pub enum DeadLetterCommand {
    /// List dead letters: messages that could not be decoded, with where they came from and why.
    List {
        /// Only those with this reason (e.g. truncated, unknown_schema_id).
        #[arg(long)]
        reason: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Data directory of the store (overrides store.path).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Decode dead letters again (after an upgrade, or with a schema registry): those that now
    /// decode are stored and removed from the dead letters.
    Replay {
        /// Only those with this reason.
        #[arg(long)]
        reason: Option<String>,
        /// Schema registry URL for unknown Rubin schema ids (overrides schema_registry.url).
        #[arg(long, value_name = "URL")]
        schema_registry: Option<String>,
        /// Data directory of the store (overrides store.path).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

pub async fn dead_letters(config: &Config, command: DeadLetterCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeadLetterCommand::List {
            reason,
            limit,
            data_dir,
        } => {
            let (_, store) = open_reader(config, data_dir.as_deref()).await?;
            let letters = store.dead_letters(reason.as_deref(), limit).await?;
            let mut out = std::io::stdout().lock();
            for letter in &letters {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{} bytes\t{}",
                    letter.id.unwrap_or_default(),
                    letter.reason,
                    letter.origin,
                    letter.bytes.len(),
                    letter.message
                )?;
            }
            eprintln!("{} dead letters", letters.len());
            Ok(ExitCode::SUCCESS)
        }
        DeadLetterCommand::Replay {
            reason,
            schema_registry,
            data_dir,
        } => {
            let (_, store) = open_store(config, data_dir.as_deref()).await?;
            let mut registry = registry_for(config, schema_registry.as_ref())?;
            let mut decoder = decoder_for(config);
            let letters = store.dead_letters(reason.as_deref(), usize::MAX).await?;
            let (mut n_recovered, mut n_still_failing) = (0usize, 0usize);
            for letter in letters {
                let message = Message {
                    bytes: letter.bytes.clone(),
                    origin: Origin::memory(letter.origin.clone()),
                };
                let (alerts, failures) = decode_batch(&mut decoder, registry.as_mut(), vec![message], true);
                if failures.is_empty() && !alerts.is_empty() {
                    store.write_batch(&alerts).await?;
                    store.delete_dead_letters(&[letter.id.unwrap_or_default()]).await?;
                    n_recovered += 1;
                } else {
                    n_still_failing += 1;
                    if let Some(failure) = failures.first() {
                        eprintln!("still failing: {}: {}", letter.origin, failure.message);
                    }
                }
            }
            eprintln!(
                "replayed {} dead letters: {n_recovered} stored, {n_still_failing} still failing",
                n_recovered + n_still_failing
            );
            Ok(if n_still_failing == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove everything observed on nights before this one (YYYY-MM-DD; the night of a time
    /// is the date 12 hours earlier, as Rubin's dayObs).
    #[arg(long, value_name = "DATE")]
    before: Night,
    /// Data directory of the store (overrides store.path).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

pub async fn prune(config: &Config, args: PruneArgs) -> anyhow::Result<ExitCode> {
    let (store_label, store) = open_store(config, args.data_dir.as_deref()).await?;
    let removed = store.prune(args.before).await?;
    eprintln!(
        "pruned nights before {} from {}: {} alerts, {} detections, {} upper limits, {} forced photometry, {} cutouts, {} objects",
        args.before,
        store_label,
        removed.alerts,
        removed.detections,
        removed.upper_limits,
        removed.forced_photometry,
        removed.cutouts,
        removed.objects
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(subcommand)]
    query: Query,
    /// Data directory of the store (overrides store.path).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Query {
    /// An object's light curve: summary, detections, upper limits, forced photometry (JSON).
    Object {
        /// ZTF objectId (ZTF21abiuvdk) or Rubin diaObjectId.
        object_id: String,
        /// The survey; guessed from the id when omitted (ZTF ids start with "ZTF").
        #[arg(long, value_enum)]
        survey: Option<SurveyArg>,
    },
    /// Objects within a radius of a position, nearest first (JSON lines).
    Cone {
        /// Right ascension, degrees.
        ra: f64,
        /// Declination, degrees.
        dec: f64,
        /// Radius, arcseconds (at most 18000).
        radius_arcsec: f64,
    },
    /// The latest alerts, newest first (JSON lines).
    Latest {
        /// How many.
        #[arg(long, short, default_value_t = 10)]
        n: usize,
    },
    /// Alerts and objects per observing night.
    Nights,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SurveyArg {
    Ztf,
    Rubin,
}

pub async fn query(config: &Config, args: QueryArgs) -> anyhow::Result<ExitCode> {
    let (_, store) = open_reader(config, args.data_dir.as_deref()).await?;
    let mut out = std::io::stdout().lock();
    match args.query {
        Query::Object { object_id, survey } => {
            let survey = match survey {
                Some(SurveyArg::Ztf) => Survey::Ztf,
                Some(SurveyArg::Rubin) => Survey::Rubin,
                None if object_id.starts_with("ZTF") => Survey::Ztf,
                None => Survey::Rubin,
            };
            let Some(light_curve) = store.light_curve(survey, &object_id).await? else {
                eprintln!("no {survey} object {object_id} in the store");
                return Ok(ExitCode::FAILURE);
            };
            serde_json::to_writer_pretty(&mut out, &light_curve)?;
            writeln!(out)?;
        }
        Query::Cone { ra, dec, radius_arcsec } => {
            if !(0.0..=18_000.0).contains(&radius_arcsec) || !(-90.0..=90.0).contains(&dec) {
                bail!(
                    "expected 0 <= radius_arcsec <= 18000 and -90 <= dec <= 90, got radius {radius_arcsec}, dec {dec}"
                );
            }
            let found = store
                .cone_search(ra.rem_euclid(360.0), dec, radius_arcsec / 3600.0, TimeWindow::ALL)
                .await?;
            for (object, distance_deg) in &found {
                let mut json = serde_json::to_value(object)?;
                json["distance_arcsec"] = serde_json::Value::from(distance_deg * 3600.0);
                serde_json::to_writer(&mut out, &json)?;
                writeln!(out)?;
            }
            eprintln!("{} objects", found.len());
        }
        Query::Latest { n } => {
            for alert in store.latest_alerts(TimeWindow::ALL, &AlertSelection::All, n).await? {
                serde_json::to_writer(&mut out, &alert.detection)?;
                writeln!(out)?;
            }
        }
        Query::Nights => {
            writeln!(out, "night\tsurvey\talerts\tobjects")?;
            for count in store.counts_per_night().await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    count.night, count.survey, count.n_alerts, count.n_objects
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
