//! nightjar's ingestion pipeline: sources of alert messages, decoding into micro-batches,
//! storing them, and dead letters for whatever cannot be decoded.
//!
//! Invariant: the pipeline knows the `Store` trait, never a database; sources hand it bytes
//! with their origin.

pub mod ingest;
pub mod source;

pub use ingest::{IngestConfig, IngestError, IngestSummary, Progress, decode_batch, ingest};
pub use source::{FileSource, Message, MessageSource, SourceError, avro_files_in};
