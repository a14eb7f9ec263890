//! Stored rows as Fink-style records: column names with family prefixes.
//!
//! - `i:` alert fields: the survey-agnostic core (`i:objectId`, `i:candid`, `i:jd`, `i:ra`,
//!   `i:dec`, `i:band`, `i:magpsf`, `i:sigmapsf`; ZTF adds `i:fid`, Rubin `i:flux`,
//!   `i:sigmaflux` in nJy) and, for ZTF, every field of the raw `candidate` as `i:<field>`;
//! - `r:` every field of a Rubin alert's raw `diaSource` (Fink's Rubin prefix);
//! - `d:` broker-added values: every science-module output stored with a ZTF alert, by its
//!   column name (`d:roid`, `d:rf_snia_vs_nonia`, `d:lc_features_g.amplitude`; `f:` for a Rubin
//!   alert, Fink's Rubin prefix), and `d:tag` in
//!   `objects` with `withupperlim` (`valid`, `upperlim`, `badquality`); a requested one that
//!   nightjar does not compute comes back null;
//! - `v:` computed at query time: `v:classification` (the alert's class), `v:lastdate` (ISO time
//!   of the row), `v:firstdate` (first detection of the object, `objects` only),
//!   `v:separation_degree` (`conesearch` only).

use nightjar_core::Survey;
use nightjar_store::{AlertRow, DetectionRow, UpperLimitRow};
use serde_json::Value;

use crate::output::Record;
use crate::params::JD_OFFSET;
use nightjar_core::calendar::mjd_to_iso;

/// A column served, for `/api/v1/schema`.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDoc {
    pub name: &'static str,
    pub kind: &'static str,
    pub description: &'static str,
}

/// The columns every route may serve; raw alert fields come on top (`i:<field>` for ZTF,
/// `r:<field>` for Rubin), named as the survey's schema names them.
pub const COLUMNS: &[ColumnDoc] = &[
    ColumnDoc {
        name: "i:objectId",
        kind: "string",
        description: "object id: ZTF objectId, or Rubin diaObjectId as text",
    },
    ColumnDoc {
        name: "i:candid",
        kind: "long",
        description: "source id of the detection: ZTF candid, Rubin diaSourceId",
    },
    ColumnDoc {
        name: "i:jd",
        kind: "double",
        description: "time of the observation, JD (UTC for ZTF, TAI for Rubin)",
    },
    ColumnDoc {
        name: "i:ra",
        kind: "double",
        description: "right ascension of the detection, degrees (ICRS)",
    },
    ColumnDoc {
        name: "i:dec",
        kind: "double",
        description: "declination of the detection, degrees (ICRS)",
    },
    ColumnDoc {
        name: "i:band",
        kind: "string",
        description: "photometric band: u, g, r, i, z or y",
    },
    ColumnDoc {
        name: "i:fid",
        kind: "int",
        description: "ZTF filter id: 1 g, 2 r, 3 i (ZTF only)",
    },
    ColumnDoc {
        name: "i:magpsf",
        kind: "float",
        description: "PSF magnitude of the difference detection (AB)",
    },
    ColumnDoc {
        name: "i:sigmapsf",
        kind: "float",
        description: "1-sigma error of i:magpsf",
    },
    ColumnDoc {
        name: "i:flux",
        kind: "double",
        description: "PSF flux of the difference detection, nJy (Rubin only)",
    },
    ColumnDoc {
        name: "i:sigmaflux",
        kind: "double",
        description: "1-sigma error of i:flux, nJy (Rubin only)",
    },
    ColumnDoc {
        name: "i:diffmaglim",
        kind: "float",
        description: "5-sigma limiting magnitude (upper limits; ZTF)",
    },
    ColumnDoc {
        name: "i:<field>",
        kind: "any",
        description: "every field of a ZTF alert's candidate record",
    },
    ColumnDoc {
        name: "r:<field>",
        kind: "any",
        description: "every field of a Rubin alert's diaSource record",
    },
    ColumnDoc {
        name: "d:tag",
        kind: "string",
        description: "objects with withupperlim: valid (an alert), upperlim (a limit), badquality (a detection seen only in an alert's history)",
    },
    ColumnDoc {
        name: "d:<name>",
        kind: "any",
        description: "science-module outputs by column name (d:roid, d:rf_snia_vs_nonia, d:lc_features_g.amplitude); one nightjar does not compute is null",
    },
    ColumnDoc {
        name: "f:<name>",
        kind: "any",
        description: "science-module outputs of a Rubin alert by column name (f:roid, f:tags)",
    },
    ColumnDoc {
        name: "v:classification",
        kind: "string",
        description: "the alert's class from the classification module (null when none)",
    },
    ColumnDoc {
        name: "v:lastdate",
        kind: "string",
        description: "ISO time (YYYY-MM-DD HH:MM:SS.sss) of i:jd",
    },
    ColumnDoc {
        name: "v:firstdate",
        kind: "string",
        description: "ISO time of the object's first stored detection (objects)",
    },
    ColumnDoc {
        name: "v:separation_degree",
        kind: "double",
        description: "distance from the cone centre, degrees (conesearch)",
    },
    ColumnDoc {
        name: "v:survey",
        kind: "string",
        description: "ztf or rubin",
    },
];

