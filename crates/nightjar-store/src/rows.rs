//! Row values every backend computes the same way before writing: object summaries (time
//! range, count, mean position), band keys, solar-system names and the raw detection record
//! as JSON. No database here: the backends bind these values to their own SQL.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nightjar_core::raw::{FieldValue, RawBytes};
use nightjar_core::{Alert, Band, Detection, Survey};

/// The survey of a stored survey name (`ztf`, `rubin`: [`Survey::as_str`]), `None` if unknown.
pub fn survey_from_name(name: &str) -> Option<Survey> {
    match name {
        "ztf" => Some(Survey::Ztf),
        "rubin" => Some(Survey::Rubin),
        _ => None,
    }
}

/// The band as stored in key columns: its letter, `''` when unknown.
pub fn band_key(band: Option<Band>) -> &'static str {
    band.map_or("", Band::as_str)
}

/// A detection to insert, borrowed from the batch.
#[derive(Debug, Clone, Copy)]
pub struct DetectionInsert<'a> {
    pub survey: Survey,
    pub object_id: &'a str,
    pub detection: &'a Detection,
    /// True for the alert's own detection, false for one from its history.
    pub is_alert: bool,
}

/// The detections of a batch: each alert's own, then its history, in batch order; neither
/// sorted nor deduplicated (the backends sort by their own key order).
pub fn batch_detections(alerts: &[Alert]) -> Vec<DetectionInsert<'_>> {
    let mut detections = Vec::new();
    for alert in alerts {
        let of = |detection, is_alert| DetectionInsert {
            survey: alert.survey,
            object_id: &alert.object_id,
            detection,
            is_alert,
        };
        detections.push(of(&alert.detection, true));
        detections.extend(alert.history.iter().map(|detection| of(detection, false)));
    }
    detections
}

/// The first, last time, count and mean position of an object's detections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryValues {
    pub first_mjd: f64,
    pub last_mjd: f64,
    pub n_detections: i64,
    pub ra: f64,
    pub dec: f64,
}

/// Time range, count and mean position of an object's detections. Feed the detections in
/// source-id order, so the floating-point sums do not depend on the order they arrived in.
#[derive(Debug, Default)]
pub struct SummaryAccumulator {
    first_mjd: f64,
    last_mjd: f64,
    n_detections: i64,
    /// Sum of the unit vectors of the valid positions.
    sum: [f64; 3],
    /// The first valid position, for a degenerate mean.
    first_position: Option<(f64, f64)>,
}

impl SummaryAccumulator {
    /// Adds one detection.
    pub fn add(&mut self, mjd: f64, ra: f64, dec: f64) {
        if self.n_detections == 0 {
            self.first_mjd = mjd;
            self.last_mjd = mjd;
        } else {
            self.first_mjd = self.first_mjd.min(mjd);
            self.last_mjd = self.last_mjd.max(mjd);
        }
        self.n_detections += 1;
        if ra.is_finite() && dec.is_finite() && (-90.0..=90.0).contains(&dec) {
            self.first_position.get_or_insert((ra, dec));
            let (ra, dec) = (ra.to_radians(), dec.to_radians());
            self.sum[0] += dec.cos() * ra.cos();
            self.sum[1] += dec.cos() * ra.sin();
            self.sum[2] += dec.sin();
        }
    }

    /// The summary, or `None` without detections. The mean position is the direction of the
    /// summed unit vectors, so it is right across ra = 0/360 and near the poles; without a valid
    /// position it is NaN.
    pub fn finish(self) -> Option<SummaryValues> {
        if self.n_detections == 0 {
            return None;
        }
        let [x, y, z] = self.sum;
        let (ra, dec) = match self.first_position {
            None => (f64::NAN, f64::NAN),
            Some(first) if x.hypot(y).hypot(z) < 1e-12 => first,
            // A single position is kept exactly as measured.
            Some(first) if self.n_detections == 1 => first,
            Some(_) => {
                let ra = y.atan2(x).to_degrees().rem_euclid(360.0);
                let dec = z.atan2(x.hypot(y)).to_degrees();
                // rem_euclid can round up to 360.0 itself.
                (if ra >= 360.0 { 0.0 } else { ra }, dec)
            }
        };
        Some(SummaryValues {
            first_mjd: self.first_mjd,
            last_mjd: self.last_mjd,
            n_detections: self.n_detections,
            ra,
            dec,
        })
    }
}

/// The science-module output whose value is the alert's class, stored in its own indexed
/// column for `latest_alerts` by class.
pub const CLASS_COLUMN: &str = "class";

/// The alert's class: its [`CLASS_COLUMN`] module output, when that is text.
pub fn alert_class(alert: &Alert) -> Option<&str> {
    alert
        .module_values
        .get(CLASS_COLUMN)
        .and_then(nightjar_core::Value::as_str)
}

/// The science-module output listing the alert's tags, comma-separated.
pub const TAGS_COLUMN: &str = "tags";

/// The alert's tags as stored for lookups: `,tag1,tag2,` (each tag between commas, so a tag is
/// found by searching for `,tag,`), or `None` without tags.
pub fn alert_tags_key(alert: &Alert) -> Option<String> {
    let tags = alert.module_values.get(TAGS_COLUMN)?.as_str()?;
    let tags: Vec<&str> = tags.split(',').map(str::trim).filter(|tag| !tag.is_empty()).collect();
    (!tags.is_empty()).then(|| format!(",{},", tags.join(",")))
}

