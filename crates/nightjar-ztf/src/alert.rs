//! The mapping from a decoded ZTF packet ([`ZtfAlert`]) to the survey-agnostic [`Alert`].

use std::sync::Arc;

use nightjar_avro::WriterSchema;
use nightjar_core::photometry::{AB_ZERO_POINT_NJY, jd_to_mjd, mag_err_to_flux_err, mag_to_flux};
use nightjar_core::{
    Alert, Band, Cutout, CutoutKind, DecodeErrorKind, Detection, ForcedPhotometry, ModuleValues, Scalar, Survey,
    UpperLimit,
};

use crate::version::{bundled_schema, schema_version};
use crate::wire::{self, Candidate, FpHist, PrvCandidate, ZtfAlert};

/// ZTF's marker for a value that was not measured (forced photometry, `-99999`).
pub const MISSING_VALUE: f32 = -99999.0;

/// Forced-photometry `procstatus` codes that mean the measurement failed. In every real packet
/// we hold, these codes come with [`MISSING_VALUE`] as the flux; other codes (such as 56, "result
/// may be unreliable") come with a measured flux, which is kept.
pub const FAILED_PROCSTATUS_CODES: [&str; 2] = ["55", "61"];

/// Maps a decoded packet to the core model; the packet itself is kept, unchanged, as
/// [`Alert::raw`].
///
/// The schema version is the packet's `schemavsn`, or inferred from `schema` (see
/// [`crate::schema_version`]; inferring takes ~10 us, which [`crate::decode_container`] spends
/// once per container rather than once per record). Fails with [`DecodeErrorKind::MissingField`] when a value the
/// model needs is absent: `objectId` (or `alertId`), `candidate`, `candidate.candid`, `candidate.jd`,
/// `candidate.ra` / `dec`, or the `jd` (and, for detections, `ra` / `dec`) of a history entry.
pub fn to_alert(raw: ZtfAlert, schema: &WriterSchema) -> Result<Alert, DecodeErrorKind> {
    let version = schema_version(&raw, schema);
    to_alert_with_version(raw, version)
}

/// [`to_alert`] with the schema version already known.
pub(crate) fn to_alert_with_version(raw: ZtfAlert, schema_version: String) -> Result<Alert, DecodeErrorKind> {
    let raw = Arc::new(raw);
    // The 2016 prototype packets (schemas pre-1.1 and 1.1) predate object ids: each alert is
    // its own object, named `alert<alertId>`.
    let object_id = match (&raw.objectId, raw.alertId) {
        (Some(object_id), _) => object_id.clone(),
        (None, Some(alert_id)) => format!("alert{alert_id}"),
        (None, None) => return Err(missing("objectId")),
    };
    let candidate = raw.candidate.as_ref().ok_or_else(|| missing("candidate"))?;
    // Spark-rewritten packets carry drb = 0.0 in versions that had no drb (before 3.3), so drb
    // is used only where the packet's version defines it (or the version is not one we ship).
    let drb_defined = bundled_schema(&schema_version).is_none_or(|bundled| bundled.candidate_has("drb"));
    let detection = candidate_detection(candidate, raw.candid, drb_defined)?;

    let mut history = Vec::new();
    let mut upper_limits = Vec::new();
    let mut forced_photometry = Vec::new();
    for (index, entry) in raw.prv_candidates.iter().flatten().enumerate() {
        let path = |field: &str| format!("prv_candidates[{index}].{field}");
        if entry.candid.is_some() {
            history.push(prv_detection(entry, &path)?);
        } else if entry.forcediffimflux.is_some() || entry.procstatus.is_some() {
            // Schemas 3.4 and 3.5 put forced photometry, not limits, in prv_candidates.
            forced_photometry.push(prv_forced_photometry(entry, &path)?);
        } else {
            upper_limits.push(UpperLimit {
                mjd: jd_to_mjd(entry.jd.ok_or_else(|| missing(&path("jd")))?),
                band: band(entry.fid),
                limiting_magnitude: finite(entry.diffmaglim),
                noise_flux: None,
            });
        }
    }
    for (index, entry) in raw.fp_hists.iter().flatten().enumerate() {
        forced_photometry.push(fp_hist_forced_photometry(entry, index)?);
    }
    history.sort_by(|a, b| a.mjd.total_cmp(&b.mjd));
    upper_limits.sort_by(|a, b| a.mjd.total_cmp(&b.mjd));
    forced_photometry.sort_by(|a, b| a.mjd.total_cmp(&b.mjd));

    let cutouts = [
        (CutoutKind::Science, &raw.cutoutScience),
        (CutoutKind::Template, &raw.cutoutTemplate),
        (CutoutKind::Difference, &raw.cutoutDifference),
    ]
    .into_iter()
    .filter_map(|(kind, cutout)| core_cutout(kind, cutout.as_ref()?))
    .collect();

    Ok(Alert {
        survey: Survey::Ztf,
        schema_version,
        object_id,
        detection,
        history,
        upper_limits,
        forced_photometry,
        cutouts,
        raw,
        module_values: ModuleValues::new(),
    })
}

