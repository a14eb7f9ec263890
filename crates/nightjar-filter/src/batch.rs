//! [`AlertBatch`]: a micro-batch of alerts and their module outputs in Arrow form, built once
//! and shared by every filter.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder,
    StructArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Fields};
use nightjar_core::raw::FieldValue;
use nightjar_core::{Alert, Band, Detection};
use nightjar_modules::{ModuleOutputs, Value};

use crate::error::FilterError;
use crate::schema::{AlertSchema, ColumnSource, CoreField, HistoryField, LeafColumn, Node, arrow_field};

/// A micro-batch in Arrow form: one row per alert, in batch order.
#[derive(Debug, Clone)]
pub struct AlertBatch {
    batch: RecordBatch,
}

/// Which leaf columns to fill; the others are all null. Filters read few columns, so building
/// only those keeps the conversion cheap.
#[derive(Debug, Clone)]
pub struct ColumnSelection {
    filled: Vec<bool>,
}

impl ColumnSelection {
    /// Every column.
    pub fn all(schema: &AlertSchema) -> ColumnSelection {
        ColumnSelection {
            filled: vec![true; schema.leaves().len()],
        }
    }

    /// No column (add the ones needed with [`ColumnSelection::add`]).
    pub fn none(schema: &AlertSchema) -> ColumnSelection {
        ColumnSelection {
            filled: vec![false; schema.leaves().len()],
        }
    }

    /// Adds every leaf under `path` (a column or a struct).
    pub fn add(&mut self, schema: &AlertSchema, path: &str) {
        for position in schema.leaves_under(path) {
            self.filled[position] = true;
        }
    }

    /// The number of leaf columns filled.
    pub fn len(&self) -> usize {
        self.filled.iter().filter(|filled| **filled).count()
    }

    /// True when no column is filled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AlertBatch {
    /// Converts a micro-batch and its module outputs (`outputs.n_alerts()` must be the batch's
    /// length, or `outputs` empty when no module ran) into Arrow, filling the selected columns.
    pub fn build(
        schema: &AlertSchema,
        alerts: &[Alert],
        outputs: &ModuleOutputs,
        selection: &ColumnSelection,
    ) -> Result<AlertBatch, FilterError> {
        let histories: Option<Vec<HistorySummary>> = schema
            .leaves()
            .iter()
            .zip(&selection.filled)
            .any(|(leaf, filled)| *filled && matches!(leaf.source, ColumnSource::History(_)))
            .then(|| alerts.iter().map(HistorySummary::of).collect());
        let context = BuildContext {
            schema,
            alerts,
            outputs,
            selection,
            histories: histories.as_deref(),
        };
        let columns: Vec<ArrayRef> = schema
            .tree()
            .iter()
            .map(|(_, node)| context.node_array(node))
            .collect::<Result<_, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(alerts.len()));
        let batch = RecordBatch::try_new_with_options(schema.arrow().clone(), columns, &options)
            .map_err(|error| FilterError::Arrow(error.to_string()))?;
        Ok(AlertBatch { batch })
    }

    /// The Arrow record batch.
    pub fn record_batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The number of alerts.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }
}

struct BuildContext<'a> {
    schema: &'a AlertSchema,
    alerts: &'a [Alert],
    outputs: &'a ModuleOutputs,
    selection: &'a ColumnSelection,
    histories: Option<&'a [HistorySummary]>,
}

