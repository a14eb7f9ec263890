//! Enriched output records: the survey's alert schema with the science modules' outputs appended
//! as nullable fields, and each datum as the survey's own datum bytes followed by the encoded
//! outputs.
//!
//! Avro encodes a record as its fields one after the other, with nothing around them, so fields
//! appended at the end of the top-level record are encoded by appending their bytes: the
//! alert itself (cutouts and history included) is copied, never re-encoded. A dotted column name
//! (`lc_features_g.mean`) becomes a field of a nested record (`lc_features_g`), null as a whole
//! when every one of its fields is.

use nightjar_core::{ColumnType, ModuleValues, Value};
use serde_json::{Map, Value as Json, json};
use thiserror::Error;

/// Namespace of the records that group dotted module columns.
const MODULE_NAMESPACE: &str = "nightjar.modules";

/// One output column to append: its global name (dots nest), type and description.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputField {
    pub name: String,
    pub column_type: ColumnType,
    pub doc: String,
}

/// Why an alert schema cannot be extended.
#[derive(Debug, Error, PartialEq)]
pub enum EnrichError {
    #[error("the alert schema is not valid JSON: {0}")]
    SchemaJson(String),
    #[error("the alert schema's top level is not a record with fields")]
    NotARecord,
    #[error("module column {column:?} has the same name as a field of the alert schema")]
    NameClash { column: String },
    #[error("module column {column:?} is both a value and a record of other columns")]
    NestingClash { column: String },
}

/// One appended top-level field: a column, or a record of columns sharing a prefix.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Column {
        /// The full dotted name, looked up in the alert's outputs.
        name: String,
        column_type: ColumnType,
    },
    Record {
        name: String,
        children: Vec<Slot>,
    },
}

impl Slot {
    fn name(&self) -> &str {
        match self {
            Slot::Column { name, .. } => name.rsplit('.').next().unwrap_or(name),
            Slot::Record { name, .. } => name,
        }
    }
}

/// An alert schema extended with module output columns, and the encoder of its datums.
#[derive(Debug, Clone)]
pub struct EnrichedSchema {
    json: String,
    slots: Vec<Slot>,
}

impl EnrichedSchema {
    /// Extends `alert_schema` (the writer schema's JSON text) with `columns`, in their order.
    /// `modules` (name, version) are recorded in the schema as `nightjar.modules`, so a consumer
    /// can tell which code computed the outputs.
    pub fn new(
        alert_schema: &str,
        columns: &[OutputField],
        modules: &[(String, String)],
    ) -> Result<EnrichedSchema, EnrichError> {
        let mut schema: Json =
            serde_json::from_str(alert_schema).map_err(|error| EnrichError::SchemaJson(error.to_string()))?;
        let slots = layout(columns)?;
        let record = schema.as_object_mut().ok_or(EnrichError::NotARecord)?;
        if record.get("type").and_then(Json::as_str) != Some("record") {
            return Err(EnrichError::NotARecord);
        }
        let fields = record
            .get_mut("fields")
            .and_then(Json::as_array_mut)
            .ok_or(EnrichError::NotARecord)?;
        for slot in &slots {
            if fields
                .iter()
                .any(|field| field.get("name").and_then(Json::as_str) == Some(slot.name()))
            {
                return Err(EnrichError::NameClash {
                    column: slot.name().to_string(),
                });
            }
        }
        let docs: std::collections::HashMap<&str, &str> = columns
            .iter()
            .map(|column| (column.name.as_str(), column.doc.as_str()))
            .collect();
        fields.extend(slots.iter().map(|slot| field_json(slot, &docs)));
        let versions: Map<String, Json> = modules
            .iter()
            .map(|(name, version)| (name.clone(), Json::from(version.as_str())))
            .collect();
        record.insert("nightjar.modules".to_string(), Json::Object(versions));
        let json = serde_json::to_string(&schema).map_err(|error| EnrichError::SchemaJson(error.to_string()))?;
        Ok(EnrichedSchema { json, slots })
    }

    /// The extended schema's JSON text (what fink-client reads from the message key).
    pub fn schema_json(&self) -> &str {
        &self.json
    }

    /// Appends to `out` the alert's datum followed by its module outputs. `datum` must be a
    /// datum of the alert schema this was built from.
    pub fn encode(&self, datum: &[u8], values: &ModuleValues, out: &mut Vec<u8>) {
        out.reserve(datum.len() + 16 * self.slots.len());
        out.extend_from_slice(datum);
        let mut cursor = Cursor { values, next: 0 };
        for slot in &self.slots {
            encode_slot(slot, &mut cursor, out);
        }
    }
}

/// Groups columns by their dotted prefixes, keeping first-appearance order.
fn layout(columns: &[OutputField]) -> Result<Vec<Slot>, EnrichError> {
    let mut slots: Vec<Slot> = Vec::new();
    for column in columns {
        let segments: Vec<&str> = column.name.split('.').collect();
        insert(&mut slots, &segments, column, 0)?;
    }
    Ok(slots)
}

