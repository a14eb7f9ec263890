//! Decodes any alert message nightjar accepts: ZTF or Rubin, object container or Confluent wire
//! format, one record or many. The survey is recognised from the record's fields.
//!
//! Invariant: sans-I/O. A wire message whose schema id is not known returns
//! [`DecodeErrorKind::UnknownSchemaId`]; the caller may fetch the schema (nightjar-registry) and
//! hand it over with [`Decoder::add_rubin_schema`].

use nightjar_avro::{CONTAINER_MAGIC, Container, SchemaCache, WIRE_MAGIC};
use nightjar_core::{Alert, DecodeError, DecodeErrorKind, Origin, Survey};
use nightjar_rubin::RubinSchemas;

/// The framing of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An Avro object container with its writer schema (ZTF on Kafka, files).
    Container,
    /// `0x00` + 4-byte schema id + datum (Rubin on Kafka).
    ConfluentWire,
}

/// Recognises the framing from the first bytes.
pub fn detect_format(bytes: &[u8]) -> Result<Format, DecodeErrorKind> {
    if bytes.is_empty() {
        Err(DecodeErrorKind::Empty)
    } else if bytes.starts_with(CONTAINER_MAGIC) {
        Ok(Format::Container)
    } else if bytes[0] == WIRE_MAGIC {
        Ok(Format::ConfluentWire)
    } else {
        let shown: Vec<String> = bytes.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
        Err(DecodeErrorKind::UnknownFormat(format!("bytes {}", shown.join(" "))))
    }
}

/// Decodes alert messages, keeping parsed writer schemas between messages.
#[derive(Debug)]
pub struct Decoder {
    cache: SchemaCache,
    rubin_schemas: RubinSchemas,
    expected_survey: Option<Survey>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder that accepts both surveys, with the bundled Rubin schemas.
    pub fn new() -> Decoder {
        Decoder {
            cache: SchemaCache::new(),
            rubin_schemas: RubinSchemas::bundled(),
            expected_survey: None,
        }
    }

    /// A decoder that rejects alerts of any other survey with [`DecodeErrorKind::WrongSurvey`].
    pub fn expecting(survey: Survey) -> Decoder {
        Decoder {
            expected_survey: Some(survey),
            ..Decoder::new()
        }
    }

    /// Adds a Rubin schema fetched from a schema registry.
    pub fn add_rubin_schema(&mut self, schema_id: u32, json: &str) -> Result<(), String> {
        self.rubin_schemas.insert(schema_id, json)
    }

    /// The Rubin writer schema of a Confluent schema id, bundled or added, if known.
    pub fn rubin_schema(&self, schema_id: u32) -> Option<std::sync::Arc<nightjar_avro::WriterSchema>> {
        self.rubin_schemas.get(schema_id)
    }

    /// Opens a container message with this decoder's schema cache (its writer schema is
    /// parsed once per distinct text).
    pub fn open_container<'a>(&mut self, bytes: &'a [u8]) -> Result<Container<'a>, DecodeErrorKind> {
        Container::open(bytes, &mut self.cache)
    }

    /// Decodes one message into its alerts; a container may hold several. A failure of the
    /// whole message gives a single error; a failure of one record, an error at that record.
    pub fn decode(&mut self, bytes: &[u8], origin: &Origin) -> Vec<Result<Alert, DecodeError>> {
        match self.decode_inner(bytes) {
            Ok(records) => records
                .into_iter()
                .enumerate()
                .map(|(index, record)| {
                    let record = record.and_then(|alert| self.check_survey(alert));
                    record.map_err(|kind| DecodeError::at_record(origin, index, kind))
                })
                .collect(),
            Err(kind) => vec![Err(DecodeError::new(origin, kind))],
        }
    }

    fn decode_inner(&mut self, bytes: &[u8]) -> Result<Vec<Result<Alert, DecodeErrorKind>>, DecodeErrorKind> {
        match detect_format(bytes)? {
            Format::Container => {
                let container = Container::open(bytes, &mut self.cache)?;
                if nightjar_ztf::is_ztf(&container.schema) {
                    nightjar_ztf::decode_container(&container)
                } else if nightjar_rubin::is_rubin(&container.schema) {
                    nightjar_rubin::decode_container(&container)
                } else {
                    Err(DecodeErrorKind::UnknownSurvey(container.schema.fields.join(", ")))
                }
            }
            Format::ConfluentWire => Ok(vec![self.rubin_schemas.decode_wire(bytes)]),
        }
    }

    fn check_survey(&self, alert: Alert) -> Result<Alert, DecodeErrorKind> {
        match self.expected_survey {
            Some(expected) if expected != alert.survey => Err(DecodeErrorKind::WrongSurvey {
                expected: expected.to_string(),
                found: alert.survey.to_string(),
            }),
            _ => Ok(alert),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognised_from_the_first_bytes() {
        assert_eq!(detect_format(b"Obj\x01rest"), Ok(Format::Container));
        assert_eq!(detect_format(&[0, 0, 0, 3, 132, 1]), Ok(Format::ConfluentWire));
        assert_eq!(detect_format(&[]), Err(DecodeErrorKind::Empty));
        assert!(matches!(
            detect_format(b"{\"json\": 1}"),
            Err(DecodeErrorKind::UnknownFormat(_))
        ));
    }
}
