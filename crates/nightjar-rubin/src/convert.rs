//! Mapping of a decoded Rubin alert ([`RubinAlert`]) to the survey-agnostic core model.
//!
//! The rules, for every schema version 7.0 to 11.0:
//!
//! - object id: `diaSource.diaObjectId`, else `diaObject.diaObjectId`, in decimal. Rubin writes
//!   `0` (9.0 and later) or null for "no diaObject": a solar-system source then gets
//!   `ss:<ssObjectId>` (from `diaSource`, else `ssSource`, `ssObject` or `MPCORB`).
//! - detection: `diaSource`: `diaSourceId` (the top-level `diaSourceId` of 8.0+ only when the
//!   record lacks it), `midpointMjdTai` (MJD, TAI), `band`, `ra`/`dec`, `psfFlux`/`psfFluxErr`
//!   (nJy), magnitudes derived with [`nightjar_core::photometry`], `reliability`.
//! - `is_negative` is the sign of `psfFlux`. Rubin's own `isNegative` (8.0+) / `is_negative`
//!   (7.3, 7.4) means "detected as significantly negative", a detection flag that differs from
//!   the flux sign for dipoles (in the real 10.0 data 67 of 345 earlier detections of one
//!   object have a negative `psfFlux` and `isNegative` false); it is used only when `psfFlux`
//!   is missing or NaN, and stays readable in the raw record.
//! - a flux, flux error or reliability that is NaN becomes `None` (Rubin writes NaN for a failed
//!   measurement).
//! - history: `prvDiaSources`; upper limits: `prvDiaNondetectionLimits` (7.x only; none from
//!   8.0 on); forced photometry: `prvDiaForcedSources`; each sorted by time, oldest first.
//! - upper limits: `diaNoise` is the 1-sigma noise of the difference image in nJy, kept as
//!   `noise_flux`; `limiting_magnitude` is the 5-sigma limit `31.4 - 2.5 log10(5 diaNoise)`.
//! - cutouts: `cutoutScience`, `cutoutTemplate`, `cutoutDifference`, plain FITS, shared with
//!   the raw record (no copy).
//!
//! A missing required value (`diaSource`; the id, time or position of it or of a history entry;
//! the time of a limit or forced measurement; an object id) is [`DecodeErrorKind::MissingField`]
//! naming its path.

use std::any::Any;
use std::sync::Arc;

use nightjar_core::photometry::{flux_err_to_mag_err, flux_to_mag};
use nightjar_core::raw::{FieldValue, RawRecord};
use nightjar_core::{
    Alert, Band, Cutout, CutoutKind, DecodeErrorKind, Detection, ForcedPhotometry, ModuleValues, RawAlert, RawBytes,
    Survey, UpperLimit,
};

use crate::wire::{DiaForcedSource, DiaNondetectionLimit, DiaSource, RubinAlert};

