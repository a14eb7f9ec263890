//! The `nightjar` binary as a user runs it: inspect, config, simulate, and their errors.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use common::{nightjar, repo, stderr, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn inspect_prints_one_json_alert_per_line() {
    let output = nightjar(&["inspect", "tests/data/ztf/alerts/boom_tests_v4.02_fp_hists"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let alert = lines
        .iter()
        .find(|alert| alert["source_id"] == 3005140370015010009i64)
        .unwrap();
    assert_eq!(alert["survey"], "ztf");
    assert_eq!(alert["schema_version"], "4.02");
    assert_eq!(alert["raw"]["candidate"]["candid"], 3005140370015010009i64);
    // Cutouts are summarised, never dumped.
    let cutout = &alert["raw"]["cutoutScience"]["stampData"]["$bytes"];
    assert!(cutout["len"].as_u64().unwrap() > 1000);
    assert_eq!(alert["cutouts"].as_array().unwrap().len(), 3);
    assert!(alert["n_forced_photometry"].as_u64().unwrap() > 0);
    assert!(stderr(&output).contains("2 alerts, 0 errors"));
}

#[test]
fn inspect_counts_every_bundled_alert_and_names_the_bad_file() {
    let output = nightjar(&["inspect", "--count", "tests/data"]);
    // lsst.v11_1.avro uses schema 11.1, which nightjar does not bundle.
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("lsst.v11_1.avro") && err.contains("unknown schema id 1101"),
        "{err}"
    );
    let counted: usize = stdout(&output)
        .lines()
        .map(|line| line.rsplit('\t').next().unwrap().parse::<usize>().unwrap())
        .sum();
    // The fastavro fixtures say how many records each file holds.
    let mut expected = 0;
    for entry in walk(&repo().join("tests/fixtures/fastavro")) {
        let fixture: serde_json::Value = serde_json::from_slice(&std::fs::read(entry).unwrap()).unwrap();
        expected += fixture["records"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(counted, expected);
    assert!(err.contains(&format!("{expected} alerts, 1 errors")), "{err}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reading the fixtures directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn inspect_reports_corrupt_and_missing_input() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(repo().join("tests/data/ztf/multi/ztf_v3.3_3alerts_20211124.avro")).unwrap();
    let truncated = dir.path().join("truncated.avro");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.path().join("notes.avro");
    std::fs::write(&text, "hello").unwrap();
    let output = nightjar(&["inspect", truncated.to_str().unwrap(), text.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("truncated.avro"), "{err}");
    assert!(err.contains("notes.avro") && err.contains("not an Avro alert"), "{err}");

    let output = nightjar(&["inspect", "/nonexistent/alerts"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/alerts does not exist"));
}

#[test]
fn expected_survey_rejects_the_other_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["inspect", "--count", "tests/data/lsst/wire/boom"])
        .current_dir(repo())
        .env("NIGHTJAR__DECODE__SURVEY", "ztf")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("wrong survey: expected ztf, found rubin"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_prints_effective_values_and_rejects_bad_ones() {
    let output = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .arg("config")
        .current_dir(repo())
        .env("NIGHTJAR__STORE__PATH", "/data/from-env")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: toml::Value = toml::from_str(&stdout(&output)).unwrap();
    assert_eq!(printed["store"]["path"].as_str(), Some("/data/from-env"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[stor]\npath = \"x\"\n").unwrap();
    let output = nightjar(&["--config", file.to_str().unwrap(), "config"]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("stor") && err.contains("store"), "{err}");
}

#[test]
fn help_explains_the_commands() {
    let output = nightjar(&["--help"]);
    let text = stdout(&output);
    for command in ["inspect", "simulate", "config", "bench"] {
        assert!(text.contains(command), "{text}");
    }
}

#[test]
fn simulated_alerts_decode_with_unique_ids() {
    for survey in ["ztf", "rubin"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().to_str().unwrap();
        let output = nightjar(&[
            "simulate", "--survey", survey, "--count", "60", "--out", out, "--seed", "7",
        ]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("wrote 60 {survey} alerts")),
            "{}",
            stderr(&output)
        );

        let output = nightjar(&["inspect", "--core", out]);
        assert!(output.status.success(), "{}", stderr(&output));
        let alerts: Vec<serde_json::Value> = stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(alerts.len(), 60);
        let mut source_ids: Vec<i64> = alerts
            .iter()
            .map(|alert| alert["source_id"].as_i64().unwrap())
            .collect();
        let mut object_ids: Vec<String> = alerts
            .iter()
            .map(|alert| alert["object_id"].as_str().unwrap().to_string())
            .collect();
        source_ids.sort_unstable();
        source_ids.dedup();
        object_ids.sort_unstable();
        object_ids.dedup();
        assert_eq!(source_ids.len(), 60, "{survey}: duplicate source ids");
        assert_eq!(object_ids.len(), 60, "{survey}: duplicate object ids");
        assert!(alerts.iter().all(|alert| alert["survey"] == survey));
    }
}

#[test]
fn inspect_enrich_adds_the_module_outputs() {
    let output = nightjar(&[
        "inspect",
        "--core",
        "--enrich",
        "tests/data/ztf/alerts/skyportal_20180626_v1.8",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let alerts: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(alerts.len(), 5);
    for alert in &alerts {
        let modules = &alert["modules"];
        let rb = modules["rb"].as_f64().unwrap();
        // Fink's cuts: rb >= 0.55 and nbad == 0 (every alert here has nbad 0).
        assert_eq!(modules["is_good_quality"], rb >= 0.55, "{alert}");
        assert_eq!(modules["quality_flags"], if rb >= 0.55 { "" } else { "rb" }, "{alert}");
    }
    // ZTF18abdbqrh has rb 0.193 (read with fastavro): not good quality.
    let bogus = alerts
        .iter()
        .find(|alert| alert["object_id"] == "ZTF18abdbqrh")
        .unwrap();
    assert_eq!(bogus["modules"]["is_good_quality"], false);
}
