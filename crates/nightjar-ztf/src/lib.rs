//! ZTF alert decoding: ZTF's Avro packets (schemas 1.8 to 4.02, as ZTF writes them or as
//! brokers re-wrote them with Spark) into nightjar's survey-agnostic [`Alert`].
//!
//! ```text
//! bytes --Container::open--> Container --decode_container--> [Result<Alert>]
//!                               records::<ZtfAlert>() + to_alert()
//! ```
//!
//! Invariant: sans-I/O. Bytes in, alerts out; no files, no network, no async.

mod alert;
pub mod version;
pub mod wire;

use std::any::Any;
use std::cell::OnceCell;

use nightjar_avro::{Container, WriterSchema};
use nightjar_core::raw::RawRecord;
use nightjar_core::{Alert, DecodeErrorKind, FieldValue, RawAlert};

pub use alert::{FAILED_PROCSTATUS_CODES, MISSING_VALUE, to_alert};
pub use version::{infer_schema_version, schema_version};
pub use wire::ZtfAlert;

impl RawAlert for ZtfAlert {
    fn get(&self, path: &str) -> Option<FieldValue<'_>> {
        RawRecord::get(self, path)
    }

    fn field_paths(&self) -> Vec<String> {
        <ZtfAlert as RawRecord>::field_paths()
    }

    fn to_json(&self) -> serde_json::Value {
        RawRecord::to_json(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Fields of `candidate` that every ZTF schema has and that nightjar needs.
const CANDIDATE_FIELDS: [&str; 6] = ["candid", "jd", "fid", "ra", "dec", "magpsf"];

/// True when the writer schema is a ZTF alert: a top-level `objectId` (or, in the 2016
/// prototype packets, `alertId`) and a `candidate` record with `candid`, `jd`, `fid`, `ra`,
/// `dec` and `magpsf`. Decided from the fields, never from the schema's name (Spark-rewritten
/// packets are called `topLevelRecord`).
pub fn is_ztf(schema: &WriterSchema) -> bool {
    let candidate = schema.nested("candidate");
    (schema.has_field("objectId") || schema.has_field("alertId"))
        && CANDIDATE_FIELDS
            .iter()
            .all(|field| candidate.iter().any(|name| name == field))
}

/// Decodes every record of a ZTF container message into the core model.
///
/// The outer error is about the whole message: a writer schema that is not ZTF's
/// ([`DecodeErrorKind::WrongSurvey`] for Rubin, [`DecodeErrorKind::UnknownSurvey`] otherwise), a
/// corrupt block, or a container with no record at all (a ZTF message holds at least one
/// alert, so an empty one is reported rather than passed on as nothing). Each inner result is
/// one record.
pub fn decode_container(container: &Container<'_>) -> Result<Vec<Result<Alert, DecodeErrorKind>>, DecodeErrorKind> {
    let schema = &container.schema;
    if !is_ztf(schema) {
        return Err(not_ztf(schema));
    }
    let records = container.records::<ZtfAlert>()?;
    if records.is_empty() {
        return Err(DecodeErrorKind::Container(
            "no records: a ZTF message holds at least one alert".to_string(),
        ));
    }
    // Inferring a version from the field sets is done at most once per container.
    let inferred = OnceCell::new();
    Ok(records
        .into_iter()
        .map(|record| {
            let raw = record?;
            let version = match version::declared_version(&raw) {
                Some(version) => version.to_string(),
                None => (*inferred.get_or_init(|| infer_schema_version(schema))).to_string(),
            };
            alert::to_alert_with_version(raw, version)
        })
        .collect())
}

fn not_ztf(schema: &WriterSchema) -> DecodeErrorKind {
    if schema.has_field("diaSource") {
        return DecodeErrorKind::WrongSurvey {
            expected: "ztf".to_string(),
            found: "rubin".to_string(),
        };
    }
    if !schema.has_field("candidate") {
        return DecodeErrorKind::UnknownSurvey(schema.fields.join(", "));
    }
    let candidate = schema.nested("candidate");
    let mut lacking: Vec<String> = CANDIDATE_FIELDS
        .iter()
        .filter(|field| !candidate.iter().any(|name| name == *field))
        .map(|field| format!("candidate.{field}"))
        .collect();
    if !schema.has_field("objectId") && !schema.has_field("alertId") {
        lacking.push("objectId".to_string());
    }
    DecodeErrorKind::Schema(format!(
        "not a ZTF alert: the writer schema has a `candidate` but lacks {}",
        lacking.join(", ")
    ))
}
