//! The Kafka commands against a real broker (tansu, started by the test support): `produce`
//! real alerts, `run` them from the topic into a store and an output topic, `consume` the
//! output; SIGTERM finishes, commits and exits 0; a broker that is down is a clear error.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{nightjar, repo, source_ids_of, stderr};
use nightjar_kafka::testing::{self, unique_name};

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

/// Runs `nightjar` as [`nightjar`] does, with extra environment variables.
fn nightjar_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nightjar"));
    command
        .args(args)
        .current_dir(repo())
        .env_remove("NIGHTJAR_CONFIG")
        .env("RUST_LOG", "error");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running nightjar")
}

/// Runs `nightjar run` on the Kafka source until killed with SIGKILL after `after`.
fn run_then_kill(args: &[&str], after: Duration) {
    let mut worker = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(args)
        .current_dir(repo())
        .env_remove("NIGHTJAR_CONFIG")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nightjar run");
    std::thread::sleep(after);
    let killed = Command::new("kill")
        .args(["-KILL", &worker.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    worker.wait().expect("reaped");
}

#[test]
fn workers_killed_with_sigkill_lose_no_alert_and_store_none_twice() {
    const N_ALERTS: usize = 3000;
    let brokers = testing::brokers();
    let input = format!("kafka://{brokers}/{}", unique_name("crash-in"));
    let output = format!("kafka://{brokers}/{}", unique_name("crash-out"));
    // tansu 0.6 answers a fetch from an offset inside a record batch with the next batch,
    // skipping the rest of that batch; a restarted worker resumes at such offsets. One message
    // per producer batch makes every offset a batch start (real Kafka needs no such care).
    let data_dir = tempfile::tempdir().expect("tempdir");
    let producer_config = data_dir.path().join("producer.toml");
    std::fs::write(&producer_config, "[kafka.properties]\n\"batch.num.messages\" = \"1\"\n").expect("config");
    let produced = nightjar(&[
        "--config",
        producer_config.to_str().expect("utf-8"),
        "produce",
        "--to",
        &input,
        "--from",
        "tests/data/ztf/alerts/boom_20240715_v4.02",
        "--count",
        &N_ALERTS.to_string(),
        "--partitions",
        "4",
    ]);
    assert!(produced.status.success(), "{}", stderr(&produced));

    let data = data_dir.path().to_str().expect("utf-8").to_string();
    let group = unique_name("crash-group");
    let run_args = [
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
        "100",
        "--no-cutouts",
    ];
    // Killed at three moments (the first while the group forms, the others mid-stream).
    for after_ms in [2_500, 3_000, 2_000] {
        run_then_kill(&run_args, Duration::from_millis(after_ms));
    }
    let mut last = run_args.to_vec();
    last.extend(["--until-idle", "5"]);
    // Then run to the end, and once more to see that nothing is left uncommitted.
    for _ in 0..4 {
        let finished = nightjar(&last);
        let log = stderr(&finished);
        assert!(finished.status.success(), "{log}");
        eprintln!(
            "final run: {}",
            log.lines().find(|line| line.contains("messages read")).unwrap_or("")
        );
        if log
            .lines()
            .any(|line| line.contains("messages read") && line.ends_with(" 0"))
        {
            break;
        }
    }

    // Every alert stored exactly once.
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let counts = runtime.block_on(async {
        let store = nightjar_store_sqlite::SqliteStore::open_read_only(data_dir.path()).expect("store");
        nightjar_store::Store::counts(&store).await.expect("counts")
    });
    assert_eq!(counts.alerts, N_ALERTS as u64, "every alert stored, none twice");
    assert_eq!(counts.objects, N_ALERTS as u64);

    // Every alert published at least once; the duplicates carry the same source id.
    let saved = format!("{data}/out.json");
    let consumed = nightjar(&["consume", "--from", &output, "--timeout", "5", "--out", &saved]);
    assert!(consumed.status.success(), "{}", stderr(&consumed));
    let ids: Vec<i64> = std::fs::read_to_string(&saved)
        .expect("saved")
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["source_id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), N_ALERTS, "every alert delivered at least once");
    assert_eq!(ids.len(), N_ALERTS, "the client drops duplicates by source id");
    eprintln!("consume: {}", stderr(&consumed).trim());
}

#[test]
fn a_crash_at_each_point_of_a_batch_loses_nothing_and_stores_nothing_twice() {
    const N_ALERTS: usize = 300;
    let brokers = testing::brokers();
    let data_dir = tempfile::tempdir().expect("tempdir");
    // One message per producer batch: see the crash test above (tansu's mid-batch fetch).
    let producer_config = data_dir.path().join("producer.toml");
    std::fs::write(&producer_config, "[kafka.properties]\n\"batch.num.messages\" = \"1\"\n").expect("config");
    for point in ["after_decode", "after_store", "after_produce", "after_delivery"] {
        let input = format!("kafka://{brokers}/{}", unique_name(&format!("point-{point}-in")));
        let output = format!("kafka://{brokers}/{}", unique_name(&format!("point-{point}-out")));
        let produced = nightjar(&[
            "--config",
            producer_config.to_str().expect("utf-8"),
            "produce",
            "--to",
            &input,
            "--from",
            "tests/data/ztf/alerts/boom_20240715_v4.02",
            "--count",
            &N_ALERTS.to_string(),
            "--partitions",
            "2",
        ]);
        assert!(produced.status.success(), "{}", stderr(&produced));
        let store_dir = data_dir.path().join(point);
        let store = store_dir.to_str().expect("utf-8");
        let group = unique_name("point-group");
        let args = [
            "run",
            "--source",
            &input,
            "--sink",
            &output,
            "--group",
            &group,
            "--quiet",
            "--data-dir",
            store,
            "--batch-size",
            "100",
            "--no-cutouts",
            "--until-idle",
            "5",
        ];
        // The second batch crashes at the point; the worker aborts. The worker is a static
        // member of its group, so that its restart takes its partitions back at once instead
        // of waiting for the dead member's session to expire.
        let instance = ("NIGHTJAR__KAFKA__SOURCE__INSTANCE_ID", "worker-1");
        let crash = format!("{point}:1");
        let crashed = nightjar_with_env(&args, &[instance, ("NIGHTJAR_CRASH_AT", &crash)]);
        assert!(!crashed.status.success(), "{point}: the worker aborted");
        assert!(stderr(&crashed).contains("crash test"), "{point}: {}", stderr(&crashed));
        // Restarted, it finishes the stream.
        let finished = nightjar_with_env(&args, &[instance]);
        assert!(finished.status.success(), "{point}: {}", stderr(&finished));

        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let counts = runtime.block_on(async {
            let store = nightjar_store_sqlite::SqliteStore::open_read_only(&store_dir).expect("store");
            nightjar_store::Store::counts(&store).await.expect("counts")
        });
        assert_eq!(counts.alerts, N_ALERTS as u64, "{point}: every alert stored once");

        let saved = data_dir.path().join(format!("{point}.json"));
        let consumed = nightjar(&[
            "consume",
            "--from",
            &output,
            "--timeout",
            "5",
            "--out",
            saved.to_str().expect("utf-8"),
        ]);
        assert!(consumed.status.success(), "{point}: {}", stderr(&consumed));
        let ids: BTreeSet<i64> = std::fs::read_to_string(&saved)
            .expect("saved")
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).expect("JSON")["source_id"]
                    .as_i64()
                    .expect("id")
            })
            .collect();
        assert_eq!(ids.len(), N_ALERTS, "{point}: every alert delivered at least once");
        eprintln!("{point}: {}", stderr(&consumed).trim());
    }
}

