//! nightjar's survey-agnostic core: the alert model, raw field access, origins and errors.
//!
//! Invariant: this crate does no I/O and knows no survey's wire format.

pub mod calendar;
pub mod compare;
pub mod error;
pub mod model;
pub mod origin;
pub mod photometry;
pub mod raw;
pub mod values;

pub use error::{DecodeError, DecodeErrorKind};
pub use model::{Alert, Band, Cutout, CutoutKind, Detection, ForcedPhotometry, Survey, UpperLimit};
pub use origin::Origin;
pub use raw::{FieldKind, FieldValue, RawAlert, RawBytes, RawRecord, Scalar};
pub use values::{ColumnType, ModuleValues, Value};