fn missing(path: &str) -> DecodeErrorKind {
    DecodeErrorKind::MissingField(path.to_string())
}

fn band(fid: Option<i32>) -> Option<Band> {
    fid.and_then(|fid| Band::from_ztf_fid(i64::from(fid)))
}

/// The value as f64, `None` when absent or not finite.
fn finite(value: Option<f32>) -> Option<f64> {
    value.map(f64::from).filter(|value| value.is_finite())
}

/// The photometric fields that `candidate` and a detection in `prv_candidates` share.
struct Measurement<'a> {
    source_id: i64,
    jd: f64,
    fid: Option<i32>,
    ra: f64,
    dec: f64,
    magpsf: Option<f32>,
    sigmapsf: Option<f32>,
    isdiffpos: Option<&'a Scalar>,
    reliability: Option<f32>,
}

fn detection(measurement: Measurement<'_>) -> Detection {
    // "t" or "1": positive (science minus reference) subtraction; "f" or "0": negative. The
    // 2016 prototype packets write it as an int (1 or 0).
    let is_negative = match measurement.isdiffpos {
        Some(Scalar::Str(text)) => matches!(text.trim(), "f" | "0"),
        Some(Scalar::Int(value)) => *value == 0,
        Some(Scalar::Bool(value)) => !value,
        Some(Scalar::Float(value)) => *value == 0.0,
        None => false,
    };
    let magnitude = finite(measurement.magpsf);
    let magnitude_err = finite(measurement.sigmapsf);
    let flux = magnitude.map(|magnitude| {
        let flux = mag_to_flux(magnitude);
        if is_negative { -flux } else { flux }
    });
    let flux_err = match (flux, magnitude_err) {
        (Some(flux), Some(magnitude_err)) => Some(mag_err_to_flux_err(flux, magnitude_err)),
        _ => None,
    };
    Detection {
        source_id: measurement.source_id,
        mjd: jd_to_mjd(measurement.jd),
        band: band(measurement.fid),
        ra: measurement.ra,
        dec: measurement.dec,
        magnitude,
        magnitude_err,
        flux,
        flux_err,
        is_negative,
        reliability: finite(measurement.reliability),
    }
}

fn candidate_detection(
    candidate: &Candidate,
    top_level_candid: Option<i64>,
    drb_defined: bool,
) -> Result<Detection, DecodeErrorKind> {
    let drb = candidate.drb.filter(|drb| drb_defined && drb.is_finite());
    Ok(detection(Measurement {
        // Spark-rewritten packets drop the top-level candid; candidate.candid is the one to use.
        source_id: candidate
            .candid
            .or(top_level_candid)
            .ok_or_else(|| missing("candidate.candid"))?,
        jd: candidate.jd.ok_or_else(|| missing("candidate.jd"))?,
        fid: candidate.fid,
        ra: candidate.ra.ok_or_else(|| missing("candidate.ra"))?,
        dec: candidate.dec.ok_or_else(|| missing("candidate.dec"))?,
        magpsf: candidate.magpsf,
        sigmapsf: candidate.sigmapsf,
        isdiffpos: candidate.isdiffpos.as_ref(),
        reliability: drb.or(candidate.rb),
    }))
}

fn prv_detection(entry: &PrvCandidate, path: &dyn Fn(&str) -> String) -> Result<Detection, DecodeErrorKind> {
    Ok(detection(Measurement {
        source_id: entry.candid.ok_or_else(|| missing(&path("candid")))?,
        jd: entry.jd.ok_or_else(|| missing(&path("jd")))?,
        fid: entry.fid,
        ra: entry.ra.ok_or_else(|| missing(&path("ra")))?,
        dec: entry.dec.ok_or_else(|| missing(&path("dec")))?,
        magpsf: entry.magpsf,
        sigmapsf: entry.sigmapsf,
        isdiffpos: entry.isdiffpos.as_ref(),
        reliability: entry.rb,
    }))
}

