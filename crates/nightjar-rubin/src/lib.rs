//! Rubin (LSST) alert decoding for nightjar: the bundled alert schemas 7.0 to 11.0, the wire
//! types generated from them, schema and version recognition, and the mapping to the core model.
//!
//! Invariant: sans-I/O. Bytes in, [`nightjar_core::Alert`] out; no files, no network, no async.
//! The schemas are compiled in; schemas newer than the bundled ones are handed to
//! [`RubinSchemas::insert`] by whoever fetched them (a schema-registry client).
//!
//! ```
//! # fn main() -> Result<(), nightjar_core::DecodeErrorKind> {
//! let schemas = nightjar_rubin::RubinSchemas::bundled();
//! let message = [0u8, 0, 0, 0x04, 0x4d]; // schema id 1101 (11.1), not bundled
//! let error = schemas.decode_wire(&message).unwrap_err();
//! assert!(matches!(error, nightjar_core::DecodeErrorKind::UnknownSchemaId { id: 1101, .. }));
//! # Ok(())
//! # }
//! ```

mod convert;
mod decode;
mod schemas;
mod version;
pub mod wire;

pub use convert::{UPPER_LIMIT_SIGMA, to_alert};
pub use decode::{decode_container, decode_wire_datum};
pub use schemas::{RubinSchemas, bundled_schema_ids, bundled_schema_json, schema_version_of_id};
pub use version::{detect_version, is_rubin};
pub use wire::RubinAlert;
