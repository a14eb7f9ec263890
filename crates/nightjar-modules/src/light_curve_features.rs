//! The `light_curve_features` module: Fink's `lc_features_g` / `lc_features_r`, 26 light-curve
//! features per band computed with the SNAD `light-curve-feature` crate.
//!
//! # Definition (ZTF)
//!
//! As fink-science 7.4.0 `extract_features_ad_raw` (`fink_science/ztf/ad_features/processor.py`),
//! which the anomaly detection module reads:
//!
//! 1. the measurements are the `prv_candidates` followed by the candidate; those with a null
//!    or NaN `magpsf` or `sigmapsf` (upper limits) are dropped;
//! 2. when any remaining measurement lies on a reference source (`0 <= distnr <= 1.5` pixels),
//!    every measurement becomes a DC magnitude, the total brightness of reference plus
//!    difference (ZTF Explanatory Supplement p. 107, Fink's `vect_dc_mag`):
//!    `f = 10^(-0.4 magnr) +/- 10^(-0.4 magpsf)` (`+` when `isdiffpos` is `t` or `1`),
//!    `sigma_f = sqrt((sigmapsf/1.0857 10^(-0.4 magpsf))^2 + (sigmagnr/1.0857 10^(-0.4 magnr))^2)`,
//!    `m = -2.5 log10(f)`, `sigma_m = 1.0857 sigma_f / f`; a negative `magnr` or a non-positive
//!    total flux gives no magnitude and the measurement is dropped;
//! 3. the measurements are sorted by `jd`, split by band (g: `fid` 1, r: `fid` 2; i is not
//!    computed) and given to the feature extractor with `t = jd`, `m`, `w = 1 / sigma^2`;
//! 4. a feature that cannot be computed (too few points, a flat light curve) is null; a band
//!    without measurements, or whose times are not strictly increasing (the light-curve package
//!    refuses it and Fink skips the band), has every feature null.
//!
//! The features and parameters are Fink's `create_extractor()`: Mean, WeightedMean,
//! StandardDeviation, Median, Amplitude, BeyondNStd(1), Cusum, InterPercentileRange(0.1),
//! Kurtosis, LinearTrend, LinearFit, MagnitudePercentageRatio(0.4, 0.05),
//! MagnitudePercentageRatio(0.2, 0.1), MaximumSlope, MedianAbsoluteDeviation,
//! MedianBufferRangePercentage(0.1), PercentAmplitude, MeanVariance, AndersonDarlingNormal,
//! ReducedChi2, Skew, StetsonK (Malanchev et al. 2021, MNRAS 502, 5147, appendix A).
//! Column names are Fink's field names (`lc_features_g.mean`, ..., `lc_features_g.stetson_K`).
//!
//! # Rubin
//!
//! The g and r diaSources (history and the new one) with a positive `psfFlux`, as difference
//! AB magnitudes `31.4 - 2.5 log10(psfFlux / nJy)` with the first-order error, `t` the
//! `midpointMjdTai` as a Julian date. Rubin alerts give no reference flux under the source,
//! so there is no DC conversion; of diaSources that share a time (deblended children of one
//! visit) the first listed is kept. This is nightjar's choice: Fink has no Rubin counterpart.
//!
//! History seen: only the alert's own (ZTF's 30 days, Rubin's `prvDiaSources`).

use std::sync::LazyLock;

use light_curve_feature::{
    Amplitude, AndersonDarlingNormal, BeyondNStd, Cusum, Feature, FeatureEvaluator, FeatureExtractor,
    FeatureNamesDescriptionsTrait, InterPercentileRange, Kurtosis, LinearFit, LinearTrend, MagnitudePercentageRatio,
    MaximumSlope, Mean, MeanVariance, Median, MedianAbsoluteDeviation, MedianBufferRangePercentage, PercentAmplitude,
    ReducedChi2, Skew, StandardDeviation, StetsonK, TimeSeries, WeightedMean,
};
use nightjar_core::photometry::mjd_to_jd;
use nightjar_core::{Alert, Band, Survey};
use serde::{Deserialize, Serialize};

use crate::error::ModuleError;
use crate::module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
use crate::outputs::ModuleOutputs;
use crate::ztf_history::{ZtfPoint, ztf_points};

