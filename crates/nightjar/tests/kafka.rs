//! The Kafka commands against a real broker (tansu, started by the test support): `produce`
//! real alerts, `run` them from the topic into a store and an output topic, `consume` the
//! output; SIGTERM finishes, commits and exits 0; a broker that is down is a clear error.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{nightjar, repo, stderr, stdout};
use nightjar_kafka::testing::{self, unique_name};

/// Source ids of the alerts in `paths`, as `nightjar inspect` decodes them.
fn source_ids_of(paths: &[&str]) -> BTreeSet<i64> {
    let mut args = vec!["inspect"];
    args.extend(paths);
    let output = nightjar(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("inspect prints JSON lines");
            json["source_id"].as_i64().expect("a source id")
        })
        .collect()
}

#[test]
fn produce_run_and_consume_carry_every_real_alert_once() {
    let brokers = testing::brokers();
    let input = format!("kafka://{brokers}/{}", unique_name("cli-in"));
    let output_topic = unique_name("cli-out");
    let output = format!("kafka://{brokers}/{output_topic}");
    let inputs = ["tests/data/ztf/alerts/boom_20240715_v4.02", "tests/data/lsst/wire/boom"];
    let expected = source_ids_of(&inputs);
    assert!(expected.len() >= 13, "{expected:?}");

    let produced = nightjar(&[
        "produce",
        "--to",
        &input,
        "--from",
        inputs[0],
        "--from",
        inputs[1],
        "--partitions",
        "2",
    ]);
    assert!(produced.status.success(), "{}", stderr(&produced));
    assert!(
        stderr(&produced).contains(&format!("produced {} alerts", expected.len())),
        "{}",
        stderr(&produced)
    );

    let data_dir = tempfile::tempdir().expect("tempdir");
    let group = unique_name("cli-group");
    let run = nightjar(&[
        "run",
        "--source",
        &input,
        "--sink",
        &output,
        "--group",
        &group,
        "--until-idle",
        "5",
        "--quiet",
        "--data-dir",
        data_dir.path().to_str().expect("utf-8"),
    ]);
    let run_log = stderr(&run);
    assert!(run.status.success(), "{run_log}");
    let published = run_log
        .lines()
        .find(|line| line.contains("alerts published"))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|count| count.parse::<usize>().ok());
    assert_eq!(published, Some(expected.len()), "{run_log}");

    let saved = data_dir.path().join("out.json");
    let consumed = nightjar(&[
        "consume",
        "--from",
        &output,
        "--timeout",
        "5",
        "--out",
        saved.to_str().expect("utf-8"),
    ]);
    assert!(consumed.status.success(), "{}", stderr(&consumed));
    let text = std::fs::read_to_string(&saved).expect("saved alerts");
    let got: Vec<i64> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["source_id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "one output alert per input alert");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), expected);

    // A second run of the same group finds everything committed: nothing is read again.
    let again = nightjar(&[
        "run",
        "--source",
        &input,
        "--group",
        &group,
        "--until-idle",
        "3",
        "--quiet",
        "--data-dir",
        data_dir.path().to_str().expect("utf-8"),
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    let messages = stderr(&again)
        .lines()
        .find(|line| line.contains("messages read"))
        .and_then(|line| line.split_whitespace().last())
        .map(str::to_string);
    assert_eq!(messages.as_deref(), Some("0"), "{}", stderr(&again));
}

#[test]
fn sigterm_finishes_the_batch_commits_and_exits_zero() {
    let brokers = testing::brokers();
    let input = format!("kafka://{brokers}/{}", unique_name("term-in"));
    let output_topic = unique_name("term-out");
    let produced = nightjar(&[
        "produce",
        "--to",
        &input,
        "--from",
        "tests/data/ztf/alerts/boom_20240715_v4.02",
        "--count",
        "300",
    ]);
    assert!(produced.status.success(), "{}", stderr(&produced));

    let data_dir = tempfile::tempdir().expect("tempdir");
    let data = data_dir.path().to_str().expect("utf-8").to_string();
    let group = unique_name("term-group");
    let output = format!("kafka://{brokers}/{output_topic}");
    let worker = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args([
            "run",
            "--source",
            &input,
            "--sink",
            &output,
            "--group",
            &group,
            "--quiet",
            "--data-dir",
            &data,
            "--batch-size",
            "50",
        ])
        .current_dir(repo())
        .env_remove("NIGHTJAR_CONFIG")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nightjar run");

    // Wait until all 300 are on the output topic, then ask the worker to stop.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut delivered = 0;
    while delivered < 300 && Instant::now() < deadline {
        let consumed = nightjar(&[
            "consume",
            "--from",
            &output,
            "--timeout",
            "2",
            "--out",
            &format!("{data}/seen.avro"),
        ]);
        delivered = stderr(&consumed)
            .split_whitespace()
            .next()
            .and_then(|count| count.parse::<u64>().ok())
            .unwrap_or(0);
    }
    assert_eq!(delivered, 300, "the worker published every alert");
    let killed = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let started = Instant::now();
    let finished = worker.wait_with_output().expect("the worker exits");
    assert!(started.elapsed() < Duration::from_secs(20), "it stopped promptly");
    let log = stderr(&finished);
    assert!(finished.status.success(), "exit status {:?}: {log}", finished.status);
    assert!(log.contains("batches committed"), "{log}");

    // Everything was committed: the group has nothing left to read.
    let again = nightjar(&[
        "run",
        "--source",
        &input,
        "--group",
        &group,
        "--until-idle",
        "3",
        "--quiet",
        "--data-dir",
        &data,
    ]);
    let messages = stderr(&again)
        .lines()
        .find(|line| line.contains("messages read"))
        .and_then(|line| line.split_whitespace().last())
        .map(str::to_string);
    assert_eq!(messages.as_deref(), Some("0"), "{}", stderr(&again));
}

#[test]
fn a_broker_that_is_down_is_a_clear_error_after_retries() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("port")
        .port();
    let data_dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let output = nightjar(&[
        "run",
        "--source",
        &format!("kafka://127.0.0.1:{port}/alerts"),
        "--connect-timeout",
        "3",
        "--data-dir",
        data_dir.path().to_str().expect("utf-8"),
    ]);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("unreachable"),
        "{message}"
    );
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(20),
        "{elapsed:?}"
    );

    let consumed = nightjar(&[
        "consume",
        "--from",
        &format!("kafka://127.0.0.1:{port}/out"),
        "--connect-timeout",
        "1",
    ]);
    assert_eq!(consumed.status.code(), Some(2));
    assert!(
        stderr(&consumed).contains("cannot reach the alert server"),
        "{}",
        stderr(&consumed)
    );
}
