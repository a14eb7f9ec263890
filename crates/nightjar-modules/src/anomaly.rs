//! The `anomaly` module: Fink's anomaly score, from the SNAD anomaly-detection forests (active
//! anomaly discovery isolation forests, one per ZTF band) on 18 light-curve features per band.
//!
//! Definition (fink-science 7.4.0, `ztf/anomaly_detection/processor.py`):
//!
//! - the inputs are the 18 features of [`MODEL_COLUMNS`] for each band;
//! - the features of fid 1 (g) go to the forest named "r" and are filled with the means named
//!   "r", those of fid 2 (r) go to the forest and means named "g" (Fink's `data_r =
//!   get_key(x, 1)`); a missing feature is replaced by its band's mean;
//! - `anomaly_score = (forest_g + forest_r) / 2`, in float32 as onnxruntime computes it;
//! - an alert without features in one of the two bands scores 0.0.
//!
//! The forests are ONNX-ML `TreeEnsembleRegressor` graphs, evaluated natively by
//! `nightjar-onnx` (docs/adr/0005). Any pair of ONNX models taking 18 floats can be plugged in
//! by config: a zip file laid out as Fink's (`forest_g*.onnx`, `forest_r*.onnx`), as the
//! per-user models bundled in `data/models/anomaly_detection`.
//!
//! The features come through [`BandFeatures`]: by default [`ColumnFeatures`] reads the outputs
//! of the `light_curve_features` module (`lc_features_g.<feature>` for fid 1,
//! `lc_features_r.<feature>` for fid 2, with Fink's feature names).

use std::io::{Cursor, Read};
use std::path::PathBuf;

use nightjar_core::Alert;
use nightjar_onnx::OnnxModel;
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;

const NAME: &str = "anomaly";

/// The 18 features the forests take, in their input order (Fink's `MODEL_COLUMNS`).
pub const MODEL_COLUMNS: [&str; 18] = [
    "amplitude",
    "anderson_darling_normal",
    "beyond_1_std",
    "chi2",
    "cusum",
    "kurtosis",
    "linear_fit_slope",
    "linear_fit_slope_sigma",
    "linear_trend_noise",
    "linear_trend_sigma",
    "magnitude_percentage_ratio_20_10",
    "magnitude_percentage_ratio_40_5",
    "maximum_slope",
    "median",
    "median_absolute_deviation",
    "median_buffer_range_percentage_10",
    "skew",
    "stetson_K",
];

const OUTPUTS: &[OutputColumn] = &[OutputColumn::new(
    "anomaly_score",
    ColumnType::Float,
    "Fink's anomaly score: mean of the two bands' anomaly-detection forest scores (lower is more anomalous); 0.0 without features in both bands",
)];

const BUNDLED_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/models/anomaly_detection/anomaly_detection_forest_AAD.zip"
));
const BUNDLED_G_MEANS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/models/anomaly_detection/g_means.csv"
));
const BUNDLED_R_MEANS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/models/anomaly_detection/r_means.csv"
));

/// The 18 features of one band; `None` for a missing value.
pub type FeatureVector = [Option<f64>; 18];

/// Configuration of the `anomaly` module (`[modules.anomaly]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Run the module (it reads the `light_curve_features` module's outputs).
    pub enabled: bool,
    /// A zip file holding `forest_g*.onnx` and `forest_r*.onnx` (Fink's layout); none: the
    /// bundled `anomaly_detection_forest_AAD.zip` (fink-science 7.4.0).
    pub model: Option<PathBuf>,
    /// CSV of the means that fill missing features of the forest "g" (rows `name,value`);
    /// none: the bundled `g_means.csv`.
    pub g_means: Option<PathBuf>,
    /// Same for the forest "r"; none: the bundled `r_means.csv`.
    pub r_means: Option<PathBuf>,
    /// The module whose outputs hold the features (run first).
    pub features_module: String,
    /// Output record of the fid-1 (g) features, read as `<prefix>.<feature>`.
    pub fid1_prefix: String,
    /// Output record of the fid-2 (r) features.
    pub fid2_prefix: String,
}

impl Default for AnomalyConfig {
    fn default() -> AnomalyConfig {
        AnomalyConfig {
            enabled: true,
            model: None,
            g_means: None,
            r_means: None,
            features_module: "light_curve_features".to_owned(),
            fid1_prefix: "lc_features_g".to_owned(),
            fid2_prefix: "lc_features_r".to_owned(),
        }
    }
}

impl AnomalyConfig {
    /// Checks the names of the features module and prefixes.
    pub fn validate(&self) -> Result<(), ModuleError> {
        let fields = [
            ("features_module", &self.features_module),
            ("fid1_prefix", &self.fid1_prefix),
            ("fid2_prefix", &self.fid2_prefix),
        ];
        for (field, value) in fields {
            if value.is_empty() || value.contains(char::is_whitespace) {
                return Err(invalid(
                    field,
                    format!("{value:?} must be a non-empty name without spaces"),
                ));
            }
        }
        Ok(())
    }
}

