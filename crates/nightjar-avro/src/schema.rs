//! Writer schemas: parsed once, cached by their bytes, with the field names survey detection needs.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// A parsed writer schema and what nightjar needs to know about its shape.
#[derive(Debug)]
pub struct WriterSchema {
    /// The schema, ready for decoding.
    pub schema: serde_avro_fast::Schema,
    /// The schema's JSON text as the writer sent it.
    pub json: String,
    /// Full name of the top-level record (`ztf.alert`, `lsst.v9_0.alert`, `topLevelRecord`).
    pub name: String,
    /// Field names of the top-level record, in writer order.
    pub fields: Vec<String>,
    /// Field names of each record nested directly under a top-level field (through unions and
    /// arrays), keyed by the top-level field name: `candidate` -> [`jd`, `fid`, ...].
    pub nested_fields: HashMap<String, Vec<String>>,
}

impl WriterSchema {
    /// Parses a writer schema from its JSON text.
    pub fn parse(json: &str) -> Result<WriterSchema, String> {
        let schema: serde_avro_fast::Schema = json.parse().map_err(|error| format!("{error}"))?;
        let value: Value = serde_json::from_str(json).map_err(|error| format!("{error}"))?;
        let mut named = HashMap::new();
        collect_named_records(&value, None, &mut named);
        let (name, fields) = match &value {
            Value::Object(object) if object.get("type").and_then(Value::as_str) == Some("record") => {
                let namespace = object.get("namespace").and_then(Value::as_str);
                let name = full_name(object.get("name").and_then(Value::as_str).unwrap_or(""), namespace);
                (name, field_names(object))
            }
            _ => return Err("the top level of the schema is not a record".to_string()),
        };
        let mut nested_fields = HashMap::new();
        if let Some(Value::Array(top_fields)) = value.get("fields") {
            for field in top_fields {
                let (Some(field_name), Some(field_type)) =
                    (field.get("name").and_then(Value::as_str), field.get("type"))
                else {
                    continue;
                };
                if let Some(names) = record_fields_of(field_type, &named) {
                    nested_fields.insert(field_name.to_string(), names);
                }
            }
        }
        Ok(WriterSchema {
            schema,
            json: json.to_string(),
            name,
            fields,
            nested_fields,
        })
    }

    /// True when the top-level record has a field of this name.
    pub fn has_field(&self, name: &str) -> bool {
        self.fields.iter().any(|field| field == name)
    }

    /// Field names of the record under a top-level field, if it is a record.
    pub fn nested(&self, field: &str) -> &[String] {
        self.nested_fields.get(field).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) if !name.contains('.') && !namespace.is_empty() => format!("{namespace}.{name}"),
        _ => name.to_string(),
    }
}

fn field_names(record: &serde_json::Map<String, Value>) -> Vec<String> {
    match record.get("fields") {
        Some(Value::Array(fields)) => fields
            .iter()
            .filter_map(|field| field.get("name").and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Records every named record type by full name (and by short name, for references that omit
/// the namespace).
fn collect_named_records(value: &Value, namespace: Option<&str>, named: &mut HashMap<String, Vec<String>>) {
    match value {
        Value::Object(object) => {
            let own_namespace = object.get("namespace").and_then(Value::as_str).or(namespace);
            if object.get("type").and_then(Value::as_str) == Some("record")
                && let Some(name) = object.get("name").and_then(Value::as_str)
            {
                let fields = field_names(object);
                named.insert(full_name(name, own_namespace), fields.clone());
                let short = name.rsplit('.').next().unwrap_or(name);
                named.entry(short.to_string()).or_insert(fields);
            }
            for child in object.values() {
                collect_named_records(child, own_namespace, named);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_named_records(item, namespace, named);
            }
        }
        _ => {}
    }
}

fn record_fields_of(field_type: &Value, named: &HashMap<String, Vec<String>>) -> Option<Vec<String>> {
    match field_type {
        Value::String(name) => named.get(name.as_str()).cloned(),
        Value::Array(branches) => branches.iter().find_map(|branch| record_fields_of(branch, named)),
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("record") => Some(field_names(object)),
            Some("array") => object.get("items").and_then(|items| record_fields_of(items, named)),
            _ => object.get("type").and_then(|inner| record_fields_of(inner, named)),
        },
        _ => None,
    }
}

/// Writer schemas already parsed, keyed by a hash of their JSON text.
///
/// ZTF sends its ~30 KB writer schema with every message; parsing it costs more than decoding
/// the alert, so each distinct schema is parsed once.
#[derive(Debug, Default)]
pub struct SchemaCache {
    by_text: HashMap<u64, Arc<WriterSchema>>,
}

/// The most distinct writer schemas kept; a stream that keeps changing schemas is not cached
/// without bound.
const MAX_CACHED_SCHEMAS: usize = 256;

impl SchemaCache {
    pub fn new() -> SchemaCache {
        SchemaCache::default()
    }

    /// The parsed schema for this JSON text, parsing it on first sight.
    pub fn get_or_parse(&mut self, json: &[u8]) -> Result<Arc<WriterSchema>, String> {
        let key = xxhash_rust::xxh3::xxh3_64(json);
        if let Some(schema) = self.by_text.get(&key)
            && schema.json.as_bytes() == json
        {
            return Ok(schema.clone());
        }
        let text = std::str::from_utf8(json).map_err(|error| format!("schema is not UTF-8: {error}"))?;
        let schema = Arc::new(WriterSchema::parse(text)?);
        if self.by_text.len() >= MAX_CACHED_SCHEMAS {
            self.by_text.clear();
        }
        self.by_text.insert(key, schema.clone());
        Ok(schema)
    }

    /// Number of distinct schemas held.
    pub fn len(&self) -> usize {
        self.by_text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_text.is_empty()
    }
}
