//! [`Delivery`]: one filter's passing alerts from one micro-batch, and the checks that make its
//! names safe to use in file names.

use serde_json::Value;

use crate::error::SinkError;

// Together these keep every file name the sinks make (the longest is an outbox's
// `failed/{url hash}_{filter}_{survey}_{night}_{position}_{row_idx}.json`) under the usual 255-byte limit.
/// The longest filter name accepted.
pub const MAX_FILTER_LEN: usize = 48;
/// The longest survey name accepted.
pub const MAX_SURVEY_LEN: usize = 16;
/// The longest `position` accepted.
pub const MAX_POSITION_LEN: usize = 128;

/// One filter's passing alerts from one micro-batch, for one input range.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The filter's name: lowercase letters, digits and underscores.
    pub filter: &'a str,
    /// The survey of the alerts: `ztf` or `rubin` (lowercase letters, digits, underscores).
    pub survey: &'a str,
    /// The UTC night of the alerts, `YYYYMMDD`.
    pub night: &'a str,
    /// A replay-stable name of the input range, e.g. `ztf_2024_p3_o1200-1299` (topic,
    /// partition, offsets) or `files_b12`: letters, digits, `_`, `.` and `-`. A replay of the
    /// same range gives the same name, so its file or outbox entry is overwritten.
    pub position: &'a str,
    /// One JSON object per passing alert, already shaped by the filter's payload.
    pub rows: &'a [Value],
}

impl Delivery<'_> {
    /// Checks every name and that each row is a JSON object.
    pub fn validate(&self) -> Result<(), SinkError> {
        let is_name_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        check(
            "filter",
            self.filter,
            |s| !s.is_empty() && s.len() <= MAX_FILTER_LEN && s.chars().all(is_name_char),
            "expected 1 to 48 lowercase letters, digits or underscores",
        )?;
        check(
            "survey",
            self.survey,
            |s| !s.is_empty() && s.len() <= MAX_SURVEY_LEN && s.chars().all(is_name_char),
            "expected a survey name such as \"ztf\" or \"rubin\"",
        )?;
        check(
            "night",
            self.night,
            |s| s.len() == 8 && s.chars().all(|c| c.is_ascii_digit()),
            "expected the UTC night as YYYYMMDD",
        )?;
        check(
            "position",
            self.position,
            |s| {
                !s.is_empty()
                    && s.len() <= MAX_POSITION_LEN
                    && !s.starts_with('.')
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            },
            "expected 1 to 128 letters, digits, '_', '.' or '-', not starting with '.'",
        )?;
        for (row_idx, row) in self.rows.iter().enumerate() {
            if !row.is_object() {
                return Err(SinkError::RowNotAnObject {
                    filter: self.filter.to_string(),
                    row_idx,
                    found: json_kind(row),
                });
            }
        }
        Ok(())
    }
}

/// The `position` of a Kafka partition's offset range, `{topic}_p{partition}_o{first}-{last}`
/// (Kafka topic names only hold characters a position accepts). A topic too long to fit in
/// [`MAX_POSITION_LEN`] is cut and a hash of the whole name appended, so the name stays unique.
pub fn kafka_position(topic: &str, partition: i32, first_offset: i64, last_offset: i64) -> String {
    let suffix = format!("_p{partition}_o{first_offset}-{last_offset}");
    let safe_topic: String = topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe_topic = safe_topic.trim_start_matches('.');
    let position = format!("{safe_topic}{suffix}");
    if position.len() <= MAX_POSITION_LEN && !safe_topic.is_empty() && safe_topic == topic {
        return position;
    }
    // Cut, or changed to be safe: a hash of the real name keeps distinct topics apart.
    let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(topic.as_bytes()));
    let room = MAX_POSITION_LEN.saturating_sub(suffix.len() + hash.len() + 1);
    let kept: String = safe_topic.chars().take(room).collect();
    format!("{kept}_{hash}{suffix}")
}

fn check(field: &'static str, value: &str, ok: impl Fn(&str) -> bool, expected: &'static str) -> Result<(), SinkError> {
    if ok(value) {
        Ok(())
    } else {
        Err(SinkError::InvalidDelivery {
            field,
            value: value.chars().take(200).collect(),
            expected,
        })
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_position(topic: &str, expected: &str) {
        let position = kafka_position(topic, 3, 1200, 1299);
        assert_eq!(position, expected);
        let rows = [];
        let delivery = Delivery {
            filter: "f",
            survey: "ztf",
            night: "20240612",
            position: &position,
            rows: &rows,
        };
        delivery.validate().expect("a valid position");
    }

    #[test]
    fn kafka_positions() {
        check_position("ztf_20240612_programid1", "ztf_20240612_programid1_p3_o1200-1299");
        let long = "t".repeat(249);
        let position = kafka_position(&long, 3, 1200, 1299);
        assert_eq!(position.len(), MAX_POSITION_LEN);
        assert!(position.ends_with("_p3_o1200-1299"));
        assert_ne!(
            position,
            kafka_position(&"t".repeat(248), 3, 1200, 1299),
            "distinct topics stay apart"
        );
        check_position(&long, &position);
        let odd = kafka_position(".hidden/topic", 0, 0, 9);
        assert!(odd.starts_with("hidden_topic_"), "{odd}");
        check_position(".hidden/topic", &kafka_position(".hidden/topic", 3, 1200, 1299));
        check_position("", &kafka_position("", 3, 1200, 1299));
    }
}
