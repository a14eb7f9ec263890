//! The science database as the rest of nightjar sees it: the [`Store`] trait, the rows it
//! reads and writes, and the conformance suite (module `conformance`, behind the feature of the
//! same name) that every backend passes.
//!
//! Writes are idempotent: detections are keyed by source id (ZTF `candid`, Rubin
//! `diaSourceId`), upper limits and forced photometry by (object, time, band), cutouts by
//! (source id, kind). Object summaries are recomputed from the stored rows, never incremented,
//! so replaying a batch changes nothing.
//!
//! Modules `sky` (HEALPix index, cone coverage, distances, cone-argument checks) and `rows`
//! (object summaries, band keys, raw detection JSON) hold what every backend computes alike.
//!
//! Invariant: no database driver here; each backend lives in its own crate.

use async_trait::async_trait;
use nightjar_core::{Alert, Band, CutoutKind, Survey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod night;
pub mod rows;
pub mod sky;

pub use night::Night;

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store is used by another writer (a second `nightjar run` on the same data dir).
    #[error("the store at {path} is locked by another writer ({holder}); stop it first, or use another --data-dir")]
    Locked { path: String, holder: String },
    /// The disk is full: nothing of the failed batch was stored.
    #[error("the disk holding {path} is full: {reason}")]
    DiskFull { path: String, reason: String },
    /// The store was written by a newer nightjar.
    #[error("the store at {path} has schema version {found}, newer than this nightjar's {supported}; upgrade nightjar")]
    TooNew { path: String, found: i64, supported: i64 },
    /// A caller's mistake (bad parameter), with what is accepted.
    #[error("{0}")]
    InvalidArgument(String),
    /// Any other database or file error, with context.
    #[error("{context}: {reason}")]
    Backend { context: String, reason: String },
}

/// What one [`Store::write_batch`] added. A replayed batch adds nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSummary {
    /// Alerts in the batch.
    pub n_alerts: u64,
    /// Alerts already stored (a replay) or repeated within the batch. An alert whose detection
    /// was stored only from another alert's history is new, not a duplicate.
    pub n_duplicate_alerts: u64,
    /// Objects seen for the first time.
    pub new_objects: u64,
    /// Detection rows added (alert detections and history detections).
    pub new_detections: u64,
    /// Upper-limit rows added.
    pub new_upper_limits: u64,
    /// Forced-photometry rows added.
    pub new_forced_photometry: u64,
    /// Cutouts added.
    pub new_cutouts: u64,
}

impl WriteSummary {
    /// All new rows, of every kind.
    pub fn new_rows(&self) -> u64 {
        self.new_objects + self.new_detections + self.new_upper_limits + self.new_forced_photometry + self.new_cutouts
    }

    /// Adds another batch's counts.
    pub fn add(&mut self, other: &WriteSummary) {
        self.n_alerts += other.n_alerts;
        self.n_duplicate_alerts += other.n_duplicate_alerts;
        self.new_objects += other.new_objects;
        self.new_detections += other.new_detections;
        self.new_upper_limits += other.new_upper_limits;
        self.new_forced_photometry += other.new_forced_photometry;
        self.new_cutouts += other.new_cutouts;
    }
}

/// An object's summary, recomputed from its stored detections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectSummary {
    pub survey: Survey,
    pub object_id: String,
    /// Time of the first and last stored detection, MJD.
    pub first_mjd: f64,
    pub last_mjd: f64,
    /// Number of stored detections.
    pub n_detections: u64,
    /// Mean position of the stored detections, degrees.
    pub ra: f64,
    pub dec: f64,
    /// HEALPix index (NESTED, order [`HEALPIX_ORDER`]) of the mean position.
    pub healpix: u64,
}

/// HEALPix order of the position index: order 16 cells are ~3.2 arcsec across.
pub const HEALPIX_ORDER: u8 = 16;

/// One stored detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRow {
    pub survey: Survey,
    pub object_id: String,
    pub source_id: i64,
    pub mjd: f64,
    pub night: Night,
    pub band: Option<Band>,
    pub ra: f64,
    pub dec: f64,
    pub magnitude: Option<f64>,
    pub magnitude_err: Option<f64>,
    pub flux: Option<f64>,
    pub flux_err: Option<f64>,
    pub is_negative: bool,
    pub reliability: Option<f64>,
    /// True when this detection triggered an alert that nightjar received (not only seen in
    /// another alert's history).
    pub is_alert: bool,
}

/// One stored upper limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpperLimitRow {
    pub survey: Survey,
    pub object_id: String,
    pub mjd: f64,
    pub band: Option<Band>,
    pub limiting_magnitude: Option<f64>,
    pub noise_flux: Option<f64>,
}

/// One stored forced-photometry measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForcedPhotometryRow {
    pub survey: Survey,
    pub object_id: String,
    pub forced_source_id: Option<i64>,
    pub mjd: f64,
    pub band: Option<Band>,
    pub flux: Option<f64>,
    pub flux_err: Option<f64>,
}

/// An object and everything stored about it, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LightCurve {
    pub object: ObjectSummary,
    pub detections: Vec<DetectionRow>,
    pub upper_limits: Vec<UpperLimitRow>,
    pub forced_photometry: Vec<ForcedPhotometryRow>,
}

