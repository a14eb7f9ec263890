//! Helpers shared by the integration tests: where the real Rubin files and their fastavro
//! fixtures are, and decoding a file the way a broker would (container or wire format).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nightjar_avro::{CONTAINER_MAGIC, Container, SchemaCache};
use nightjar_core::{Alert, DecodeErrorKind};
use nightjar_rubin::RubinSchemas;

/// The repository's `tests/` folder.
pub fn repo_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests")
}

/// A file under `tests/data/`.
pub fn data_path(relative: &str) -> PathBuf {
    repo_tests().join("data").join(relative)
}

/// The bytes of a file under `tests/data/`.
pub fn read_data(relative: &str) -> Vec<u8> {
    let path = data_path(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()))
}

/// The fastavro fixture of a file under `tests/data/`.
pub fn fixture(relative: &str) -> serde_json::Value {
    let path = repo_tests().join("fixtures/fastavro").join(format!("{relative}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

/// Every `.avro` file under `tests/data/lsst`, relative to `tests/data`, sorted.
pub fn rubin_files() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("readable folder").flatten().collect();
        entries.sort_by_key(|entry| entry.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|extension| extension == "avro") {
                let relative = path.strip_prefix(base).expect("under base");
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let base = repo_tests().join("data");
    let mut out = Vec::new();
    walk(&base.join("lsst"), &base, &mut out);
    out
}

/// Decodes a message as a broker would: a container, or a Confluent wire message with the
/// bundled schemas.
pub fn decode_bytes(
    bytes: &[u8],
    schemas: &RubinSchemas,
    cache: &mut SchemaCache,
) -> Result<Vec<Result<Alert, DecodeErrorKind>>, DecodeErrorKind> {
    if bytes.starts_with(CONTAINER_MAGIC) {
        let container = Container::open(bytes, cache)?;
        nightjar_rubin::decode_container(&container)
    } else {
        schemas.decode_wire(bytes).map(|alert| vec![Ok(alert)])
    }
}

/// Decodes a file under `tests/data/`, every record required to decode.
pub fn decode_file(relative: &str) -> Vec<Alert> {
    let bytes = read_data(relative);
    let alerts = decode_bytes(&bytes, &RubinSchemas::bundled(), &mut SchemaCache::new())
        .unwrap_or_else(|error| panic!("{relative}: {error}"));
    alerts
        .into_iter()
        .enumerate()
        .map(|(index, alert)| alert.unwrap_or_else(|error| panic!("{relative} record {index}: {error}")))
        .collect()
}

/// The only alert of a one-record file.
pub fn decode_one(relative: &str) -> Alert {
    let mut alerts = decode_file(relative);
    assert_eq!(alerts.len(), 1, "{relative}");
    alerts.remove(0)
}
