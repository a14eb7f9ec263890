//! The few Avro binary primitives the load generator reads and writes itself: zig-zag varints,
//! length-prefixed bytes and fixed-size values (Avro specification, "Binary encoding").
//!
//! Everything else (schemas, records, containers) goes through serde_avro_fast; these are here
//! because a copy is made by rewriting a handful of values inside an already-encoded datum.

/// Longest varint an Avro `long` takes.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Appends an Avro `long` (zig-zag varint).
pub(crate) fn write_long(out: &mut Vec<u8>, value: i64) {
    let mut rest = ((value << 1) ^ (value >> 63)) as u64;
    while rest >= 0x80 {
        out.push((rest as u8) | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Reads an Avro `long` at `*position`, moving past it.
pub(crate) fn read_long(bytes: &[u8], position: &mut usize) -> Result<i64, String> {
    let mut value: u64 = 0;
    for (shift_index, byte) in bytes
        .get(*position..)
        .unwrap_or(&[])
        .iter()
        .take(MAX_VARINT_LEN)
        .enumerate()
    {
        value |= u64::from(byte & 0x7f) << (7 * shift_index);
        if byte & 0x80 == 0 {
            *position += shift_index + 1;
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(format!("truncated or overlong varint at byte {}", *position))
}

/// Reads `N` raw bytes at `*position`, moving past them.
pub(crate) fn read_array<const N: usize>(bytes: &[u8], position: &mut usize) -> Result<[u8; N], String> {
    let chunk = bytes
        .get(*position..*position + N)
        .ok_or_else(|| format!("truncated: {N} bytes expected at byte {}", *position))?;
    *position += N;
    let mut array = [0u8; N];
    array.copy_from_slice(chunk);
    Ok(array)
}

/// Skips a length-prefixed value (`bytes` or `string`) and returns its content.
pub(crate) fn read_length_delimited<'a>(bytes: &'a [u8], position: &mut usize) -> Result<&'a [u8], String> {
    let start = *position;
    let length = read_long(bytes, position)?;
    let length = usize::try_from(length).map_err(|_| format!("negative length {length} at byte {start}"))?;
    let content = bytes
        .get(*position..*position + length)
        .ok_or_else(|| format!("truncated: {length} bytes announced at byte {start}"))?;
    *position += length;
    Ok(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_round_trip() {
        for value in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i64::MAX,
            i64::MIN,
            1_234_567_890_123_456_789,
        ] {
            let mut out = Vec::new();
            write_long(&mut out, value);
            assert!(out.len() <= MAX_VARINT_LEN);
            let mut position = 0;
            assert_eq!(read_long(&out, &mut position), Ok(value));
            assert_eq!(position, out.len());
        }
        // Avro specification examples: 0 -> 00, -1 -> 01, 1 -> 02, -64 -> 7f, 64 -> 80 01.
        let mut out = Vec::new();
        for value in [0, -1, 1, -64, 64] {
            write_long(&mut out, value);
        }
        assert_eq!(out, [0x00, 0x01, 0x02, 0x7f, 0x80, 0x01]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut position = 0;
        assert!(read_long(&[0x80], &mut position).is_err());
        assert!(read_length_delimited(&[0x08, b'a'], &mut position).is_err());
        assert!(read_array::<8>(&[0; 4], &mut position).is_err());
    }
}
