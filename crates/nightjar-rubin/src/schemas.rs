//! The Rubin alert schemas compiled into the crate, and [`RubinSchemas`], the writer schemas a
//! decoder knows by Confluent schema id.
//!
//! Each version's top-level `lsst.vM_m.alert.avsc` refers to named sub-schemas
//! (`lsst.v9_0.diaSource`, ...) kept in sibling files. [`bundled_schema_json`] inlines each named
//! sub-schema where it is first used, so the result is one self-contained schema text that any
//! Avro library (serde_avro_fast included) can parse on its own.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, OnceLock};

use nightjar_avro::WriterSchema;
use nightjar_core::DecodeErrorKind;
use serde_json::Value;

use crate::version::is_rubin;

/// One bundled schema version: the top-level schema and every named sub-schema of its folder.
pub(crate) struct BundledSchema {
    /// Confluent schema id, `MAJOR * 100 + MINOR`.
    pub(crate) id: u32,
    /// `"7.4"`, `"10.0"`.
    pub(crate) version: &'static str,
    alert: &'static str,
    named: &'static [&'static str],
}

macro_rules! bundled_schema {
    ($id:literal, $version:literal, $prefix:literal, [$($name:literal),* $(,)?]) => {
        BundledSchema {
            id: $id,
            version: $version,
            alert: include_str!(concat!("../schemas/", $version, "/", $prefix, ".alert.avsc")),
            named: &[$(include_str!(concat!("../schemas/", $version, "/", $prefix, ".", $name, ".avsc"))),*],
        }
    };
}

/// Every bundled version, oldest first. `schemas/README.md` says where the files come from.
pub(crate) static BUNDLED: [BundledSchema; 9] = [
    bundled_schema!(
        700,
        "7.0",
        "lsst.v7_0",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "diaNondetectionLimit",
            "ssObject"
        ]
    ),
    bundled_schema!(
        701,
        "7.1",
        "lsst.v7_1",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "diaNondetectionLimit",
            "ssObject"
        ]
    ),
    bundled_schema!(
        702,
        "7.2",
        "lsst.v7_2",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "diaNondetectionLimit",
            "ssObject"
        ]
    ),
    bundled_schema!(
        703,
        "7.3",
        "lsst.v7_3",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "diaNondetectionLimit",
            "ssObject"
        ]
    ),
    bundled_schema!(
        704,
        "7.4",
        "lsst.v7_4",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "diaNondetectionLimit",
            "ssObject"
        ]
    ),
    bundled_schema!(
        800,
        "8.0",
        "lsst.v8_0",
        ["diaSource", "diaObject", "diaForcedSource", "ssSource", "MPCORB"]
    ),
    bundled_schema!(
        900,
        "9.0",
        "lsst.v9_0",
        ["diaSource", "diaObject", "diaForcedSource", "ssSource", "MPCORB"]
    ),
    // 10.0 and 11.0 ship an `ssObject` file that their alert schema does not use.
    bundled_schema!(
        1000,
        "10.0",
        "lsst.v10_0",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "ssSource",
            "ssObject",
            "mpc_orbits"
        ]
    ),
    bundled_schema!(
        1100,
        "11.0",
        "lsst.v11_0",
        [
            "diaSource",
            "diaObject",
            "diaForcedSource",
            "ssSource",
            "ssObject",
            "mpc_orbits"
        ]
    ),
];

const BUNDLED_IDS: [u32; 9] = [700, 701, 702, 703, 704, 800, 900, 1000, 1100];

/// Confluent schema ids of the bundled Rubin schemas (`MAJOR * 100 + MINOR`), oldest first.
pub fn bundled_schema_ids() -> &'static [u32] {
    &BUNDLED_IDS
}

/// The schema version of a Confluent schema id: `704` -> `"7.4"`, `1000` -> `"10.0"`.
pub fn schema_version_of_id(id: u32) -> String {
    format!("{}.{}", id / 100, id % 100)
}

