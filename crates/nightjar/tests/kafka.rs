//! The Kafka commands against a real broker (tansu, started by the test support): `produce`
//! real alerts, `run` them from the topic into a store and an output topic, `consume` the
//! output; SIGTERM finishes, commits and exits 0; a broker that is down is a clear error.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{nightjar, repo, source_ids_of, stderr, stdout};
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
/// How long a worker of the crash test may store nothing before it is started again.
const STALL: Duration = Duration::from_secs(90);

fn kill_and_reap(worker: &mut std::process::Child) {
    let killed = Command::new("kill")
        .args(["-KILL", &worker.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    worker.wait().expect("reaped");
}

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

/// Store row counts of an embedded store.
fn store_counts(dir: &std::path::Path) -> nightjar_store::StoreCounts {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let store = nightjar_store_sqlite::SqliteStore::open_read_only(dir).expect("store");
        nightjar_store::Store::counts(&store).await.expect("counts")
    })
}

/// Alerts stored so far by a worker that may still be creating the store: 0 until it can be
/// read.
fn alerts_stored_so_far(dir: &std::path::Path) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        match nightjar_store_sqlite::SqliteStore::open_read_only(dir) {
            Ok(store) => nightjar_store::Store::counts(&store)
                .await
                .map(|counts| counts.alerts)
                .unwrap_or(0),
            Err(_) => 0,
        }
    })
}

/// A small deterministic generator (xorshift64*) for the kill schedule; the seed is printed so
/// that a failing schedule can be run again with `NIGHTJAR_TEST_SEED`.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

/// What a crash test does to one worker.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// SIGKILL a moment after the worker stored something new.
    Kill,
    /// `NIGHTJAR_CRASH_AT=POINT:BATCH`: the worker aborts itself there.
    At(&'static str),
}

