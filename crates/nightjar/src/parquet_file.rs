//! Parquet files of published alerts (`nightjar consume --out FILE.parquet`): the records read
//! into Arrow with arrow-avro and written with parquet's `ArrowWriter` (snappy). Every field of
//! the records becomes a column, nested records as structs, the history as lists of structs, the
//! module outputs as the columns they are published as.
//!
//! arrow-avro 60 does not resolve a reference to a named type by its full name (Rubin's
//! `"items": "lsst.v9_0.diaSource"`, ZTF's `ztf.alert.cutout`), so the writer schema is first
//! rewritten with every reference replaced by a copy of the type it names, under a name of its
//! own. Names do not change how Avro encodes a datum, so the records are read as they are.

use std::collections::HashMap;
use std::io::Cursor;

use anyhow::{Context, anyhow, bail};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// Rows per Arrow batch read from the records.
const BATCH_ROWS: usize = 1024;

/// Deepest nesting of named types followed (alert schemas nest a few levels; a recursive type
/// would never end).
const MAX_DEPTH: usize = 32;

/// The datums of one writer schema (its JSON text) as one Parquet file.
pub fn records_to_parquet<'d>(
    schema_json: &str,
    datums: impl IntoIterator<Item = &'d [u8]>,
) -> anyhow::Result<Vec<u8>> {
    let inlined = inline_named_types(schema_json)?;
    let schema = nightjar_avro::SchemaCache::new()
        .get_or_parse(inlined.as_bytes())
        .map_err(|reason| anyhow!("the rewritten schema does not parse: {reason}"))?;
    let container = nightjar_avro::write_container(&schema, datums)?;
    let reader = arrow_avro::reader::ReaderBuilder::new()
        .with_batch_size(BATCH_ROWS)
        .build(Cursor::new(container))
        .context("reading the records into Arrow")?;
    let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(Vec::new(), reader.schema(), Some(properties))
        .context("the Parquet schema of the records")?;
    for batch in reader {
        let batch = batch.context("reading the records into Arrow")?;
        writer.write(&batch).context("writing Parquet")?;
    }
    writer.into_inner().context("finishing the Parquet file")
}

/// The schema with every named-type reference replaced by a copy of its definition, each
/// named type under a unique name.
fn inline_named_types(schema_json: &str) -> anyhow::Result<String> {
    let schema: Value = serde_json::from_str(schema_json).context("the schema is not JSON")?;
    let mut inliner = Inliner::default();
    let inlined = inliner.rewrite(&schema, "", 0)?;
    Ok(serde_json::to_string(&inlined)?)
}

#[derive(Default)]
struct Inliner {
    /// Full name -> (definition as written, the namespace its own references resolve in).
    defined: HashMap<String, (Value, String)>,
    n_named: usize,
}

const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

