//! [`FiltersConfig`]: the `[filters]` section of the nightjar config file.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compile::FilterLimits;

/// Where the filter files are and the limits every filter runs under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    /// Directory of filter files (`*.toml`, one filter each); none: no filters run. A running
    /// worker reloads it when a file changes, and on SIGHUP.
    pub directory: Option<PathBuf>,
    /// Directory of the webhook outbox (posts waiting for delivery); default: `outbox` in the
    /// store's data directory. One per worker.
    pub outbox: Option<PathBuf>,
    /// Time one filter may take on one micro-batch, milliseconds.
    pub time_budget_ms: u64,
    /// A filter over its time budget on this many batches in a row is disabled.
    pub max_overruns: u32,
    /// Largest output (selected columns of the passing alerts) of one filter on one batch, bytes.
    pub max_output_bytes: usize,
    /// Longest filter SQL accepted, bytes.
    pub max_sql_bytes: usize,
    /// `nightjar filter check` refuses a filter passing more than this share of the sample
    /// alerts, unless told `--allow-broad`.
    pub max_pass_share: f64,
}

impl Default for FiltersConfig {
    fn default() -> FiltersConfig {
        let limits = FilterLimits::default();
        FiltersConfig {
            directory: None,
            outbox: None,
            time_budget_ms: limits.time_budget.as_millis() as u64,
            max_overruns: limits.max_overruns,
            max_output_bytes: limits.max_output_bytes,
            max_sql_bytes: limits.max_sql_bytes,
            max_pass_share: 0.05,
        }
    }
}

impl FiltersConfig {
    /// Checks the values; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.time_budget_ms == 0 {
            return Err("filters.time_budget_ms must be at least 1".to_string());
        }
        if self.max_overruns == 0 {
            return Err("filters.max_overruns must be at least 1".to_string());
        }
        if !(0.0..=1.0).contains(&self.max_pass_share) {
            return Err(format!(
                "filters.max_pass_share must be between 0 and 1, not {}",
                self.max_pass_share
            ));
        }
        Ok(())
    }

    /// The limits filters are compiled with.
    pub fn limits(&self) -> FilterLimits {
        FilterLimits {
            time_budget: Duration::from_millis(self.time_budget_ms),
            max_overruns: self.max_overruns,
            max_output_bytes: self.max_output_bytes,
            max_sql_bytes: self.max_sql_bytes,
            ..FilterLimits::default()
        }
    }
}