impl BuildContext<'_> {
    fn node_array(&self, node: &Node) -> Result<ArrayRef, FilterError> {
        match node {
            Node::Leaf(position) => {
                let leaf = &self.schema.leaves()[*position];
                if self.selection.filled[*position] {
                    Ok(self.leaf_array(leaf))
                } else {
                    Ok(new_null_array(&leaf.data_type, self.alerts.len()))
                }
            }
            Node::Struct(children) => {
                let fields: Fields = children
                    .iter()
                    .map(|(name, child)| arrow_field(name, child, self.schema.leaves()))
                    .collect();
                let arrays: Vec<ArrayRef> = children
                    .iter()
                    .map(|(_, child)| self.node_array(child))
                    .collect::<Result<_, _>>()?;
                let array = StructArray::try_new(fields, arrays, None)
                    .map_err(|error| FilterError::Arrow(error.to_string()))?;
                Ok(Arc::new(array))
            }
        }
    }

    fn leaf_array(&self, leaf: &LeafColumn) -> ArrayRef {
        let n_alerts = self.alerts.len();
        match &leaf.source {
            ColumnSource::Core(field) => core_array(*field, self.alerts),
            ColumnSource::History(field) => match self.histories {
                Some(histories) => history_array(*field, self.alerts, histories),
                None => new_null_array(&leaf.data_type, n_alerts),
            },
            ColumnSource::Raw { path, surveys, .. } => {
                let value = |alert| raw_value(alert, path, surveys);
                match leaf.data_type {
                    DataType::Int64 => {
                        let mut builder = Int64Builder::with_capacity(n_alerts);
                        for alert in self.alerts {
                            builder.append_option(value(alert).and_then(|value| value.as_i64()));
                        }
                        Arc::new(builder.finish())
                    }
                    DataType::Float64 => {
                        let mut builder = Float64Builder::with_capacity(n_alerts);
                        for alert in self.alerts {
                            builder.append_option(value(alert).and_then(|value| value.as_f64()));
                        }
                        Arc::new(builder.finish())
                    }
                    DataType::Boolean => {
                        let mut builder = BooleanBuilder::with_capacity(n_alerts);
                        for alert in self.alerts {
                            builder.append_option(match value(alert) {
                                Some(FieldValue::Bool(value)) => Some(value),
                                _ => None,
                            });
                        }
                        Arc::new(builder.finish())
                    }
                    _ => {
                        let mut builder = StringBuilder::with_capacity(n_alerts, n_alerts * 8);
                        for alert in self.alerts {
                            match value(alert) {
                                Some(FieldValue::Str(text)) => builder.append_value(text),
                                Some(FieldValue::Int(number)) => builder.append_value(number.to_string()),
                                Some(FieldValue::Float(number)) => builder.append_value(number.to_string()),
                                Some(FieldValue::Bool(flag)) => builder.append_value(flag.to_string()),
                                _ => builder.append_null(),
                            }
                        }
                        Arc::new(builder.finish())
                    }
                }
            }
            ColumnSource::Module { name, .. } => {
                let values = self
                    .outputs
                    .column(name)
                    .filter(|column| column.values.len() == n_alerts)
                    .map(|column| column.values.as_slice());
                let Some(values) = values else {
                    return new_null_array(&leaf.data_type, n_alerts);
                };
                match leaf.data_type {
                    DataType::Boolean => {
                        let mut builder = BooleanBuilder::with_capacity(n_alerts);
                        for value in values {
                            builder.append_option(value.as_ref().and_then(Value::as_bool));
                        }
                        Arc::new(builder.finish())
                    }
                    DataType::Int64 => {
                        let mut builder = Int64Builder::with_capacity(n_alerts);
                        for value in values {
                            builder.append_option(value.as_ref().and_then(Value::as_i64));
                        }
                        Arc::new(builder.finish())
                    }
                    DataType::Float64 => {
                        let mut builder = Float64Builder::with_capacity(n_alerts);
                        for value in values {
                            builder.append_option(value.as_ref().and_then(Value::as_f64));
                        }
                        Arc::new(builder.finish())
                    }
                    _ => {
                        let mut builder = StringBuilder::with_capacity(n_alerts, n_alerts * 8);
                        for value in values {
                            builder.append_option(value.as_ref().and_then(Value::as_str));
                        }
                        Arc::new(builder.finish())
                    }
                }
            }
        }
    }
}

fn raw_value<'a>(alert: &'a Alert, path: &str, surveys: &[nightjar_core::Survey]) -> Option<FieldValue<'a>> {
    if surveys.contains(&alert.survey) {
        alert.raw.get(path)
    } else {
        None
    }
}

fn core_array(field: CoreField, alerts: &[Alert]) -> ArrayRef {
    let floats = |value: fn(&Alert) -> Option<f64>| -> ArrayRef {
        Arc::new(
            alerts
                .iter()
                .map(value)
                .collect::<datafusion::arrow::array::Float64Array>(),
        )
    };
    let texts = |value: fn(&Alert) -> Option<&str>| -> ArrayRef {
        Arc::new(
            alerts
                .iter()
                .map(value)
                .collect::<datafusion::arrow::array::StringArray>(),
        )
    };
    match field {
        CoreField::Survey => texts(|alert| Some(alert.survey.as_str())),
        CoreField::SchemaVersion => texts(|alert| Some(alert.schema_version.as_str())),
        CoreField::ObjectId => texts(|alert| Some(alert.object_id.as_str())),
        CoreField::SourceId => Arc::new(
            alerts
                .iter()
                .map(|alert| Some(alert.detection.source_id))
                .collect::<datafusion::arrow::array::Int64Array>(),
        ),
        CoreField::Mjd => floats(|alert| Some(alert.detection.mjd)),
        CoreField::Jd => floats(|alert| Some(alert.detection.mjd + 2_400_000.5)),
        CoreField::Ra => floats(|alert| Some(alert.detection.ra)),
        CoreField::Dec => floats(|alert| Some(alert.detection.dec)),
        CoreField::Band => texts(|alert| alert.detection.band.map(Band::as_str)),
        CoreField::Magnitude => floats(|alert| alert.detection.magnitude),
        CoreField::MagnitudeErr => floats(|alert| alert.detection.magnitude_err),
        CoreField::Flux => floats(|alert| alert.detection.flux),
        CoreField::FluxErr => floats(|alert| alert.detection.flux_err),
        CoreField::IsNegative => Arc::new(
            alerts
                .iter()
                .map(|alert| Some(alert.detection.is_negative))
                .collect::<datafusion::arrow::array::BooleanArray>(),
        ),
    }
}

