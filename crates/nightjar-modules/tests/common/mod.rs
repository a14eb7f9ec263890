//! Helpers shared by the module tests: the real alerts of `tests/data` and the fixtures.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use nightjar_core::{Alert, Origin};
use nightjar_decode::Decoder;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.avro` file below `dir`, in name order, appended to `files`.
pub fn avro_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read test data folder")
        .map(|entry| entry.expect("read folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            avro_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "avro") {
            files.push(path);
        }
    }
}

/// Every decodable alert of `tests/data` (the one file meant to fail is skipped).
pub fn all_alerts() -> Vec<Alert> {
    let mut files = Vec::new();
    avro_files(&repo_root().join("tests/data"), &mut files);
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read alert file");
        alerts.extend(decoder.decode(&bytes, &Origin::file(&path)).into_iter().flatten());
    }
    alerts
}

/// A JSON fixture of `tests/fixtures/modules`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = repo_root().join("tests/fixtures/modules").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).expect("parse fixture")
}
