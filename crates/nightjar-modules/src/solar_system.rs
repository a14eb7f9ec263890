//! The `solar_system` module: Fink's `roid` flag (is this alert a Solar System object?) and
//! the name of the known object.
//!
//! # ZTF
//!
//! The rules of fink-science 7.4.0 `roid_catcher` (`fink_science/ztf/asteroids/processor.py`),
//! applied in its order, each later rule overriding the earlier ones:
//!
//! 1. `ndethist == 1`: 1 (first detection of the source);
//! 2. `sgscore1 < 0.76` and `ndethist <= 2`: 2 (Fink Solar System candidate: no stellar PS1
//!    counterpart, at most two detections);
//! 3. `0 < distpsnr1 < 5` arcsec: 0 (a PS1 source sits under the alert);
//! 4. two detections in the alert (`nalerthist == 2`) whose last two history entries are more
//!    than 30 minutes apart: 0;
//! 5. `ndethist == 2` but one detection in the alert: 0;
//! 6. `0 <= ssdistnr < 5` arcsec, `|distpsnr1| - ssdistnr > 0` (the known object is nearer than
//!    the closest PS1 source), `ndethist <= 5` and `nalerthist <= 5`: 3 (known MPC object).
//!
//! `nalerthist` is the number of detections (non-null `magpsf`) among the `prv_candidates` and
//! the candidate; rule 4 takes the last two `jd` of that concatenation, upper limits included,
//! as Fink does. A null input fails its comparison (as NaN does in Fink). The float fields are
//! compared in single precision, their type in the alert, as numpy does for Fink's float32
//! columns (`sgscore1 < 0.76` is `sgscore1 < 0.76f32`).
//!
//! `ssnamenr` is the alert's `candidate.ssnamenr` (MPC designation or number) when `roid` is 3,
//! null otherwise.
//!
//! # Rubin
//!
//! Rubin associates diaSources with known Solar System objects itself: `roid` is 3 when the
//! alert names an `ssObjectId` (in `diaSource`, `ssSource` or `MPCORB`; 0 and null are none);
//! `ssnamenr` is then the
//! `MPCORB.mpcDesignation`, else `ssSource.designation`, else `mpc_orbits.designation`.
//! Otherwise `roid` is 1 when the diaObject has a single diaSource (`nDiaSources == 1`, or no
//! earlier diaSources in the alert when the count is absent), else 0. Fink's rule 2 needs PS1
//! star/galaxy scores that Rubin alerts do not carry and is not applied.
//!
//! History seen: only the alert's own (`prv_candidates`, `prvDiaSources`).

use nightjar_core::{Alert, Survey};
use nightjar_rubin::wire::RubinAlert;
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;
use crate::ztf_history::{ztf_points, ztf_record};

const NAME: &str = "solar_system";

const OUTPUTS: &[OutputColumn] = &[
    OutputColumn::new(
        "roid",
        ColumnType::Int,
        "Fink's Solar System flag: 3 known MPC object, 2 Fink candidate, 1 first detection, 0 none",
    ),
    OutputColumn::new(
        "ssnamenr",
        ColumnType::Text,
        "designation or number of the known Solar System object when roid is 3",
    ),
];

/// Configuration of the `solar_system` module (`[modules.solar_system]`). The rules are
/// Fink's and have no parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SolarSystemConfig {
    /// Run the module (default true).
    pub enabled: bool,
}

impl Default for SolarSystemConfig {
    fn default() -> SolarSystemConfig {
        SolarSystemConfig { enabled: true }
    }
}

impl SolarSystemConfig {
    /// Nothing to check: the module has no parameters.
    pub fn validate(&self) -> Result<(), ModuleError> {
        Ok(())
    }
}

/// The `solar_system` module.
#[derive(Debug, Clone, Default)]
pub struct SolarSystem;

impl SolarSystem {
    /// Builds the module after validating `config`.
    pub fn build(config: &SolarSystemConfig) -> Result<SolarSystem, ModuleError> {
        config.validate()?;
        Ok(SolarSystem)
    }
}

