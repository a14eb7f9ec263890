//! Recognising a Rubin writer schema and its version from its fields, never from its name
//! (Fink and ALeRCE rewrite alerts with Spark under the name `topLevelRecord`).
//!
//! Wire messages know their version from the schema id; containers written by brokers must be
//! recognised from the field names, which is what [`detect_version`] does.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use nightjar_avro::WriterSchema;
use serde_json::Value;

use crate::schemas::{BUNDLED, parsed_bundled};

/// Fields of the `diaSource` record that every Rubin version has and no other survey's record does.
const RUBIN_DIA_SOURCE_FIELDS: [&str; 4] = ["diaSourceId", "midpointMjdTai", "ra", "dec"];

/// True when the writer schema is a Rubin alert: its top-level record has a `diaSource` record
/// with `diaSourceId`, `midpointMjdTai`, `ra` and `dec`. The schema's name plays no part.
pub fn is_rubin(schema: &WriterSchema) -> bool {
    let dia_source = schema.nested("diaSource");
    RUBIN_DIA_SOURCE_FIELDS
        .iter()
        .all(|wanted| dia_source.iter().any(|field| field == wanted))
}

/// Which bundled versions have each field, as a bit set (bit `i` = `BUNDLED[i]`).
#[derive(Debug)]
struct Signatures {
    /// Top-level field name -> versions.
    top: HashMap<String, u16>,
    /// Top-level field name -> nested record field name -> versions.
    nested: HashMap<String, HashMap<String, u16>>,
    /// Number of field paths (top-level plus nested) of each version.
    n_paths: Vec<usize>,
    /// Per version: (top-level field, nested field or "") -> nullable, for breaking ties.
    nullable: Vec<HashMap<(String, String), bool>>,
}

static SIGNATURES: LazyLock<Signatures> = LazyLock::new(|| {
    let mut signatures = Signatures {
        top: HashMap::new(),
        nested: HashMap::new(),
        n_paths: Vec::new(),
        nullable: Vec::new(),
    };
    for (index, bundled) in BUNDLED.iter().enumerate() {
        let bit = 1u16 << index;
        let Some(schema) = parsed_bundled(bundled.id) else {
            // Cannot happen for the bundled files (a test parses each); count it as empty.
            signatures.n_paths.push(0);
            signatures.nullable.push(HashMap::new());
            continue;
        };
        let mut n_paths = 0;
        for field in &schema.fields {
            *signatures.top.entry(field.clone()).or_default() |= bit;
            n_paths += 1;
            let nested = signatures.nested.entry(field.clone()).or_default();
            for name in schema.nested(field) {
                *nested.entry(name.clone()).or_default() |= bit;
                n_paths += 1;
            }
        }
        signatures.n_paths.push(n_paths);
        signatures.nullable.push(nullability(&schema.json));
    }
    signatures
});

/// The bundled version whose field names are closest to the writer schema's: `"7.4"`, `"9.0"`.
///
/// The distance to a version counts the field paths (top-level fields, and the fields of the
/// records directly under them: `diaSource.band`, `prvDiaForcedSources.psfFlux`, ...) that one
/// has and the other lacks. Fields no bundled version has (a broker's own columns such as
/// Fink's `brokerIngestMjd`) are the same distance from every version and are ignored.
///
/// Ties: 10.0 and 11.0 have the same field names; 11.0 only made some `*Ndata` and `bboxSize`
/// fields non-nullable. A tie is broken by comparing which fields may be null; a writer
/// schema where every field is nullable (as Spark writes them) therefore reads as 10.0. A tie
/// that remains goes to the oldest version.
///
/// Call [`is_rubin`] first: a schema that is not Rubin at all still gets the closest version.
pub fn detect_version(schema: &WriterSchema) -> String {
    BUNDLED[detect_index(schema)].version.to_string()
}

fn detect_index(schema: &WriterSchema) -> usize {
    let signatures = &*SIGNATURES;
    let n_versions = signatures.n_paths.len();
    let mut matched = vec![0usize; n_versions];
    let mut n_known = 0usize;
    let mut add = |mask: u16, matched: &mut [usize]| {
        n_known += 1;
        for (index, count) in matched.iter_mut().enumerate() {
            if mask & (1 << index) != 0 {
                *count += 1;
            }
        }
    };
    for field in &schema.fields {
        if let Some(&mask) = signatures.top.get(field.as_str()) {
            add(mask, &mut matched);
        }
        if let Some(nested) = signatures.nested.get(field.as_str()) {
            for name in schema.nested(field) {
                if let Some(&mask) = nested.get(name.as_str()) {
                    add(mask, &mut matched);
                }
            }
        }
    }
    let distance = |index: usize| (signatures.n_paths[index] - matched[index]) + (n_known - matched[index]);
    let best = (0..n_versions).map(distance).min().unwrap_or(0);
    let tied: Vec<usize> = (0..n_versions).filter(|&index| distance(index) == best).collect();
    if tied.len() == 1 {
        return tied[0];
    }
    let writer = nullability(&schema.json);
    let agreement = |index: usize| {
        writer
            .iter()
            .filter(|(path, nullable)| signatures.nullable[index].get(*path) == Some(*nullable))
            .count()
    };
    // `max_by_key` keeps the last of equal maxima: iterate newest first so the oldest wins.
    tied.iter()
        .rev()
        .copied()
        .max_by_key(|&index| agreement(index))
        .unwrap_or(0)
}

