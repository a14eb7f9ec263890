//! `nightjar inspect`: decode alert files and print every alert as JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nightjar_core::Origin;
use nightjar_decode::Decoder;
use nightjar_registry::{SchemaRegistry, decode_with_registry};

use crate::config::Config;
use crate::files::alert_files;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Alert files (Avro containers or Confluent wire-format messages) or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print only the number of alerts in each file and the totals.
    #[arg(long)]
    count: bool,
    /// Print only the core fields, without the raw survey record.
    #[arg(long, conflicts_with = "count")]
    core: bool,
    /// Pretty-print the JSON (several lines per alert).
    #[arg(long, conflicts_with = "count")]
    pretty: bool,
    /// Run the science modules on each file's alerts and add their outputs under "modules".
    #[arg(long, conflicts_with = "count")]
    enrich: bool,
    /// Schema registry URL for unknown Rubin schema ids (overrides schema_registry.url).
    #[arg(long, value_name = "URL")]
    schema_registry: Option<String>,
}

pub fn run(config: &Config, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let files = alert_files(&args.paths)?;
    let mut decoder = match config.decode.survey {
        Some(survey) => Decoder::expecting(survey),
        None => Decoder::new(),
    };
    let registry_url = args.schema_registry.as_ref().or(config.schema_registry.url.as_ref());
    let mut registry = registry_url
        .map(|url| SchemaRegistry::new(url, Duration::from_millis(config.schema_registry.timeout_ms)))
        .transpose()?;
    let mut modules = if args.enrich {
        Some(crate::run::module_runner(config)?)
    } else {
        None
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut n_alerts, mut n_errors) = (0usize, 0usize);
    for path in &files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let origin = Origin::file(path);
        let results = decode_with_registry(&mut decoder, registry.as_mut(), &bytes, &origin);
        let mut alerts = Vec::new();
        for result in results {
            match result {
                Ok(alert) => alerts.push(alert),
                Err(error) => {
                    n_errors += 1;
                    tracing::error!(reason = error.reason(), "{error}");
                }
            }
        }
        let n_file_alerts = alerts.len();
        let outputs = modules.as_mut().map(|runner| runner.run(&alerts));
        if args.count {
            writeln!(out, "{}\t{n_file_alerts}", path.display())?;
        } else {
            for (index, alert) in alerts.iter().enumerate() {
                let mut json = alert.to_json();
                if let Some(object) = json.as_object_mut() {
                    if args.core {
                        object.remove("raw");
                    }
                    if let Some(outputs) = &outputs {
                        object.insert("modules".to_string(), outputs.alert_json(index));
                    }
                }
                if args.pretty {
                    serde_json::to_writer_pretty(&mut out, &json)?;
                } else {
                    serde_json::to_writer(&mut out, &json)?;
                }
                writeln!(out)?;
            }
        }
        n_alerts += n_file_alerts;
    }
    out.flush()?;
    eprintln!("inspected {} files: {n_alerts} alerts, {n_errors} errors", files.len());
    Ok(if n_errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
