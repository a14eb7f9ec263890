//! Why a template could not be built or a copy could not be made.

use nightjar_core::DecodeErrorKind;
use thiserror::Error;

/// An error of the load generator. Each names the input (and record) or copy it is about.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SimulateError {
    /// The message could not be read at all (bad framing, bad container, unknown schema id).
    #[error("{input}: {kind}")]
    Decode { input: String, kind: DecodeErrorKind },
    /// The message decodes but is neither a ZTF nor a Rubin alert.
    #[error("{input}: not a ZTF or Rubin alert: {reason}")]
    UnknownSurvey { input: String, reason: String },
    /// One record of the message could not be decoded.
    #[error("{input} record {record}: {kind}")]
    DecodeRecord {
        input: String,
        record: usize,
        kind: DecodeErrorKind,
    },
    /// A record could not be written with the schema copies use: for Rubin, the bundled schema
    /// of its version (a broker dropped a field that the schema requires, or changed its type).
    #[error("{input} record {record}: cannot re-encode with {schema}: {reason}")]
    Reencode {
        input: String,
        record: usize,
        schema: String,
        reason: String,
    },
    /// The record lacks what a copy needs (the triggering detection's position or time).
    #[error("{input} record {record}: not usable as a template: {reason}")]
    Unusable {
        input: String,
        record: usize,
        reason: String,
    },
    /// The amplifier was given no templates.
    #[error("no templates to amplify")]
    NoTemplates,
    /// The configuration is invalid.
    #[error("invalid amplify configuration: {0}")]
    Config(String),
    /// A template has more history ids than one copy's id range holds.
    #[error(
        "template {template} ({label}) needs {needed} ids per copy, more than ids_per_copy = {ids_per_copy}; raise ids_per_copy"
    )]
    TooManyIds {
        template: usize,
        label: String,
        needed: u64,
        ids_per_copy: u64,
    },
    /// The copy's ids would not fit in an Avro `long`.
    #[error("copy {index}: its ids overflow a 64-bit id (id_base {id_base}, ids_per_copy {ids_per_copy})")]
    IdOverflow {
        index: u64,
        id_base: i64,
        ids_per_copy: u64,
    },
    /// A container file was asked for copies that cannot share one writer schema.
    #[error(
        "copy {index}: template {template} has another writer schema than copy {first_index}; a container holds one schema"
    )]
    MixedSchemas {
        index: u64,
        template: usize,
        first_index: u64,
    },
    /// serde_avro_fast refused to write the container file.
    #[error("writing the container file: {0}")]
    Container(String),
}
