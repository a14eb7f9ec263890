//! Avro object-container messages (ZTF's Kafka messages, Fink's files): header, codec, blocks.
//!
//! The header and each block are themselves Avro data; they are read with serde_avro_fast
//! against the layouts that the Avro specification gives for them. What this module adds over
//! the library's own container reader is the writer-schema cache (see [`SchemaCache`]) and
//! per-record errors.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, LazyLock};

use nightjar_core::DecodeErrorKind;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::schema::{SchemaCache, WriterSchema};

/// The four bytes every object container starts with.
pub const CONTAINER_MAGIC: &[u8; 4] = b"Obj\x01";

/// Most records one block may claim; guards against a corrupt count.
const MAX_RECORDS_PER_BLOCK: i64 = 10_000_000;

/// Largest decompressed block accepted (a ZTF alert is ~100 KB, a Fink file a few MB).
const MAX_BLOCK_BYTES: usize = 512 * 1024 * 1024;

static HEADER_SCHEMA: LazyLock<serde_avro_fast::Schema> = LazyLock::new(|| {
    r#"{"type": "record", "name": "org.apache.avro.file.Header", "fields": [
        {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
        {"name": "meta", "type": {"type": "map", "values": "bytes"}},
        {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}}]}"#
        .parse()
        .expect("the container header schema is valid")
});

static BLOCK_SCHEMA: LazyLock<serde_avro_fast::Schema> = LazyLock::new(|| {
    r#"{"type": "record", "name": "Block", "fields": [
        {"name": "count", "type": "long"},
        {"name": "data", "type": "bytes"},
        {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}}]}"#
        .parse()
        .expect("the container block schema is valid")
});

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow, with = "serde_bytes")]
    magic: &'a [u8],
    #[serde(borrow)]
    meta: HashMap<&'a str, &'a serde_bytes::Bytes>,
    #[serde(borrow, with = "serde_bytes")]
    sync: &'a [u8],
}

#[derive(Deserialize)]
struct Block<'a> {
    count: i64,
    #[serde(borrow, with = "serde_bytes")]
    data: &'a [u8],
    #[serde(borrow, with = "serde_bytes")]
    sync: &'a [u8],
}

/// Compression of a container's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Null,
    Deflate,
    Snappy,
}

impl Codec {
    fn from_name(name: &str) -> Result<Codec, DecodeErrorKind> {
        match name {
            "null" | "" => Ok(Codec::Null),
            "deflate" => Ok(Codec::Deflate),
            "snappy" => Ok(Codec::Snappy),
            other => Err(DecodeErrorKind::UnsupportedCodec(other.to_string())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
            Codec::Snappy => "snappy",
        }
    }
}

/// An opened container: its writer schema and codec, blocks not yet decoded.
#[derive(Debug)]
pub struct Container<'a> {
    pub schema: Arc<WriterSchema>,
    pub codec: Codec,
    sync: &'a [u8],
    body: &'a [u8],
}

/// One decoded record, or why it failed.
pub type RecordResult<T> = Result<T, DecodeErrorKind>;

pub(crate) fn corrupt(what: &str, error: impl std::fmt::Display) -> DecodeErrorKind {
    let text = error.to_string();
    if text.contains("EOF") || text.contains("eof") {
        DecodeErrorKind::Truncated(format!("{what}: {text}"))
    } else {
        DecodeErrorKind::Corrupt(format!("{what}: {text}"))
    }
}

