//! Load generator for nightjar: amplifies a few real alerts into any number of unique ones.
//!
//! A [`Template`] is one real alert (a ZTF object container, a Rubin Confluent wire message, or
//! a Rubin container as Fink writes it). An [`Amplifier`] makes copy `i` of template
//! `i % n_templates` with:
//!
//! - new ids, unique across copies and within a copy: the alert id (ZTF `candid` at the top
//!   and in `candidate`; Rubin `diaSourceId` / `alertId`, also in `ssSource`), every history
//!   id (`prv_candidates[].candid`, `prvDiaSources[].diaSourceId`,
//!   `prvDiaForcedSources[].diaForcedSourceId`) and the object (ZTF `objectId`
//!   `"ZTF" + 2 digits + 7 letters`; Rubin `diaObjectId` everywhere it appears, or the
//!   `ssObjectId` of a solar-system source without a diaObject);
//! - a new sky position drawn uniformly over the sphere: every position in the alert (the
//!   detection, its history, forced photometry, nearest reference sources, the object) is
//!   moved by the same rotation, so distances and position angles between them are kept;
//! - a new time: every time of the detection, its history, limits and object is shifted by
//!   the same offset, so that copy `i` is observed at `start_mjd + i * cadence_s`;
//! - everything else, cutouts included, byte for byte as in the template.
//!
//! Copies are deterministic (same templates, seed and index: same bytes, on one platform: the
//! rotation uses the platform's trigonometric functions) and cheap: the
//! template is encoded once, and a copy rewrites a few hundred bytes at known offsets and
//! copies the rest.
//!
//! ```no_run
//! # fn main() -> Result<(), nightjar_simulate::SimulateError> {
//! use nightjar_simulate::{Amplifier, AmplifyConfig, Template};
//! let bytes = std::fs::read("alert.avro").expect("read");
//! let templates = Template::from_named_message("alert.avro", &bytes)?;
//! let config = AmplifyConfig { seed: 42, start_mjd: Some(60_000.0), cadence_s: 0.001, ..AmplifyConfig::default() };
//! let amplifier = Amplifier::new(templates, config)?;
//! for message in amplifier.messages(0..10_000) {
//!     let _kafka_value: Vec<u8> = message?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Invariant: sans-I/O. Bytes in, bytes out; callers read and write files and topics.
//!
//! Limits: ids are `id_base + index * ids_per_copy + j`, so `index` may go up to
//! `(i64::MAX - id_base) / ids_per_copy` (about 1.7 * 10^15 with the defaults); ZTF object names
//! are unique for the first 8 * 10^11 copies. What a copy leaves as it was: other ids
//! (`pid`, `parentDiaSourceId`, `ssObjectId`, catalogue ids), broker columns of broker-written
//! templates (Fink's `cjd`, cross-matches), and anything tied to the sky position (catalogue
//! distances, solar-system orbits: a moved asteroid no longer matches its orbit). A ZTF
//! template re-written by a broker (Fink, ALeRCE) keeps that broker's writer schema.

mod amplify;
mod binary;
mod error;
mod layout;
mod sky;
mod template;

pub use amplify::{Amplifier, AmplifyConfig, CopyInfo, Messages};
pub use error::SimulateError;
pub use sky::angular_distance_deg;
pub use template::{Template, TemplateOptions};