fn insert(slots: &mut Vec<Slot>, segments: &[&str], column: &OutputField, depth: usize) -> Result<(), EnrichError> {
    let clash = || EnrichError::NestingClash {
        column: column.name.clone(),
    };
    let name = segments[depth];
    let is_leaf = depth + 1 == segments.len();
    let existing = slots.iter_mut().find(|slot| slot.name() == name);
    match (existing, is_leaf) {
        (None, true) => slots.push(Slot::Column {
            name: column.name.clone(),
            column_type: column.column_type,
        }),
        (None, false) => {
            let mut children = Vec::new();
            insert(&mut children, segments, column, depth + 1)?;
            slots.push(Slot::Record {
                name: name.to_string(),
                children,
            });
        }
        (Some(Slot::Record { children, .. }), false) => insert(children, segments, column, depth + 1)?,
        (Some(_), _) => return Err(clash()),
    }
    Ok(())
}

fn avro_type(column_type: ColumnType) -> &'static str {
    match column_type {
        ColumnType::Bool => "boolean",
        ColumnType::Int => "long",
        ColumnType::Float => "double",
        ColumnType::Text => "string",
    }
}

fn field_json(slot: &Slot, docs: &std::collections::HashMap<&str, &str>) -> Json {
    match slot {
        Slot::Column { name, column_type } => json!({
            "name": slot.name(),
            "type": ["null", avro_type(*column_type)],
            "default": null,
            "doc": docs.get(name.as_str()).copied().unwrap_or(""),
        }),
        Slot::Record { name, children } => json!({
            "name": name,
            "type": ["null", {
                "type": "record",
                "name": name,
                "namespace": MODULE_NAMESPACE,
                "fields": children.iter().map(|child| field_json(child, docs)).collect::<Vec<_>>(),
            }],
            "default": null,
        }),
    }
}

/// Walks an alert's outputs in column order: the runner attaches them in that order, so the
/// next value is nearly always the one wanted; otherwise it is searched for.
struct Cursor<'a> {
    values: &'a ModuleValues,
    next: usize,
}

impl<'a> Cursor<'a> {
    fn get(&mut self, name: &str) -> Option<&'a Value> {
        if let Some((found, value)) = self.values.at(self.next)
            && found == name
        {
            self.next += 1;
            return Some(value);
        }
        self.values.get(name)
    }
}

fn encode_slot(slot: &Slot, cursor: &mut Cursor<'_>, out: &mut Vec<u8>) {
    match slot {
        Slot::Column { name, column_type } => match cursor.get(name).and_then(|value| encoded(value, *column_type)) {
            Some(bytes) => {
                out.push(2); // union branch 1, zigzag-encoded
                out.extend_from_slice(&bytes);
            }
            None => out.push(0),
        },
        Slot::Record { children, .. } => {
            let mut body = Vec::new();
            let mut any = false;
            for child in children {
                let start = body.len();
                encode_slot(child, cursor, &mut body);
                any |= body.len() != start + 1 || body[start] != 0;
            }
            if any {
                out.push(2);
                out.extend_from_slice(&body);
            } else {
                out.push(0);
            }
        }
    }
}

/// A value's Avro encoding as `column_type`; `None` (written as null) if the value does not
/// fit the declared type.
fn encoded(value: &Value, column_type: ColumnType) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    match (column_type, value) {
        (ColumnType::Bool, Value::Bool(flag)) => bytes.push(u8::from(*flag)),
        (ColumnType::Int, Value::Int(number)) => write_long(*number, &mut bytes),
        (ColumnType::Float, value) => bytes.extend_from_slice(&value.as_f64()?.to_le_bytes()),
        (ColumnType::Text, Value::Text(text)) => {
            write_long(i64::try_from(text.len()).ok()?, &mut bytes);
            bytes.extend_from_slice(text.as_bytes());
        }
        _ => return None,
    }
    Some(bytes)
}

/// Avro's long: zigzag, then little-endian base-128 varint.
fn write_long(value: i64, out: &mut Vec<u8>) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        out.push((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    out.push(zigzag as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str, column_type: ColumnType) -> OutputField {
        OutputField {
            name: name.to_string(),
            column_type,
            doc: format!("doc of {name}"),
        }
    }

    const ALERT: &str = r#"{"type":"record","name":"alert","fields":[{"name":"objectId","type":"string"}]}"#;

    #[test]
    fn long_encoding_is_avros_zigzag_varint() {
        let cases: &[(i64, &[u8])] = &[(0, &[0]), (-1, &[1]), (1, &[2]), (-64, &[0x7f]), (64, &[0x80, 1])];
        for (value, expected) in cases {
            let mut out = Vec::new();
            write_long(*value, &mut out);
            assert_eq!(&out, expected, "{value}");
        }
    }

    #[test]
    fn clashing_names_are_refused() {
        let error = EnrichedSchema::new(ALERT, &[field("objectId", ColumnType::Text)], &[]).expect_err("clash");
        assert_eq!(
            error,
            EnrichError::NameClash {
                column: "objectId".into()
            }
        );
        let error = EnrichedSchema::new(
            ALERT,
            &[field("a", ColumnType::Int), field("a.b", ColumnType::Int)],
            &[],
        )
        .expect_err("nesting clash");
        assert_eq!(error, EnrichError::NestingClash { column: "a.b".into() });
        assert!(matches!(
            EnrichedSchema::new("[]", &[], &[]),
            Err(EnrichError::NotARecord)
        ));
        assert!(matches!(
            EnrichedSchema::new("{", &[], &[]),
            Err(EnrichError::SchemaJson(_))
        ));
    }
}
