//! Delivery of a filter's passing alerts to webhooks and files.
//!
//! The run loops hand each filter's passing alerts of a micro-batch to the filter's sinks as a
//! [`Delivery`]: the filter, survey, night, a replay-stable name of the input range
//! (`position`) and the rows, one JSON object per alert already shaped by the filter's payload.
//! Kafka sinks are the Kafka crate's; this crate has the two others:
//!
//! - [`FileSink`] writes `{directory}/{night}/{filter}_{survey}_{position}.{jsonl|parquet}`
//!   atomically (temporary file, fsync, rename, directory fsync). A replay of the same input
//!   range writes the same name: it overwrites, never duplicates. Parquet files take their
//!   schema from the rows (arrow-json), nested objects as structs, arrays as lists.
//! - [`Outbox`] is the durable queue of webhook posts. [`Outbox::enqueue`] only writes files:
//!   the entry is on disk (fsync) when it returns, so the caller may commit its input offsets
//!   then, and a slow or down endpoint never holds up the run loop. The task started by
//!   [`Outbox::spawn_delivery`] posts each alert as JSON (`filter` and `survey` added; in Slack
//!   mode a `{"text": ...}` line), one worker per endpoint: 2xx is done; 408, 429, 5xx and
//!   connection errors are retried with exponential backoff and jitter (or `Retry-After`);
//!   any other status (3xx included: redirects are not followed) moves the alert to
//!   `failed/` with the status and the answer. Progress inside an entry is kept on disk, so a
//!   restart resumes after the last accepted alert; a post in flight at a crash or shutdown is
//!   sent again (at-least-once). A replay of a delivery whose rows are identical keeps the
//!   pending entry's progress, and posts nothing if it was delivered in the last 7 days.
//!
//! Names: [`Delivery::validate`] checks every name before anything is written (the filter,
//! `[a-z0-9_]`, at most 48 bytes; the survey, at most 16; the night, `YYYYMMDD`; the position,
//! `[A-Za-z0-9_.-]`, at most 128, not starting with `.`), so every file name stays under 255
//! bytes and inside its directory. [`kafka_position`] names a partition's offset range.
//!
//! Counters for metrics: [`Outbox::stats`] ([`DeliveryStats`]); this crate has no metrics
//! dependency.
//!
//! HTTP client: `reqwest` (rustls, no OpenSSL), because its async requests can be cancelled at
//! shutdown and run concurrently per endpoint on the caller's tokio runtime, where the
//! blocking `ureq` would need a thread per endpoint that shutdown cannot interrupt.
//!
//! ```no_run
//! # async fn example() -> Result<(), nightjar_sinks::SinkError> {
//! use nightjar_sinks::{Delivery, DeliveryOptions, FileSink, Outbox, WebhookConfig};
//!
//! let rows = vec![serde_json::json!({"objectId": "ZTF24aaaaaaa", "magpsf": 18.1})];
//! let delivery = Delivery {
//!     filter: "bright_risers",
//!     survey: "ztf",
//!     night: "20240612",
//!     position: &nightjar_sinks::kafka_position("ztf_20240612_programid1", 3, 1200, 1299),
//!     rows: &rows,
//! };
//! let files = FileSink::new("/var/lib/nightjar/sinks", "parquet".parse()?)?;
//! files.write(&delivery)?;
//!
//! let outbox = Outbox::open("/var/lib/nightjar/outbox")?;
//! let (stop, shutdown) = tokio::sync::watch::channel(false);
//! let delivery_task = outbox.spawn_delivery(DeliveryOptions::default(), shutdown);
//! outbox.enqueue(&WebhookConfig::new("https://example.org/hook", false), &delivery)?;
//! // ... commit the input offsets, next batch ...
//! let _ = stop.send(true);
//! let stats = delivery_task.await.unwrap_or_default();
//! # let _ = stats;
//! # Ok(())
//! # }
//! ```

mod atomic;
mod delivery;
mod error;
mod file;
mod outbox;
mod slack;
mod webhook;

pub use delivery::{Delivery, MAX_FILTER_LEN, MAX_POSITION_LEN, MAX_SURVEY_LEN, kafka_position};
pub use error::SinkError;
pub use file::{FileFormat, FileSink};
pub use outbox::{DONE_MARKER_RETENTION, Outbox, WebhookConfig};
pub use webhook::{DeliveryOptions, DeliveryStats, MAX_FAILED_BODY_BYTES, MIN_RETRY_AFTER};
