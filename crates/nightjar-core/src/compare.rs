//! Compares nightjar's JSON view of a raw record with another reader's (fastavro's fixtures),
//! value by value, so tests can show that nothing is lost or changed in decoding.

use serde_json::Value;

/// The outcome of comparing one record.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    /// Paths whose values differ, with both values.
    pub mismatches: Vec<String>,
    /// Top-level fields the other reader has and nightjar's survey model does not (columns a
    /// broker added to the survey's record, such as Fink's classifications).
    pub extra_top_level: Vec<String>,
    /// Number of leaf values compared and found equal.
    pub n_equal: usize,
}

/// Compares `ours` (a [`crate::RawRecord::to_json`] view) with `theirs`.
///
/// Every value in `theirs` must equal ours (numbers as f64, exactly); fields that only we have
/// must be null (the writer's schema lacked them).
pub fn compare_records(ours: &Value, theirs: &Value) -> Comparison {
    let mut comparison = Comparison::default();
    match (ours, theirs) {
        (Value::Object(ours), Value::Object(theirs)) => {
            for (key, their_value) in theirs {
                match ours.get(key) {
                    Some(our_value) => compare_values(key, our_value, their_value, &mut comparison),
                    None => comparison.extra_top_level.push(key.clone()),
                }
            }
            for (key, our_value) in ours {
                if !theirs.contains_key(key) && !our_value.is_null() {
                    comparison
                        .mismatches
                        .push(format!("{key}: ours {our_value}, absent in theirs"));
                }
            }
        }
        _ => compare_values("", ours, theirs, &mut comparison),
    }
    comparison
}

/// fastavro turns `timestamp-micros` longs into datetimes; the fixtures write them as
/// `{"$datetime": {"iso": ..., "epoch_us": N}}`, and nightjar keeps the long.
fn datetime_micros(value: &Value) -> Option<&Value> {
    value.get("$datetime")?.get("epoch_us")
}

fn compare_values(path: &str, ours: &Value, theirs: &Value, comparison: &mut Comparison) {
    if let Some(micros) = datetime_micros(theirs) {
        return compare_values(path, ours, micros, comparison);
    }
    match (ours, theirs) {
        (Value::Object(our_map), Value::Object(their_map)) => {
            for (key, their_value) in their_map {
                let child = format!("{path}.{key}");
                match our_map.get(key) {
                    Some(our_value) => compare_values(&child, our_value, their_value, comparison),
                    None => comparison
                        .mismatches
                        .push(format!("{child}: absent in ours, theirs {their_value}")),
                }
            }
            for (key, our_value) in our_map {
                if !their_map.contains_key(key) && !our_value.is_null() {
                    comparison
                        .mismatches
                        .push(format!("{path}.{key}: ours {our_value}, absent in theirs"));
                }
            }
        }
        (Value::Array(our_items), Value::Array(their_items)) => {
            if our_items.len() != their_items.len() {
                comparison.mismatches.push(format!(
                    "{path}: {} items in ours, {} in theirs",
                    our_items.len(),
                    their_items.len()
                ));
                return;
            }
            for (index, (our_item, their_item)) in our_items.iter().zip(their_items).enumerate() {
                compare_values(&format!("{path}[{index}]"), our_item, their_item, comparison);
            }
        }
        (Value::Number(our_number), Value::Number(their_number)) => {
            let equal = match (our_number.as_i64(), their_number.as_i64()) {
                (Some(a), Some(b)) => a == b,
                _ => our_number.as_f64() == their_number.as_f64(),
            };
            if equal {
                comparison.n_equal += 1;
            } else {
                comparison
                    .mismatches
                    .push(format!("{path}: ours {our_number}, theirs {their_number}"));
            }
        }
        _ if ours == theirs => comparison.n_equal += 1,
        _ => comparison
            .mismatches
            .push(format!("{path}: ours {ours}, theirs {theirs}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_records_have_no_mismatch() {
        let record = json!({"a": 1, "b": {"c": 2.5, "d": [1, 2]}, "e": null});
        let comparison = compare_records(&record, &record);
        assert!(comparison.mismatches.is_empty());
        assert_eq!(comparison.n_equal, 5);
    }

    #[test]
    fn differences_are_named_by_path() {
        let ours = json!({"a": 1, "b": {"c": 2.5, "x": null}, "only_ours": 3});
        let theirs = json!({"a": 1, "b": {"c": 2.25}, "fink": "SN"});
        let comparison = compare_records(&ours, &theirs);
        assert_eq!(comparison.extra_top_level, vec!["fink".to_string()]);
        assert_eq!(comparison.mismatches.len(), 2, "{:?}", comparison.mismatches);
        assert!(comparison.mismatches[0].starts_with(".b.c") || comparison.mismatches[0].starts_with("b.c"));
    }

    #[test]
    fn datetimes_compare_as_microseconds() {
        let theirs = json!({"t": {"$datetime": {"iso": "2025-01-01T00:00:00+00:00", "epoch_us": 1735689600000000i64}}});
        assert!(
            compare_records(&json!({"t": 1735689600000000i64}), &theirs)
                .mismatches
                .is_empty()
        );
        assert_eq!(compare_records(&json!({"t": 1}), &theirs).mismatches.len(), 1);
    }

    #[test]
    fn integers_and_floats_compare_by_value() {
        let comparison = compare_records(&json!({"x": 1.0}), &json!({"x": 1}));
        assert!(comparison.mismatches.is_empty());
    }
}