fn invalid(field: &str, reason: String) -> ModuleError {
    ModuleError::InvalidConfig {
        module: NAME.to_owned(),
        field: field.to_owned(),
        reason,
    }
}

/// Where the module finds the features of each alert: the seam between this module and the
/// one computing light-curve features.
pub trait BandFeatures: Send + Sync + std::fmt::Debug {
    /// Modules that must run first.
    fn depends_on(&self) -> &[&str];
    /// The features of band `fid` (1 or 2) of the alert at `index`; `None` when the band has
    /// no features at all.
    fn features(&self, index: usize, alert: &Alert, inputs: &ModuleOutputs, fid: u8) -> Option<FeatureVector>;
}

/// [`BandFeatures`] read from another module's output columns `<prefix>.<feature>` (feature
/// names as Fink's); a band whose 18 columns are all null has no features.
#[derive(Debug, Clone)]
pub struct ColumnFeatures {
    module: Vec<&'static str>,
    columns: [Vec<String>; 2],
}

impl ColumnFeatures {
    /// Reads `<fid1_prefix>.<feature>` and `<fid2_prefix>.<feature>` from `module`'s outputs.
    pub fn new(module: &str, fid1_prefix: &str, fid2_prefix: &str) -> ColumnFeatures {
        let names = |prefix: &str| {
            MODEL_COLUMNS
                .iter()
                .map(|feature| format!("{prefix}.{feature}"))
                .collect()
        };
        ColumnFeatures {
            // Built once per process: the dependency name lives as long as the module.
            module: vec![Box::leak(module.to_owned().into_boxed_str())],
            columns: [names(fid1_prefix), names(fid2_prefix)],
        }
    }
}

impl BandFeatures for ColumnFeatures {
    fn depends_on(&self) -> &[&str] {
        &self.module
    }

    fn features(&self, index: usize, _alert: &Alert, inputs: &ModuleOutputs, fid: u8) -> Option<FeatureVector> {
        let columns = self.columns.get(usize::from(fid).checked_sub(1)?)?;
        let mut vector: FeatureVector = [None; 18];
        for (slot, column) in vector.iter_mut().zip(columns) {
            *slot = inputs
                .get(index, column)
                .and_then(Value::as_f64)
                .filter(|value| !value.is_nan());
        }
        vector.iter().any(Option::is_some).then_some(vector)
    }
}

/// The two forests and their means, as Fink pairs them.
#[derive(Debug)]
pub struct AnomalyForests {
    forest_g: OnnxModel,
    forest_r: OnnxModel,
    g_means: [f64; 18],
    r_means: [f64; 18],
}

impl AnomalyForests {
    /// Loads the forests from a zip in Fink's layout and the means from their CSV text.
    /// `source` names the zip in errors.
    pub fn from_zip(source: &str, zip: &[u8], g_means: &[u8], r_means: &[u8]) -> Result<AnomalyForests, ModuleError> {
        let error = |reason: String| invalid("model", format!("{source}: {reason}"));
        let mut archive =
            zip::ZipArchive::new(Cursor::new(zip)).map_err(|zip| error(format!("not a readable zip file: {zip}")))?;
        let mut forest = |band: &str| -> Result<OnnxModel, ModuleError> {
            let prefix = format!("forest_{band}");
            let name = archive
                .file_names()
                .find(|name| {
                    let file = name.rsplit('/').next().unwrap_or(name);
                    file.starts_with(&prefix) && file.ends_with(".onnx")
                })
                .map(str::to_owned)
                .ok_or_else(|| error(format!("no {prefix}*.onnx in the zip")))?;
            let mut bytes = Vec::new();
            archive
                .by_name(&name)
                .and_then(|mut file| file.read_to_end(&mut bytes).map_err(zip::result::ZipError::from))
                .map_err(|zip| error(format!("cannot read {name}: {zip}")))?;
            let model = OnnxModel::load(&format!("{source}:{name}"), &bytes).map_err(|onnx| error(onnx.to_string()))?;
            if model.n_features() != MODEL_COLUMNS.len() {
                return Err(error(format!(
                    "{name} takes {} features, the anomaly forests take {}",
                    model.n_features(),
                    MODEL_COLUMNS.len()
                )));
            }
            Ok(model)
        };
        let forest_g = forest("g")?;
        let forest_r = forest("r")?;
        Ok(AnomalyForests {
            forest_g,
            forest_r,
            g_means: read_means("g_means", g_means)?,
            r_means: read_means("r_means", r_means)?,
        })
    }

    /// The bundled forests of fink-science 7.4.0 (`anomaly_detection_forest_AAD.zip`).
    pub fn bundled() -> Result<AnomalyForests, ModuleError> {
        AnomalyForests::from_zip(
            "bundled:anomaly_detection_forest_AAD.zip",
            BUNDLED_MODEL,
            BUNDLED_G_MEANS,
            BUNDLED_R_MEANS,
        )
    }

