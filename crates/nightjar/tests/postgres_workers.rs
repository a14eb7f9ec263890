//! Several `nightjar run` workers, one Kafka consumer group, one PostgreSQL store: two worker
//! processes read a ZTF topic and a Rubin topic (tansu, started by the Kafka test support) into
//! one throwaway PostgreSQL database, and every alert is stored exactly once.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{nightjar, repo, source_ids_of, stderr};
use nightjar_kafka::testing::{self, unique_name};

#[path = "../../nightjar-store-postgres/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

/// A `nightjar run` process whose standard error is read line by line on a thread.
struct Worker {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Worker {
    fn start(args: &[String]) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .args(args)
            .current_dir(repo())
            .env_remove("NIGHTJAR_CONFIG")
            // The consumer logs its partition assignments at info.
            .env("RUST_LOG", "error,nightjar_kafka=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting a worker");
        let stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Worker {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits (at most `limit`) for a log line containing `text`; false if none came.
    fn wait_for(&mut self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.log.push(line);
                    if found {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Asks the worker to stop (SIGTERM: it finishes and commits its batch), waits for it and
    /// returns its whole log.
    fn stop(mut self) -> (bool, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("the worker exits");
        self.log.extend(self.lines.iter());
        (status.success(), self.log.join("\n"))
    }
}

/// The number after `label` in a run summary.
fn summary_count(log: &str, label: &str) -> u64 {
    log.lines()
        .find(|line| line.trim_start().starts_with(label))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in the summary:\n{log}"))
}

/// Counts in the PostgreSQL store.
struct Rows {
    alerts: i64,
    distinct_alerts: i64,
    alert_ids: BTreeSet<i64>,
    detections: i64,
    distinct_detections: i64,
    objects: i64,
}

async fn rows(url: &str) -> Rows {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test database");
    let connection = tokio::spawn(connection);
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.expect(sql).get::<_, i64>(0) }
    };
    let alerts = count("SELECT count(*) FROM alerts").await;
    let distinct_alerts = count("SELECT count(DISTINCT (survey, source_id)) FROM alerts").await;
    let detections = count("SELECT count(*) FROM detections").await;
    let distinct_detections = count("SELECT count(DISTINCT (survey, source_id)) FROM detections").await;
    let objects = count("SELECT count(*) FROM objects").await;
    let alert_ids = client
        .query("SELECT source_id FROM alerts", &[])
        .await
        .expect("alert ids")
        .iter()
        .map(|row| row.get::<_, i64>(0))
        .collect();
    drop(client);
    let _ = connection.await;
    Rows {
        alerts,
        distinct_alerts,
        alert_ids,
        detections,
        distinct_detections,
        objects,
    }
}

#[test]
fn two_workers_in_one_group_store_every_alert_once_in_one_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime.block_on(support::fresh_database());
    let brokers = testing::brokers();
    let (ztf_topic, rubin_topic) = (unique_name("pg-ztf"), unique_name("pg-rubin"));
    let dir = tempfile::tempdir().expect("tempdir");
    // One message per producer batch: tansu 0.6 answers a fetch from an offset inside a record
    // batch with the next batch, and workers resume at such offsets after a rebalance.
    let config = dir.path().join("nightjar.toml");
    std::fs::write(&config, "[kafka.properties]\n\"batch.num.messages\" = \"1\"\n").expect("config");
    let config = config.to_str().expect("utf-8").to_string();
    let produce = |topic: &str, from: &str| {
        let produced = nightjar(&[
            "--config",
            &config,
            "produce",
            "--to",
            &format!("kafka://{brokers}/{topic}"),
            "--from",
            from,
            "--partitions",
            "4",
        ]);
        assert!(produced.status.success(), "{}", stderr(&produced));
    };

