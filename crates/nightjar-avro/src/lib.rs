//! Avro framing for nightjar: object-container messages and the Confluent wire format, decoded
//! with serde_avro_fast into whatever serde type a survey crate declares.
//!
//! Invariant: sans-I/O. Bytes in, records out; no files, no network, no async.

pub mod container;
pub mod enrich;
pub mod schema;
pub mod wire;

pub use container::{CONTAINER_MAGIC, Codec, Container, RecordFramer, RecordResult, write_container};
pub use enrich::{EnrichError, EnrichedSchema, OutputField};
pub use schema::{SchemaCache, WriterSchema};
pub use wire::{WIRE_MAGIC, decode_datum, frame_wire, split_wire};