/// A stored alert: its triggering detection, plus what the alert said about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub detection: DetectionRow,
    pub schema_version: String,
    /// Solar-system object name the survey associated (ZTF `ssnamenr`), if any.
    pub solar_system_name: Option<String>,
    /// The triggering detection's raw survey record (ZTF `candidate`, Rubin `diaSource`) as JSON.
    pub raw_detection: serde_json::Value,
    /// The science modules' outputs for this alert, by column name (nulls absent).
    pub modules: serde_json::Map<String, serde_json::Value>,
    /// The alert's class: the `class` output of the science modules, if one gave it.
    pub class: Option<String>,
}

/// Which alerts [`Store::latest_alerts`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertSelection {
    /// Every alert.
    All,
    /// Alerts whose `class` output is this class.
    Class(String),
    /// Alerts whose `tags` output (comma-separated) holds this tag.
    Tag(String),
}

/// How many stored alerts have one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    pub class: String,
    pub alerts: u64,
}

/// A time window, MJD, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start_mjd: f64,
    pub end_mjd: f64,
}

impl TimeWindow {
    /// Every time.
    pub const ALL: TimeWindow = TimeWindow {
        start_mjd: f64::NEG_INFINITY,
        end_mjd: f64::INFINITY,
    };
}

/// A stored cutout.
#[derive(Debug, Clone, PartialEq)]
pub struct CutoutRow {
    pub survey: Survey,
    pub source_id: i64,
    pub kind: CutoutKind,
    pub file_name: Option<String>,
    pub data: Vec<u8>,
}

/// Alerts received per observing night and survey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NightCount {
    pub night: Night,
    pub survey: Survey,
    pub n_alerts: u64,
    pub n_objects: u64,
}

/// A message that could not be processed, kept with its bytes and the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Assigned by the store; `None` before it is written.
    pub id: Option<i64>,
    /// Where the message came from, as text (`path record 3`, `topic ... offset ...`).
    pub origin: String,
    /// Stable reason name (`truncated`, `unknown_schema_id`, ...), for counts.
    pub reason: String,
    /// The full error message.
    pub message: String,
    /// The message bytes, as received.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// When nightjar received it, Unix seconds.
    pub received_unix: i64,
}

/// Row counts of the whole store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounts {
    pub objects: u64,
    pub alerts: u64,
    pub detections: u64,
    pub upper_limits: u64,
    pub forced_photometry: u64,
    pub cutouts: u64,
    pub dead_letters: u64,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneSummary {
    pub alerts: u64,
    pub detections: u64,
    pub upper_limits: u64,
    pub forced_photometry: u64,
    pub cutouts: u64,
    pub objects: u64,
}

/// The science database.
#[async_trait]
pub trait Store: Send + Sync {
    /// Stores a batch in one transaction: objects, detections (the alert's and its history),
    /// upper limits, forced photometry, the alert rows and cutouts. Idempotent. On error nothing
    /// of the batch is stored.
    async fn write_batch(&self, alerts: &[Alert]) -> Result<WriteSummary, StoreError>;

    /// Stores dead letters; returns their ids. There is one letter per (origin, reason): a
    /// message that fails again (a re-run over the same input) replaces its earlier letter.
    async fn write_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>, StoreError>;

    /// The object with its light curve, or `None` if unknown.
    async fn light_curve(&self, survey: Survey, object_id: &str) -> Result<Option<LightCurve>, StoreError>;

    /// Objects whose mean position is within `radius_deg` of (ra, dec), nearest first, with
    /// their distance in degrees; only objects with a detection in `window`.
    async fn cone_search(
        &self,
        ra: f64,
        dec: f64,
        radius_deg: f64,
        window: TimeWindow,
    ) -> Result<Vec<(ObjectSummary, f64)>, StoreError>;

    /// The selected alerts received in the window, newest first, at most `limit`.
    async fn latest_alerts(
        &self,
        window: TimeWindow,
        selection: &AlertSelection,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError>;

    /// Every class that stored alerts have, with its number of alerts, most common first.
    async fn classes(&self) -> Result<Vec<ClassCount>, StoreError>;

    /// The alert whose triggering detection has this source id.
    async fn alert(&self, survey: Survey, source_id: i64) -> Result<Option<AlertRow>, StoreError>;

    /// Alerts of a solar-system object, by the name the survey gave (ZTF `ssnamenr`), newest first.
    async fn solar_system_alerts(&self, name: &str, limit: usize) -> Result<Vec<AlertRow>, StoreError>;

    /// Cutouts of the alert with this source id.
    async fn cutouts(&self, survey: Survey, source_id: i64) -> Result<Vec<CutoutRow>, StoreError>;

    /// Alerts and objects per observing night, oldest night first.
    async fn counts_per_night(&self) -> Result<Vec<NightCount>, StoreError>;

    /// Dead letters, oldest first, optionally only those with this reason.
    async fn dead_letters(&self, reason: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;

    /// Removes dead letters (after a successful replay).
    async fn delete_dead_letters(&self, ids: &[i64]) -> Result<u64, StoreError>;

    /// Removes every detection, limit, forced measurement, alert and cutout of nights before
    /// `night`, and objects left with no detection; summaries of the others are recomputed.
    async fn prune(&self, before: Night) -> Result<PruneSummary, StoreError>;

    /// Row counts.
    async fn counts(&self) -> Result<StoreCounts, StoreError>;
}