/// Per-band summary of the detections an alert carries.
#[derive(Debug, Clone, Copy, Default)]
struct BandSummary {
    n_detections: i64,
    /// (mjd, magnitude) of the latest detection with a magnitude.
    last: Option<(f64, f64)>,
    /// (mjd, magnitude) of the one before it.
    before_last: Option<(f64, f64)>,
}

/// What the history columns of one alert hold.
#[derive(Debug, Clone)]
struct HistorySummary {
    n_detections: i64,
    n_upper_limits: i64,
    n_forced_photometry: i64,
    first_detection_mjd: f64,
    previous_detection_mjd: Option<f64>,
    bands: [BandSummary; 6],
}

impl HistorySummary {
    fn of(alert: &Alert) -> HistorySummary {
        let current = &alert.detection;
        let mut summary = HistorySummary {
            n_detections: 0,
            n_upper_limits: alert.upper_limits.len() as i64,
            n_forced_photometry: alert.forced_photometry.len() as i64,
            first_detection_mjd: current.mjd,
            previous_detection_mjd: None,
            bands: [BandSummary::default(); 6],
        };
        let detections = alert.history.iter().chain(std::iter::once(current));
        for detection in detections {
            summary.add(detection, current);
        }
        summary
    }

    fn add(&mut self, detection: &Detection, current: &Detection) {
        self.n_detections += 1;
        self.first_detection_mjd = self.first_detection_mjd.min(detection.mjd);
        let is_current = std::ptr::eq(detection, current);
        if !is_current && detection.mjd < current.mjd {
            self.previous_detection_mjd = Some(
                self.previous_detection_mjd
                    .map_or(detection.mjd, |mjd| mjd.max(detection.mjd)),
            );
        }
        let Some(band) = detection.band else {
            return;
        };
        let Some(position) = Band::ALL.iter().position(|candidate| *candidate == band) else {
            return;
        };
        let summary = &mut self.bands[position];
        summary.n_detections += 1;
        let Some(magnitude) = detection.magnitude else {
            return;
        };
        let point = (detection.mjd, magnitude);
        match summary.last {
            Some(last) if last.0 > point.0 => {
                if summary.before_last.is_none_or(|before| before.0 < point.0) {
                    summary.before_last = Some(point);
                }
            }
            _ => {
                summary.before_last = summary.last;
                summary.last = Some(point);
            }
        }
    }

    fn mag_rate(&self, position: usize) -> Option<f64> {
        let band = &self.bands[position];
        let (last, before) = (band.last?, band.before_last?);
        let days = last.0 - before.0;
        (days > 0.0).then(|| (last.1 - before.1) / days)
    }
}

fn history_array(field: HistoryField, alerts: &[Alert], histories: &[HistorySummary]) -> ArrayRef {
    let band_position = |band: Band| Band::ALL.iter().position(|candidate| *candidate == band).unwrap_or(0);
    let ints = |value: &dyn Fn(&HistorySummary) -> i64| -> ArrayRef {
        Arc::new(
            histories
                .iter()
                .map(|summary| Some(value(summary)))
                .collect::<datafusion::arrow::array::Int64Array>(),
        )
    };
    let floats = |value: &dyn Fn(usize, &HistorySummary) -> Option<f64>| -> ArrayRef {
        Arc::new(
            histories
                .iter()
                .enumerate()
                .map(|(alert_idx, summary)| value(alert_idx, summary))
                .collect::<datafusion::arrow::array::Float64Array>(),
        )
    };
    match field {
        HistoryField::NDetections => ints(&|summary| summary.n_detections),
        HistoryField::NUpperLimits => ints(&|summary| summary.n_upper_limits),
        HistoryField::NForcedPhotometry => ints(&|summary| summary.n_forced_photometry),
        HistoryField::FirstDetectionMjd => floats(&|_, summary| Some(summary.first_detection_mjd)),
        HistoryField::DaysSinceFirstDetection => {
            floats(&|alert_idx, summary| Some(alerts[alert_idx].detection.mjd - summary.first_detection_mjd))
        }
        HistoryField::PreviousDetectionMjd => floats(&|_, summary| summary.previous_detection_mjd),
        HistoryField::NDetectionsBand(band) => {
            let position = band_position(band);
            ints(&|summary| summary.bands[position].n_detections)
        }
        HistoryField::LastMagnitudeBand(band) => {
            let position = band_position(band);
            floats(&|_, summary| summary.bands[position].last.map(|last| last.1))
        }
        HistoryField::LastMjdBand(band) => {
            let position = band_position(band);
            floats(&|_, summary| summary.bands[position].last.map(|last| last.0))
        }
        HistoryField::MagRateBand(band) => {
            let position = band_position(band);
            floats(&|_, summary| summary.mag_rate(position))
        }
    }
}

impl ColumnSelection {
    /// Adds every column of `other`.
    pub fn union(&mut self, other: &ColumnSelection) {
        for (filled, other) in self.filled.iter_mut().zip(&other.filled) {
            *filled |= *other;
        }
    }
}