#[test]
fn twenty_thousand_alerts_survive_random_kills_and_a_crash_at_every_point() {
    const N_ALERTS: u64 = 20_000;
    let seed = std::env::var("NIGHTJAR_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    eprintln!("crash schedule seed {seed} (NIGHTJAR_TEST_SEED)");
    let mut random = Random(seed);
    let brokers = testing::brokers();
    let input = format!("kafka://{brokers}/{}", unique_name("scale-in"));
    let output = format!("kafka://{brokers}/{}", unique_name("scale-out"));
    let data_dir = tempfile::tempdir().expect("tempdir");
    // tansu 0.6 answers a fetch from an offset inside a record batch with the next batch,
    // skipping the rest of that batch; a restarted worker resumes at such offsets. One message
    // per producer batch makes every offset a batch start (real Kafka needs no such care).
    let config = data_dir.path().join("nightjar.toml");
    std::fs::write(&config, "[kafka.properties]\n\"batch.num.messages\" = \"1\"\n").expect("config");
    let config = config.to_str().expect("utf-8").to_string();
    // Real ZTF and Rubin alerts (10 and 8) amplified into 20,000 unique ones (new ids,
    // positions, times), without their cutouts so that the topics stay small.
    let produced = nightjar(&[
        "--config",
        &config,
        "produce",
        "--to",
        &input,
        "--from",
        "tests/data/ztf/alerts/boom_20240715_v4.02",
        "--from",
        "tests/data/lsst/wire/alerce_v7.4",
        "--from",
        "tests/data/lsst/wire/boom",
        "--count",
        &N_ALERTS.to_string(),
        "--no-cutouts",
        "--partitions",
        "4",
    ]);
    assert!(produced.status.success(), "{}", stderr(&produced));
    eprintln!("{}", stderr(&produced).trim());

    let store = data_dir.path().join("store");
    let group = unique_name("scale-group");
    let run_args = [
        "--config",
        &config,
        "run",
        "--source",
        &input,
        "--sink",
        &output,
        "--group",
        &group,
        "--quiet",
        "--data-dir",
        store.to_str().expect("utf-8"),
        "--batch-size",
        "500",
        "--no-cutouts",
    ];
    // The worker is a static member of its group, so that each restart takes its partitions
    // back at once instead of waiting for the dead member's session to expire.
    let instance = ("NIGHTJAR__KAFKA__SOURCE__INSTANCE_ID", "worker-1");
    let schedule = [
        Crash::Kill,
        Crash::At("after_decode"),
        Crash::Kill,
        Crash::At("after_store"),
        Crash::Kill,
        Crash::At("after_produce"),
        Crash::Kill,
        Crash::At("after_delivery"),
        Crash::Kill,
    ];
    let mut n_kills = 0;
    for crash in schedule {
        let before = alerts_stored_so_far(&store);
        match crash {
            Crash::Kill => {
                // Killed mid-stream, at a random place in the kill's share of the stream (the
                // kills are spread over the first five sixths), a random moment into a batch.
                let share = N_ALERTS / 12;
                let target = (2 * n_kills + 1) * share + random.below(share);
                n_kills += 1;
                let spawn_worker = || {
                    Command::new(env!("CARGO_BIN_EXE_nightjar"))
                        .args(run_args)
                        .current_dir(repo())
                        .env_remove("NIGHTJAR_CONFIG")
                        .env("RUST_LOG", "error")
                        .env(instance.0, instance.1)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("starting nightjar run")
                };
                let mut worker = spawn_worker();
                let mut progress = (before, Instant::now());
                loop {
                    let stored = alerts_stored_so_far(&store);
                    if stored > before && stored >= target {
                        break;
                    }
                    if stored != progress.0 {
                        progress = (stored, Instant::now());
                    } else if progress.1.elapsed() > STALL {
                        // tansu 0.6 now and then leaves a restarted static member without its
                        // partitions; a worker that stores nothing for that long is killed and
                        // started again (one more kill: the store must still end up exact).
                        eprintln!("no progress for {STALL:?} at {stored} alerts: restarting the worker");
                        kill_and_reap(&mut worker);
                        worker = spawn_worker();
                        progress = (stored, Instant::now());
                    }
                    assert!(
                        worker.try_wait().expect("status").is_none(),
                        "the worker stopped by itself"
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(random.below(300)));
                let killed = Command::new("kill")
                    .args(["-KILL", &worker.id().to_string()])
                    .status()
                    .expect("kill");
                assert!(killed.success());
                worker.wait().expect("reaped");
            }
            Crash::At(point) => {
                let at = format!("{point}:{}", random.below(3));
                // As above, a worker left without partitions is started again.
                let log_path = data_dir.path().join("crash.log");
                let (status, log) = loop {
                    let mut worker = Command::new(env!("CARGO_BIN_EXE_nightjar"))
                        .args(run_args)
                        .current_dir(repo())
                        .env_remove("NIGHTJAR_CONFIG")
                        .env("RUST_LOG", "error")
                        .env(instance.0, instance.1)
                        .env("NIGHTJAR_CRASH_AT", &at)
                        .stdout(Stdio::null())
                        .stderr(std::fs::File::create(&log_path).expect("log file"))
                        .spawn()
                        .expect("starting nightjar run");
                    let started = Instant::now();
                    let mut progress = (alerts_stored_so_far(&store), Instant::now());
                    let status = loop {
                        if let Some(status) = worker.try_wait().expect("status") {
                            break Some(status);
                        }
                        let stored = alerts_stored_so_far(&store);
                        if stored != progress.0 {
                            progress = (stored, Instant::now());
                        } else if progress.1.elapsed() > STALL && started.elapsed() > STALL {
                            break None;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    };
                    match status {
                        Some(status) => break (status, std::fs::read_to_string(&log_path).unwrap_or_default()),
                        None => {
                            eprintln!("no progress for {STALL:?} before {at}: restarting the worker");
                            kill_and_reap(&mut worker);
                        }
                    }
                };
                assert!(!status.success(), "{at}: the worker aborted");
                assert!(log.contains("crash test"), "{at}: {log}");
            }
        }
        let after = alerts_stored_so_far(&store);
        eprintln!("{crash:?}: {before} -> {after} alerts stored");
        assert!(after < N_ALERTS, "the crashes happen mid-stream");
    }
    assert_eq!(n_kills, 5);
    // Then run to the end, and once more to see that nothing is left uncommitted.
    let mut last = run_args.to_vec();
    last.extend(["--until-idle", "5"]);
    for _ in 0..4 {
        let finished = nightjar_with_env(&last, &[instance]);
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

    // Every alert stored exactly once, nothing rejected.
    let counts = store_counts(&store);
    eprintln!("{counts:?}");
    assert_eq!(counts.alerts, N_ALERTS, "every alert stored, none twice");
    assert_eq!(counts.objects, N_ALERTS);
    assert_eq!(counts.dead_letters, 0);

    // Every alert published at least once; the duplicates carry the same source id.
    let saved = data_dir.path().join("out.json");
    let consumed = nightjar(&[
        "consume",
        "--from",
        &output,
        "--timeout",
        "10",
        "--out",
        saved.to_str().expect("utf-8"),
    ]);
    assert!(consumed.status.success(), "{}", stderr(&consumed));
    eprintln!("consume: {}", stderr(&consumed).trim());
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
    assert_eq!(distinct.len() as u64, N_ALERTS, "every alert delivered at least once");
    assert_eq!(ids.len() as u64, N_ALERTS, "the client drops duplicates by source id");
    let stored: BTreeSet<i64> = stored_alert_rows(&store)
        .into_keys()
        .map(|(_, source_id)| source_id)
        .collect();
    assert_eq!(distinct, stored, "the alerts published are the alerts stored");
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
    // The second joins once the first works, and the first is stopped once both work (a
    // worker still starting up, under load, has no signal handler yet).
    let mut first = worker(&store_a, &[]);
    while alerts_stored_so_far(&store_a) == 0 {
        assert!(
            first.try_wait().expect("status").is_none(),
            "the first worker stopped by itself"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut second = worker(&store_b, &["--until-idle", "10"]);
    while alerts_stored_so_far(&store_b) == 0 && alerts_stored_so_far(&store_a) < N_ALERTS {
        assert!(
            second.try_wait().expect("status").is_none(),
            "the second worker stopped by itself"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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

/// The Python interpreter with the test tools (fink-client): `NIGHTJAR_PYTHON`, which
/// scripts/test.sh points at its virtual environment.
fn python() -> String {
    std::env::var("NIGHTJAR_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Every stored alert of an embedded store, by (survey, source id).
fn stored_alert_rows(dir: &std::path::Path) -> BTreeMap<(String, i64), nightjar_store::AlertRow> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let store = nightjar_store_sqlite::SqliteStore::open_read_only(dir).expect("store");
        let rows = nightjar_store::Store::latest_alerts(
            &store,
            nightjar_store::TimeWindow::ALL,
            &nightjar_store::AlertSelection::All,
            1_000_000,
        )
        .await
        .expect("stored alerts");
        rows.into_iter()
            .map(|row| ((row.detection.survey.to_string(), row.detection.source_id), row))
            .collect()
    })
}

#[test]
fn fink_client_and_parquet_files_hold_every_published_alert_as_nightjar_stored_it() {
    let brokers = testing::brokers();
    let dir = tempfile::tempdir().expect("tempdir");
    // Real alerts as the surveys publish them: ZTF Avro containers (schemas 1.8 to 4.02),
    // Rubin Confluent wire messages (schemas 7.1 to 11.0; the 11.1 one nightjar does not know
    // becomes a dead letter and is not published) and a native Rubin container. (The other
    // synthetic pittgoogle-client samples repeat the 11.0 one's ids in older schemas.)
    let surveys: [(&str, &[&str]); 2] = [
        (
            "ztf",
            &[
                "tests/data/ztf/alerts/skyportal_20180626_v1.8",
                "tests/data/ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3",
                "tests/data/ztf/alerts/pittgoogle_20210831-0901_v3.3",
                "tests/data/ztf/alerts/kowalski_20231012_v4.01",
                "tests/data/ztf/alerts/boom_20240715_v4.02",
            ],
        ),
        (
            "rubin",
            &[
                "tests/data/lsst/wire/alerce_v7.4",
                "tests/data/lsst/wire/boom",
                "tests/data/lsst/wire/pittgoogle-client/lsst.v11_0.avro",
                "tests/data/lsst/wire/pittgoogle-client/lsst.v11_1.avro",
                "tests/data/lsst/alerts/alerce_v9.0",
            ],
        ),
    ];
    // Both surveys stream at once, each through its own worker, store and output topic.
    let mut workers = Vec::new();
    let mut output_topics = BTreeMap::new();
    for (survey, inputs) in surveys {
        let input = format!("kafka://{brokers}/{}", unique_name(&format!("fink-{survey}-in")));
        let output_topic = unique_name(&format!("fink-{survey}-out"));
        let mut args = vec!["produce", "--to", &input, "--partitions", "2"];
        for path in inputs {
            args.extend(["--from", path]);
        }
        let produced = nightjar(&args);
        assert!(produced.status.success(), "{}", stderr(&produced));
        let store = dir.path().join(survey);
        let worker = Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .args([
                "run",
                "--source",
                &input,
                "--sink",
                &format!("kafka://{brokers}/{output_topic}"),
                "--group",
                &unique_name("fink-group"),
                "--until-idle",
                "5",
                "--quiet",
                "--data-dir",
                store.to_str().expect("utf-8"),
            ])
            .current_dir(repo())
            .env_remove("NIGHTJAR_CONFIG")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nightjar run");
        workers.push((survey, worker, store));
        output_topics.insert(survey, output_topic);
    }

    // The reference: nightjar's decoding of each input alert (every raw field), with what the
    // worker stored for it (ids, brightness, module values).
    let reference_path = dir.path().join("reference.jsonl");
    let mut reference = String::new();
    let mut n_expected = BTreeMap::new();
    for ((survey, worker, store), (_, inputs)) in workers.into_iter().zip(surveys) {
        let finished = worker.wait_with_output().expect("the worker exits");
        assert!(finished.status.success(), "{survey}: {}", stderr(&finished));
        let stored = stored_alert_rows(&store);
        let mut args = vec!["inspect"];
        args.extend(inputs);
        let inspected = nightjar(&args);
        let decoded: Vec<serde_json::Value> = stdout(&inspected)
            .lines()
            .map(|line| serde_json::from_str(line).expect("inspect prints JSON lines"))
            .collect();
        assert_eq!(
            decoded.len(),
            stored.len(),
            "{survey}: every decodable alert stored once"
        );
        for alert in decoded {
            let source_id = alert["source_id"].as_i64().expect("a source id");
            let row = &stored[&(survey.to_string(), source_id)];
            let line = serde_json::json!({
                "survey": survey,
                "source_id": source_id,
                "object_id": row.detection.object_id,
                "magnitude": row.detection.magnitude,
                "flux": row.detection.flux,
                "raw": alert["raw"],
                "modules": row.modules,
            });
            reference.push_str(&line.to_string());
            reference.push('\n');
        }
        n_expected.insert(survey, stored.len());
    }
    assert!(n_expected["ztf"] >= 40 && n_expected["rubin"] >= 10, "{n_expected:?}");
    std::fs::write(&reference_path, reference).expect("reference");

    // nightjar's own client saves the output topics as Parquet (one file per schema).
    let mut parquet_files = Vec::new();
    for (survey, topic) in &output_topics {
        let out = dir.path().join(format!("{survey}.parquet"));
        let consumed = nightjar(&[
            "consume",
            "--from",
            &format!("kafka://{brokers}/{topic}"),
            "--timeout",
            "10",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(consumed.status.success(), "{}", stderr(&consumed));
        assert!(
            stderr(&consumed).starts_with(&format!("{} alerts", n_expected[survey])),
            "{}",
            stderr(&consumed)
        );
    }
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|extension| extension == "parquet") {
            parquet_files.push(path);
        }
    }
    // ZTF's alerts here have one schema per version; so have Rubin's.
    assert!(parquet_files.len() >= 6, "{parquet_files:?}");

    let mut check = Command::new(python());
    check
        .arg("scripts/fink_client_check.py")
        .args(["--brokers", &brokers, "--reference"])
        .arg(&reference_path)
        .args([
            "--ztf-topic",
            &output_topics["ztf"],
            "--lsst-topic",
            &output_topics["rubin"],
        ]);
    for path in &parquet_files {
        check.arg("--parquet").arg(path);
    }
    let check = check.current_dir(repo()).output().unwrap_or_else(|error| {
        panic!(
            "running {} (set NIGHTJAR_PYTHON, or use scripts/test.sh): {error}",
            python()
        )
    });
    let report = stdout(&check);
    eprintln!("fink-client: {report}{}", stderr(&check));
    assert!(check.status.success(), "{report}\n{}", stderr(&check));
    let report: serde_json::Value = serde_json::from_str(report.trim()).expect("one JSON line");
    assert_eq!(report["by_survey"]["ztf"], n_expected["ztf"], "{report}");
    assert_eq!(report["by_survey"]["lsst"], n_expected["rubin"], "{report}");
    assert_eq!(report["problems"], 0, "{report}");
    assert!(report["module_columns"].as_u64() >= Some(10), "{report}");
    assert_eq!(
        report["parquet"]["rows"],
        n_expected["ztf"] + n_expected["rubin"],
        "every alert once in the Parquet files: {report}"
    );
    assert_eq!(
        report["parquet"]["module_columns"], report["module_columns"],
        "{report}"
    );
}

/// A runtime for the test's own Kafka clients.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Source ids of the alerts `nightjar consume --out FILE.json` saved.
fn saved_source_ids(path: &std::path::Path) -> BTreeSet<i64> {
    std::fs::read_to_string(path)
        .expect("saved alerts")
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["source_id"]
                .as_i64()
                .expect("id")
        })
        .collect()
}

#[test]
fn consume_since_a_time_reads_only_what_was_published_from_then_on() {
    let brokers = testing::brokers();
    let connection = testing::connection();
    let topic = unique_name("since");
    // Records in nightjar's output format (key = the schema, value = the datum) of real ZTF
    // alerts, in two rounds a second apart.
    let mut files: Vec<std::path::PathBuf> =
        std::fs::read_dir(repo().join("tests/data/ztf/alerts/boom_20240715_v4.02"))
            .expect("list")
            .map(|entry| entry.expect("entry").path())
            .collect();
    files.sort();
    let (first, second) = files.split_at(4);
    let runtime = runtime();
    let mut producer = runtime.block_on(async {
        nightjar_kafka::ensure_topics(&connection, &[nightjar_kafka::TopicSpec::new(&topic, 2)])
            .await
            .expect("topic");
        nightjar_kafka::MessageProducer::connect(
            &connection,
            &nightjar_kafka::KafkaSinkConfig::default(),
            &topic,
            Duration::from_secs(30),
        )
        .await
        .expect("producer")
    });
    let mut publish = |files: &[std::path::PathBuf]| {
        runtime.block_on(async {
            for file in files {
                let bytes = std::fs::read(file).expect("alert");
                let mut cache = nightjar_avro::SchemaCache::new();
                let container = nightjar_avro::Container::open(&bytes, &mut cache).expect("container");
                for datum in container.datums().expect("datums") {
                    producer
                        .send(Some(container.schema.json.as_bytes()), &datum, None, &[])
                        .await
                        .expect("send");
                }
            }
            producer.flush().await.expect("delivered");
        });
    };
    publish(first);
    std::thread::sleep(Duration::from_millis(1100));
    let since_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as f64;
    let since = nightjar_core::calendar::mjd_to_iso(since_ms / 86_400_000.0 + 40_587.0);
    std::thread::sleep(Duration::from_millis(100));
    publish(second);

    let dir = tempfile::tempdir().expect("tempdir");
    let consume_since = |since: &str| {
        let out = dir.path().join("since.json");
        let consumed = nightjar(&[
            "consume",
            "--from",
            &format!("kafka://{brokers}/{topic}"),
            "--since",
            since,
            "--timeout",
            "5",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(consumed.status.success(), "--since {since}: {}", stderr(&consumed));
        saved_source_ids(&out)
    };
    let second_paths: Vec<&str> = second.iter().map(|path| path.to_str().expect("utf-8")).collect();
    assert_eq!(consume_since(&since), source_ids_of(&second_paths), "--since {since}");
    let all_paths: Vec<&str> = files.iter().map(|path| path.to_str().expect("utf-8")).collect();
    assert_eq!(consume_since("2020-01-01"), source_ids_of(&all_paths));
    assert!(consume_since("2100-01-01T00:00").is_empty());

    let bad = nightjar(&[
        "consume",
        "--from",
        &format!("kafka://{brokers}/{topic}"),
        "--since",
        "yesterday",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("YYYY-MM-DD"), "{}", stderr(&bad));
}

#[test]
fn undecodable_messages_go_to_the_dead_letter_topic_with_their_origin() {
    let brokers = testing::brokers();
    let connection = testing::connection();
    let input = unique_name("dlq-in");
    let dead_letter_topic = unique_name("dlq");
    let dir = tempfile::tempdir().expect("tempdir");
    let real: Vec<Vec<u8>> = ["2752190653015010019", "2752190655615010016", "2752190655615010044"]
        .iter()
        .map(|name| {
            std::fs::read(repo().join(format!("tests/data/ztf/alerts/boom_20240715_v4.02/{name}.avro"))).expect("alert")
        })
        .collect();
    let garbage = b"not an alert at all".to_vec();
    let truncated = real[1][..2000].to_vec();
    let messages = vec![
        real[0].clone(),
        garbage.clone(),
        real[1].clone(),
        truncated.clone(),
        real[2].clone(),
    ];
    let runtime = runtime();
    runtime.block_on(async {
        nightjar_kafka::ensure_topics(&connection, &[nightjar_kafka::TopicSpec::new(&input, 1)])
            .await
            .expect("topic");
        testing::produce(&testing::producer(&connection), &input, &messages, None).await;
    });

    let config = dir.path().join("nightjar.toml");
    std::fs::write(
        &config,
        format!("[kafka.sink]\ndead_letter_topic = \"{dead_letter_topic}\"\n"),
    )
    .expect("config");
    let store = dir.path().join("store");
    let run = nightjar(&[
        "--config",
        config.to_str().expect("utf-8"),
        "run",
        "--source",
        &format!("kafka://{brokers}/{input}"),
        "--group",
        &unique_name("dlq-group"),
        "--until-idle",
        "5",
        "--quiet",
        "--data-dir",
        store.to_str().expect("utf-8"),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run)
            .lines()
            .any(|line| line.contains("dead letters out") && line.ends_with(" 2")),
        "{}",
        stderr(&run)
    );

    // The dead-letter topic holds both bad messages, as received, with where they came from.
    let records = runtime.block_on(async {
        let config = nightjar_kafka::KafkaSourceConfig {
            topics: vec![dead_letter_topic.clone()],
            group_id: unique_name("dlq-reader"),
            max_wait_ms: 500,
            ..nightjar_kafka::KafkaSourceConfig::default()
        };
        let source = nightjar_kafka::KafkaSource::connect_since(&connection, &config, 0, Duration::from_secs(30))
            .await
            .expect("reader");
        let mut records = Vec::new();
        for _ in 0..40 {
            records.extend(source.next_batch().await.expect("batch").records);
            if records.len() >= 2 {
                break;
            }
        }
        records
    });
    assert_eq!(records.len(), 2, "{records:?}");
    let header = |record: &nightjar_kafka::KafkaRecord, name: &str| {
        String::from_utf8(record.header(name).expect(name).to_vec()).expect("utf-8")
    };
    for (record, (bytes, offset)) in records.iter().zip([(&garbage, "1"), (&truncated, "3")]) {
        assert_eq!(&record.payload, bytes);
        assert_eq!(header(record, nightjar_kafka::DEAD_LETTER_TOPIC_HEADER), input);
        assert_eq!(header(record, nightjar_kafka::DEAD_LETTER_PARTITION_HEADER), "0");
        assert_eq!(header(record, nightjar_kafka::DEAD_LETTER_OFFSET_HEADER), offset);
        assert!(!header(record, nightjar_kafka::DEAD_LETTER_REASON_HEADER).is_empty());
        assert!(
            header(record, nightjar_kafka::DEAD_LETTER_ERROR_HEADER).contains(&format!("offset {offset}")),
            "{}",
            header(record, nightjar_kafka::DEAD_LETTER_ERROR_HEADER)
        );
    }
    let counts = runtime.block_on(async {
        let store = nightjar_store_sqlite::SqliteStore::open_read_only(&store).expect("store");
        nightjar_store::Store::counts(&store).await.expect("counts")
    });
    assert_eq!((counts.alerts, counts.dead_letters), (3, 2));
}
