//! A complete small science module, the example of docs/modules/writing-a-module.md: for each
//! alert, how much brighter (in magnitudes) its detection is than the faintest earlier
//! detection in the same band, and whether that is more than a threshold. Run it on the bundled
//! alerts with `cargo run -p nightjar-modules --example brightening`.

use nightjar_core::{Alert, Origin};
use nightjar_modules::{ColumnType, ModuleError, ModuleOutputs, ModuleRunner, OutputColumn, Row, ScienceModule, Value};

/// Brightening since the faintest earlier detection in the alert's band.
struct Brightening {
    /// Magnitudes of brightening that count as a flare.
    threshold_mag: f64,
}

const OUTPUTS: &[OutputColumn] = &[
    OutputColumn::new(
        "delta_mag",
        ColumnType::Float,
        "faintest earlier magnitude in the band minus the alert's magnitude (positive: brighter)",
    ),
    OutputColumn::new(
        "is_flaring",
        ColumnType::Bool,
        "delta_mag above the configured threshold",
    ),
];

impl ScienceModule for Brightening {
    fn name(&self) -> &str {
        "brightening"
    }

    fn version(&self) -> &str {
        "1.0.0"
    }

    fn outputs(&self) -> &[OutputColumn] {
        OUTPUTS
    }

    fn run(&self, batch: &[Alert], _inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        Ok(batch
            .iter()
            .map(|alert| {
                let now = alert.detection.magnitude;
                let faintest_before = alert
                    .history
                    .iter()
                    .filter(|earlier| earlier.band == alert.detection.band)
                    .filter_map(|earlier| earlier.magnitude)
                    .fold(None, |faintest: Option<f64>, magnitude| {
                        Some(faintest.map_or(magnitude, |f| f.max(magnitude)))
                    });
                let delta_mag = now.zip(faintest_before).map(|(now, before)| before - now);
                vec![
                    delta_mag.map(Value::Float),
                    delta_mag.map(|delta| Value::Bool(delta > self.threshold_mag)),
                ]
            })
            .collect())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Twelve consecutive alerts of ZTF21abiuvdk, a growing light curve.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3");
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut decoder = nightjar_decode::Decoder::new();
    let mut alerts = Vec::new();
    for file in &files {
        for alert in decoder.decode(&std::fs::read(file)?, &Origin::file(file)) {
            alerts.push(alert?);
        }
    }

    let mut runner = ModuleRunner::new(vec![Box::new(Brightening { threshold_mag: 0.5 })])?;
    let outputs = runner.run(&alerts);
    for (index, alert) in alerts.iter().enumerate() {
        println!(
            "{} mjd {:.3}: {}",
            alert.object_id,
            alert.detection.mjd,
            outputs.alert_json(index)
        );
    }
    Ok(())
}
