//! Helpers shared by the integration tests: the real ZTF files under `tests/data/ztf`, their
//! fastavro fixtures, and decoding bytes all the way to core-model alerts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nightjar_avro::{Container, SchemaCache};
use nightjar_core::{Alert, DecodeErrorKind};
use nightjar_ztf::decode_container;

/// The repository's `tests/` folder.
pub fn tests_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// Bytes of a file under `tests/data`, e.g. `ztf/multi/ztf_v3.3_3alerts_20211124.avro`.
pub fn data(relative: &str) -> Vec<u8> {
    let path = tests_root().join("data").join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Every `.avro` file under `tests/data/ztf`, as paths relative to `tests/data`, sorted.
pub fn ztf_files() -> Vec<String> {
    fn walk(folder: &Path, base: &Path, out: &mut Vec<String>) {
        let entries = std::fs::read_dir(folder).unwrap_or_else(|error| panic!("{}: {error}", folder.display()));
        for entry in entries {
            let path = entry.expect("a readable folder entry").path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|extension| extension == "avro") {
                let relative = path.strip_prefix(base).expect("under tests/data");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let base = tests_root().join("data");
    let mut files = Vec::new();
    walk(&base.join("ztf"), &base, &mut files);
    files.sort();
    files
}

/// The fastavro fixture of a file under `tests/data` (`tests/fixtures/fastavro/<file>.json`).
pub fn fixture(relative: &str) -> serde_json::Value {
    let path = tests_root().join("fixtures/fastavro").join(format!("{relative}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Opens and decodes a container message; the first error, whole-message or per-record, wins.
pub fn decode_bytes(bytes: &[u8], cache: &mut SchemaCache) -> Result<Vec<Alert>, DecodeErrorKind> {
    let container = Container::open(bytes, cache)?;
    decode_container(&container)?.into_iter().collect()
}

/// Decodes a real file that must decode cleanly.
pub fn decode_file(relative: &str) -> Vec<Alert> {
    decode_bytes(&data(relative), &mut SchemaCache::new()).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

/// The single alert of a one-record file.
pub fn decode_one(relative: &str) -> Alert {
    let mut alerts = decode_file(relative);
    assert_eq!(alerts.len(), 1, "{relative}");
    alerts.remove(0)
}

/// A container with the given writer schema and records (JSON objects in the schema's shape),
/// codec null, written with serde_avro_fast.
pub fn synthetic_container(schema_json: &str, records: &[serde_json::Value]) -> Vec<u8> {
    let schema: serde_avro_fast::Schema = schema_json.parse().expect("a valid test schema");
    serde_avro_fast::object_container_file_encoding::write_all(
        &schema,
        serde_avro_fast::object_container_file_encoding::Compression::Null,
        Vec::new(),
        records,
    )
    .expect("the records fit the schema")
}

/// A small ZTF-shaped writer schema: just the fields nightjar's mapping reads, most nullable.
pub const MINI_ZTF_SCHEMA: &str = r#"{
  "type": "record", "name": "alert", "namespace": "ztf",
  "fields": [
    {"name": "schemavsn", "type": ["null", "string"]},
    {"name": "objectId", "type": ["null", "string"]},
    {"name": "candidate", "type": {"type": "record", "name": "candidate", "fields": [
      {"name": "candid", "type": ["null", "long"]},
      {"name": "jd", "type": ["null", "double"]},
      {"name": "fid", "type": ["null", "int"]},
      {"name": "ra", "type": ["null", "double"]},
      {"name": "dec", "type": ["null", "double"]},
      {"name": "magpsf", "type": ["null", "float"]},
      {"name": "sigmapsf", "type": ["null", "float"]},
      {"name": "isdiffpos", "type": ["null", "string"]},
      {"name": "rb", "type": ["null", "float"]},
      {"name": "drb", "type": ["null", "float"]}
    ]}},
    {"name": "prv_candidates", "type": ["null", {"type": "array", "items": {
      "type": "record", "name": "prv_candidate", "fields": [
        {"name": "candid", "type": ["null", "long"]},
        {"name": "jd", "type": ["null", "double"]},
        {"name": "fid", "type": ["null", "int"]},
        {"name": "ra", "type": ["null", "double"]},
        {"name": "dec", "type": ["null", "double"]},
        {"name": "magpsf", "type": ["null", "float"]},
        {"name": "sigmapsf", "type": ["null", "float"]},
        {"name": "isdiffpos", "type": ["null", "string"]},
        {"name": "diffmaglim", "type": ["null", "float"]}
      ]}}]}
  ]
}"#;

/// A record of [`MINI_ZTF_SCHEMA`] that decodes cleanly; tests change single values.
pub fn mini_ztf_record() -> serde_json::Value {
    serde_json::json!({
        "schemavsn": "3.3",
        "objectId": "ZTF99aaaaaaa",
        "candidate": {
            "candid": 1001, "jd": 2460000.75, "fid": 2, "ra": 10.5, "dec": -20.25,
            "magpsf": 19.0, "sigmapsf": 0.1, "isdiffpos": "1", "rb": 0.5, "drb": 0.9
        },
        "prv_candidates": [
            {"candid": 999, "jd": 2459999.5, "fid": 1, "ra": 10.5, "dec": -20.25,
             "magpsf": 19.5, "sigmapsf": 0.2, "isdiffpos": "0", "diffmaglim": 20.5},
            {"candid": null, "jd": 2459990.5, "fid": 1, "ra": null, "dec": null,
             "magpsf": null, "sigmapsf": null, "isdiffpos": null, "diffmaglim": 20.0},
            {"candid": 998, "jd": 2459995.5, "fid": 3, "ra": 10.5, "dec": -20.25,
             "magpsf": 19.25, "sigmapsf": 0.2, "isdiffpos": "t", "diffmaglim": 20.5}
        ]
    })
}
