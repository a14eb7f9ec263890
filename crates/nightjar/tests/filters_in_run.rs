//! Filters inside `nightjar run`: on real alerts, what a filter passes reaches its file sink,
//! its webhook (a real HTTP server in the test) and its Kafka topic (tansu); a replay
//! overwrites instead of duplicating; the run's Prometheus metrics count modules and filters.

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{repo, stderr};
use nightjar_kafka::testing::{self, unique_name};

/// The ZTF alerts of tests/data with a known solar-system object within 5 arcsec (the
/// fixture of filters/known_solar_system_ztf.toml).
const KNOWN_SSO: [i64; 4] = [
    2475433850415015017,
    1034530232615015004,
    1034529320615015011,
    1034531144615015006,
];

/// The built-in filter with its sinks replaced.
fn write_filter(dir: &Path, name: &str, payload: &str, sinks: &str) {
    let text = std::fs::read_to_string(repo().join("filters/known_solar_system_ztf.toml")).expect("built-in filter");
    let body = text
        .split("[[sinks]]")
        .next()
        .expect("the filter before its sinks")
        .replace("name = \"known_solar_system_ztf\"", &format!("name = \"{name}\""))
        .replace("payload = \"lite\"", &format!("payload = \"{payload}\""));
    std::fs::write(dir.join(format!("{name}.toml")), format!("{body}\n{sinks}")).expect("write filter");
}

fn nightjar_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(args)
        .current_dir(repo())
        .env_remove("NIGHTJAR_CONFIG")
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .output()
        .expect("running nightjar")
}

/// A webhook endpoint: every JSON body posted to it.
struct Webhook {
    address: String,
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    _runtime: tokio::runtime::Runtime,
}

fn start_webhook() -> Webhook {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let bodies: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let seen = Arc::clone(&bodies);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    runtime.spawn(async move { axum::serve(listener, app).await });
    Webhook {
        address,
        bodies,
        _runtime: runtime,
    }
}

/// One HTTP/1.1 GET; the body.
fn get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connecting to the server");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

