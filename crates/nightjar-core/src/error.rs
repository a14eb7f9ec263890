//! The decoding error every survey decoder returns: it names the input and the reason.

use thiserror::Error;

use crate::origin::Origin;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    #[error("empty message")]
    Empty,
    #[error(
        "not an Avro alert: starts with {0}, expected an Avro container (\"Obj\\x01\") or Confluent wire format (0x00 + schema id)"
    )]
    UnknownFormat(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("invalid Avro container: {0}")]
    Container(String),
    #[error("unsupported Avro codec {0:?} (supported: null, deflate, snappy)")]
    UnsupportedCodec(String),
    #[error("invalid writer schema: {0}")]
    Schema(String),
    #[error("unknown schema id {id} (bundled Rubin schemas: {known}); configure a schema registry to fetch it")]
    UnknownSchemaId { id: u32, known: String },
    #[error(
        "not a known survey: expected a ZTF alert (`candidate` with candid, jd, fid, ra, dec, magpsf) or a Rubin alert (`diaSource` with diaSourceId, midpointMjdTai, ra, dec); the record's top-level fields are {0}"
    )]
    UnknownSurvey(String),
    #[error("wrong survey: expected {expected}, found {found}")]
    WrongSurvey { expected: String, found: String },
    #[error("corrupt Avro data: {0}")]
    Corrupt(String),
    #[error("missing required field `{0}`")]
    MissingField(String),
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

/// A message that could not be decoded, with its origin and record index.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}{}: {kind}", .record.map(|index| format!(" record {index}")).unwrap_or_default())]
pub struct DecodeError {
    /// Where the message came from.
    pub origin: Origin,
    /// Index of the record inside a multi-record container, where the error is about one record.
    pub record: Option<usize>,
    /// The reason.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error about the whole message.
    pub fn new(origin: &Origin, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            origin: origin.clone(),
            record: None,
            kind,
        }
    }

    /// An error about one record of a message.
    pub fn at_record(origin: &Origin, record: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError {
            origin: origin.clone(),
            record: Some(record),
            kind,
        }
    }

    /// A short, stable name of the reason, for metrics and dead-letter counts.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            DecodeErrorKind::Empty => "empty",
            DecodeErrorKind::UnknownFormat(_) => "unknown_format",
            DecodeErrorKind::Truncated(_) => "truncated",
            DecodeErrorKind::Container(_) => "invalid_container",
            DecodeErrorKind::UnsupportedCodec(_) => "unsupported_codec",
            DecodeErrorKind::Schema(_) => "invalid_schema",
            DecodeErrorKind::UnknownSchemaId { .. } => "unknown_schema_id",
            DecodeErrorKind::UnknownSurvey(_) => "unknown_survey",
            DecodeErrorKind::WrongSurvey { .. } => "wrong_survey",
            DecodeErrorKind::Corrupt(_) => "corrupt",
            DecodeErrorKind::MissingField(_) => "missing_field",
            DecodeErrorKind::TrailingBytes(_) => "trailing_bytes",
        }
    }
}
