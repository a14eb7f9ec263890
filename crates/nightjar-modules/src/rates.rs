//! The `rates` module: how fast the source changes, Fink's fast-transient quantities.
//!
//! # Fink's deterministic quantities (ZTF)
//!
//! As fink-science 7.4.0 `fast_transient_rate` (`fink_science/ztf/fast_transient_rate`), on
//! the `prv_candidates` (packet order) followed by the candidate:
//!
//! - `jd_first_real_det`: `jd` of the first entry with a `magpsf` (the first 5-sigma detection
//!   the alert carries);
//! - `jdstarthist_dt`: `jd_first_real_det - candidate.jdstarthist` (`jdstarthist` counts 3-sigma
//!   detections too; above 30 days the first detection in the alert is not the first one);
//! - the *last measurement*: walking back from the newest `prv_candidate`, the first entry in
//!   the candidate's band; the walk stops with none at an entry of another filter than g or r
//!   (`fid > 2`), and entries of the other of g and r are skipped;
//! - `delta_time`: `candidate.jd` minus the last measurement's `jd`;
//! - `from_upper`: the last measurement is an upper limit (no `magpsf`, a `diffmaglim`).
//!
//! # The magnitude rate
//!
//! `mag_rate` (mag/day) is `(magpsf - m_last) / delta_time`, with `m_last` the last
//! measurement's `magpsf`, or its `diffmaglim` when `from_upper`; `sigma_rate` is the
//! propagated 1-sigma error, `sqrt(sigmapsf^2 + sigmapsf_last^2) / delta_time` (a limit has
//! none: `sigmapsf / delta_time`); `lower_rate` and `upper_rate` are the 5 % and 95 % quantiles
//! of that normal distribution (`mag_rate -/+ 1.645 sigma_rate`). Negative is brightening.
//! From an upper limit the rate is a bound: the source was fainter than the limit, so the true
//! rate is at most `mag_rate`.
//!
//! Fink computes these four by drawing 10,000 fluxes per measurement (an upper limit: uniform
//! between zero and the limit's flux) without a fixed seed, after shifting every draw of the
//! whole micro-batch by the batch's most negative draw; its values therefore change from run
//! to run and with the other alerts of the batch. nightjar's are analytic and reproducible;
//! for well-measured detections they agree with Fink's draws to within their scatter.
//!
//! # Rubin
//!
//! The same definitions on the core model: the last measurement is the newest earlier
//! diaSource with a magnitude, or `prvDiaNondetectionLimits` limit, in the new diaSource's band
//! (no stop at other bands); `jd = midpointMjdTai + 2400000.5`; `jd_first_real_det` is the
//! earliest diaSource. `jdstarthist_dt` is null: Rubin has no 3-sigma start of history.
//!
//! History seen: only the alert's own (ZTF's 30 days, Rubin's `prvDiaSources`).

use nightjar_core::photometry::mjd_to_jd;
use nightjar_core::{Alert, Survey};
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;
use crate::ztf_history::{ztf_points, ztf_record};

const NAME: &str = "rates";

/// The 95 % quantile of the standard normal distribution.
const Z_95: f64 = 1.644_853_626_951_472_2;

const OUTPUTS: &[OutputColumn] = &[
    OutputColumn::new(
        "jd_first_real_det",
        ColumnType::Float,
        "Julian date of the first detection (5 sigma) carried by the alert",
    ),
    OutputColumn::new(
        "jdstarthist_dt",
        ColumnType::Float,
        "jd_first_real_det - jdstarthist, days (ZTF); above 30 the first detection is not in the alert",
    ),
    OutputColumn::new(
        "mag_rate",
        ColumnType::Float,
        "magnitude rate since the last measurement in the same band, mag/day (negative: brightening)",
    ),
    OutputColumn::new(
        "sigma_rate",
        ColumnType::Float,
        "1-sigma uncertainty of mag_rate, mag/day (propagated analytically)",
    ),
    OutputColumn::new(
        "lower_rate",
        ColumnType::Float,
        "5 % quantile of mag_rate (normal approximation), mag/day",
    ),
    OutputColumn::new(
        "upper_rate",
        ColumnType::Float,
        "95 % quantile of mag_rate (normal approximation), mag/day",
    ),
    OutputColumn::new(
        "delta_time",
        ColumnType::Float,
        "days between the last measurement in the same band and this detection",
    ),
    OutputColumn::new(
        "from_upper",
        ColumnType::Bool,
        "true when the last measurement is an upper limit (mag_rate is then a bound)",
    ),
];

