//! The survey-agnostic alert model that science modules, the store and the API work with.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::raw::RawAlert;
use crate::values::ModuleValues;

/// The survey that produced an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Survey {
    /// Zwicky Transient Facility.
    Ztf,
    /// Vera C. Rubin Observatory, Legacy Survey of Space and Time.
    Rubin,
}

impl Survey {
    /// The lowercase name used in configuration, topics and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Survey::Ztf => "ztf",
            Survey::Rubin => "rubin",
        }
    }
}

impl fmt::Display for Survey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A photometric band. ZTF's `fid` 1, 2, 3 are g, r, i; Rubin names its bands `ugrizy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    U,
    G,
    R,
    I,
    Z,
    Y,
}

impl Band {
    /// All bands, bluest first.
    pub const ALL: [Band; 6] = [Band::U, Band::G, Band::R, Band::I, Band::Z, Band::Y];

    /// The one-letter name (`g`, `r`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Band::U => "u",
            Band::G => "g",
            Band::R => "r",
            Band::I => "i",
            Band::Z => "z",
            Band::Y => "y",
        }
    }

    /// Parses a one-letter band name as Rubin writes it.
    pub fn from_name(name: &str) -> Option<Band> {
        Some(match name {
            "u" => Band::U,
            "g" => Band::G,
            "r" => Band::R,
            "i" => Band::I,
            "z" => Band::Z,
            "y" => Band::Y,
            _ => return None,
        })
    }

    /// Maps ZTF's filter id (`fid`: 1 = g, 2 = r, 3 = i).
    pub fn from_ztf_fid(fid: i64) -> Option<Band> {
        Some(match fid {
            1 => Band::G,
            2 => Band::R,
            3 => Band::I,
            _ => return None,
        })
    }

    /// ZTF's filter id for this band, where ZTF has one.
    pub fn ztf_fid(self) -> Option<i32> {
        match self {
            Band::G => Some(1),
            Band::R => Some(2),
            Band::I => Some(3),
            _ => None,
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One detection of a source on a difference image: the alert's own, or one from its history.
///
/// Times are Modified Julian Dates (ZTF's `jd - 2400000.5`; Rubin's `midpointMjdTai`).
/// Fluxes are difference-image fluxes in nanojansky, magnitudes are AB; each survey provides one
/// of the two and the other is derived (see [`crate::photometry`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The survey's id of this detection (ZTF `candid`, Rubin `diaSourceId`).
    pub source_id: i64,
    /// Observation time, MJD.
    pub mjd: f64,
    /// Photometric band, `None` when the survey's value is not a known band.
    pub band: Option<Band>,
    /// Right ascension, degrees (ICRS).
    pub ra: f64,
    /// Declination, degrees (ICRS).
    pub dec: f64,
    /// Difference-image PSF magnitude (AB); for a negative difference, the magnitude of |flux|.
    pub magnitude: Option<f64>,
    /// 1-sigma uncertainty of `magnitude`.
    pub magnitude_err: Option<f64>,
    /// Difference-image PSF flux, nJy, signed.
    pub flux: Option<f64>,
    /// 1-sigma uncertainty of `flux`, nJy.
    pub flux_err: Option<f64>,
    /// True when the difference is negative (the source got fainter than the template).
    pub is_negative: bool,
    /// Real/bogus score in [0, 1] where the survey provides one (ZTF `drb` or `rb`, Rubin `reliability`).
    pub reliability: Option<f64>,
}

/// An upper limit: an epoch where the source was not detected, down to `limiting_magnitude`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpperLimit {
    /// Observation time, MJD.
    pub mjd: f64,
    pub band: Option<Band>,
    /// 5-sigma limiting magnitude of the difference image (ZTF `diffmaglim`).
    pub limiting_magnitude: Option<f64>,
    /// Noise level of the difference image in nJy where the survey gives it (Rubin `diaNoise`).
    pub noise_flux: Option<f64>,
}

