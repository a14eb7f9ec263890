//! The `early_snia` module: Fink's early type Ia supernova classifier, `rf_snia_vs_nonia`,
//! the probability of the random forest of Leoni et al. (2022) on sigmoid-fit features.
//!
//! As fink-science 7.4.0 (`ztf/random_forest_snia/processor.py`, `rfscore_sigmoid_full`) with
//! the feature extraction of `actsnfink` (`get_sigmoid_features_dev`, defaults
//! `ewma_window = 3`, `min_rising_points = 2`, `min_data_points = 4`, `rising_criteria =
//! "ewma"`), on ZTF alerts:
//!
//! 1. Cuts: at least 4 detections with a magnitude (candidate and history, every band), and
//!    `candidate.ndethist <= 20`. Fink's third cut keeps alerts whose SIMBAD label is
//!    extragalactic or `Unknown`; nightjar has no SIMBAD match, so every alert counts as
//!    `Unknown` and passes. An alert that fails a cut scores 0.0.
//! 2. Magnitudes become SNANA fluxes, `FLUXCAL = 10^(-0.4 mag) * 1e11`, `FLUXCALERR =
//!    9.21034e10 * exp(-0.921034 mag) * sigmapsf`.
//! 3. Per band (g = fid 1, r = fid 2): points are averaged per day (the JD rounded half to
//!    even), points with `FLUXCAL <= -10` dropped; with at least 4 days left, the exponentially
//!    weighted mean of the flux (`com = 3`) must never decrease from one day to the next; then
//!    a sigmoid `c / (1 + exp(-a (t - b)))` is fitted to the days (`t` in days from the first)
//!    by least squares, exactly as SciPy's `least_squares` does by default (trust region
//!    reflective, 2-point Jacobian; see [`fit`]), giving `a`, `b`, `c`, the mean signal to
//!    noise `snratio`, `mse` (mean squared error between the normalised flux and the
//!    normalised fitted flux rounded to 4 decimals) and `nrise` (the number of days). A band
//!    that does not qualify gets `a = b = c = 0`, `snratio = 0.1`, `mse = 1e8`, `nrise = 0`.
//! 4. The random forest (`fink_early_snia_rf.onnx`, converted from Fink's pickled
//!    scikit-learn model, run with tract) takes the 12 features; `rf_snia_vs_nonia` is its
//!    probability of class 1, or 0.0 when `a_g` or `a_r` is 0.
//!
//! Rubin alerts get nulls (the model was trained on ZTF light curves).

pub mod fit;

use std::path::PathBuf;

use nightjar_core::{Alert, Band, Survey};
use nightjar_onnx::OnnxModel;
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;

const NAME: &str = "early_snia";

const BUNDLED_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/models/early_snia/fink_early_snia_rf.onnx"
));

/// Names of the 12 features, in the forest's input order.
pub const FEATURE_NAMES: [&str; 12] = [
    "a_g",
    "b_g",
    "c_g",
    "snratio_g",
    "mse_g",
    "nrise_g",
    "a_r",
    "b_r",
    "c_r",
    "snratio_r",
    "mse_r",
    "nrise_r",
];

const OUTPUTS: &[OutputColumn] = &[OutputColumn::new(
    "rf_snia_vs_nonia",
    ColumnType::Float,
    "Fink's early SN Ia score: random-forest probability of a type Ia supernova on sigmoid-fit features (0.0 when the alert fails the cuts or a band has no rising fit)",
)];

/// Configuration of the `early_snia` module (`[modules.early_snia]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EarlySniaConfig {
    /// Run the module (default true).
    pub enabled: bool,
    /// An ONNX classifier taking the 12 features and giving `probabilities` [1, 2]; none:
    /// the bundled `fink_early_snia_rf.onnx`.
    pub model: Option<PathBuf>,
    /// Minimum number of detections with a magnitude (Fink: 4).
    pub min_detections: usize,
    /// Maximum `ndethist` (Fink: 20).
    pub max_ndethist: i64,
}

impl Default for EarlySniaConfig {
    fn default() -> EarlySniaConfig {
        EarlySniaConfig {
            enabled: true,
            model: None,
            min_detections: 4,
            max_ndethist: 20,
        }
    }
}

impl EarlySniaConfig {
    /// Checks the cuts.
    pub fn validate(&self) -> Result<(), ModuleError> {
        if self.max_ndethist < 0 {
            return Err(ModuleError::InvalidConfig {
                module: NAME.to_owned(),
                field: "max_ndethist".to_owned(),
                reason: format!("{} is negative", self.max_ndethist),
            });
        }
        Ok(())
    }
}

/// One detection: Julian date, magnitude and its error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub jd: f64,
    pub magpsf: f64,
    pub sigmapsf: f64,
}

/// The six features of one band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandFeatures {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub snratio: f64,
    pub mse: f64,
    pub nrise: f64,
}