/// The bundled version of a writer schema, detected once per schema allocation.
///
/// Brokers send the same writer schema with every container; [`nightjar_avro::SchemaCache`]
/// hands back the same `Arc` for it, so the detection is remembered by pointer. The cache
/// holds a [`Weak`], which keeps the allocation (and so the address) from being reused while
/// the entry exists.
pub(crate) fn cached_version(schema: &Arc<WriterSchema>) -> &'static str {
    const MAX_ENTRIES: usize = 64;
    static CACHE: Mutex<Vec<(Weak<WriterSchema>, &'static str)>> = Mutex::new(Vec::new());
    let pointer = Arc::as_ptr(schema);
    {
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, version)) = cache.iter().find(|(weak, _)| weak.as_ptr() == pointer) {
            return version;
        }
    }
    let version = BUNDLED[detect_index(schema)].version;
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= MAX_ENTRIES {
        cache.retain(|(weak, _)| weak.strong_count() > 0);
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
    }
    cache.push((Arc::downgrade(schema), version));
    version
}

/// Whether each top-level field and each field of the records directly under them may be null,
/// keyed by (top-level field, nested field or "").
fn nullability(json: &str) -> HashMap<(String, String), bool> {
    let mut out = HashMap::new();
    let Ok(value) = serde_json::from_str::<Value>(json) else {
        return out;
    };
    let mut named = HashMap::new();
    collect_records(&value, &mut named);
    let Some(Value::Array(fields)) = value.get("fields") else {
        return out;
    };
    for field in fields {
        let (Some(name), Some(field_type)) = (field.get("name").and_then(Value::as_str), field.get("type")) else {
            continue;
        };
        out.insert((name.to_string(), String::new()), is_nullable(field_type));
        if let Some(Value::Array(nested)) = record_of(field_type, &named).and_then(|record| record.get("fields")) {
            for nested_field in nested {
                if let (Some(nested_name), Some(nested_type)) = (
                    nested_field.get("name").and_then(Value::as_str),
                    nested_field.get("type"),
                ) {
                    out.insert((name.to_string(), nested_name.to_string()), is_nullable(nested_type));
                }
            }
        }
    }
    out
}

fn is_nullable(field_type: &Value) -> bool {
    match field_type {
        Value::String(name) => name == "null",
        Value::Array(branches) => branches.iter().any(is_nullable),
        _ => false,
    }
}

/// Named records by full and by short name.
fn collect_records<'a>(value: &'a Value, named: &mut HashMap<String, &'a Value>) {
    match value {
        Value::Object(object) => {
            if object.get("type").and_then(Value::as_str) == Some("record")
                && let Some(name) = object.get("name").and_then(Value::as_str)
            {
                if let Some(namespace) = object.get("namespace").and_then(Value::as_str) {
                    named.insert(format!("{namespace}.{name}"), value);
                }
                named.insert(name.rsplit('.').next().unwrap_or(name).to_string(), value);
                named.insert(name.to_string(), value);
            }
            for child in object.values() {
                collect_records(child, named);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_records(item, named);
            }
        }
        _ => {}
    }
}

fn record_of<'a>(field_type: &'a Value, named: &HashMap<String, &'a Value>) -> Option<&'a Value> {
    match field_type {
        Value::String(name) => named.get(name.as_str()).copied(),
        Value::Array(branches) => branches.iter().find_map(|branch| record_of(branch, named)),
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("record") => Some(field_type),
            Some("array") => object.get("items").and_then(|items| record_of(items, named)),
            _ => object.get("type").and_then(|inner| record_of(inner, named)),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::bundled_schema_json;

    #[test]
    fn each_bundled_schema_detects_as_itself() {
        for bundled in &BUNDLED {
            let json = bundled_schema_json(bundled.id).expect("bundled");
            let schema = WriterSchema::parse(&json).expect("parses");
            assert!(is_rubin(&schema), "{}", bundled.version);
            assert_eq!(detect_version(&schema), bundled.version);
        }
    }

    #[test]
    fn a_spark_rewrite_of_11_0_reads_as_10_0() {
        // Every field made nullable, as Spark does: 10.0 and 11.0 tie on names and nullability
        // favours 10.0.
        let json = bundled_schema_json(1100).expect("bundled");
        let mut value: Value = serde_json::from_str(&json).expect("json");
        make_nullable(&mut value);
        let schema = WriterSchema::parse(&value.to_string()).expect("parses");
        assert_eq!(detect_version(&schema), "10.0");
    }

    fn make_nullable(value: &mut Value) {
        if let Value::Object(object) = value {
            if let Some(Value::Array(fields)) = object.get_mut("fields") {
                for field in fields {
                    if let Some(field_type) = field.get_mut("type") {
                        make_nullable(field_type);
                        if !is_nullable(field_type) {
                            let inner = field_type.take();
                            *field_type = Value::Array(vec![inner, Value::from("null")]);
                        }
                    }
                }
            }
            for key in ["items", "type"] {
                if let Some(inner) = object.get_mut(key) {
                    make_nullable(inner);
                }
            }
        } else if let Value::Array(branches) = value {
            for branch in branches {
                make_nullable(branch);
            }
        }
    }
}