const NAME: &str = "light_curve_features";

/// The number of features per band.
pub const N_FEATURES: usize = 26;

macro_rules! feature_table {
    ($(($column:literal, $fink:literal, $description:literal)),* $(,)?) => {
        /// The feature names as Fink (and the light-curve package) spell them, in output order.
        pub const FEATURE_NAMES: [&str; N_FEATURES] = [$($fink),*];

        /// The output column suffixes (Fink's names), in output order.
        pub const FEATURE_COLUMNS: [&str; N_FEATURES] = [$($column),*];

        const OUTPUTS: &[OutputColumn] = &[
            $(OutputColumn::new(concat!("lc_features_g.", $column), ColumnType::Float, concat!("g band: ", $description)),)*
            $(OutputColumn::new(concat!("lc_features_r.", $column), ColumnType::Float, concat!("r band: ", $description)),)*
        ];
    };
}

feature_table![
    ("mean", "mean", "mean magnitude"),
    (
        "weighted_mean",
        "weighted_mean",
        "magnitude mean weighted by inverse square errors"
    ),
    (
        "standard_deviation",
        "standard_deviation",
        "standard deviation of the magnitudes"
    ),
    ("median", "median", "median magnitude"),
    (
        "amplitude",
        "amplitude",
        "half the range between maximum and minimum magnitude"
    ),
    (
        "beyond_1_std",
        "beyond_1_std",
        "fraction of magnitudes beyond one standard deviation from the mean"
    ),
    ("cusum", "cusum", "range of cumulative sums of magnitudes"),
    (
        "inter_percentile_range_10",
        "inter_percentile_range_10",
        "range between the 10 % and 90 % magnitude percentiles"
    ),
    ("kurtosis", "kurtosis", "unbiased excess kurtosis of the magnitudes"),
    (
        "linear_trend",
        "linear_trend",
        "slope of a linear fit without observation errors, mag/day"
    ),
    ("linear_trend_sigma", "linear_trend_sigma", "error of linear_trend"),
    (
        "linear_trend_noise",
        "linear_trend_noise",
        "standard deviation of the noise around linear_trend"
    ),
    (
        "linear_fit_slope",
        "linear_fit_slope",
        "slope of a linear fit weighted by the errors, mag/day"
    ),
    (
        "linear_fit_slope_sigma",
        "linear_fit_slope_sigma",
        "error of linear_fit_slope"
    ),
    (
        "linear_fit_reduced_chi2",
        "linear_fit_reduced_chi2",
        "reduced chi2 of the weighted linear fit"
    ),
    (
        "magnitude_percentage_ratio_40_5",
        "magnitude_percentage_ratio_40_5",
        "ratio of the 40-60 % and 5-95 % percentile ranges"
    ),
    (
        "magnitude_percentage_ratio_20_10",
        "magnitude_percentage_ratio_20_10",
        "ratio of the 20-80 % and 10-90 % percentile ranges"
    ),
    (
        "maximum_slope",
        "maximum_slope",
        "largest magnitude change per day between consecutive points"
    ),
    (
        "median_absolute_deviation",
        "median_absolute_deviation",
        "median absolute deviation of the magnitudes from their median"
    ),
    (
        "median_buffer_range_percentage_10",
        "median_buffer_range_percentage_10",
        "fraction of magnitudes within 10 % of the amplitude from the median"
    ),
    (
        "percent_amplitude",
        "percent_amplitude",
        "largest absolute deviation of a magnitude from the median"
    ),
    (
        "mean_variance",
        "mean_variance",
        "standard deviation over mean of the magnitudes"
    ),
    (
        "anderson_darling_normal",
        "anderson_darling_normal",
        "unbiased Anderson-Darling normality statistic"
    ),
    ("chi2", "chi2", "reduced chi2 of a constant fit with the errors"),
    ("skew", "skew", "skewness of the magnitudes"),
    (
        "stetson_K",
        "stetson_K",
        "Stetson K: normalised weighted deviation from the weighted mean"
    ),
];