impl<'a> Container<'a> {
    /// Reads the header of a container message, parsing its writer schema through the cache.
    pub fn open(bytes: &'a [u8], cache: &mut SchemaCache) -> Result<Container<'a>, DecodeErrorKind> {
        if !bytes.starts_with(CONTAINER_MAGIC) {
            return Err(DecodeErrorKind::Container("missing the \"Obj\\x01\" magic".to_string()));
        }
        let mut state = serde_avro_fast::de::DeserializerState::from_slice(bytes, &HEADER_SCHEMA);
        let header = Header::deserialize(state.deserializer()).map_err(|error| corrupt("container header", error))?;
        debug_assert_eq!(header.magic, CONTAINER_MAGIC);
        let body = remaining(bytes, state);
        let schema_json = header
            .meta
            .get("avro.schema")
            .ok_or_else(|| DecodeErrorKind::Container("the header has no avro.schema".to_string()))?;
        let codec = match header.meta.get("avro.codec") {
            Some(name) => Codec::from_name(&String::from_utf8_lossy(name))?,
            None => Codec::Null,
        };
        let schema = cache.get_or_parse(schema_json).map_err(DecodeErrorKind::Schema)?;
        Ok(Container {
            schema,
            codec,
            sync: header.sync,
            body,
        })
    }

    /// Decodes every record of every block as `T`.
    ///
    /// A record that fails to decode yields an error; since the records after it in the same
    /// block cannot be located, decoding goes on at the next block.
    pub fn records<T: DeserializeOwned>(&self) -> Result<Vec<RecordResult<T>>, DecodeErrorKind> {
        let mut records = Vec::new();
        self.for_each_block(|_, data, count| decode_block::<T>(&self.schema.schema, data, count, &mut records))?;
        Ok(records)
    }

    /// The raw bytes of every record (schemaless Avro datums of [`Container::schema`]), in
    /// order, for passing records on unchanged. A block of one record is its datum as is; the
    /// records of a larger block are delimited by skipping through each with the schema.
    pub fn datums(&self) -> Result<Vec<Vec<u8>>, DecodeErrorKind> {
        let mut datums = Vec::new();
        let mut failure = None;
        self.for_each_block(|block_index, data, count| {
            if failure.is_some() {
                return;
            }
            if count == 1 {
                datums.push(data.to_vec());
                return;
            }
            let mut rest = data;
            for record_index in 0..count {
                let mut state = serde_avro_fast::de::DeserializerState::from_slice(rest, &self.schema.schema);
                if let Err(error) = serde::de::IgnoredAny::deserialize(state.deserializer()) {
                    failure = Some(corrupt(&format!("block {block_index} record {record_index}"), error));
                    return;
                }
                let after = remaining(rest, state);
                datums.push(rest[..rest.len() - after.len()].to_vec());
                rest = after;
            }
        })?;
        match failure {
            Some(error) => Err(error),
            None => Ok(datums),
        }
    }

    /// Calls `on_block` with each block's index, decompressed data and record count, checking
    /// the framing (sync markers, counts, sizes) on the way.
    fn for_each_block(&self, mut on_block: impl FnMut(usize, &[u8], usize)) -> Result<(), DecodeErrorKind> {
        let mut rest = self.body;
        let mut block_index = 0usize;
        while !rest.is_empty() {
            let mut state = serde_avro_fast::de::DeserializerState::from_slice(rest, &BLOCK_SCHEMA);
            let block = Block::deserialize(state.deserializer())
                .map_err(|error| corrupt(&format!("block {block_index}"), error))?;
            rest = remaining(rest, state);
            if block.sync != self.sync {
                return Err(DecodeErrorKind::Corrupt(format!(
                    "block {block_index}: sync marker does not match the header's"
                )));
            }
            if !(0..=MAX_RECORDS_PER_BLOCK).contains(&block.count) {
                return Err(DecodeErrorKind::Corrupt(format!(
                    "block {block_index}: invalid record count {}",
                    block.count
                )));
            }
            let data = decompress(self.codec, block.data)
                .map_err(|reason| DecodeErrorKind::Corrupt(format!("block {block_index}: {reason}")))?;
            on_block(block_index, &data, block.count as usize);
            block_index += 1;
        }
        Ok(())
    }
}

/// An object container (codec null) holding `datums`, schemaless records of `schema` (their
/// bytes are written as they are, not checked). The sync marker is derived from the schema.
pub fn write_container<'d>(
    schema: &WriterSchema,
    datums: impl IntoIterator<Item = &'d [u8]>,
) -> Result<Vec<u8>, DecodeErrorKind> {
    let hash = xxhash_rust::xxh3::xxh3_128(schema.json.as_bytes());
    let mut config = serde_avro_fast::ser::SerializerConfig::new(&schema.schema);
    let error = |error: serde_avro_fast::ser::SerError| DecodeErrorKind::Container(format!("writing: {error}"));
    let mut writer = serde_avro_fast::object_container_file_encoding::WriterBuilder::new(&mut config)
        .sync_marker(hash.to_le_bytes())
        .build(Vec::new())
        .map_err(error)?;
    for datum in datums {
        writer.push_serialized(datum, 1).map_err(error)?;
    }
    writer.into_inner().map_err(error)
}

