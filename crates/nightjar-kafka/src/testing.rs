//! Test support (feature `testing`): a real tansu broker for the test process, unique topic and
//! group names per test, and a plain producer for putting test messages on a topic.
//!
//! The broker is `NIGHTJAR_KAFKA_BROKERS` when set; otherwise one tansu per test process,
//! started on a free loopback port with in-memory storage and stopped when the process ends
//! (a watchdog shell kills it once the test process is gone). The binary is found through
//! `NIGHTJAR_TANSU`, `~/.cache/nightjar/tansu/bin/tansu` (what `scripts/tansu.sh install`
//! builds) or the PATH.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::config::KafkaConnection;

static BROKERS: OnceLock<Result<String, String>> = OnceLock::new();

/// The brokers of the test broker, starting it on first use.
///
/// # Panics
/// When no broker is configured and tansu cannot be found or started: the message says how
/// to install it.
pub fn brokers() -> String {
    match BROKERS.get_or_init(start_or_find) {
        Ok(brokers) => brokers.clone(),
        Err(reason) => panic!("no Kafka broker for the tests: {reason}"),
    }
}

/// A plaintext connection to the test broker.
pub fn connection() -> KafkaConnection {
    KafkaConnection::plaintext(brokers())
}

/// A name no other test (in this run or an earlier one on the same broker) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NIGHTJAR_TANSU") {
        return Some(PathBuf::from(path));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = PathBuf::from(home).join(".cache/nightjar/tansu/bin/tansu");
        if cached.is_file() {
            return Some(cached);
        }
    }
    let on_path = Command::new("tansu")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    on_path.then(|| PathBuf::from("tansu"))
}

fn start_or_find() -> Result<String, String> {
    if let Ok(brokers) = std::env::var("NIGHTJAR_KAFKA_BROKERS")
        && !brokers.trim().is_empty()
    {
        return Ok(brokers);
    }
    let binary = tansu_binary().ok_or_else(|| {
        "tansu is not installed (run scripts/tansu.sh install, or set NIGHTJAR_TANSU or NIGHTJAR_KAFKA_BROKERS)"
            .to_string()
    })?;
    start_tansu(&binary)
}

/// Starts tansu on a free loopback port; returns `127.0.0.1:PORT` once it accepts connections.
pub fn start_tansu(binary: &std::path::Path) -> Result<String, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("finding a free port: {error}"))?
        .port();
    let address = format!("127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("nightjar-tansu-{port}.log"));
    // tansu runs under a watchdog shell that stops it when this process is gone, however the
    // test process ends.
    let script = format!(
        "'{binary}' broker --listener-url tcp://{address} --advertised-listener-url tcp://{address} \
         --storage-engine memory://tansu/ >'{log}' 2>&1 & tansu=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $tansu 2>/dev/null; do sleep 0.5; done; \
         kill $tansu 2>/dev/null",
        binary = binary.display(),
        log = log.display(),
        parent = std::process::id(),
    );
    Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| format!("starting {}: {error}", binary.display()))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if std::net::TcpStream::connect(&address).is_ok() {
            return Ok(address);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "tansu did not listen on {address} within 20 s (log: {})",
        log.display()
    ))
}

/// A producer for test messages.
pub fn producer(connection: &KafkaConnection) -> FutureProducer {
    let mut config = connection.client_config();
    config.set("acks", "all").set("message.max.bytes", "16777216");
    config.create().expect("a test producer")
}

/// Produces `values` to `topic` (partition chosen round-robin over `partitions`, or by
/// librdkafka when `None`), each with a `source_id`-less plain record, and waits for every
/// delivery.
pub async fn produce(producer: &FutureProducer, topic: &str, values: &[Vec<u8>], partitions: Option<i32>) {
    for (index, value) in values.iter().enumerate() {
        let mut record =
            FutureRecord::<[u8], [u8]>::to(topic)
                .payload(value.as_slice())
                .headers(OwnedHeaders::new().insert(Header {
                    key: "test_index",
                    value: Some(index.to_string().as_bytes()),
                }));
        if let Some(partitions) = partitions {
            record = record.partition(index as i32 % partitions);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .unwrap_or_else(|(error, _)| panic!("producing test message {index} to {topic}: {error}"));
    }
}
