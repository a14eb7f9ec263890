//! The `quality` module: real/bogus scores and quality cuts, from the raw survey record.
//!
//! # ZTF
//!
//! By default `is_good_quality` applies the cuts Fink applies before its ZTF science stream
//! (fink-broker `bin/ztf/raw2science.py`, "Apply quality cuts":
//! `df.filter(df["candidate.nbad"] == 0).filter(df["candidate.rb"] >= 0.55)`):
//!
//! - `candidate.nbad == 0`: no bad pixel within 5 x 5 pixels of the detection;
//! - `candidate.rb >= 0.55`: RealBogus score of the random-forest classifier.
//!
//! As in Fink's Spark filter, a null `rb` or `nbad` fails its cut. Fink also drops i-band
//! (`fid == 3`) alerts at that step; that is a band choice, not a quality cut, and is left to
//! filters here.
//!
//! Optional cuts, off by default, so that the default equals Fink: `min_drb` (deep-learning
//! score, ZTF schema >= 3.3), `max_fwhm` (pixels), `max_elong` (`aimage / bimage`),
//! `max_abs_magdiff` (`|magap - magpsf|`; Fink's original 2019 level-one `qualitycuts` filter,
//! fink-broker `userfilters/levelone.py`, used `nbad == 0`, `rb >= 0.55`,
//! `|magdiff| <= 0.1`), and `require_positive_difference` (`isdiffpos` is `t` or `1`).
//!
//! `real_bogus` is the core model's `reliability`: `drb` where the packet's schema version
//! defines it (3.3 and later), else `rb`. Spark rewrites of 3.0-3.2 packets carry a filler
//! `drb` of 0.0, which must not count.
//!
//! # Rubin
//!
//! `real_bogus` and `reliability` are `diaSource.reliability`. `is_good_quality` requires
//! `reliability >= min_reliability` (default 0.5; a null reliability fails, as in ZTF) and
//! none of the `reject_pixel_flags` set on the diaSource (default: the general failure flag
//! `pixelFlags`, `pixelFlags_bad`, `pixelFlags_saturatedCenter`, `pixelFlags_crCenter`,
//! `pixelFlags_nodataCenter`, `pixelFlags_edge`). A flag the alert's schema lacks, or that is
//! null, is not applied. These Rubin cuts are nightjar's choice, not Fink's.
//!
//! # Outputs
//!
//! `rb`, `drb` (ZTF), `reliability` (Rubin), `real_bogus`, `is_good_quality`, and
//! `quality_flags`: the failed cuts, comma-separated (`rb`, `nbad`, ...; `rb:missing` when the
//! input is null), empty when the alert passes.

use nightjar_core::{Alert, FieldValue, Survey};
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;

const NAME: &str = "quality";

const OUTPUTS: &[OutputColumn] = &[
    OutputColumn::new(
        "rb",
        ColumnType::Float,
        "ZTF candidate.rb: RealBogus score of the random-forest classifier, 0 (bogus) to 1 (real)",
    ),
    OutputColumn::new(
        "drb",
        ColumnType::Float,
        "ZTF candidate.drb: deep-learning RealBogus score (schema 3.3 and later)",
    ),
    OutputColumn::new(
        "reliability",
        ColumnType::Float,
        "Rubin diaSource.reliability: probability that the diaSource is astrophysical",
    ),
    OutputColumn::new(
        "real_bogus",
        ColumnType::Float,
        "the survey's best real/bogus score: ZTF drb when present else rb; Rubin reliability",
    ),
    OutputColumn::new(
        "is_good_quality",
        ColumnType::Bool,
        "true when the detection passes every configured quality cut",
    ),
    OutputColumn::new(
        "quality_flags",
        ColumnType::Text,
        "the failed quality cuts, comma-separated (name:missing for a null input); empty when good",
    ),
];

/// Configuration of the `quality` module (`[modules.quality]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Run the module (default true).
    pub enabled: bool,
    /// Cuts on ZTF alerts.
    pub ztf: ZtfQualityCuts,
    /// Cuts on Rubin alerts.
    pub rubin: RubinQualityCuts,
}