/// Frames single datums of one schema as one-record object containers, the header (with its
/// ~30 KB schema) written once: what [`write_container`] gives for one datum, at the cost of a
/// copy.
#[derive(Debug, Clone)]
pub struct RecordFramer {
    /// The container header: magic, metadata, sync marker.
    header: Vec<u8>,
}

/// Length of a container's sync marker.
const SYNC_LEN: usize = 16;

impl RecordFramer {
    pub fn new(schema: &WriterSchema) -> Result<RecordFramer, DecodeErrorKind> {
        let header = write_container(schema, std::iter::empty())?;
        if header.len() < SYNC_LEN {
            return Err(DecodeErrorKind::Container(
                "writing: a header without a sync marker".to_string(),
            ));
        }
        Ok(RecordFramer { header })
    }

    /// A container holding `datum` alone.
    pub fn frame(&self, datum: &[u8]) -> Vec<u8> {
        let sync = &self.header[self.header.len() - SYNC_LEN..];
        let mut container = Vec::with_capacity(self.header.len() + 20 + datum.len() + SYNC_LEN);
        container.extend_from_slice(&self.header);
        write_long(1, &mut container);
        write_long(datum.len() as i64, &mut container);
        container.extend_from_slice(datum);
        container.extend_from_slice(sync);
        container
    }
}

/// Avro's long: zigzag, then little-endian base-128 varint.
fn write_long(value: i64, out: &mut Vec<u8>) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

/// The unread rest of the slice a deserializer was reading.
pub(crate) fn remaining<'a>(
    input: &'a [u8],
    state: serde_avro_fast::de::DeserializerState<'_, serde_avro_fast::de::read::SliceRead<'a>>,
) -> &'a [u8] {
    let mut reader = state.into_reader();
    // `fill_buf` on a slice reader hands back the unread rest of the slice.
    let unread = std::io::BufRead::fill_buf(&mut reader).map(<[u8]>::len).unwrap_or(0);
    &input[input.len() - unread.min(input.len())..]
}

fn decode_block<T: DeserializeOwned>(
    schema: &serde_avro_fast::Schema,
    data: &[u8],
    count: usize,
    records: &mut Vec<RecordResult<T>>,
) {
    let mut rest = data;
    for record_index in 0..count {
        let mut state = serde_avro_fast::de::DeserializerState::from_slice(rest, schema);
        match T::deserialize(state.deserializer()) {
            Ok(record) => {
                records.push(Ok(record));
                rest = remaining(rest, state);
            }
            Err(error) => {
                records.push(Err(corrupt("record", error)));
                for _ in record_index + 1..count {
                    records.push(Err(DecodeErrorKind::Corrupt(
                        "not decoded: an earlier record of its block is corrupt".to_string(),
                    )));
                }
                return;
            }
        }
    }
    if let Some(last) = records.last_mut().filter(|last| last.is_ok() && !rest.is_empty()) {
        *last = Err(DecodeErrorKind::TrailingBytes(rest.len()));
    }
}

fn decompress(codec: Codec, data: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    match codec {
        Codec::Null => Ok(Cow::Borrowed(data)),
        Codec::Deflate => {
            let mut out = Vec::with_capacity(data.len() * 3);
            flate2::read::DeflateDecoder::new(data)
                .take(MAX_BLOCK_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|error| format!("deflate: {error}"))?;
            if out.len() > MAX_BLOCK_BYTES {
                return Err(format!("deflate: block larger than {MAX_BLOCK_BYTES} bytes"));
            }
            Ok(Cow::Owned(out))
        }
        Codec::Snappy => {
            // Avro's snappy blocks end with the big-endian CRC-32 of the uncompressed data.
            let (compressed, crc) = data
                .split_at_checked(data.len().saturating_sub(4))
                .filter(|(_, crc)| crc.len() == 4)
                .ok_or_else(|| "snappy: block shorter than its checksum".to_string())?;
            let length = snap::raw::decompress_len(compressed).map_err(|error| format!("snappy: {error}"))?;
            if length > MAX_BLOCK_BYTES {
                return Err(format!("snappy: block larger than {MAX_BLOCK_BYTES} bytes"));
            }
            let out = snap::raw::Decoder::new()
                .decompress_vec(compressed)
                .map_err(|error| format!("snappy: {error}"))?;
            let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
            if crc32fast::hash(&out) != expected {
                return Err("snappy: checksum mismatch".to_string());
            }
            Ok(Cow::Owned(out))
        }
    }
}