    /// Fink's anomaly score from the features of fid 1 and fid 2: 0.0 when a band has none,
    /// else the mean of forest "r" on the filled fid-1 features and forest "g" on the filled
    /// fid-2 features.
    pub fn score(&self, fid1: Option<&FeatureVector>, fid2: Option<&FeatureVector>) -> Result<f64, ModuleError> {
        let (Some(fid1), Some(fid2)) = (fid1, fid2) else {
            return Ok(0.0);
        };
        let fill = |features: &FeatureVector, means: &[f64; 18]| -> [f32; 18] {
            std::array::from_fn(|i| features[i].unwrap_or(means[i]) as f32)
        };
        let run = |model: &OnnxModel, row: &[f32]| -> Result<f32, ModuleError> {
            let outputs = model.run(row).map_err(|onnx| ModuleError::Failed {
                module: NAME.to_owned(),
                message: onnx.to_string(),
            })?;
            outputs
                .last()
                .and_then(|output| output.values.first().copied())
                .ok_or_else(|| ModuleError::Failed {
                    module: NAME.to_owned(),
                    message: format!("model {} returned no score", model.name()),
                })
        };
        let score_r = run(&self.forest_r, &fill(fid1, &self.r_means))?;
        let score_g = run(&self.forest_g, &fill(fid2, &self.g_means))?;
        Ok(f64::from((score_g + score_r) / 2.0))
    }
}

/// Reads a means CSV (`name,value` rows after a header line) into model-column order.
fn read_means(field: &str, text: &[u8]) -> Result<[f64; 18], ModuleError> {
    let mut found: [Option<f64>; 18] = [None; 18];
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text);
    for record in reader.records() {
        let record = record.map_err(|csv| invalid(field, format!("unreadable CSV: {csv}")))?;
        let (Some(name), Some(value)) = (record.get(0), record.get(1)) else {
            continue;
        };
        if let Some(position) = MODEL_COLUMNS.iter().position(|column| *column == name.trim()) {
            let value = value
                .trim()
                .parse::<f64>()
                .map_err(|_| invalid(field, format!("value {value:?} of {name} is not a number")))?;
            found[position] = Some(value);
        }
    }
    let mut means = [0.0; 18];
    for (i, value) in found.iter().enumerate() {
        means[i] = value.ok_or_else(|| invalid(field, format!("no mean for feature {}", MODEL_COLUMNS[i])))?;
    }
    Ok(means)
}

/// The `anomaly` module.
#[derive(Debug)]
pub struct Anomaly {
    forests: AnomalyForests,
    features: Box<dyn BandFeatures>,
}

impl Anomaly {
    /// Builds the module from `config`: loads the forests and means (bundled or from files)
    /// and reads the features from the configured module's outputs.
    pub fn build(config: &AnomalyConfig) -> Result<Anomaly, ModuleError> {
        config.validate()?;
        let read = |field: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|io| invalid(field, format!("cannot read {}: {io}", path.display())))
        };
        let g_means = config.g_means.as_ref().map(|path| read("g_means", path)).transpose()?;
        let r_means = config.r_means.as_ref().map(|path| read("r_means", path)).transpose()?;
        let g_means = g_means.as_deref().unwrap_or(BUNDLED_G_MEANS);
        let r_means = r_means.as_deref().unwrap_or(BUNDLED_R_MEANS);
        let forests = match &config.model {
            Some(path) => {
                AnomalyForests::from_zip(&path.display().to_string(), &read("model", path)?, g_means, r_means)?
            }
            None => AnomalyForests::from_zip(
                "bundled:anomaly_detection_forest_AAD.zip",
                BUNDLED_MODEL,
                g_means,
                r_means,
            )?,
        };
        let features = ColumnFeatures::new(&config.features_module, &config.fid1_prefix, &config.fid2_prefix);
        Ok(Anomaly::with_features(forests, Box::new(features)))
    }

    /// The module over loaded forests and any source of features.
    pub fn with_features(forests: AnomalyForests, features: Box<dyn BandFeatures>) -> Anomaly {
        Anomaly { forests, features }
    }

    /// The forests.
    pub fn forests(&self) -> &AnomalyForests {
        &self.forests
    }
}

impl ScienceModule for Anomaly {
    fn name(&self) -> &str {
        NAME
    }

    fn version(&self) -> &str {
        "1.0.0"
    }

    fn outputs(&self) -> &[OutputColumn] {
        OUTPUTS
    }

    fn depends_on(&self) -> &[&str] {
        self.features.depends_on()
    }

    fn run(&self, batch: &[Alert], inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        batch
            .iter()
            .enumerate()
            .map(|(index, alert)| {
                let fid1 = self.features.features(index, alert, inputs, 1);
                let fid2 = self.features.features(index, alert, inputs, 2);
                let score = self.forests.score(fid1.as_ref(), fid2.as_ref())?;
                Ok(vec![Some(Value::Float(score))])
            })
            .collect()
    }
}