/// Configuration of the `rates` module (`[modules.rates]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RatesConfig {
    /// Run the module (default true).
    pub enabled: bool,
}

impl Default for RatesConfig {
    fn default() -> RatesConfig {
        RatesConfig { enabled: true }
    }
}

impl RatesConfig {
    /// Nothing to check: the module has no parameters.
    pub fn validate(&self) -> Result<(), ModuleError> {
        Ok(())
    }
}

/// The values of the `rates` module for one alert; `None` is null.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub jd_first_real_det: Option<f64>,
    pub jdstarthist_dt: Option<f64>,
    pub mag_rate: Option<f64>,
    pub sigma_rate: Option<f64>,
    pub lower_rate: Option<f64>,
    pub upper_rate: Option<f64>,
    pub delta_time: Option<f64>,
    pub from_upper: bool,
}

/// The last measurement before the new detection, in its band.
#[derive(Debug, Clone, Copy)]
struct LastMeasurement {
    jd: Option<f64>,
    magnitude: Option<f64>,
    magnitude_err: Option<f64>,
    limit: Option<f64>,
}

fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|value| value.is_finite())
}

/// Fills the deterministic quantities and the analytic rate from the new detection and the
/// last measurement.
fn rates_from(jd: f64, magnitude: Option<f64>, magnitude_err: Option<f64>, last: Option<LastMeasurement>) -> Rates {
    let mut rates = Rates::default();
    let Some(last) = last else {
        return rates;
    };
    let delta_time = finite(last.jd.map(|last_jd| jd - last_jd));
    rates.delta_time = delta_time;
    let last_magnitude = finite(last.magnitude);
    rates.from_upper = last_magnitude.is_none() && finite(last.limit).is_some();
    let (Some(delta_time), Some(magnitude), Some(magnitude_err)) = (
        delta_time.filter(|&dt| dt > 0.0),
        finite(magnitude),
        finite(magnitude_err),
    ) else {
        return rates;
    };
    let (reference, sigma) = match (last_magnitude, finite(last.magnitude_err)) {
        (Some(last_magnitude), Some(last_err)) => (last_magnitude, magnitude_err.hypot(last_err)),
        (Some(_), None) => return rates,
        (None, _) => match finite(last.limit) {
            Some(limit) => (limit, magnitude_err),
            None => return rates,
        },
    };
    let mag_rate = (magnitude - reference) / delta_time;
    let sigma_rate = sigma / delta_time;
    rates.mag_rate = Some(mag_rate);
    rates.sigma_rate = Some(sigma_rate);
    rates.lower_rate = Some(mag_rate - Z_95 * sigma_rate);
    rates.upper_rate = Some(mag_rate + Z_95 * sigma_rate);
    rates
}