/// The lookup key of one tag, as searched for in [`alert_tags_key`]'s text.
pub fn tag_key(tag: &str) -> String {
    format!(",{},", tag.trim())
}

/// The (class, tag key) a selection filters on; `None` for what it does not filter.
pub fn selection_filters(selection: &crate::AlertSelection) -> (Option<&str>, Option<String>) {
    match selection {
        crate::AlertSelection::All => (None, None),
        crate::AlertSelection::Class(class) => (Some(class), None),
        crate::AlertSelection::Tag(tag) => (None, Some(tag_key(tag))),
    }
}

/// The alert's science-module outputs as JSON object text (nulls absent), for the store.
pub fn module_values_json(alert: &Alert) -> String {
    serde_json::to_string(&alert.module_values).unwrap_or_else(|_| "{}".to_string())
}

/// Parses stored module outputs; text that is not a JSON object gives an error naming it.
pub fn parse_module_values(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
    if text.is_empty() {
        return Ok(serde_json::Map::new());
    }
    serde_json::from_str(text)
}

/// The solar-system object the survey associated with the alert: ZTF `candidate.ssnamenr`; Rubin
/// the designation from `ssSource`, `mpc_orbits` or `MPCORB`. Empty and `"null"` mean none.
pub fn solar_system_name(alert: &Alert) -> Option<String> {
    let paths: &[&str] = match alert.survey {
        Survey::Ztf => &["candidate.ssnamenr"],
        Survey::Rubin => &[
            "ssSource.designation",
            "mpc_orbits.designation",
            "MPCORB.mpcDesignation",
        ],
    };
    paths.iter().find_map(|path| match alert.raw.get(path) {
        Some(FieldValue::Str(name)) => {
            let name = name.trim();
            (!name.is_empty() && !name.eq_ignore_ascii_case("null")).then(|| name.to_string())
        }
        _ => None,
    })
}

/// Builds the triggering detection's raw record as JSON text, caching per raw record type the
/// field paths of that record.
#[derive(Debug, Default)]
pub struct RawPathCache {
    paths: Mutex<HashMap<TypeId, Arc<[String]>>>,
}

impl RawPathCache {
    /// The triggering detection's raw record as JSON text (ZTF `candidate`, Rubin `diaSource`),
    /// the same value as `alert.raw.to_json()[...]` without serialising the whole alert.
    pub fn raw_detection_json(&self, alert: &Alert) -> String {
        let prefix = match alert.survey {
            Survey::Ztf => "candidate.",
            Survey::Rubin => "diaSource.",
        };
        let raw = &alert.raw;
        let paths = {
            let mut cache = self.paths.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            Arc::clone(cache.entry(raw.as_any().type_id()).or_insert_with(|| {
                raw.field_paths()
                    .into_iter()
                    .filter(|field| field.starts_with(prefix))
                    .collect()
            }))
        };
        let mut record = serde_json::Map::with_capacity(paths.len());
        for field in paths.iter() {
            let Some(value) = raw.get(field) else { continue };
            let json = match value {
                FieldValue::Null => serde_json::Value::Null,
                FieldValue::Bool(value) => serde_json::Value::Bool(value),
                FieldValue::Int(value) => serde_json::Value::from(value),
                FieldValue::Float(value) if value.is_nan() => serde_json::Value::from("NaN"),
                FieldValue::Float(value) if value == f64::INFINITY => serde_json::Value::from("Infinity"),
                FieldValue::Float(value) if value == f64::NEG_INFINITY => serde_json::Value::from("-Infinity"),
                FieldValue::Float(value) => serde_json::Value::from(value),
                FieldValue::Str(value) => serde_json::Value::from(value),
                FieldValue::Bytes(bytes) => RawBytes(Arc::from(bytes)).summary_json(),
                FieldValue::Nested => continue,
            };
            insert_dotted(&mut record, &field[prefix.len()..], json);
        }
        serde_json::Value::Object(record).to_string()
    }
}

/// Inserts `value` at a dotted path (`a.b` makes `{"a": {"b": value}}`).
fn insert_dotted(record: &mut serde_json::Map<String, serde_json::Value>, path: &str, value: serde_json::Value) {
    match path.split_once('.') {
        None => {
            record.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = record
                .entry(head.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(nested) = entry {
                insert_dotted(nested, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_position_wraps_around_ra_zero() {
        let mut summary = SummaryAccumulator::default();
        summary.add(1.0, 359.9, 10.0);
        summary.add(2.0, 0.1, 10.0);
        let values = summary
            .finish()
            .unwrap_or_else(|| panic!("a summary of two detections"));
        assert_eq!((values.first_mjd, values.last_mjd, values.n_detections), (1.0, 2.0, 2));
        assert!(!(1e-9..=360.0 - 1e-9).contains(&values.ra), "ra {}", values.ra);
        assert!((values.dec - 10.0).abs() < 1e-3, "dec {}", values.dec);
    }

    #[test]
    fn dotted_paths_nest() {
        let mut record = serde_json::Map::new();
        insert_dotted(&mut record, "a", serde_json::json!(1));
        insert_dotted(&mut record, "b.c", serde_json::json!(2));
        assert_eq!(
            serde_json::Value::Object(record),
            serde_json::json!({"a": 1, "b": {"c": 2}})
        );
    }
}
