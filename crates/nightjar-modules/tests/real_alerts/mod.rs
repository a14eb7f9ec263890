//! Shared by the module tests: the real alerts of `tests/data`, each with its file (relative
//! to `tests/data`) and record index, and the reference fixtures of `tests/fixtures/fink_modules`
//! written by `scripts/fink_modules_reference.py` with Fink's own code.

#![allow(dead_code)]

use std::collections::HashMap;

use nightjar_core::{Alert, Origin, Survey};
use nightjar_decode::Decoder;
use nightjar_modules::{ModuleOutputs, ModuleRunner, ScienceModule};

#[path = "../common/mod.rs"]
mod common;

use common::avro_files;
pub use common::repo_root as repo_dir;

/// Every decodable alert of one survey, keyed `"<file>#<record>"` as in the fixtures.
pub fn alerts(survey: Survey) -> Vec<(String, Alert)> {
    let data_dir = repo_dir().join("tests/data");
    let mut files = Vec::new();
    avro_files(&data_dir, &mut files);
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read alert file");
        let relative = path
            .strip_prefix(&data_dir)
            .expect("file under tests/data")
            .to_string_lossy()
            .replace('\\', "/");
        for (index, alert) in decoder.decode(&bytes, &Origin::file(&path)).into_iter().enumerate() {
            if let Ok(alert) = alert
                && alert.survey == survey
            {
                alerts.push((format!("{relative}#{index}"), alert));
            }
        }
    }
    alerts
}

/// The reference entries of one survey's fixture, keyed `"<file>#<record>"`, and the
/// feature names the fixture lists.
pub fn fixture(survey: Survey) -> (HashMap<String, serde_json::Value>, Vec<String>) {
    let name = match survey {
        Survey::Ztf => "ztf",
        Survey::Rubin => "rubin",
    };
    let path = repo_dir().join(format!("tests/fixtures/fink_modules/{name}.json"));
    let text = std::fs::read_to_string(&path).expect("read fixture");
    let document: serde_json::Value = serde_json::from_str(&text).expect("parse fixture");
    let names = document["feature_names"]
        .as_array()
        .expect("feature_names")
        .iter()
        .map(|name| name.as_str().expect("feature name").to_owned())
        .collect();
    let entries = document["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|entry| {
            let key = format!(
                "{}#{}",
                entry["file"].as_str().expect("file"),
                entry["record"].as_u64().expect("record")
            );
            (key, entry.clone())
        })
        .collect();
    (entries, names)
}

/// Runs one module alone on `batch`, checking that it did not fail.
pub fn run_module(module: Box<dyn ScienceModule>, batch: &[Alert]) -> ModuleOutputs {
    let mut runner = ModuleRunner::new(vec![module]).expect("build runner");
    let outputs = runner.run(batch);
    assert!(outputs.failures().is_empty(), "{:?}", outputs.failures());
    outputs
}

/// `a` and `b` agree to a relative 1e-9 (absolute near zero); both null counts as equal.
pub fn close(a: Option<f64>, b: Option<f64>, tolerance: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= tolerance * b.abs().max(1.0),
        _ => false,
    }
}