/// The fields of a forced-photometry measurement (`fp_hists` entry, or a 3.4/3.5
/// `prv_candidates` entry).
struct Forced<'a> {
    jd: f64,
    fid: Option<i32>,
    forcediffimflux: Option<f32>,
    forcediffimfluxunc: Option<f32>,
    magzpsci: Option<f32>,
    procstatus: Option<&'a str>,
}

fn forced_photometry(forced: Forced<'_>) -> ForcedPhotometry {
    let failed = forced.procstatus.is_some_and(procstatus_failed);
    // forcediffimflux is in DN on an image whose zero point is magzpsci: m = magzpsci - 2.5 log10(DN).
    let scale = finite(forced.magzpsci).map(|magzpsci| 10f64.powf(-0.4 * (magzpsci - AB_ZERO_POINT_NJY)));
    let measured = |value: Option<f32>| finite(value.filter(|value| *value != MISSING_VALUE));
    let (flux, flux_err) = match (failed, scale, measured(forced.forcediffimflux)) {
        (false, Some(scale), Some(flux)) => (
            Some(flux * scale),
            measured(forced.forcediffimfluxunc).map(|unc| unc * scale),
        ),
        _ => (None, None),
    };
    ForcedPhotometry {
        forced_source_id: None,
        mjd: jd_to_mjd(forced.jd),
        band: band(forced.fid),
        flux,
        flux_err,
    }
}

/// True when a `procstatus` (one code, or several separated by commas or spaces) holds a code
/// of a failed measurement.
fn procstatus_failed(procstatus: &str) -> bool {
    procstatus
        .split(|c: char| c == ',' || c.is_whitespace())
        .any(|code| FAILED_PROCSTATUS_CODES.contains(&code))
}

fn fp_hist_forced_photometry(entry: &FpHist, index: usize) -> Result<ForcedPhotometry, DecodeErrorKind> {
    Ok(forced_photometry(Forced {
        jd: entry.jd.ok_or_else(|| missing(&format!("fp_hists[{index}].jd")))?,
        fid: entry.fid,
        forcediffimflux: entry.forcediffimflux,
        forcediffimfluxunc: entry.forcediffimfluxunc,
        magzpsci: entry.magzpsci,
        procstatus: entry.procstatus.as_deref(),
    }))
}

fn prv_forced_photometry(
    entry: &PrvCandidate,
    path: &dyn Fn(&str) -> String,
) -> Result<ForcedPhotometry, DecodeErrorKind> {
    Ok(forced_photometry(Forced {
        jd: entry.jd.ok_or_else(|| missing(&path("jd")))?,
        fid: entry.fid,
        forcediffimflux: entry.forcediffimflux,
        forcediffimfluxunc: entry.forcediffimfluxunc,
        magzpsci: entry.magzpsci,
        procstatus: entry.procstatus.as_deref(),
    }))
}

/// A cutout of the core model sharing the packet's bytes; `None` when the stamp has no data.
fn core_cutout(kind: CutoutKind, cutout: &wire::Cutout) -> Option<Cutout> {
    let data = cutout.stampData.as_ref()?;
    Some(Cutout {
        kind,
        file_name: cutout.fileName.clone(),
        data: Arc::clone(&data.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procstatus_codes_are_read_one_by_one() {
        assert!(!procstatus_failed("0"));
        assert!(!procstatus_failed("56"));
        assert!(procstatus_failed("61"));
        assert!(procstatus_failed("56,55"));
        assert!(!procstatus_failed("610"));
    }

    #[test]
    fn forced_flux_is_scaled_to_nanojansky() {
        let forced = |flux, procstatus| {
            forced_photometry(Forced {
                jd: 2_460_000.5,
                fid: Some(2),
                forcediffimflux: Some(flux),
                forcediffimfluxunc: Some(10.0),
                magzpsci: Some(26.4),
                procstatus: Some(procstatus),
            })
        };
        // A zero point of 26.4 is 5 magnitudes, 100 times, brighter than 31.4 (to f32 precision).
        let measured = forced(-25.0, "0");
        assert!((measured.flux.unwrap() / -2500.0 - 1.0).abs() < 1e-6, "{measured:?}");
        assert!((measured.flux_err.unwrap() / 1000.0 - 1.0).abs() < 1e-6, "{measured:?}");
        assert_eq!(measured.mjd, 60_000.0);
        assert_eq!(measured.band, Some(Band::R));
        assert_eq!(forced(MISSING_VALUE, "0").flux, None);
        assert_eq!(forced(-25.0, "61").flux, None);
        assert_eq!(forced(f32::NAN, "0").flux, None);
    }
}