impl ScienceModule for SolarSystem {
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
            .map(|alert| {
                let (roid, name) = match alert.survey {
                    Survey::Ztf => ztf_roid(alert),
                    Survey::Rubin => rubin_roid(alert),
                };
                vec![roid.map(Value::Int), name.map(Value::Text)]
            })
            .collect())
    }
}

/// Fink's `roid` of a ZTF alert and the known object's name when it is 3; `None` when the
/// alert has no candidate.
pub fn ztf_roid(alert: &Alert) -> (Option<i64>, Option<String>) {
    let (Some(record), Some(points)) = (ztf_record(alert), ztf_points(alert)) else {
        return (None, None);
    };
    let Some(candidate) = record.candidate.as_ref() else {
        return (None, None);
    };
    let ndethist = candidate.ndethist;
    let sgscore1 = candidate.sgscore1;
    let distpsnr1 = candidate.distpsnr1;
    let ssdistnr = candidate.ssdistnr;
    let nalerthist = points
        .iter()
        .filter(|point| point.magpsf.is_some_and(|magpsf| !magpsf.is_nan()))
        .count();
    let last_gap_days = match points.as_slice() {
        [.., before, last] => last.jd.zip(before.jd).map(|(last, before)| last - before),
        _ => None,
    };

    let below = |value: Option<f32>, limit: f32| value.is_some_and(|value| value < limit);
    let mut roid = 0;
    if ndethist == Some(1) {
        roid = 1;
    }
    if below(sgscore1, 0.76) && ndethist.is_some_and(|n| n <= 2) {
        roid = 2;
    }
    if distpsnr1.is_some_and(|distance| distance > 0.0 && distance < 5.0) {
        roid = 0;
    }
    if nalerthist == 2 && last_gap_days.is_some_and(|gap| gap > 30.0 / (24.0 * 60.0)) {
        roid = 0;
    }
    if ndethist == Some(2) && nalerthist == 1 {
        roid = 0;
    }
    let known_object = ssdistnr.is_some_and(|distance| (0.0..5.0).contains(&distance))
        && distpsnr1
            .zip(ssdistnr)
            .is_some_and(|(ps1, known)| ps1.abs() - known > 0.0)
        && ndethist.is_some_and(|n| n <= 5)
        && nalerthist <= 5;
    if known_object {
        return (Some(3), candidate.ssnamenr.clone());
    }
    (Some(roid), None)
}

/// A positive id: Rubin writes 0 where older schema versions wrote null.
fn present(id: Option<i64>) -> Option<i64> {
    id.filter(|&id| id != 0)
}

fn non_empty(text: Option<&String>) -> Option<String> {
    text.filter(|text| !text.trim().is_empty()).cloned()
}

/// `roid` of a Rubin alert (see the module docs) and the known object's designation.
pub fn rubin_roid(alert: &Alert) -> (Option<i64>, Option<String>) {
    let Some(record) = alert.raw.as_any().downcast_ref::<RubinAlert>() else {
        return (None, None);
    };
    let dia_source = record.diaSource.as_ref();
    let ss_source = record.ssSource.as_ref();
    // Spark rewrites carry an `ssSource` of nulls for diaSources without a known object.
    let known_object = [
        dia_source.and_then(|source| source.ssObjectId),
        ss_source.and_then(|source| source.ssObjectId),
        record.MPCORB.as_ref().and_then(|orbit| orbit.ssObjectId),
    ]
    .into_iter()
    .any(|id| present(id).is_some());
    if known_object {
        let name = non_empty(record.MPCORB.as_ref().and_then(|orbit| orbit.mpcDesignation.as_ref()))
            .or_else(|| non_empty(ss_source.and_then(|source| source.designation.as_ref())))
            .or_else(|| non_empty(record.mpc_orbits.as_ref().and_then(|orbit| orbit.designation.as_ref())));
        return (Some(3), name);
    }
    let n_dia_sources = record.diaObject.as_ref().and_then(|object| object.nDiaSources);
    let first = match n_dia_sources {
        Some(count) => count == 1,
        None => alert.history.is_empty(),
    };
    (Some(i64::from(first)), None)
}