/// The `rates` values of a ZTF alert; `None` for a non-ZTF alert or one without a candidate.
pub fn ztf_rates(alert: &Alert) -> Option<Rates> {
    let points = ztf_points(alert)?;
    let candidate = ztf_record(alert)?.candidate.as_ref()?;
    let (current, earlier) = points.split_last()?;
    let jd = current.jd?;
    let jd_first_real_det = points
        .iter()
        .find(|point| point.magpsf.is_some_and(|magpsf| !magpsf.is_nan()))
        .and_then(|point| point.jd);
    let mut last = None;
    for point in earlier.iter().rev() {
        match point.fid {
            Some(fid) if fid > 2 => break,
            Some(fid) if Some(fid) == current.fid => {
                last = Some(LastMeasurement {
                    jd: point.jd,
                    magnitude: point.magpsf,
                    magnitude_err: point.sigmapsf,
                    limit: point.diffmaglim,
                });
                break;
            }
            _ => {}
        }
    }
    let mut rates = rates_from(jd, current.magpsf, current.sigmapsf, last);
    rates.jd_first_real_det = jd_first_real_det;
    rates.jdstarthist_dt = finite(
        jd_first_real_det
            .zip(candidate.jdstarthist)
            .map(|(first, start)| first - start),
    );
    Some(rates)
}

/// The `rates` values of a Rubin alert, from the core model.
pub fn rubin_rates(alert: &Alert) -> Rates {
    let detection = &alert.detection;
    let band = detection.band;
    let mut last: Option<(f64, LastMeasurement)> = None;
    let mut consider = |mjd: f64, measurement: LastMeasurement, is_detection: bool| {
        let newer = match last {
            None => true,
            // On equal times a detection wins over a limit.
            Some((last_mjd, _)) => mjd > last_mjd || (mjd == last_mjd && is_detection),
        };
        if newer {
            last = Some((mjd, measurement));
        }
    };
    for earlier in alert
        .history
        .iter()
        .filter(|earlier| earlier.band == band && band.is_some())
    {
        if earlier.magnitude.is_some() {
            let measurement = LastMeasurement {
                jd: Some(mjd_to_jd(earlier.mjd)),
                magnitude: earlier.magnitude,
                magnitude_err: earlier.magnitude_err,
                limit: None,
            };
            consider(earlier.mjd, measurement, true);
        }
    }
    for limit in alert
        .upper_limits
        .iter()
        .filter(|limit| limit.band == band && band.is_some())
    {
        if limit.limiting_magnitude.is_some() {
            let measurement = LastMeasurement {
                jd: Some(mjd_to_jd(limit.mjd)),
                magnitude: None,
                magnitude_err: None,
                limit: limit.limiting_magnitude,
            };
            consider(limit.mjd, measurement, false);
        }
    }
    let last = last.map(|(_, measurement)| measurement);
    let mut rates = rates_from(
        mjd_to_jd(detection.mjd),
        detection.magnitude,
        detection.magnitude_err,
        last,
    );
    let first_mjd = alert
        .history
        .iter()
        .chain(std::iter::once(detection))
        .map(|source| source.mjd)
        .fold(f64::INFINITY, f64::min);
    rates.jd_first_real_det = Some(mjd_to_jd(first_mjd));
    rates
}

/// The `rates` module.
#[derive(Debug, Clone, Default)]
pub struct RatesModule;

impl RatesModule {
    /// Builds the module after validating `config`.
    pub fn build(config: &RatesConfig) -> Result<RatesModule, ModuleError> {
        config.validate()?;
        Ok(RatesModule)
    }
}

impl ScienceModule for RatesModule {
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
                let rates = match alert.survey {
                    Survey::Ztf => ztf_rates(alert),
                    Survey::Rubin => Some(rubin_rates(alert)),
                };
                match rates {
                    None => vec![None; OUTPUTS.len()],
                    Some(rates) => {
                        let float = |value: Option<f64>| finite(value).map(Value::Float);
                        vec![
                            float(rates.jd_first_real_det),
                            float(rates.jdstarthist_dt),
                            float(rates.mag_rate),
                            float(rates.sigma_rate),
                            float(rates.lower_rate),
                            float(rates.upper_rate),
                            float(rates.delta_time),
                            Some(Value::Bool(rates.from_upper)),
                        ]
                    }
                }
            })
            .collect())
    }
}
