//! [`FilterDefinition`]: one filter file (TOML): name, description, surveys, SQL, payload, sinks.
//!
//! ```toml
//! name = "bright_fast_risers"
//! description = "Good-quality detections brightening by more than 1 mag/day in g or r"
//! surveys = ["ztf"]
//! payload = "lite"
//! sql = """
//! SELECT objectId, candidate.magpsf, mag_rate_g, mag_rate_r
//! FROM alerts
//! WHERE is_good_quality AND (mag_rate_g < -1 OR mag_rate_r < -1)
//! """
//! references = ["https://arxiv.org/abs/2104.06352"]
//!
//! [[sinks]]
//! kind = "kafka"
//! topic = "nightjar_{filter}_{survey}"
//! ```

use nightjar_core::Survey;
use serde::{Deserialize, Serialize};

use crate::compile::{CompiledFilter, FilterLimits};
use crate::error::FilterError;
use crate::schema::AlertSchema;

/// What a filter sends for each alert it passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// The whole alert, as received, with every module output.
    #[default]
    Full,
    /// The selected columns plus a short light curve.
    Lite,
    /// The object and source ids only.
    Ids,
}

/// Where a filter's passing alerts go. Sinks are declared here and delivered by the sink
/// runtime (not part of this crate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// A Kafka topic; `{filter}` and `{survey}` in the name are replaced.
    Kafka {
        #[serde(default = "default_topic")]
        topic: String,
    },
    /// An HTTP POST of JSON per alert (`slack`: a Slack-compatible text message).
    Webhook {
        url: String,
        #[serde(default)]
        slack: bool,
    },
    /// Files per night in a directory, JSON lines or Parquet.
    File {
        directory: String,
        #[serde(default = "default_file_format")]
        format: String,
    },
}

fn default_topic() -> String {
    "nightjar_{filter}_{survey}".to_string()
}

fn default_file_format() -> String {
    "jsonl".to_string()
}

/// The TOML form of a filter file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterFile {
    name: String,
    description: String,
    #[serde(default)]
    surveys: Vec<Survey>,
    sql: String,
    #[serde(default)]
    payload: Payload,
    #[serde(default)]
    sinks: Vec<SinkConfig>,
    #[serde(default)]
    references: Vec<String>,
}

/// A parsed filter file.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterDefinition {
    /// Lowercase letters, digits and underscores; unique among the filters loaded.
    pub name: String,
    pub description: String,
    /// The surveys whose alerts the filter sees; empty: all.
    pub surveys: Vec<Survey>,
    /// `SELECT ... FROM alerts WHERE ...`, or a bare condition.
    pub sql: String,
    pub payload: Payload,
    pub sinks: Vec<SinkConfig>,
    /// Papers or pages the filter follows.
    pub references: Vec<String>,
    /// Where the definition came from (a file path), for messages.
    pub source_name: String,
    /// A hash of the file's text: a filter is recompiled only when its version changes.
    pub version: String,
}

impl FilterDefinition {
    /// Parses a filter file's text; `source_name` (the path) names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<FilterDefinition, FilterError> {
        let definition_error = |message: String| FilterError::Definition {
            source_name: source_name.to_string(),
            message,
        };
        let file: FilterFile = toml::from_str(text).map_err(|error| definition_error(error.to_string()))?;
        let name_ok = !file.name.is_empty()
            && file
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(definition_error(format!(
                "name {:?} must be lowercase letters, digits and underscores",
                file.name
            )));
        }
        if file.description.trim().is_empty() {
            return Err(definition_error(
                "description is empty: say what the filter selects".to_string(),
            ));
        }
        let version = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
        Ok(FilterDefinition {
            name: file.name,
            description: file.description,
            surveys: file.surveys,
            sql: file.sql,
            payload: file.payload,
            sinks: file.sinks,
            references: file.references,
            source_name: source_name.to_string(),
            version,
        })
    }

    /// Checks and plans the SQL against the `alerts` schema.
    pub fn compile(&self, schema: &AlertSchema, limits: &FilterLimits) -> Result<CompiledFilter, FilterError> {
        CompiledFilter::compile(&self.name, &self.sql, &self.surveys, schema, limits)
    }
}