impl Inliner {
    fn rewrite(&mut self, schema: &Value, namespace: &str, depth: usize) -> anyhow::Result<Value> {
        if depth > MAX_DEPTH {
            bail!("named types nest deeper than {MAX_DEPTH} levels (a recursive type?)");
        }
        match schema {
            Value::String(name) if PRIMITIVES.contains(&name.as_str()) => Ok(schema.clone()),
            Value::String(name) => {
                let full = full_name(name, namespace);
                let (definition, own_namespace) =
                    self.defined
                        .get(&full)
                        .or_else(|| self.defined.get(name))
                        .cloned()
                        .ok_or_else(|| anyhow!("type {name:?} is used before it is defined"))?;
                self.rewrite_named(&definition, &own_namespace, depth + 1)
            }
            Value::Array(branches) => Ok(Value::Array(
                branches
                    .iter()
                    .map(|branch| self.rewrite(branch, namespace, depth))
                    .collect::<anyhow::Result<_>>()?,
            )),
            Value::Object(object) => match object.get("type").and_then(Value::as_str) {
                Some("record" | "error" | "enum" | "fixed") => {
                    let name = object.get("name").and_then(Value::as_str).unwrap_or_default();
                    let own_namespace = match (name.rsplit_once('.'), object.get("namespace").and_then(Value::as_str)) {
                        (Some((prefix, _)), _) => prefix.to_string(),
                        (None, Some(declared)) => declared.to_string(),
                        (None, None) => namespace.to_string(),
                    };
                    let full = full_name(name, &own_namespace);
                    self.defined.insert(full, (schema.clone(), own_namespace.clone()));
                    self.rewrite_named(schema, &own_namespace, depth)
                }
                Some("array") => {
                    let mut copy = object.clone();
                    if let Some(items) = object.get("items") {
                        copy.insert("items".to_string(), self.rewrite(items, namespace, depth)?);
                    }
                    Ok(Value::Object(copy))
                }
                Some("map") => {
                    let mut copy = object.clone();
                    if let Some(values) = object.get("values") {
                        copy.insert("values".to_string(), self.rewrite(values, namespace, depth)?);
                    }
                    Ok(Value::Object(copy))
                }
                // {"type": "long", "logicalType": ...} and the like.
                Some(_) => Ok(schema.clone()),
                None => match object.get("type") {
                    Some(inner) => {
                        let mut copy = object.clone();
                        copy.insert("type".to_string(), self.rewrite(inner, namespace, depth)?);
                        Ok(Value::Object(copy))
                    }
                    None => bail!("a schema object without a type"),
                },
            },
            other => bail!("not a schema: {other}"),
        }
    }

    /// A copy of a named type's definition under a fresh name, its fields rewritten.
    fn rewrite_named(&mut self, definition: &Value, namespace: &str, depth: usize) -> anyhow::Result<Value> {
        let Value::Object(object) = definition else {
            bail!("not a named type: {definition}");
        };
        let mut copy = object.clone();
        self.n_named += 1;
        let short = object
            .get("name")
            .and_then(Value::as_str)
            .and_then(|name| name.rsplit('.').next())
            .unwrap_or("type");
        copy.insert("name".to_string(), Value::from(format!("{short}_{}", self.n_named)));
        copy.remove("namespace");
        copy.remove("aliases");
        if let Some(Value::Array(fields)) = object.get("fields") {
            let mut rewritten = Vec::with_capacity(fields.len());
            for field in fields {
                let mut field = field.clone();
                if let Some(field_type) = field.get("type").cloned() {
                    field["type"] = self.rewrite(&field_type, namespace, depth)?;
                }
                rewritten.push(field);
            }
            copy.insert("fields".to_string(), Value::Array(rewritten));
        }
        Ok(Value::Object(copy))
    }
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_copies_under_names_of_their_own() {
        let schema = r#"{"type": "record", "name": "alert", "namespace": "lsst.v9_0", "fields": [
            {"name": "diaSource", "type": {"type": "record", "name": "diaSource", "fields": [
                {"name": "id", "type": "long"}]}},
            {"name": "prvDiaSources", "type": ["null", {"type": "array", "items": "lsst.v9_0.diaSource"}]},
            {"name": "other", "type": ["null", "diaSource"], "default": null}]}"#;
        let inlined: Value = serde_json::from_str(&inline_named_types(schema).expect("inlined")).expect("JSON");
        let fields = inlined["fields"].as_array().expect("fields");
        let copy = &fields[1]["type"][1]["items"];
        assert_eq!(copy["type"], "record");
        assert_eq!(copy["fields"][0]["name"], "id");
        assert_eq!(fields[2]["type"][1]["fields"][0]["type"], "long");
        let names: std::collections::BTreeSet<&str> =
            [&fields[0]["type"]["name"], &copy["name"], &fields[2]["type"][1]["name"]]
                .into_iter()
                .map(|name| name.as_str().expect("a name"))
                .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            inline_named_types(r#"{"type": "record", "name": "a", "fields": [{"name": "b", "type": "nothing"}]}"#)
                .is_err()
        );
    }
}