/// A forced-photometry measurement at the object's position (ZTF `fp_hists`, Rubin `prvDiaForcedSources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForcedPhotometry {
    /// The survey's id of the measurement, where it has one (Rubin `diaForcedSourceId`).
    pub forced_source_id: Option<i64>,
    /// Observation time, MJD.
    pub mjd: f64,
    pub band: Option<Band>,
    /// Difference-image flux, nJy, signed; `None` when the survey flagged the measurement as failed.
    pub flux: Option<f64>,
    /// 1-sigma uncertainty of `flux`, nJy.
    pub flux_err: Option<f64>,
}

/// Which of the three image stamps a cutout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CutoutKind {
    Science,
    Template,
    Difference,
}

impl CutoutKind {
    /// The three kinds in the order surveys list them.
    pub const ALL: [CutoutKind; 3] = [CutoutKind::Science, CutoutKind::Template, CutoutKind::Difference];

    pub fn as_str(self) -> &'static str {
        match self {
            CutoutKind::Science => "science",
            CutoutKind::Template => "template",
            CutoutKind::Difference => "difference",
        }
    }
}

/// A FITS image stamp as the survey sent it: gzip-compressed FITS for ZTF, plain FITS for Rubin.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Cutout {
    pub kind: CutoutKind,
    /// The file name the survey gave the stamp, where it gives one (ZTF).
    pub file_name: Option<String>,
    /// The stamp's bytes, exactly as received.
    #[serde(skip)]
    pub data: Arc<[u8]>,
}

impl Cutout {
    /// True when the bytes are gzip-compressed (ZTF stamps start with `1f 8b`).
    pub fn is_gzip(&self) -> bool {
        self.data.starts_with(&[0x1f, 0x8b])
    }
}

impl fmt::Debug for Cutout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cutout")
            .field("kind", &self.kind)
            .field("file_name", &self.file_name)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// One alert in the survey-agnostic model.
///
/// `raw` keeps the decoded survey record, so every survey field stays reachable by name
/// (`candidate.drb`, `diaSource.reliability`) for filters, modules and users.
#[derive(Debug, Clone)]
pub struct Alert {
    pub survey: Survey,
    /// Schema version the alert was written with (`"3.3"`, `"4.02"`, `"9.0"`).
    pub schema_version: String,
    /// The survey's object id (ZTF `objectId` such as `ZTF21abiuvdk`; Rubin `diaObjectId` in
    /// decimal, or `ss:<ssObjectId>` for a solar-system source without a diaObject).
    pub object_id: String,
    /// The new detection that triggered the alert.
    pub detection: Detection,
    /// Earlier detections carried in the alert, oldest first.
    pub history: Vec<Detection>,
    /// Non-detections (upper limits) carried in the alert, oldest first.
    pub upper_limits: Vec<UpperLimit>,
    /// Forced photometry carried in the alert, oldest first.
    pub forced_photometry: Vec<ForcedPhotometry>,
    /// Science, template and difference stamps that the alert carries.
    pub cutouts: Vec<Cutout>,
    /// The decoded survey record.
    pub raw: Arc<dyn RawAlert>,
    /// What the science modules computed for this alert; empty until they run.
    pub module_values: ModuleValues,
}

impl Alert {
    /// The survey's id of the triggering detection (ZTF `candid`, Rubin `diaSourceId`).
    pub fn source_id(&self) -> i64 {
        self.detection.source_id
    }

    /// The cutout of the given kind, if the alert carries it.
    pub fn cutout(&self, kind: CutoutKind) -> Option<&Cutout> {
        self.cutouts.iter().find(|cutout| cutout.kind == kind)
    }

    /// A JSON view of the alert: the core fields, then every raw survey field, with cutout
    /// bytes summarised (length and SHA-256) instead of dumped.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "survey": self.survey,
            "schema_version": self.schema_version,
            "object_id": self.object_id,
            "source_id": self.detection.source_id,
            "detection": self.detection,
            "n_history": self.history.len(),
            "n_upper_limits": self.upper_limits.len(),
            "n_forced_photometry": self.forced_photometry.len(),
            "cutouts": self.cutouts.iter().map(|cutout| serde_json::json!({
                "kind": cutout.kind,
                "file_name": cutout.file_name,
                "bytes": cutout.data.len(),
                "format": if cutout.is_gzip() { "fits.gz" } else { "fits" },
            })).collect::<Vec<_>>(),
            "raw": self.raw.to_json(),
        })
    }
}