/// Fink's feature extractor (`create_extractor()` of fink-science), built once.
static EXTRACTOR: LazyLock<FeatureExtractor<f64, Feature<f64>>> = LazyLock::new(|| {
    FeatureExtractor::new(vec![
        Mean::default().into(),
        WeightedMean::default().into(),
        StandardDeviation::default().into(),
        Median::default().into(),
        Amplitude::default().into(),
        BeyondNStd::new(1.0).into(),
        Cusum::default().into(),
        InterPercentileRange::new(0.1).into(),
        Kurtosis::default().into(),
        LinearTrend::default().into(),
        LinearFit::default().into(),
        MagnitudePercentageRatio::new(0.4, 0.05).into(),
        MagnitudePercentageRatio::new(0.2, 0.1).into(),
        MaximumSlope::default().into(),
        MedianAbsoluteDeviation::default().into(),
        MedianBufferRangePercentage::new(0.1).into(),
        PercentAmplitude::default().into(),
        MeanVariance::default().into(),
        AndersonDarlingNormal::default().into(),
        ReducedChi2::default().into(),
        Skew::default().into(),
        StetsonK::default().into(),
    ])
});

/// The names the `light-curve-feature` crate gives the extractor's outputs; equal to
/// [`FEATURE_NAMES`] (checked by the tests).
pub fn extractor_names() -> Vec<&'static str> {
    EXTRACTOR.get_names()
}

/// One band's light curve, sorted by time: `t` (Julian date), magnitude and its error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BandLightCurve {
    pub t: Vec<f64>,
    pub magnitude: Vec<f64>,
    pub magnitude_err: Vec<f64>,
}

/// The 26 features of one light curve, in [`FEATURE_NAMES`] order; NaN where a feature cannot
/// be computed. `None` when the curve is empty or its times are not strictly increasing.
pub fn features_of(curve: &BandLightCurve) -> Option<[f64; N_FEATURES]> {
    if curve.t.is_empty() || curve.t.windows(2).any(|pair| pair[1] <= pair[0]) {
        return None;
    }
    let weights: Vec<f64> = curve.magnitude_err.iter().map(|sigma| 1.0 / (sigma * sigma)).collect();
    let mut series = TimeSeries::new(&curve.t[..], &curve.magnitude[..], &weights[..]);
    let values = EXTRACTOR.eval_or_fill(&mut series, f64::NAN);
    values.try_into().ok()
}

/// The features of one band of one alert, as the `light_curve_features` module computes them
/// (see the module docs): `None` when the band has no usable light curve (no measurements,
/// repeated times in ZTF, the ZTF i band, or an alert of another type). Anomaly detection
/// and other modules reuse this.
pub fn band_features(alert: &Alert, band: Band) -> Option<[f64; N_FEATURES]> {
    features_of(&band_light_curve(alert, band)?)
}

/// The light curve that [`band_features`] feeds to the extractor.
pub fn band_light_curve(alert: &Alert, band: Band) -> Option<BandLightCurve> {
    match alert.survey {
        Survey::Ztf => {
            let fid = band.ztf_fid().filter(|&fid| fid <= 2)?;
            Some(ztf_light_curves(alert)?.remove(usize::from(fid == 2)))
        }
        Survey::Rubin => Some(rubin_light_curve(alert, band)),
    }
}

/// Fink's DC magnitude and error of one measurement; `None` where Fink gets NaN.
fn dc_magnitude(point: &ZtfPoint, magpsf: f64, sigmapsf: f64) -> Option<(f64, f64)> {
    let magnr = point.magnr.filter(|&magnr| magnr >= 0.0)?;
    let sigmagnr = point.sigmagnr?;
    let difference_flux = 10f64.powf(-0.4 * magpsf);
    let difference_sigma = (sigmapsf / 1.0857) * difference_flux;
    let reference_flux = 10f64.powf(-0.4 * magnr);
    let reference_sigma = (sigmagnr / 1.0857) * reference_flux;
    let flux = if point.positive {
        reference_flux + difference_flux
    } else {
        reference_flux - difference_flux
    };
    let sigma_flux = (difference_sigma * difference_sigma + reference_sigma * reference_sigma).sqrt();
    let magnitude = -2.5 * flux.log10();
    let sigma = sigma_flux / flux * 1.0857;
    (!magnitude.is_nan() && !sigma.is_nan()).then_some((magnitude, sigma))
}

