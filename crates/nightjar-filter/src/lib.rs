//! nightjar's filters: SQL over each micro-batch of alerts in Arrow form, evaluated with
//! DataFusion, validated before they run and sandboxed while they run.
//!
//! - [`AlertSchema`]: the `alerts` table (core, history, raw survey and module columns);
//! - [`AlertBatch`]: a micro-batch in Arrow form, built once for every filter;
//! - [`CompiledFilter`]: one filter's SQL checked and planned once, evaluated per batch;
//! - [`FilterDefinition`]: a filter file (TOML); [`FilterEngine`]: the active filters;
//! - [`Fixture`]: a filter's expected result on real alerts.
//!
//! Invariant: no I/O. Definitions and fixtures arrive as text, alerts as decoded batches.

mod batch;
mod compile;
mod config;
mod definition;
mod engine;
mod error;
mod fixture;
mod schema;

pub use batch::{AlertBatch, ColumnSelection};
pub use compile::{CompiledFilter, FilterLimits, FilterMetrics, FilterOutput, TABLE, allowed_functions};
pub use config::FiltersConfig;
pub use datafusion::arrow;
pub use definition::{FilterDefinition, Payload, SinkConfig};
pub use engine::{ActiveFilter, BatchResults, FilterEngine, UpdateReport};
pub use error::{FilterError, Location, SchemaError};
pub use fixture::{Fixture, column_by_path, value_text};
pub use schema::{AlertSchema, ColumnSource, CoreField, HistoryField, LeafColumn};