impl BandFeatures {
    /// The values of a band that does not qualify for the fit.
    pub const FAKE: BandFeatures = BandFeatures {
        a: 0.0,
        b: 0.0,
        c: 0.0,
        snratio: 0.1,
        mse: 1e8,
        nrise: 0.0,
    };
}

/// SNANA flux and its error from a magnitude (Fink's `mag2fluxcal_snana`).
pub fn fluxcal(magpsf: f64, sigmapsf: f64) -> (f64, f64) {
    let flux = 10f64.powf(-0.4 * magpsf) * 1e11;
    let error = 9.21034e10 * (-0.921034 * magpsf).exp() * sigmapsf;
    (flux, error)
}

/// The sigmoid-fit features of one band's detections (actsnfink's `get_sigmoid_features_dev`
/// for one filter, with Fink's defaults).
pub fn band_features(points: &[Point]) -> BandFeatures {
    const MIN_DATA_POINTS: usize = 4;
    const MIN_RISING_POINTS: usize = 2;
    const LOW_BOUND: f64 = -10.0;
    // Average per day: days ascending; the mean of each column skips NaNs.
    let mut by_day: Vec<(f64, f64, f64)> = points
        .iter()
        .map(|point| {
            let (flux, error) = fluxcal(point.magpsf, point.sigmapsf);
            (point.jd.round_ties_even(), flux, error)
        })
        .collect();
    by_day.sort_by(|left, right| left.0.total_cmp(&right.0));
    let mut days: Vec<(f64, f64, f64)> = Vec::new();
    let mut start = 0;
    while start < by_day.len() {
        let day = by_day[start].0;
        let end = start + by_day[start..].iter().take_while(|entry| entry.0 == day).count();
        let mean = |values: &mut dyn Iterator<Item = f64>| {
            let (sum, count) = values
                .filter(|value| !value.is_nan())
                .fold((0.0, 0usize), |(sum, count), value| (sum + value, count + 1));
            if count == 0 { f64::NAN } else { sum / count as f64 }
        };
        let flux = mean(&mut by_day[start..end].iter().map(|entry| entry.1));
        let error = mean(&mut by_day[start..end].iter().map(|entry| entry.2));
        days.push((day, flux, error));
        start = end;
    }
    // Keep days with FLUXCAL > -10 and no NaN.
    days.retain(|&(_, flux, error)| flux > LOW_BOUND && !flux.is_nan() && !error.is_nan());
    if days.len() < MIN_DATA_POINTS {
        return BandFeatures::FAKE;
    }
    // Every day must be on the rise of the exponentially weighted mean (pandas `ewm(3).mean()`,
    // adjust = true).
    let flux: Vec<f64> = days.iter().map(|day| day.1).collect();
    let ewma = ewm_mean(&flux, 3.0);
    // pandas masks where the difference is < 0; a NaN difference is kept.
    let rising = ewma.windows(2).all(|pair| {
        let difference = pair[1] - pair[0];
        difference >= 0.0 || difference.is_nan()
    });
    if !rising || days.len() < MIN_RISING_POINTS {
        return BandFeatures::FAKE;
    }
    let error: Vec<f64> = days.iter().map(|day| day.2).collect();
    let snratio = mean_of(
        &flux
            .iter()
            .zip(&error)
            .map(|(flux, error)| flux / error)
            .collect::<Vec<_>>(),
    );
    let t0 = days[0].0;
    let dt: Vec<f64> = days.iter().map(|day| day.0 - t0).collect();
    let Some([a, b, c]) = fit::fit_sigmoid(&dt, &flux) else {
        return BandFeatures::FAKE;
    };
    let predicted: Vec<f64> = dt
        .iter()
        .map(|&t| {
            let value = ((fit::sigmoid(t, a, b, c) * 1e4).round_ties_even()) / 1e4;
            if value == 0.0 { 0.00001 } else { value }
        })
        .collect();
    let flux_sum: f64 = flux.iter().sum();
    let predicted_sum: f64 = predicted.iter().sum();
    let squared: Vec<f64> = flux
        .iter()
        .zip(&predicted)
        .map(|(observed, expected)| (observed / flux_sum - expected / predicted_sum).powi(2))
        .collect();
    BandFeatures {
        a,
        b,
        c,
        snratio,
        mse: mean_of(&squared),
        nrise: flux.len() as f64,
    }
}

