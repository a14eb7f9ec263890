//! nightjar's science modules: the [`ScienceModule`] trait, the [`ModuleRunner`] that runs
//! modules per micro-batch in dependency order and contains their failures, the columnar
//! [`ModuleOutputs`] that later modules, the store and filters read, and the built-in modules.
//!
//! Invariant: modules do no I/O while running; whatever they need (catalogues, models,
//! parameters) is passed in through their config when they are built.
//!
//! History seen by a module: only what the alert itself carries (ZTF's 30 days of
//! `prv_candidates`, Rubin's `prvDiaSources` / forced photometry), never the store.

pub mod anomaly;
pub mod classification;
mod config;
pub mod crossmatch;
pub mod early_snia;
mod error;
pub mod light_curve_features;
mod module;
mod outputs;
pub mod quality;
pub mod rates;
mod runner;
pub mod solar_system;
mod ztf_history;

pub use config::{ModulesConfig, builtin_modules};
pub use error::ModuleError;
pub use module::{ColumnType, OutputColumn, Row, ScienceModule, Value};
pub use nightjar_core::ModuleValues;
pub use outputs::{Column, ModuleFailure, ModuleFailureKind, ModuleOutputs};
pub use runner::{ModuleRunner, ModuleStats};