/// The value of one series in a Prometheus exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn jsonl_source_ids(files: &[PathBuf]) -> Vec<i64> {
    let mut ids: Vec<i64> = files
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .expect("read sink file")
                .lines()
                .map(|line| {
                    serde_json::from_str::<serde_json::Value>(line).expect("JSON line")["source_id"]
                        .as_i64()
                        .expect("source id")
                })
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn a_file_run_delivers_filter_passes_to_files_and_webhooks_and_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let filters = dir.path().join("filters");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&filters).expect("filters dir");
    let webhook = start_webhook();
    write_filter(
        &filters,
        "sso_files",
        "lite",
        &format!(
            "[[sinks]]\nkind = \"file\"\ndirectory = \"{}\"\nformat = \"jsonl\"\n\n[[sinks]]\nkind = \"webhook\"\nurl = \"http://{}/hook\"\n",
            out.display(),
            webhook.address
        ),
    );
    // Broken filter files next to it are rejected with their reason; the run goes on.
    std::fs::write(
        filters.join("broken.toml"),
        "name = \"broken\"\ndescription = \"d\"\nsql = \"SELEC objectId FROM alerts\"\n",
    )
    .expect("write");
    std::fs::write(
        filters.join("misspelt.toml"),
        "name = \"misspelt\"\ndescription = \"d\"\nsql = \"candidate.magpfs < 18\"\n",
    )
    .expect("write");
    let data_dir = dir.path().join("data");
    let filters_dir = filters.to_str().expect("utf-8").to_string();
    let env = [
        ("NIGHTJAR__FILTERS__DIRECTORY", filters_dir.as_str()),
        ("NIGHTJAR__SERVE__LISTEN", "127.0.0.1:0"),
    ];

    // Run with --serve: once ingested, the API's /metrics has the run's metrics.
    let mut server = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["run", "--serve", "--source", "tests/data/ztf", "--quiet", "--data-dir"])
        .arg(&data_dir)
        .current_dir(repo())
        .env_remove("NIGHTJAR_CONFIG")
        .env("RUST_LOG", "error")
        .envs(env)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run --serve");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr"))
        .lines()
        .map_while(Result::ok);
    // The filter errors come first, then the server's banner, then the summary.
    let mut log: Vec<String> = Vec::new();
    let address = loop {
        let line = lines.next().unwrap_or_else(|| panic!("no banner in {log:?}"));
        if let Some((_, rest)) = line
            .split_once("serving ")
            .and_then(|(_, rest)| rest.split_once("http://"))
        {
            break rest.split_once(": ").expect("address").0.to_string();
        }
        log.push(line);
    };
    log.extend(lines.by_ref().take_while(|line| !line.contains("still serving")));
    let log = log.join("\n");
    assert!(get(&address, "/health").contains("ok"));
    let metrics = get(&address, "/metrics");
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(server.wait().expect("wait").success(), "{log}");

    // The broken files are named in the log with their reasons.
    assert!(
        log.contains("filter rejected: filter broken: SQL syntax error"),
        "{log}"
    );
    assert!(
        log.contains("candidate.magpsf"),
        "the misspelt column's close name: {log}"
    );

    // The summary counts the filter's passes.
    let passed = log
        .lines()
        .find(|line| line.trim_start().starts_with("sso_files"))
        .and_then(|line| line.split_whitespace().last())
        .and_then(|count| count.parse::<usize>().ok());
    assert_eq!(passed, Some(KNOWN_SSO.len()), "{log}");

    // Files: one JSON line per passing alert, lite payload (selected columns, light curve).
    let files = files_under(&out);
    assert!(!files.is_empty(), "no sink file under {}: {log}", out.display());
    let mut expected: Vec<i64> = KNOWN_SSO.to_vec();
    expected.sort_unstable();
    assert_eq!(jsonl_source_ids(&files), expected);
    let first_line = std::fs::read_to_string(&files[0]).expect("read");
    let row: serde_json::Value = serde_json::from_str(first_line.lines().next().expect("a line")).expect("JSON");
    assert!(row["candidate.ssnamenr"].is_string(), "{row}");
    assert!(!row["light_curve"].as_array().expect("light curve").is_empty(), "{row}");

    // The webhook got each passing alert once, with the filter's name.
    let posted: BTreeSet<i64> = webhook
        .bodies
        .lock()
        .expect("lock")
        .iter()
        .map(|body| {
            assert_eq!(body["filter"], "sso_files", "{body}");
            body["source_id"].as_i64().expect("source id")
        })
        .collect();
    assert_eq!(posted, KNOWN_SSO.iter().copied().collect::<BTreeSet<_>>(), "{log}");
    assert_eq!(webhook.bodies.lock().expect("lock").len(), KNOWN_SSO.len());

    // Metrics: modules, filters, decoded alerts, and the API's own series.
    let filter_passed = series(&metrics, r#"nightjar_filter_alerts_passed_total{filter="sso_files"}"#);
    assert_eq!(filter_passed, Some(KNOWN_SSO.len() as f64), "{metrics}");
    let decoded = series(&metrics, r#"nightjar_alerts_decoded_total{survey="ztf"}"#).expect("decoded");
    assert!(decoded >= 70.0, "{metrics}");
    let rates = series(&metrics, r#"nightjar_module_alerts_total{module="rates"}"#).expect("module series");
    assert_eq!(rates, decoded, "{metrics}");
    assert!(series(&metrics, r#"nightjar_filters_active"#) == Some(1.0), "{metrics}");
    let rejected = series(&metrics, r#"nightjar_filter_reloads_total{outcome="rejected"}"#);
    assert_eq!(rejected, Some(1.0), "{metrics}");
    assert!(metrics.contains("nightjar_http_requests_total{"), "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    assert_eq!(metrics.matches("# EOF").count(), 1, "{metrics}");

    // A replay of the same input overwrites the same files and posts nothing again.
    let again = nightjar_with(
        &env,
        &[
            "run",
            "--source",
            "tests/data/ztf",
            "--quiet",
            "--data-dir",
            data_dir.to_str().expect("utf-8"),
        ],
    );
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(files_under(&out), files, "the same files, not new ones");
    assert_eq!(jsonl_source_ids(&files), expected);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(webhook.bodies.lock().expect("lock").len(), KNOWN_SSO.len());
}

#[test]
fn a_kafka_run_publishes_each_filter_to_its_topic() {
    let brokers = testing::brokers();
    let input_topic = unique_name("filters-in");
    let input = format!("kafka://{brokers}/{input_topic}");
    let produced = nightjar_with(&[], &["produce", "--to", &input, "--from", "tests/data/ztf"]);
    assert!(produced.status.success(), "{}", stderr(&produced));

    let dir = tempfile::tempdir().expect("tempdir");
    let filters = dir.path().join("filters");
    std::fs::create_dir_all(&filters).expect("filters dir");
    let prefix = unique_name("f");
    let sink = format!("[[sinks]]\nkind = \"kafka\"\ntopic = \"{prefix}_{{filter}}_{{survey}}\"\n");
    write_filter(&filters, "sso_lite", "lite", &sink);
    write_filter(&filters, "sso_full", "full", &sink);
    let filters_dir = filters.to_str().expect("utf-8").to_string();
    let run = nightjar_with(
        &[("NIGHTJAR__FILTERS__DIRECTORY", filters_dir.as_str())],
        &[
            "run",
            "--source",
            &input,
            "--group",
            &unique_name("filters-group"),
            "--until-idle",
            "3",
            "--quiet",
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
        ],
    );
    let log = stderr(&run);
    assert!(run.status.success(), "{log}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let read_topic = |topic: String| -> Vec<nightjar_kafka::KafkaRecord> {
        runtime.block_on(async {
            let config = nightjar_kafka::KafkaSourceConfig {
                topics: vec![topic],
                group_id: unique_name("filters-reader"),
                max_wait_ms: 300,
                ..nightjar_kafka::KafkaSourceConfig::default()
            };
            let source = nightjar_kafka::KafkaSource::connect(&testing::connection(), &config, Duration::from_secs(10))
                .await
                .expect("reader");
            let mut records = Vec::new();
            let started = std::time::Instant::now();
            while records.len() < KNOWN_SSO.len() && started.elapsed() < Duration::from_secs(30) {
                records.extend(source.next_batch().await.expect("read").records);
            }
            source.close();
            records
        })
    };
    let expected: BTreeSet<i64> = KNOWN_SSO.iter().copied().collect();
    let source_ids = |records: &[nightjar_kafka::KafkaRecord]| -> BTreeSet<i64> {
        records
            .iter()
            .map(|record| {
                std::str::from_utf8(record.header("source_id").expect("source_id header"))
                    .expect("utf-8")
                    .parse()
                    .expect("number")
            })
            .collect()
    };

    // lite: JSON rows with the selected columns.
    let lite = read_topic(format!("{prefix}_sso_lite_ztf"));
    assert_eq!(lite.len(), KNOWN_SSO.len(), "{log}");
    assert_eq!(source_ids(&lite), expected);
    for record in &lite {
        assert_eq!(record.header("content-type"), Some(&b"application/json"[..]));
        let row: serde_json::Value = serde_json::from_slice(&record.payload).expect("JSON value");
        assert!(row["candidate.ssdistnr"].as_f64().expect("ssdistnr") < 5.0, "{row}");
        let header = std::str::from_utf8(record.header("source_id").expect("header")).expect("utf-8");
        assert_eq!(row["source_id"].to_string(), header);
    }

    // full: the enriched Avro alert, its schema as the key (what fink-client reads).
    let full = read_topic(format!("{prefix}_sso_full_ztf"));
    assert_eq!(full.len(), KNOWN_SSO.len(), "{log}");
    assert_eq!(source_ids(&full), expected);
    for record in &full {
        let key = record.key.as_deref().expect("schema key");
        let schema: serde_json::Value = serde_json::from_slice(key).expect("schema JSON");
        assert!(schema.to_string().contains("\"roid\""), "module outputs in the schema");
        assert!(record.header("content-type").is_none());
        assert!(record.payload.len() > 1_000);
    }
}
