//! The bundled schemas: each is one self-contained text that parses, and its field lists are
//! those of the `.avsc` files it was built from.

use std::path::Path;

use nightjar_avro::WriterSchema;
use nightjar_rubin::{RubinSchemas, bundled_schema_ids, bundled_schema_json, detect_version, is_rubin};
use serde_json::Value;

fn schema_folder() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn field_names(record: &Value) -> Vec<String> {
    record["fields"]
        .as_array()
        .expect("a record")
        .iter()
        .map(|field| field["name"].as_str().expect("named field").to_string())
        .collect()
}

/// The named type a field refers to (`"lsst.v9_0.diaSource"`, through unions and arrays).
fn referenced_name(field_type: &Value) -> Option<String> {
    match field_type {
        Value::String(name) if name.contains('.') => Some(name.clone()),
        Value::Array(branches) => branches.iter().find_map(referenced_name),
        Value::Object(object) => object.get("items").and_then(referenced_name),
        _ => None,
    }
}

#[test]
fn there_is_one_bundled_id_per_schema_folder() {
    let mut folders: Vec<u32> = std::fs::read_dir(schema_folder())
        .expect("schemas folder")
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let (major, minor) = name.split_once('.').expect("MAJOR.MINOR");
            major.parse::<u32>().expect("major") * 100 + minor.parse::<u32>().expect("minor")
        })
        .collect();
    folders.sort_unstable();
    assert_eq!(folders, bundled_schema_ids());
}

#[test]
fn each_bundled_schema_parses_and_matches_its_avsc_files() {
    let schemas = RubinSchemas::bundled();
    for &id in bundled_schema_ids() {
        let (major, minor) = (id / 100, id % 100);
        let folder = schema_folder().join(format!("{major}.{minor}"));
        let json = bundled_schema_json(id).expect("bundled");
        let schema = WriterSchema::parse(&json).unwrap_or_else(|error| panic!("{id}: {error}"));
        assert_eq!(schema.name, format!("lsst.v{major}_{minor}.alert"));
        assert!(is_rubin(&schema), "{id}");
        assert_eq!(detect_version(&schema), format!("{major}.{minor}"));

        let alert = read_json(&folder.join(format!("lsst.v{major}_{minor}.alert.avsc")));
        assert_eq!(schema.fields, field_names(&alert), "{id}: top-level fields");
        let mut n_nested = 0;
        for field in alert["fields"].as_array().expect("fields") {
            let Some(name) = referenced_name(&field["type"]) else {
                continue;
            };
            let short = name.rsplit('.').next().expect("name");
            let sub_schema = read_json(&folder.join(format!("lsst.v{major}_{minor}.{short}.avsc")));
            let field_name = field["name"].as_str().expect("name");
            assert_eq!(
                schema.nested(field_name),
                field_names(&sub_schema),
                "{id}: {field_name}"
            );
            n_nested += 1;
        }
        assert!(n_nested >= 5, "{id}: only {n_nested} nested records");

        let held = schemas.get(id).expect("bundled id known");
        assert_eq!(held.fields, schema.fields);
    }
}

#[test]
fn a_registry_schema_can_be_added_and_a_non_rubin_one_is_refused() {
    let mut schemas = RubinSchemas::empty();
    assert!(schemas.get(900).is_none());
    let json = bundled_schema_json(900).expect("bundled");
    schemas.insert(1101, &json).expect("a Rubin schema");
    assert_eq!(schemas.ids(), vec![1101]);
    assert!(schemas.get(1101).is_some());

    let ztf_like = r#"{"type": "record", "name": "alert", "namespace": "ztf", "fields": [
        {"name": "objectId", "type": "string"},
        {"name": "candidate", "type": {"type": "record", "name": "candidate", "fields": [{"name": "jd", "type": "double"}]}}]}"#;
    let error = schemas.insert(1200, ztf_like).expect_err("not Rubin");
    assert!(error.contains("not a Rubin alert schema"), "{error}");
    let error = schemas.insert(1200, "{").expect_err("not JSON");
    assert!(error.starts_with("schema id 1200"), "{error}");
}