fn mean_of(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// pandas' `Series.ewm(com).mean()` with `adjust = True` on values without NaN.
fn ewm_mean(values: &[f64], com: f64) -> Vec<f64> {
    let alpha = 1.0 / (1.0 + com);
    let old_weight_factor = 1.0 - alpha;
    let new_weight = 1.0;
    let mut out = Vec::with_capacity(values.len());
    let Some(&first) = values.first() else {
        return out;
    };
    let mut weighted = first;
    let mut old_weight = 1.0;
    out.push(weighted);
    for &current in &values[1..] {
        old_weight *= old_weight_factor;
        if weighted != current {
            weighted = old_weight * weighted + new_weight * current;
            weighted /= old_weight + new_weight;
        }
        old_weight += new_weight;
        out.push(weighted);
    }
    out
}

/// The 12 features of an alert's detections (g = fid 1, r = fid 2).
pub fn features(detections: &[(Band, Point)]) -> [f64; 12] {
    let band = |wanted: Band| -> Vec<Point> {
        detections
            .iter()
            .filter(|(band, _)| *band == wanted)
            .map(|(_, point)| *point)
            .collect()
    };
    let g = band_features(&band(Band::G));
    let r = band_features(&band(Band::R));
    [
        g.a, g.b, g.c, g.snratio, g.mse, g.nrise, r.a, r.b, r.c, r.snratio, r.mse, r.nrise,
    ]
}

/// The `early_snia` module.
#[derive(Debug)]
pub struct EarlySnia {
    model: OnnxModel,
    config: EarlySniaConfig,
}

impl EarlySnia {
    /// Builds the module: loads the classifier (bundled or from `config.model`).
    pub fn build(config: &EarlySniaConfig) -> Result<EarlySnia, ModuleError> {
        config.validate()?;
        let invalid = |reason: String| ModuleError::InvalidConfig {
            module: NAME.to_owned(),
            field: "model".to_owned(),
            reason,
        };
        let model = match &config.model {
            Some(path) => {
                let bytes =
                    std::fs::read(path).map_err(|io| invalid(format!("cannot read {}: {io}", path.display())))?;
                OnnxModel::load(&path.display().to_string(), &bytes)
            }
            None => OnnxModel::load("bundled:fink_early_snia_rf.onnx", BUNDLED_MODEL),
        }
        .map_err(|onnx| invalid(onnx.to_string()))?;
        if model.n_features() != FEATURE_NAMES.len() {
            return Err(invalid(format!(
                "the model takes {} features, early_snia gives {}",
                model.n_features(),
                FEATURE_NAMES.len()
            )));
        }
        Ok(EarlySnia {
            model,
            config: config.clone(),
        })
    }

    /// The engine running the forest (`native-trees` for the bundled one, `tract` for other
    /// graphs).
    pub fn engine(&self) -> &'static str {
        self.model.engine()
    }

    /// The probability of class 1 for one feature vector (no cut applied).
    pub fn probability(&self, features: &[f64; 12]) -> Result<f64, ModuleError> {
        let row: Vec<f32> = features.iter().map(|&value| value as f32).collect();
        let output = self
            .model
            .run_output(&row, "probabilities")
            .map_err(|onnx| ModuleError::Failed {
                module: NAME.to_owned(),
                message: onnx.to_string(),
            })?;
        output
            .values
            .get(1)
            .map(|&value| f64::from(value))
            .ok_or_else(|| ModuleError::Failed {
                module: NAME.to_owned(),
                message: format!(
                    "model {} gave {} probabilities, expected 2",
                    self.model.name(),
                    output.values.len()
                ),
            })
    }

    /// `rf_snia_vs_nonia` of a ZTF alert; `None` for other surveys.
    pub fn score(&self, alert: &Alert) -> Result<Option<f64>, ModuleError> {
        if alert.survey != Survey::Ztf {
            return Ok(None);
        }
        let detections = detections(alert);
        let ndethist = alert.raw.get("candidate.ndethist").and_then(|value| value.as_i64());
        let passes = detections.len() >= self.config.min_detections
            && ndethist.is_some_and(|ndethist| ndethist <= self.config.max_ndethist);
        if !passes {
            return Ok(Some(0.0));
        }
        let features = features(&detections);
        if features[0] == 0.0 || features[6] == 0.0 {
            return Ok(Some(0.0));
        }
        self.probability(&features).map(Some)
    }
}

/// The alert's detections with a magnitude and its error (history and candidate), with
/// their band.
pub fn detections(alert: &Alert) -> Vec<(Band, Point)> {
    alert
        .history
        .iter()
        .chain(std::iter::once(&alert.detection))
        .filter_map(|detection| {
            Some((
                detection.band?,
                Point {
                    jd: detection.mjd + 2_400_000.5,
                    magpsf: detection.magnitude?,
                    sigmapsf: detection.magnitude_err.unwrap_or(f64::NAN),
                },
            ))
        })
        .collect()
}

impl ScienceModule for EarlySnia {
    fn name(&self) -> &str {
        NAME
    }

    fn version(&self) -> &str {
        "1.0.0"
    }

    fn outputs(&self) -> &[OutputColumn] {
        OUTPUTS
    }

    fn run(&self, batch: &[Alert], _inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        batch
            .iter()
            .map(|alert| Ok(vec![self.score(alert)?.map(Value::Float)]))
            .collect()
    }
}