pub(crate) fn bundled(id: u32) -> Option<&'static BundledSchema> {
    BUNDLED.iter().find(|schema| schema.id == id)
}

/// The alert schema of a bundled version as one self-contained JSON text (named sub-schemas
/// inlined at their first use, referred to by name after that); `None` for an id not bundled.
pub fn bundled_schema_json(id: u32) -> Option<String> {
    let bundled = bundled(id)?;
    let mut alert: Value = serde_json::from_str(bundled.alert).ok()?;
    let mut named = BTreeMap::new();
    for text in bundled.named {
        let schema: Value = serde_json::from_str(text).ok()?;
        let name = schema.get("name").and_then(Value::as_str)?;
        let namespace = schema.get("namespace").and_then(Value::as_str);
        named.insert(full_name(name, namespace), schema);
    }
    let mut defined = HashSet::new();
    inline_named(&mut alert, None, &named, &mut defined);
    serde_json::to_string(&alert).ok()
}

fn full_name(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) if !name.contains('.') && !namespace.is_empty() => format!("{namespace}.{name}"),
        _ => name.to_string(),
    }
}

/// Replaces the first reference to each named sub-schema in a type position by its definition.
fn inline_named(
    schema: &mut Value,
    namespace: Option<&str>,
    named: &BTreeMap<String, Value>,
    defined: &mut HashSet<String>,
) {
    match schema {
        Value::String(reference) => {
            let name = full_name(reference, namespace);
            if defined.contains(&name) {
                return;
            }
            if let Some(definition) = named.get(&name) {
                *schema = definition.clone();
                inline_named(schema, namespace, named, defined);
            }
        }
        Value::Array(branches) => {
            for branch in branches {
                inline_named(branch, namespace, named, defined);
            }
        }
        Value::Object(object) => {
            let own_namespace = object.get("namespace").and_then(Value::as_str).map(str::to_string);
            let namespace = own_namespace.as_deref().or(namespace);
            let kind = object.get("type").and_then(Value::as_str).map(str::to_string);
            match kind.as_deref() {
                Some("record" | "enum" | "fixed") => {
                    if let Some(name) = object.get("name").and_then(Value::as_str) {
                        defined.insert(full_name(name, namespace));
                    }
                    if let Some(Value::Array(fields)) = object.get_mut("fields") {
                        for field in fields {
                            if let Some(field_type) = field.get_mut("type") {
                                inline_named(field_type, namespace, named, defined);
                            }
                        }
                    }
                }
                Some("array") => {
                    if let Some(items) = object.get_mut("items") {
                        inline_named(items, namespace, named, defined);
                    }
                }
                Some("map") => {
                    if let Some(values) = object.get_mut("values") {
                        inline_named(values, namespace, named, defined);
                    }
                }
                _ => {
                    if let Some(inner) = object.get_mut("type") {
                        inline_named(inner, namespace, named, defined);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The bundled schemas, parsed on first use and shared by every [`RubinSchemas`] and by version
/// detection.
pub(crate) fn parsed_bundled(id: u32) -> Option<Arc<WriterSchema>> {
    static PARSED: [OnceLock<Option<Arc<WriterSchema>>>; 9] = [const { OnceLock::new() }; 9];
    let index = BUNDLED.iter().position(|schema| schema.id == id)?;
    PARSED[index]
        .get_or_init(|| {
            let json = bundled_schema_json(id)?;
            WriterSchema::parse(&json).ok().map(Arc::new)
        })
        .clone()
}

#[derive(Debug)]
enum Slot {
    /// A bundled schema, parsed on first use.
    Bundled,
    /// A schema handed in with [`RubinSchemas::insert`], already parsed.
    Inserted(Arc<WriterSchema>),
}

/// The Rubin writer schemas a decoder knows, by Confluent schema id.
///
/// Sans-I/O: it holds schemas, it does not fetch them. [`RubinSchemas::bundled`] knows the
/// bundled versions (parsed on first use); a schema-registry client adds newer ones with
/// [`RubinSchemas::insert`].
///
/// ```
/// let schemas = nightjar_rubin::RubinSchemas::bundled();
/// assert!(schemas.get(704).is_some());
/// assert!(schemas.get(1101).is_none());
/// ```
#[derive(Debug, Default)]
pub struct RubinSchemas {
    slots: BTreeMap<u32, Slot>,
}

impl RubinSchemas {
    /// The bundled schemas 7.0 to 11.0 (ids 700 to 1100).
    pub fn bundled() -> RubinSchemas {
        RubinSchemas {
            slots: BUNDLED_IDS.iter().map(|&id| (id, Slot::Bundled)).collect(),
        }
    }

    /// No schema at all (for a decoder that takes every schema from a registry).
    pub fn empty() -> RubinSchemas {
        RubinSchemas::default()
    }

    /// The writer schema of a schema id, if known.
    pub fn get(&self, id: u32) -> Option<Arc<WriterSchema>> {
        match self.slots.get(&id)? {
            Slot::Bundled => parsed_bundled(id),
            Slot::Inserted(schema) => Some(schema.clone()),
        }
    }

    /// Adds (or replaces) the schema of an id, from its JSON text as a schema registry serves it
    /// (self-contained). Fails when the text is not a valid Avro schema or not a Rubin alert.
    pub fn insert(&mut self, id: u32, json: &str) -> Result<(), String> {
        let schema = WriterSchema::parse(json).map_err(|error| format!("schema id {id}: {error}"))?;
        if !is_rubin(&schema) {
            return Err(format!(
                "schema id {id}: not a Rubin alert schema (no `diaSource` record with `diaSourceId` and `midpointMjdTai`); top-level fields: {}",
                schema.fields.join(", ")
            ));
        }
        self.slots.insert(id, Slot::Inserted(Arc::new(schema)));
        Ok(())
    }

    /// The ids known, ascending.
    pub fn ids(&self) -> Vec<u32> {
        self.slots.keys().copied().collect()
    }

    /// Decodes one Confluent wire-format message (`0x00`, schema id, datum).
    ///
    /// An id this set lacks gives [`DecodeErrorKind::UnknownSchemaId`] naming the known ids.
    pub fn decode_wire(&self, bytes: &[u8]) -> Result<nightjar_core::Alert, DecodeErrorKind> {
        let (id, datum) = nightjar_avro::split_wire(bytes)?;
        let schema = self.get(id).ok_or_else(|| DecodeErrorKind::UnknownSchemaId {
            id,
            known: self.ids().iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
        })?;
        crate::decode::decode_wire_datum(datum, &schema, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_the_table() {
        let table: Vec<u32> = BUNDLED.iter().map(|schema| schema.id).collect();
        assert_eq!(table, bundled_schema_ids());
        for schema in &BUNDLED {
            assert_eq!(schema_version_of_id(schema.id), schema.version);
        }
    }

    #[test]
    fn inlines_each_named_schema_once() {
        let json = bundled_schema_json(900).expect("9.0 is bundled");
        let value: Value = serde_json::from_str(&json).expect("JSON");
        // diaSource is defined once (for `diaSource`) and referred to by name in `prvDiaSources`.
        assert_eq!(count_definitions(&value, "diaSource"), 1);
        assert_eq!(count_definitions(&value, "diaForcedSource"), 1);
        assert!(json.contains(r#""items":"lsst.v9_0.diaSource""#));
        assert_eq!(bundled_schema_json(1101), None);
    }

    fn count_definitions(value: &Value, name: &str) -> usize {
        match value {
            Value::Object(object) => {
                let own = usize::from(
                    object.get("type").and_then(Value::as_str) == Some("record")
                        && object.get("name").and_then(Value::as_str) == Some(name),
                );
                own + object
                    .values()
                    .map(|child| count_definitions(child, name))
                    .sum::<usize>()
            }
            Value::Array(items) => items.iter().map(|item| count_definitions(item, name)).sum(),
            _ => 0,
        }
    }
}
