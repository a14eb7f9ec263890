//! `nightjar run` end to end on real files: exact counts, idempotent re-runs, dead letters,
//! crash safety under kill -9, a second writer refused, prune, demo.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{nightjar, repo, stderr};
use nightjar_core::Survey;
use nightjar_store::{Store, StoreCounts, TimeWindow};
use nightjar_store_sqlite::SqliteStore;

/// The number after `label` in the run summary.
fn summary_value(output: &Output, label: &str) -> u64 {
    let text = stderr(output);
    let line = text
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in the summary:\n{text}"));
    line.split_whitespace()
        .last()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{line}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Everything a store holds that a re-run must not change: counts, every object's summary and
/// light curve, in a stable order.
fn snapshot(data_dir: &Path) -> (StoreCounts, Vec<String>) {
    runtime().block_on(async {
        let store = SqliteStore::open_read_only(data_dir).expect("the store opens");
        let counts = store.counts().await.expect("counts");
        let mut objects = Vec::new();
        for alert in store
            .latest_alerts(TimeWindow::ALL, &nightjar_store::AlertSelection::All, usize::MAX)
            .await
            .expect("alerts")
        {
            let detection = &alert.detection;
            let light_curve = store
                .light_curve(detection.survey, &detection.object_id)
                .await
                .expect("light curve")
                .expect("the object of a stored alert exists");
            objects.push(serde_json::to_string(&light_curve).expect("json"));
        }
        objects.sort();
        objects.dedup();
        (counts, objects)
    })
}

#[test]
fn run_stores_every_bundled_alert_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let first = nightjar(&["run", "--source", "tests/data", "--data-dir", data_dir, "--quiet"]);
    assert!(first.status.success(), "{}", stderr(&first));
    // 119 records in the fixtures; lsst.v11_1.avro (schema 11.1) is the one rejected message.
    assert_eq!(summary_value(&first, "alerts read"), 119);
    assert_eq!(summary_value(&first, "rejected"), 1);
    assert_eq!(summary_value(&first, "unknown_schema_id"), 1);
    let new_alerts = summary_value(&first, "alerts stored (new)");
    assert!(
        stderr(&first).contains("quality"),
        "the summary lists the science modules"
    );
    // Every stored alert carries the science modules' outputs.
    let stored = runtime().block_on(async {
        let store = SqliteStore::open_read_only(dir.path()).expect("the store opens");
        store
            .latest_alerts(TimeWindow::ALL, &nightjar_store::AlertSelection::All, usize::MAX)
            .await
            .expect("alerts")
    });
    for alert in &stored {
        let rb = alert.raw_detection.get("rb").and_then(serde_json::Value::as_f64);
        let reliability = alert
            .raw_detection
            .get("reliability")
            .and_then(serde_json::Value::as_f64);
        let real_bogus = alert.modules.get("real_bogus").and_then(serde_json::Value::as_f64);
        if rb.is_some() || reliability.is_some() {
            assert!(real_bogus.is_some(), "real_bogus of {}", alert.detection.source_id);
        }
        assert!(
            alert
                .modules
                .get("is_good_quality")
                .is_some_and(serde_json::Value::is_boolean),
            "is_good_quality of {}",
            alert.detection.source_id
        );
    }
    let (counts, objects) = snapshot(dir.path());
    assert_eq!(counts.alerts, new_alerts);
    assert_eq!(counts.dead_letters, 1);
    // The 12 alerts of ZTF21abiuvdk are one object whose light curve merges their histories.
    let light_curve = runtime()
        .block_on(async {
            SqliteStore::open_read_only(dir.path())
                .unwrap()
                .light_curve(Survey::Ztf, "ZTF21abiuvdk")
                .await
        })
        .unwrap()
        .unwrap();
    assert!(
        light_curve
            .detections
            .iter()
            .filter(|detection| detection.is_alert)
            .count()
            >= 12
    );

    let second = nightjar(&["run", "--source", "tests/data", "--data-dir", data_dir, "--quiet"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(summary_value(&second, "alerts stored (new)"), 0);
    assert_eq!(summary_value(&second, "new detections"), 0);
    assert_eq!(summary_value(&second, "new objects"), 0);
    assert_eq!(
        snapshot(dir.path()),
        (counts, objects),
        "a second run changed the store"
    );
}

#[test]
fn dead_letters_keep_the_message_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("store");
    let input = dir.path().join("input");
    std::fs::create_dir(&input).unwrap();
    let good = repo().join("tests/data/ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(input.join("good.avro"), &bytes).unwrap();
    std::fs::write(input.join("truncated.avro"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(input.join("garbage.avro"), b"this is not avro").unwrap();
    let output = nightjar(&[
        "run",
        "--source",
        input.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(summary_value(&output, "alerts read"), 1);
    assert_eq!(summary_value(&output, "rejected"), 2);

    let listed = nightjar(&["deadletter", "list", "--data-dir", data_dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        text.contains("truncated.avro") && text.contains("garbage.avro"),
        "{text}"
    );
    assert!(text.contains("unknown_format"), "{text}");
    let letters = runtime().block_on(async {
        SqliteStore::open_read_only(&data_dir)
            .unwrap()
            .dead_letters(None, 10)
            .await
            .unwrap()
    });
    let truncated = letters
        .iter()
        .find(|letter| letter.origin.contains("truncated.avro"))
        .unwrap();
    assert_eq!(
        truncated.bytes,
        bytes[..bytes.len() / 3],
        "the dead letter keeps the message bytes"
    );

    // Replaying cannot fix them: they stay, and the command says so.
    let replay = nightjar(&["deadletter", "replay", "--data-dir", data_dir.to_str().unwrap()]);
    assert_eq!(replay.status.code(), Some(1));
    assert!(
        stderr(&replay).contains("0 stored, 2 still failing"),
        "{}",
        stderr(&replay)
    );
}

#[test]
fn kill_minus_9_at_any_point_then_rerun_equals_one_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    let simulate = nightjar(&[
        "simulate",
        "--survey",
        "ztf",
        "--count",
        "1500",
        "--seed",
        "11",
        "--out",
        input.to_str().unwrap(),
    ]);
    assert!(simulate.status.success(), "{}", stderr(&simulate));
    let clean = dir.path().join("clean");
    let crashed = dir.path().join("crashed");
    let run_args = |data_dir: &Path| {
        vec![
            "run".to_string(),
            "--source".to_string(),
            input.to_str().unwrap().to_string(),
            "--data-dir".to_string(),
            data_dir.to_str().unwrap().to_string(),
            "--batch-size".to_string(),
            "100".to_string(),
            "--quiet".to_string(),
        ]
    };
    let output = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(run_args(&clean))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // Kill the run at several moments: before, during and after the first batches.
    let mut n_killed_mid_run = 0;
    for delay_ms in [50u64, 400, 900, 1600, 2600, 4000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .args(run_args(&crashed))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            n_killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(n_killed_mid_run >= 3, "the runs ended before they could be killed");
    let output = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(run_args(&crashed))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    let (clean_counts, clean_objects) = snapshot(&clean);
    assert_eq!(clean_counts.alerts, 1500);
    assert_eq!(
        snapshot(&crashed),
        (clean_counts, clean_objects),
        "the store after kills differs from a clean run"
    );
}

#[test]
fn a_second_writer_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let _store = SqliteStore::open(dir.path()).unwrap();
    let output = nightjar(&[
        "run",
        "--source",
        "tests/data/ztf/multi",
        "--data-dir",
        data_dir,
        "--quiet",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("locked by another writer") && text.contains(data_dir),
        "{text}"
    );
}

#[test]
fn prune_removes_old_nights() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let output = nightjar(&[
        "run",
        "--source",
        "tests/data/ztf/alerts",
        "--data-dir",
        data_dir,
        "--quiet",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let before = snapshot(dir.path()).0;
    // The bundled ZTF alerts span 2016 to 2025; keep 2021 and later.
    let output = nightjar(&["prune", "--before", "2021-01-01", "--data-dir", data_dir]);
    assert!(output.status.success(), "{}", stderr(&output));
    let after = snapshot(dir.path()).0;
    assert!(
        after.alerts < before.alerts && after.alerts > 0,
        "{before:?} -> {after:?}"
    );
    let nights = runtime().block_on(async {
        SqliteStore::open_read_only(dir.path())
            .unwrap()
            .counts_per_night()
            .await
            .unwrap()
    });
    assert!(nights.iter().all(|count| count.night.0 >= 20210101), "{nights:?}");

    let output = nightjar(&["prune", "--before", "2021-02-30", "--data-dir", data_dir]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid night"), "{}", stderr(&output));
}

#[test]
fn demo_runs_from_the_repository_and_says_what_to_try() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("demo");
    let output = nightjar(&["demo", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("Try next"), "{}", stderr(&output));
    assert_eq!(summary_value(&output, "alerts read"), 119);
    // The commands it suggests work on what it stored.
    let demo_dir = data_dir.to_str().unwrap();
    let cone = nightjar(&["query", "cone", "0.81428", "16.14568", "5", "--data-dir", demo_dir]);
    assert!(
        String::from_utf8_lossy(&cone.stdout).contains("ZTF21abiuvdk"),
        "{}",
        stderr(&cone)
    );
    let object = nightjar(&["query", "object", "ZTF21abiuvdk", "--data-dir", demo_dir]);
    assert!(object.status.success(), "{}", stderr(&object));
    // A second demo replaces the first.
    let again = nightjar(&["demo", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        summary_value(&again, "alerts stored (new)"),
        summary_value(&output, "alerts stored (new)")
    );
    // It never deletes a directory it did not make.
    let other = dir.path().join("precious");
    std::fs::create_dir(&other).unwrap();
    let refused = nightjar(&["demo", "--data-dir", other.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(other.exists());
}

#[test]
fn query_reads_light_curves_cones_and_nights() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let source = "tests/data/ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3";
    assert!(
        nightjar(&["run", "--source", source, "--data-dir", data_dir, "--quiet"])
            .status
            .success()
    );
    let output = nightjar(&["query", "object", "ZTF21abiuvdk", "--data-dir", data_dir]);
    assert!(output.status.success(), "{}", stderr(&output));
    let light_curve: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ra = light_curve["object"]["ra"].as_f64().unwrap();
    let dec = light_curve["object"]["dec"].as_f64().unwrap();
    let output = nightjar(&[
        "query",
        "cone",
        &ra.to_string(),
        &dec.to_string(),
        "2",
        "--data-dir",
        data_dir,
    ]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("ZTF21abiuvdk"));
    let output = nightjar(&["query", "object", "ZTF00nothere", "--data-dir", data_dir]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_full_store_stops_the_run_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    // A first run stores the multi-alert files; then the store may not grow by more than a
    // few pages, as if the disk were full.
    let output = nightjar(&[
        "run",
        "--source",
        "tests/data/ztf/multi",
        "--data-dir",
        data_dir,
        "--quiet",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let before = snapshot(dir.path());
    let size = std::fs::metadata(dir.path().join("cutouts.sqlite")).unwrap().len();
    let output = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args([
            "run",
            "--source",
            "tests/data/ztf/alerts",
            "--data-dir",
            data_dir,
            "--quiet",
        ])
        .current_dir(repo())
        .env("RUST_LOG", "error")
        .env("NIGHTJAR__STORE__MAX_BYTES", (size + 8192).to_string())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("is full"), "{}", stderr(&output));
    assert_eq!(snapshot(dir.path()), before, "a failed batch left rows behind");
}