/// The core columns of a detection.
pub fn detection_record(detection: &DetectionRow) -> Record {
    let mut record = Record::default();
    record.set("i:objectId", detection.object_id.clone());
    record.set("i:candid", detection.source_id);
    record.set("i:jd", number(detection.mjd + JD_OFFSET));
    record.set("i:ra", number(detection.ra));
    record.set("i:dec", number(detection.dec));
    record.set("i:band", detection.band.map(|band| band.as_str()));
    if detection.survey == Survey::Ztf {
        record.set("i:fid", detection.band.and_then(|band| band.ztf_fid()));
    }
    record.set("i:magpsf", optional(detection.magnitude));
    record.set("i:sigmapsf", optional(detection.magnitude_err));
    if detection.survey == Survey::Rubin {
        record.set("i:flux", optional(detection.flux));
        record.set("i:sigmaflux", optional(detection.flux_err));
    }
    record.set("v:lastdate", mjd_to_iso(detection.mjd));
    record.set("v:survey", detection.survey.as_str());
    record
}

/// An alert: the core columns, then its raw detection (`i:` for ZTF, `r:` for Rubin).
pub fn alert_record(alert: &AlertRow) -> Record {
    let mut record = detection_record(&alert.detection);
    let prefix = match alert.detection.survey {
        Survey::Ztf => "i:",
        Survey::Rubin => "r:",
    };
    if let Value::Object(fields) = &alert.raw_detection {
        for (name, value) in fields {
            record.set(format!("{prefix}{name}"), value.clone());
        }
    }
    let module_prefix = match alert.detection.survey {
        Survey::Ztf => "d:",
        Survey::Rubin => "f:",
    };
    for (name, value) in &alert.modules {
        record.set(format!("{module_prefix}{name}"), value.clone());
    }
    record.set("v:classification", alert.class.clone());
    record
}

/// A Rubin diaSource of an object's light curve, for `/api/v1/sources`: the core columns and
/// the diaSource's own fields with Fink's Rubin prefix `r:`.
pub fn source_record(detection: &DetectionRow) -> Record {
    let mut record = detection_record(detection);
    record.set("r:diaObjectId", detection.object_id.clone());
    record.set("r:diaSourceId", detection.source_id);
    record.set("r:midpointMjdTai", number(detection.mjd));
    record.set("r:band", detection.band.map(|band| band.as_str()));
    record.set("r:ra", number(detection.ra));
    record.set("r:dec", number(detection.dec));
    record.set("r:psfFlux", optional(detection.flux));
    record.set("r:psfFluxErr", optional(detection.flux_err));
    record.set("r:reliability", optional(detection.reliability));
    record
}

/// An upper limit.
pub fn upper_limit_record(limit: &UpperLimitRow) -> Record {
    let mut record = Record::default();
    record.set("i:objectId", limit.object_id.clone());
    record.set("i:jd", number(limit.mjd + JD_OFFSET));
    record.set("i:band", limit.band.map(|band| band.as_str()));
    if limit.survey == Survey::Ztf {
        record.set("i:fid", limit.band.and_then(|band| band.ztf_fid()));
    }
    record.set("i:diffmaglim", optional(limit.limiting_magnitude));
    record.set("v:lastdate", mjd_to_iso(limit.mjd));
    record.set("v:survey", limit.survey.as_str());
    record
}

/// A JSON number, or null for NaN and infinities (which JSON cannot carry).
pub fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// An optional number.
pub fn optional(value: Option<f64>) -> Value {
    value.map_or(Value::Null, number)
}