/// Stored source ids of an embedded store.
fn stored_alerts(dir: &std::path::Path) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let store = nightjar_store_sqlite::SqliteStore::open_read_only(dir).expect("store");
        nightjar_store::Store::counts(&store).await.expect("counts").alerts
    })
}

#[test]
fn two_workers_share_a_group_and_one_takes_over_when_the_other_stops() {
    const N_ALERTS: u64 = 2000;
    let brokers = testing::brokers();
    let input = format!("kafka://{brokers}/{}", unique_name("pair-in"));
    let output = format!("kafka://{brokers}/{}", unique_name("pair-out"));
    let dir = tempfile::tempdir().expect("tempdir");
    // One message per producer batch: see the crash test above (tansu's mid-batch fetch).
    let config = dir.path().join("nightjar.toml");
    std::fs::write(&config, "[kafka.properties]\n\"batch.num.messages\" = \"1\"\n").expect("config");
    let config = config.to_str().expect("utf-8").to_string();
    let produced = nightjar(&[
        "--config",
        &config,
        "produce",
        "--to",
        &input,
        "--from",
        "tests/data/ztf/alerts/boom_20240715_v4.02",
        "--count",
        "2000",
        "--partitions",
        "4",
    ]);
    assert!(produced.status.success(), "{}", stderr(&produced));
    let group = unique_name("pair-group");
    // Each worker has its own embedded store (PostgreSQL is the shared one).
    let (store_a, store_b) = (dir.path().join("a"), dir.path().join("b"));
    let worker = |store: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "--config".to_string(),
            config.clone(),
            "run".to_string(),
            "--source".to_string(),
            input.clone(),
            "--sink".to_string(),
            output.clone(),
            "--group".to_string(),
            group.clone(),
            "--quiet".to_string(),
            "--batch-size".to_string(),
            "50".to_string(),
            "--no-cutouts".to_string(),
            "--data-dir".to_string(),
            store.to_str().expect("utf-8").to_string(),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .args(args)
            .current_dir(repo())
            .env_remove("NIGHTJAR_CONFIG")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting a worker")
    };
    let first = worker(&store_a, &[]);
    std::thread::sleep(Duration::from_secs(1));
    let second = worker(&store_b, &["--until-idle", "10"]);
    std::thread::sleep(Duration::from_secs(4));
    // The first stops (leaving the group); the second takes its partitions and finishes.
    let stopped = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let first = first.wait_with_output().expect("first exits");
    assert!(first.status.success(), "{}", stderr(&first));
    let second = second.wait_with_output().expect("second exits");
    assert!(second.status.success(), "{}", stderr(&second));

    let (in_a, in_b) = (stored_alerts(&store_a), stored_alerts(&store_b));
    assert!(in_a > 0 && in_b > 0, "both worked: {in_a} and {in_b}");
    // Each alert is stored by one worker; a batch in hand at the handover may be stored twice.
    assert!(in_a + in_b >= N_ALERTS, "no alert lost: {in_a} + {in_b}");

    let saved = dir.path().join("out.json");
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
    let ids: BTreeSet<i64> = std::fs::read_to_string(&saved)
        .expect("saved")
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["source_id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    assert_eq!(ids.len() as u64, N_ALERTS, "every alert published");
}