/// The g and r light curves of a ZTF alert, Fink's way (see the module docs).
fn ztf_light_curves(alert: &Alert) -> Option<Vec<BandLightCurve>> {
    let points = ztf_points(alert)?;
    let measured: Vec<(&ZtfPoint, f64, f64)> = points
        .iter()
        .filter_map(|point| {
            let magpsf = point.magpsf.filter(|value| !value.is_nan())?;
            let sigmapsf = point.sigmapsf.filter(|value| !value.is_nan())?;
            Some((point, magpsf, sigmapsf))
        })
        .collect();
    let on_reference_source = measured
        .iter()
        .any(|(point, _, _)| point.distnr.is_some_and(|distnr| (0.0..=1.5).contains(&distnr)));
    let mut rows: Vec<(f64, i32, f64, f64)> = measured
        .iter()
        .filter_map(|&(point, magpsf, sigmapsf)| {
            let (magnitude, sigma) = if on_reference_source {
                dc_magnitude(point, magpsf, sigmapsf)?
            } else {
                (magpsf, sigmapsf)
            };
            Some((point.jd?, point.fid?, magnitude, sigma))
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut curves = vec![BandLightCurve::default(), BandLightCurve::default()];
    for (jd, fid, magnitude, sigma) in rows {
        if let Some(curve) = match fid {
            1 => curves.get_mut(0),
            2 => curves.get_mut(1),
            _ => None,
        } {
            curve.t.push(jd);
            curve.magnitude.push(magnitude);
            curve.magnitude_err.push(sigma);
        }
    }
    Some(curves)
}

/// One band's light curve of a Rubin alert (see the module docs).
fn rubin_light_curve(alert: &Alert, band: Band) -> BandLightCurve {
    let mut rows: Vec<(f64, f64, f64)> = alert
        .history
        .iter()
        .chain(std::iter::once(&alert.detection))
        .filter(|source| source.band == Some(band) && source.flux.is_some_and(|flux| flux > 0.0))
        .filter_map(|source| Some((mjd_to_jd(source.mjd), source.magnitude?, source.magnitude_err?)))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    rows.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut curve = BandLightCurve::default();
    for (t, magnitude, sigma) in rows {
        curve.t.push(t);
        curve.magnitude.push(magnitude);
        curve.magnitude_err.push(sigma);
    }
    curve
}

/// Configuration of the `light_curve_features` module (`[modules.light_curve_features]`). The
/// feature set is Fink's and has no parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LightCurveFeaturesConfig {
    /// Run the module (default true).
    pub enabled: bool,
}

impl Default for LightCurveFeaturesConfig {
    fn default() -> LightCurveFeaturesConfig {
        LightCurveFeaturesConfig { enabled: true }
    }
}

impl LightCurveFeaturesConfig {
    /// Nothing to check: the module has no parameters.
    pub fn validate(&self) -> Result<(), ModuleError> {
        Ok(())
    }
}

/// The `light_curve_features` module.
#[derive(Debug, Clone, Default)]
pub struct LightCurveFeatures;

impl LightCurveFeatures {
    /// Builds the module after validating `config`.
    pub fn build(config: &LightCurveFeaturesConfig) -> Result<LightCurveFeatures, ModuleError> {
        config.validate()?;
        LazyLock::force(&EXTRACTOR);
        Ok(LightCurveFeatures)
    }
}

fn push_band(row: &mut Row, features: Option<[f64; N_FEATURES]>) {
    match features {
        Some(values) => row.extend(
            values
                .iter()
                .map(|&value| value.is_finite().then_some(Value::Float(value))),
        ),
        None => row.extend(std::iter::repeat_n(None, N_FEATURES)),
    }
}

impl ScienceModule for LightCurveFeatures {
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
                let mut row = Row::with_capacity(OUTPUTS.len());
                let (g, r) = match alert.survey {
                    Survey::Ztf => match ztf_light_curves(alert) {
                        Some(curves) => (features_of(&curves[0]), features_of(&curves[1])),
                        None => (None, None),
                    },
                    Survey::Rubin => (
                        features_of(&rubin_light_curve(alert, Band::G)),
                        features_of(&rubin_light_curve(alert, Band::R)),
                    ),
                };
                push_band(&mut row, g);
                push_band(&mut row, r);
                row
            })
            .collect())
    }
}