impl Default for QualityConfig {
    fn default() -> QualityConfig {
        QualityConfig {
            enabled: true,
            ztf: ZtfQualityCuts::default(),
            rubin: RubinQualityCuts::default(),
        }
    }
}

/// Quality cuts on ZTF's `candidate` record. A cut set to none is not applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZtfQualityCuts {
    /// Minimum `rb` (Fink: 0.55).
    pub min_rb: Option<f64>,
    /// Maximum `nbad`, bad pixels within 5 x 5 pixels (Fink: 0).
    pub max_nbad: Option<i64>,
    /// Minimum `drb` (off by default).
    pub min_drb: Option<f64>,
    /// Maximum `fwhm` in pixels (off by default).
    pub max_fwhm: Option<f64>,
    /// Maximum `elong`, `aimage / bimage` (off by default).
    pub max_elong: Option<f64>,
    /// Maximum `|magdiff|`, `|magap - magpsf|` (off by default; Fink 2019: 0.1).
    pub max_abs_magdiff: Option<f64>,
    /// Require a positive subtraction, `isdiffpos` = `t` or `1` (off by default).
    pub require_positive_difference: bool,
}

impl Default for ZtfQualityCuts {
    fn default() -> ZtfQualityCuts {
        ZtfQualityCuts {
            min_rb: Some(0.55),
            max_nbad: Some(0),
            min_drb: None,
            max_fwhm: None,
            max_elong: None,
            max_abs_magdiff: None,
            require_positive_difference: false,
        }
    }
}

/// Quality cuts on Rubin's `diaSource` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RubinQualityCuts {
    /// Minimum `reliability` (default 0.5; none: not applied).
    pub min_reliability: Option<f64>,
    /// diaSource pixel flags that make a detection bad when true.
    pub reject_pixel_flags: Vec<String>,
}

