//! The Confluent wire format that Rubin uses on Kafka: `0x00`, a 4-byte big-endian schema id,
//! then one Avro datum without schema.

use nightjar_core::DecodeErrorKind;
use serde::de::DeserializeOwned;

use crate::container::{corrupt, remaining};

/// The magic byte of the Confluent wire format.
pub const WIRE_MAGIC: u8 = 0x00;

/// Splits a wire-format message into its schema id and datum.
pub fn split_wire(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeErrorKind> {
    match bytes {
        [] => Err(DecodeErrorKind::Empty),
        [WIRE_MAGIC, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [WIRE_MAGIC, ..] => Err(DecodeErrorKind::Truncated(format!(
            "{} bytes, shorter than the 5-byte wire-format header",
            bytes.len()
        ))),
        [first, ..] => Err(DecodeErrorKind::UnknownFormat(format!("byte 0x{first:02x}"))),
    }
}

/// Prepends the wire-format header to a datum.
pub fn frame_wire(schema_id: u32, datum: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(datum.len() + 5);
    message.push(WIRE_MAGIC);
    message.extend_from_slice(&schema_id.to_be_bytes());
    message.extend_from_slice(datum);
    message
}

/// Decodes one schemaless datum, requiring that it fills the slice exactly (a datum that leaves
/// bytes over was written with another schema).
pub fn decode_datum<T: DeserializeOwned>(datum: &[u8], schema: &serde_avro_fast::Schema) -> Result<T, DecodeErrorKind> {
    let mut state = serde_avro_fast::de::DeserializerState::from_slice(datum, schema);
    let record = T::deserialize(state.deserializer()).map_err(|error| corrupt("datum", error))?;
    let rest = remaining(datum, state);
    if !rest.is_empty() {
        return Err(DecodeErrorKind::TrailingBytes(rest.len()));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_frames() {
        let message = frame_wire(900, b"abc");
        assert_eq!(split_wire(&message), Ok((900, &b"abc"[..])));
        assert_eq!(split_wire(&[]), Err(DecodeErrorKind::Empty));
        assert!(matches!(split_wire(&[0, 0, 3]), Err(DecodeErrorKind::Truncated(_))));
        assert!(matches!(split_wire(b"Obj\x01"), Err(DecodeErrorKind::UnknownFormat(_))));
    }
}
