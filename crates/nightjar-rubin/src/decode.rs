//! Decoding Rubin alerts from Avro containers (broker files, Fink's storage) and from
//! Confluent wire-format datums (Rubin's Kafka stream) into the core model.

use nightjar_avro::{Container, WriterSchema, decode_datum};
use nightjar_core::{Alert, DecodeErrorKind};

use crate::convert::to_alert;
use crate::schemas::schema_version_of_id;
use crate::version::{cached_version, is_rubin};
use crate::wire::RubinAlert;

/// The error for a writer schema that is not a Rubin alert: ZTF's is named as such.
fn not_rubin(schema: &WriterSchema) -> DecodeErrorKind {
    if schema.has_field("candidate") {
        DecodeErrorKind::WrongSurvey {
            expected: "rubin".to_string(),
            found: "ztf".to_string(),
        }
    } else {
        DecodeErrorKind::UnknownSurvey(schema.fields.join(", "))
    }
}

/// Decodes every record of a container written with a Rubin writer schema of any version
/// (native `lsst.vM_m.alert`, or rewritten by a broker with extra columns).
///
/// The schema version comes from the writer schema's fields ([`crate::detect_version`]),
/// detected once per writer schema. The outer error is about the whole container (not Rubin,
/// corrupt block); the inner ones are per record.
pub fn decode_container(container: &Container) -> Result<Vec<Result<Alert, DecodeErrorKind>>, DecodeErrorKind> {
    if !is_rubin(&container.schema) {
        return Err(not_rubin(&container.schema));
    }
    let version = cached_version(&container.schema);
    let records = container.records::<RubinAlert>()?;
    Ok(records
        .into_iter()
        .map(|record| record.and_then(|raw| to_alert(raw, version)))
        .collect())
}

/// Decodes one wire-format datum (the bytes after the 5-byte header) written with `schema`,
/// whose Confluent id `schema_id` gives the version (`704` -> `"7.4"`).
///
/// The datum must fill the slice exactly: bytes left over mean the wrong schema.
pub fn decode_wire_datum(datum: &[u8], schema: &WriterSchema, schema_id: u32) -> Result<Alert, DecodeErrorKind> {
    if !is_rubin(schema) {
        return Err(not_rubin(schema));
    }
    let raw: RubinAlert = decode_datum(datum, &schema.schema)?;
    to_alert(raw, &schema_version_of_id(schema_id))
}