impl Default for RubinQualityCuts {
    fn default() -> RubinQualityCuts {
        RubinQualityCuts {
            min_reliability: Some(0.5),
            reject_pixel_flags: [
                "pixelFlags",
                "pixelFlags_bad",
                "pixelFlags_saturatedCenter",
                "pixelFlags_crCenter",
                "pixelFlags_nodataCenter",
                "pixelFlags_edge",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl QualityConfig {
    /// Checks that scores lie in [0, 1], limits are finite and non-negative, and pixel flag
    /// names are diaSource `pixelFlags*` fields.
    pub fn validate(&self) -> Result<(), ModuleError> {
        let invalid = |field: &str, reason: String| ModuleError::InvalidConfig {
            module: NAME.to_owned(),
            field: field.to_owned(),
            reason,
        };
        let scores = [
            ("ztf.min_rb", self.ztf.min_rb),
            ("ztf.min_drb", self.ztf.min_drb),
            ("rubin.min_reliability", self.rubin.min_reliability),
        ];
        for (field, value) in scores {
            if let Some(value) = value
                && !(0.0..=1.0).contains(&value)
            {
                return Err(invalid(field, format!("{value} is not within [0, 1]")));
            }
        }
        let limits = [
            ("ztf.max_fwhm", self.ztf.max_fwhm),
            ("ztf.max_elong", self.ztf.max_elong),
            ("ztf.max_abs_magdiff", self.ztf.max_abs_magdiff),
        ];
        for (field, value) in limits {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(invalid(field, format!("{value} is not a finite number >= 0")));
            }
        }
        if let Some(max_nbad) = self.ztf.max_nbad
            && max_nbad < 0
        {
            return Err(invalid("ztf.max_nbad", format!("{max_nbad} is negative")));
        }
        for flag in &self.rubin.reject_pixel_flags {
            if !flag.starts_with("pixelFlags") || flag.contains('.') {
                return Err(invalid(
                    "rubin.reject_pixel_flags",
                    format!("{flag:?} is not a diaSource pixelFlags field (e.g. pixelFlags_bad)"),
                ));
            }
        }
        Ok(())
    }
}

/// The `quality` module, built from a [`QualityConfig`].
#[derive(Debug, Clone)]
pub struct Quality {
    config: QualityConfig,
    /// `diaSource.<flag>` paths, built once.
    pixel_flag_paths: Vec<(String, String)>,
}

impl Quality {
    /// Builds the module after validating `config`.
    pub fn build(config: &QualityConfig) -> Result<Quality, ModuleError> {
        config.validate()?;
        let pixel_flag_paths = config
            .rubin
            .reject_pixel_flags
            .iter()
            .map(|flag| (flag.clone(), format!("diaSource.{flag}")))
            .collect();
        Ok(Quality {
            config: config.clone(),
            pixel_flag_paths,
        })
    }

    fn ztf_row(&self, alert: &Alert) -> Row {
        let cuts = &self.config.ztf;
        let rb = float(alert, "candidate.rb");
        let drb = float(alert, "candidate.drb");
        let mut failed = Failed::default();
        if let Some(min_rb) = cuts.min_rb {
            failed.at_least("rb", rb, min_rb);
        }
        if let Some(min_drb) = cuts.min_drb {
            failed.at_least("drb", drb, min_drb);
        }
        if let Some(max_nbad) = cuts.max_nbad {
            let nbad = alert.raw.get("candidate.nbad").and_then(|value| value.as_i64());
            failed.at_most("nbad", nbad.map(|nbad| nbad as f64), max_nbad as f64);
        }
        if let Some(max_fwhm) = cuts.max_fwhm {
            failed.at_most("fwhm", float(alert, "candidate.fwhm"), max_fwhm);
        }
        if let Some(max_elong) = cuts.max_elong {
            failed.at_most("elong", float(alert, "candidate.elong"), max_elong);
        }
        if let Some(max_abs_magdiff) = cuts.max_abs_magdiff {
            let magdiff = float(alert, "candidate.magdiff").map(f64::abs);
            failed.at_most("magdiff", magdiff, max_abs_magdiff);
        }
        if cuts.require_positive_difference {
            let positive = match alert.raw.get("candidate.isdiffpos") {
                Some(FieldValue::Str(text)) => Some(text == "t" || text == "1"),
                _ => None,
            };
            failed.require("isdiffpos", positive);
        }
        let real_bogus = alert.detection.reliability;
        vec![
            rb.map(Value::Float),
            drb.map(Value::Float),
            None,
            real_bogus.map(Value::Float),
            Some(Value::Bool(failed.is_empty())),
            Some(Value::Text(failed.text())),
        ]
    }

    fn rubin_row(&self, alert: &Alert) -> Row {
        let reliability = float(alert, "diaSource.reliability");
        let mut failed = Failed::default();
        if let Some(min_reliability) = self.config.rubin.min_reliability {
            failed.at_least("reliability", reliability, min_reliability);
        }
        for (flag, path) in &self.pixel_flag_paths {
            if let Some(FieldValue::Bool(true)) = alert.raw.get(path) {
                failed.push(flag);
            }
        }
        vec![
            None,
            None,
            reliability.map(Value::Float),
            reliability.map(Value::Float),
            Some(Value::Bool(failed.is_empty())),
            Some(Value::Text(failed.text())),
        ]
    }
}

impl ScienceModule for Quality {
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
        Ok(batch
            .iter()
            .map(|alert| match alert.survey {
                Survey::Ztf => self.ztf_row(alert),
                Survey::Rubin => self.rubin_row(alert),
            })
            .collect())
    }
}

/// A finite number at `path`, or `None` for a missing field, a null or a NaN.
fn float(alert: &Alert, path: &str) -> Option<f64> {
    alert
        .raw
        .get(path)
        .and_then(|value| value.as_f64())
        .filter(|value| value.is_finite())
}

/// The cuts an alert failed, in the order they were checked.
#[derive(Debug, Default)]
struct Failed(Vec<String>);

impl Failed {
    fn push(&mut self, name: &str) {
        self.0.push(name.to_owned());
    }

    fn require(&mut self, name: &str, passed: Option<bool>) {
        match passed {
            Some(true) => {}
            Some(false) => self.push(name),
            None => self.0.push(format!("{name}:missing")),
        }
    }

    fn at_least(&mut self, name: &str, value: Option<f64>, minimum: f64) {
        self.require(name, value.map(|value| value >= minimum));
    }

    fn at_most(&mut self, name: &str, value: Option<f64>, maximum: f64) {
        self.require(name, value.map(|value| value <= maximum));
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn text(&self) -> String {
        self.0.join(",")
    }
}