    // The real alerts as they are, then unique copies amplified from them.
    let (real_ztf, real_rubin) = ("tests/data/ztf/alerts/boom_20240715_v4.02", "tests/data/lsst/wire/boom");
    let (copies_ztf, copies_rubin) = (dir.path().join("ztf"), dir.path().join("rubin"));
    let (copies_ztf, copies_rubin) = (
        copies_ztf.to_str().expect("utf-8"),
        copies_rubin.to_str().expect("utf-8"),
    );
    // Different seeds: different ids for the two surveys' copies.
    for (survey, count, out, from, seed) in [
        ("ztf", "600", copies_ztf, real_ztf, "7"),
        ("rubin", "200", copies_rubin, "tests/data/lsst/wire", "8"),
    ] {
        let simulated = nightjar(&[
            "simulate", "--survey", survey, "--count", count, "--out", out, "--from", from, "--seed", seed,
        ]);
        assert!(simulated.status.success(), "{}", stderr(&simulated));
    }
    let expected = source_ids_of(&[real_ztf, real_rubin, copies_ztf, copies_rubin]);
    assert!(expected.len() >= 800, "{} alerts", expected.len());

    // The real alerts first (the topics are created), read by the first worker alone.
    produce(&ztf_topic, real_ztf);
    produce(&rubin_topic, real_rubin);
    let group = unique_name("pg-group");
    let worker_args = || -> Vec<String> {
        [
            "--config",
            &config,
            "--store",
            &url,
            "run",
            "--source",
            &format!("kafka://{brokers}/{ztf_topic},{rubin_topic}"),
            "--group",
            &group,
            "--quiet",
            "--batch-size",
            "50",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect()
    };
    let join_limit = Duration::from_secs(120);
    let mut first = Worker::start(&worker_args());
    assert!(
        first.wait_for("partitions assigned", join_limit),
        "the first worker got no partitions:\n{}",
        first.log.join("\n")
    );
    // The second joins the group; the group rebalances and each takes a share of the partitions.
    let mut second = Worker::start(&worker_args());
    assert!(
        second.wait_for("partitions assigned", join_limit),
        "the second worker got no partitions:\n{}",
        second.log.join("\n")
    );

    // Then the copies, split between the two workers by partition.
    produce(&ztf_topic, copies_ztf);
    produce(&rubin_topic, copies_rubin);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut stored = runtime.block_on(rows(&url));
    while stored.alerts < expected.len() as i64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        stored = runtime.block_on(rows(&url));
    }
    let (first_ok, first_log) = first.stop();
    let (second_ok, second_log) = second.stop();
    assert!(first_ok, "first worker:\n{first_log}");
    assert!(second_ok, "second worker:\n{second_log}");

    // Every alert stored, none twice, none that was not produced.
    let stored = runtime.block_on(rows(&url));
    assert_eq!(stored.alerts, expected.len() as i64, "alerts rows");
    assert_eq!(stored.distinct_alerts, stored.alerts, "no alert stored twice");
    assert_eq!(stored.alert_ids, expected, "the stored alerts are the produced ones");
    assert_eq!(
        stored.distinct_detections, stored.detections,
        "no detection stored twice"
    );
    assert!(stored.detections > stored.alerts, "histories stored too");

    // Both workers stored alerts, and what each reports as new adds up to the table: no alert,
    // detection or object was counted as new by both.
    let new_alerts = [&first_log, &second_log].map(|log| summary_count(log, "alerts stored (new)"));
    eprintln!("new alerts by worker: {new_alerts:?} of {}", expected.len());
    assert!(new_alerts.iter().all(|&count| count > 0), "both worked: {new_alerts:?}");
    assert_eq!(new_alerts.iter().sum::<u64>(), expected.len() as u64);
    let new_detections: u64 = [&first_log, &second_log]
        .map(|log| summary_count(log, "new detections"))
        .iter()
        .sum();
    assert_eq!(new_detections, stored.detections as u64);
    let new_objects: u64 = [&first_log, &second_log]
        .map(|log| summary_count(log, "new objects"))
        .iter()
        .sum();
    assert_eq!(new_objects, stored.objects as u64);
}