impl RawAlert for RubinAlert {
    fn get(&self, path: &str) -> Option<FieldValue<'_>> {
        RawRecord::get(self, path)
    }

    fn field_paths(&self) -> Vec<String> {
        <RubinAlert as RawRecord>::field_paths()
    }

    fn to_json(&self) -> serde_json::Value {
        RawRecord::to_json(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Signal-to-noise ratio of the limiting magnitude computed from `diaNoise`.
pub const UPPER_LIMIT_SIGMA: f64 = 5.0;

/// Maps a decoded Rubin alert to the core model; `schema_version` is the version it was
/// written with (`"9.0"`), as the wire schema id or [`crate::detect_version`] says.
///
/// See the module documentation for the field mapping.
pub fn to_alert(raw: RubinAlert, schema_version: &str) -> Result<Alert, DecodeErrorKind> {
    let dia_source = raw.diaSource.as_ref().ok_or_else(|| missing("diaSource"))?;
    let object_id = object_id(&raw, dia_source)?;
    let detection = to_detection(dia_source, raw.diaSourceId, || "diaSource".to_string())?;

    let history = match &raw.prvDiaSources {
        Some(sources) => {
            let mut history = sources
                .iter()
                .enumerate()
                .map(|(index, source)| to_detection(source, None, || format!("prvDiaSources[{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            sort_by_time(&mut history, |detection| detection.mjd);
            history
        }
        None => Vec::new(),
    };
    let upper_limits = match &raw.prvDiaNondetectionLimits {
        Some(limits) => {
            let mut upper_limits = limits
                .iter()
                .enumerate()
                .map(|(index, limit)| to_upper_limit(limit, index))
                .collect::<Result<Vec<_>, _>>()?;
            sort_by_time(&mut upper_limits, |limit| limit.mjd);
            upper_limits
        }
        None => Vec::new(),
    };
    let forced_photometry = match &raw.prvDiaForcedSources {
        Some(sources) => {
            let mut forced = sources
                .iter()
                .enumerate()
                .map(|(index, source)| to_forced(source, index))
                .collect::<Result<Vec<_>, _>>()?;
            sort_by_time(&mut forced, |forced| forced.mjd);
            forced
        }
        None => Vec::new(),
    };

    let cutouts = [
        (CutoutKind::Science, &raw.cutoutScience),
        (CutoutKind::Template, &raw.cutoutTemplate),
        (CutoutKind::Difference, &raw.cutoutDifference),
    ]
    .into_iter()
    .filter_map(|(kind, bytes)| {
        bytes.as_ref().map(|RawBytes(data)| Cutout {
            kind,
            file_name: None,
            data: data.clone(),
        })
    })
    .collect();

    Ok(Alert {
        survey: Survey::Rubin,
        schema_version: schema_version.to_string(),
        object_id,
        detection,
        history,
        upper_limits,
        forced_photometry,
        cutouts,
        raw: Arc::new(raw),
        module_values: ModuleValues::new(),
    })
}

fn missing(path: &str) -> DecodeErrorKind {
    DecodeErrorKind::MissingField(path.to_string())
}

/// A positive id: Rubin writes `0` where older versions wrote null.
fn present_id(id: Option<i64>) -> Option<i64> {
    id.filter(|&id| id != 0)
}

fn object_id(raw: &RubinAlert, dia_source: &DiaSource) -> Result<String, DecodeErrorKind> {
    let dia_object_id = present_id(dia_source.diaObjectId)
        .or_else(|| present_id(raw.diaObject.as_ref().and_then(|object| object.diaObjectId)));
    if let Some(id) = dia_object_id {
        return Ok(id.to_string());
    }
    let ss_object_id = present_id(dia_source.ssObjectId)
        .or_else(|| present_id(raw.ssSource.as_ref().and_then(|source| source.ssObjectId)))
        .or_else(|| present_id(raw.ssObject.as_ref().and_then(|object| object.ssObjectId)))
        .or_else(|| present_id(raw.MPCORB.as_ref().and_then(|orbit| orbit.ssObjectId)));
    match ss_object_id {
        Some(id) => Ok(format!("ss:{id}")),
        None => Err(missing("diaSource.diaObjectId")),
    }
}

fn finite(value: Option<f32>) -> Option<f64> {
    value.map(f64::from).filter(|value| value.is_finite())
}

fn band(name: Option<&String>) -> Option<Band> {
    name.and_then(|name| Band::from_name(name))
}

/// The detection of a diaSource; `fallback_id` is used when the record lacks its id.
fn to_detection(
    source: &DiaSource,
    fallback_id: Option<i64>,
    path: impl Fn() -> String,
) -> Result<Detection, DecodeErrorKind> {
    let required = |value: Option<f64>, field: &str| {
        value.ok_or_else(|| DecodeErrorKind::MissingField(format!("{}.{field}", path())))
    };
    let source_id = source
        .diaSourceId
        .or(fallback_id)
        .ok_or_else(|| DecodeErrorKind::MissingField(format!("{}.diaSourceId", path())))?;
    let flux = finite(source.psfFlux);
    let flux_err = finite(source.psfFluxErr);
    let is_negative = match flux {
        Some(flux) => flux < 0.0,
        None => source.isNegative.or(source.is_negative).unwrap_or(false),
    };
    Ok(Detection {
        source_id,
        mjd: required(source.midpointMjdTai, "midpointMjdTai")?,
        band: band(source.band.as_ref()),
        ra: required(source.ra, "ra")?,
        dec: required(source.dec, "dec")?,
        magnitude: flux.and_then(flux_to_mag),
        magnitude_err: flux
            .zip(flux_err)
            .and_then(|(flux, flux_err)| flux_err_to_mag_err(flux, flux_err)),
        flux,
        flux_err,
        is_negative,
        reliability: finite(source.reliability),
    })
}

fn to_upper_limit(limit: &DiaNondetectionLimit, index: usize) -> Result<UpperLimit, DecodeErrorKind> {
    let noise_flux = finite(limit.diaNoise);
    Ok(UpperLimit {
        mjd: limit.midpointMjdTai.ok_or_else(|| {
            DecodeErrorKind::MissingField(format!("prvDiaNondetectionLimits[{index}].midpointMjdTai"))
        })?,
        band: band(limit.band.as_ref()),
        limiting_magnitude: noise_flux.and_then(|noise| flux_to_mag(UPPER_LIMIT_SIGMA * noise)),
        noise_flux,
    })
}

fn to_forced(source: &DiaForcedSource, index: usize) -> Result<ForcedPhotometry, DecodeErrorKind> {
    Ok(ForcedPhotometry {
        forced_source_id: source.diaForcedSourceId,
        mjd: source
            .midpointMjdTai
            .ok_or_else(|| DecodeErrorKind::MissingField(format!("prvDiaForcedSources[{index}].midpointMjdTai")))?,
        band: band(source.band.as_ref()),
        flux: finite(source.psfFlux),
        flux_err: finite(source.psfFluxErr),
    })
}

/// Sorts oldest first (stable), skipping the sort when Rubin already sent them in order.
fn sort_by_time<T>(items: &mut [T], mjd: impl Fn(&T) -> f64) {
    if !items.is_sorted_by(|a, b| mjd(a) <= mjd(b)) {
        items.sort_by(|a, b| mjd(a).total_cmp(&mjd(b)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(id: i64, mjd: f64, flux: f32) -> DiaSource {
        DiaSource {
            diaSourceId: Some(id),
            diaObjectId: Some(42),
            midpointMjdTai: Some(mjd),
            ra: Some(150.0),
            dec: Some(2.0),
            band: Some("g".to_string()),
            psfFlux: Some(flux),
            psfFluxErr: Some(10.0),
            ..DiaSource::default()
        }
    }

    fn alert_7_x() -> RubinAlert {
        RubinAlert {
            alertId: Some(1),
            diaSource: Some(source(3, 60_002.0, 1000.0)),
            prvDiaSources: Some(vec![source(2, 60_001.0, 900.0), source(1, 60_000.0, -50.0)]),
            prvDiaNondetectionLimits: Some(vec![DiaNondetectionLimit {
                ccdVisitId: Some(7),
                midpointMjdTai: Some(59_999.0),
                band: Some("r".to_string()),
                diaNoise: Some(20.0),
            }]),
            ..RubinAlert::default()
        }
    }

    #[test]
    fn upper_limits_are_five_sigma_from_dia_noise() {
        let alert = to_alert(alert_7_x(), "7.4").expect("decodes");
        assert_eq!(alert.upper_limits.len(), 1);
        let limit = &alert.upper_limits[0];
        assert_eq!(limit.mjd, 59_999.0);
        assert_eq!(limit.band, Some(Band::R));
        assert_eq!(limit.noise_flux, Some(20.0));
        let expected = 31.4 - 2.5 * 100f64.log10();
        assert!((limit.limiting_magnitude.expect("limit") - expected).abs() < 1e-12);
        // History oldest first, whatever the order sent.
        let ids: Vec<i64> = alert.history.iter().map(|detection| detection.source_id).collect();
        assert_eq!(ids, vec![1, 2]);
        assert!(alert.history[0].is_negative);
        assert_eq!(alert.object_id, "42");
        assert_eq!(alert.schema_version, "7.4");
    }

    #[test]
    fn nan_flux_falls_back_to_the_negative_flag() {
        let mut raw = alert_7_x();
        if let Some(dia_source) = raw.diaSource.as_mut() {
            dia_source.psfFlux = Some(f32::NAN);
            dia_source.is_negative = Some(true);
            dia_source.reliability = Some(f32::NAN);
        }
        let alert = to_alert(raw, "7.4").expect("decodes");
        assert_eq!(alert.detection.flux, None);
        assert_eq!(alert.detection.magnitude, None);
        assert_eq!(alert.detection.magnitude_err, None);
        assert_eq!(alert.detection.reliability, None);
        assert!(alert.detection.is_negative);
    }

    #[test]
    fn missing_required_values_are_named() {
        let check = |edit: fn(&mut RubinAlert), expected: &str| {
            let mut raw = alert_7_x();
            edit(&mut raw);
            let error = to_alert(raw, "7.4").expect_err("missing field");
            assert_eq!(error, DecodeErrorKind::MissingField(expected.to_string()));
        };
        check(|raw| raw.diaSource = None, "diaSource");
        check(
            |raw| {
                raw.diaSource
                    .as_mut()
                    .into_iter()
                    .for_each(|source| source.midpointMjdTai = None)
            },
            "diaSource.midpointMjdTai",
        );
        check(
            |raw| raw.diaSource.as_mut().into_iter().for_each(|source| source.ra = None),
            "diaSource.ra",
        );
        check(
            |raw| {
                raw.prvDiaSources
                    .iter_mut()
                    .flatten()
                    .skip(1)
                    .for_each(|source| source.diaSourceId = None)
            },
            "prvDiaSources[1].diaSourceId",
        );
        check(
            |raw| {
                raw.prvDiaNondetectionLimits
                    .iter_mut()
                    .flatten()
                    .for_each(|limit| limit.midpointMjdTai = None)
            },
            "prvDiaNondetectionLimits[0].midpointMjdTai",
        );
        check(
            |raw| {
                raw.diaSource
                    .as_mut()
                    .into_iter()
                    .for_each(|source| source.diaObjectId = Some(0))
            },
            "diaSource.diaObjectId",
        );
    }

    #[test]
    fn source_id_falls_back_to_the_top_level_id() {
        let mut raw = alert_7_x();
        raw.diaSourceId = Some(99);
        if let Some(dia_source) = raw.diaSource.as_mut() {
            dia_source.diaSourceId = None;
        }
        assert_eq!(to_alert(raw.clone(), "9.0").expect("decodes").source_id(), 99);
        raw.diaSourceId = None;
        let error = to_alert(raw, "9.0").expect_err("no id at all");
        assert_eq!(
            error,
            DecodeErrorKind::MissingField("diaSource.diaSourceId".to_string())
        );
    }
}
