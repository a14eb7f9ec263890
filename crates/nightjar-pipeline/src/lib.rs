//! nightjar's ingestion pipeline: sources of alert messages, decoding into micro-batches, the
//! science modules and the filters, storing them, and dead letters for whatever cannot be
//! decoded. Each batch is recorded in the worker's [`nightjar_metrics::PipelineMetrics`].
//!
//! Invariant: the pipeline knows the `Store` trait, never a database; sources hand it bytes
//! with their origin.

pub mod filters;
pub mod ingest;
pub mod source;

pub use filters::{FilterPass, FilterSinks, FilterStage, FilterStageError, OutboxError, load_filter_dir};
pub use ingest::{
    IngestConfig, IngestError, IngestSummary, Progress, decode_batch, ingest, record_decoded, record_module_metrics,
};
pub use nightjar_filter::FiltersConfig;
pub use nightjar_metrics::PipelineMetrics;
pub use source::{FileSource, Message, MessageSource, SourceError, avro_files_in};
