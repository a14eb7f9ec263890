//! End to end on a real broker (tansu): real ZTF and Rubin alerts are produced to a topic,
//! consumed in micro-batches, stored, published to an output topic and committed; the output is
//! read back and compared with the input, record by record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nightjar_avro::WriterSchema;
use nightjar_core::{Origin, Survey};
use nightjar_decode::Decoder;
use nightjar_kafka::testing::{self, unique_name};
use nightjar_kafka::{
    AlertSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig, RawRecords, SOURCE_ID_HEADER, StreamOptions,
    StreamParts, TopicSpec, ensure_topics, partition_for, run_stream,
};
use nightjar_pipeline::{FilterSinks, FilterStage};
use nightjar_store::Store;
use nightjar_store_sqlite::SqliteStore;

/// The ids of an output value, read with the schema in its key.
#[derive(Debug, serde::Deserialize)]
#[allow(non_snake_case)]
struct OutputIds {
    candid: Option<i64>,
    objectId: Option<String>,
    diaSource: Option<DiaSourceIds>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(non_snake_case)]
struct DiaSourceIds {
    diaSourceId: Option<i64>,
}

const CONNECT: Duration = Duration::from_secs(30);

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// Every real alert file, in name order.
fn alert_files() -> Vec<PathBuf> {
    nightjar_pipeline::avro_files_in(&data_dir()).expect("tests/data")
}

/// What each input message should give: per source id, the raw datum and its schema.
/// An expected output: value, key schema, object id, survey.
type ExpectedOutput = (Vec<u8>, Arc<WriterSchema>, String, Survey);

struct Expected {
    /// Per source id, every output expected for it (one id can come in several files, written
    /// with different schemas).
    datums: BTreeMap<i64, Vec<ExpectedOutput>>,
    alerts: u64,
    undecodable_messages: u64,
}

fn expected(files: &[PathBuf]) -> Expected {
    let mut decoder = Decoder::new();
    let mut datums = BTreeMap::new();
    let mut alerts = 0;
    let mut undecodable_messages = 0;
    for file in files {
        let bytes = std::fs::read(file).expect("read");
        let origin = Origin::file(file);
        let raw = RawRecords::split(&mut decoder, &bytes, &origin);
        let decoded: Vec<_> = decoder.decode(&bytes, &origin).into_iter().collect();
        if decoded.iter().any(Result::is_err) {
            undecodable_messages += 1;
            continue;
        }
        let decoded: Vec<_> = decoded.into_iter().map(Result::unwrap).collect();
        alerts += decoded.len() as u64;
        let records = raw
            .expect("split")
            .into_output(&decoder, &decoded, &origin, None)
            .expect("output");
        for record in records {
            datums.entry(record.source_id).or_insert_with(Vec::new).push((
                record.datum,
                record.schema,
                record.object_id,
                record.survey,
            ));
        }
    }
    Expected {
        datums,
        alerts,
        undecodable_messages,
    }
}

fn source_config(topic: &str, group: &str, max_batch: usize) -> KafkaSourceConfig {
    KafkaSourceConfig {
        topics: vec![topic.to_string()],
        group_id: group.to_string(),
        max_batch,
        max_wait_ms: 300,
        session_timeout_ms: 6_000,
        ..KafkaSourceConfig::default()
    }
}

fn no_shutdown() -> tokio::sync::watch::Receiver<bool> {
    let (sender, receiver) = tokio::sync::watch::channel(false);
    // The receiver keeps the last value once the sender is gone.
    drop(sender);
    receiver
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alerts_go_through_the_broker_once_each_and_come_out_unchanged() {
    let connection = testing::connection();
    let input_topic = unique_name("alerts-in");
    let output_topic = unique_name("alerts-out");
    ensure_topics(&connection, &[TopicSpec::new(&input_topic, 3)])
        .await
        .expect("input topic");

    let files = alert_files();
    let n_files = files.len() as u64;
    assert!(n_files >= 100, "tests/data holds the real alert files");
    let messages: Vec<Vec<u8>> = files.iter().map(|file| std::fs::read(file).expect("read")).collect();
    let producer = testing::producer(&connection);
    testing::produce(&producer, &input_topic, &messages, Some(3)).await;
    let expected = expected(&files);
    assert!(expected.alerts >= 117, "{} alerts", expected.alerts);
    assert!(expected.undecodable_messages >= 1, "the unknown Rubin schema id");
    let surveys: BTreeSet<Survey> = expected
        .datums
        .values()
        .flatten()
        .map(|(_, _, _, survey)| *survey)
        .collect();
    assert_eq!(surveys.len(), 2, "both ZTF and Rubin alerts");

    let data_dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data_dir.path()).expect("store"));
    let group = unique_name("workers");
    let source = KafkaSource::connect(&connection, &source_config(&input_topic, &group, 16), CONNECT)
        .await
        .expect("source");
    let sink_config = KafkaSinkConfig {
        topic: output_topic.clone(),
        partitions: 4,
        ..KafkaSinkConfig::default()
    };
    let sink = AlertSink::connect(&connection, &sink_config, CONNECT)
        .await
        .expect("sink");
    assert_eq!(sink.partitions(), 4);
    let mut decoder = Decoder::new();
    let mut batch_sizes = Vec::new();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        run_stream(
            StreamParts {
                source: &source,
                decoder: &mut decoder,
                registry: None,
                store: store.clone(),
                sink: Some(&sink),
                dead_letter_sink: None,
                modules: &mut nightjar_modules::ModuleRunner::new(Vec::new()).expect("no modules"),
                filters: &mut FilterStage::without_filters(
                    &nightjar_modules::ModuleRunner::new(Vec::new()).expect("no modules"),
                )
                .expect("no filters"),
                sinks: &mut FilterSinks::new(None, Arc::default()),
                metrics: Arc::default(),
            },
            &StreamOptions {
                keep_cutouts: true,
                max_messages: Some(n_files),
                stop_when_idle: Some(Duration::from_secs(60)),
                crash_at: None,
            },
            no_shutdown(),
            |summary| batch_sizes.push(summary.ingest.messages),
        ),
    )
    .await
    .expect("the stream finishes within 2 minutes")
    .expect("the stream runs");

    // Every message read once, every alert stored and published once.
    assert_eq!(summary.ingest.messages, n_files);
    assert_eq!(summary.ingest.alerts_read, expected.alerts);
    assert_eq!(summary.ingest.n_rejected(), expected.undecodable_messages);
    assert_eq!(summary.delivered, expected.alerts);
    assert_eq!(summary.not_published, 0);
    assert_eq!(summary.commit_failures, 0);
    assert!(summary.max_batch <= 16, "batches are bounded: {}", summary.max_batch);
    assert!(
        batch_sizes.len() as u64 >= n_files / 16,
        "micro-batches: {batch_sizes:?}"
    );
    let counts = store.counts().await.expect("counts");
    let distinct: BTreeSet<(Survey, i64)> = expected
        .datums
        .iter()
        .flat_map(|(id, outputs)| outputs.iter().map(move |(_, _, _, survey)| (*survey, *id)))
        .collect();
    assert_eq!(counts.alerts, distinct.len() as u64, "each alert stored once");
    assert_eq!(counts.dead_letters, expected.undecodable_messages);
    let letters = store.dead_letters(None, 10).await.expect("dead letters");
    assert!(
        letters[0]
            .origin
            .starts_with(&format!("topic {input_topic} partition ")),
        "{}",
        letters[0].origin
    );

    // The group's committed offsets cover every message, over 3 partitions.
    let committed = source.committed(Duration::from_secs(10)).expect("committed");
    let total: i64 = committed.next.values().sum();
    assert_eq!(total as u64, n_files, "committed offsets {committed}");

    // Read the output back: value = the input datum, key = its schema, partition = hash of
    // the object id, source id in a header.
    let reader = KafkaSource::connect(
        &connection,
        &source_config(&output_topic, &unique_name("reader"), 500),
        CONNECT,
    )
    .await
    .expect("reader");
    let mut unmatched = expected.datums.clone();
    let mut n_records = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while n_records < expected.alerts && std::time::Instant::now() < deadline {
        let batch = reader.next_batch().await.expect("read output");
        for record in &batch.records {
            n_records += 1;
            let source_id: i64 = std::str::from_utf8(record.header(SOURCE_ID_HEADER).expect("source_id header"))
                .expect("utf-8")
                .parse()
                .expect("a number");
            let candidates = unmatched.get_mut(&source_id).expect("a known source id");
            let position = candidates
                .iter()
                .position(|(datum, schema, ..)| {
                    *datum == record.payload && record.key.as_deref() == Some(schema.json.as_bytes())
                })
                .unwrap_or_else(|| panic!("the value and key of {source_id} are one of its inputs', once"));
            let (_, _, object_id, survey) = candidates.swap_remove(position);
            let (object_id, survey) = (&object_id, &survey);
            assert_eq!(
                record.partition,
                partition_for(object_id, 4),
                "partition of {source_id}"
            );
            assert_eq!(
                record.header("survey"),
                Some(survey.as_str().as_bytes()),
                "survey of {source_id}"
            );
            // The key is a usable schema for the value.
            let reader_schema =
                WriterSchema::parse(std::str::from_utf8(record.key.as_deref().expect("key")).expect("utf-8"))
                    .expect("the key is an Avro schema");
            let value: OutputIds =
                nightjar_avro::decode_datum(&record.payload, &reader_schema.schema).expect("the value decodes");
            let candid = match survey {
                Survey::Ztf => value.candid,
                Survey::Rubin => value.diaSource.and_then(|source| source.diaSourceId),
            };
            if let Some(candid) = candid {
                assert_eq!(candid, source_id);
            }
            if let Some(output_object) = value.objectId {
                assert_eq!(&output_object, object_id);
            }
        }
    }
    assert_eq!(n_records, expected.alerts, "one output record per alert");
    assert!(
        unmatched.values().all(Vec::is_empty),
        "every input alert came out: {:?} missing",
        unmatched
            .iter()
            .filter(|(_, left)| !left.is_empty())
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_not_committed_is_read_again_and_a_committed_one_is_not() {
    let connection = testing::connection();
    let topic = unique_name("replay");
    ensure_topics(&connection, &[TopicSpec::new(&topic, 1)])
        .await
        .expect("topic");
    let files = alert_files();
    let messages: Vec<Vec<u8>> = files[..5]
        .iter()
        .map(|file| std::fs::read(file).expect("read"))
        .collect();
    testing::produce(&testing::producer(&connection), &topic, &messages, Some(1)).await;
    let group = unique_name("replayers");
    let config = source_config(&topic, &group, 5);

    // First member reads the five messages and stops without committing (a crash).
    let first = KafkaSource::connect(&connection, &config, CONNECT)
        .await
        .expect("first");
    let batch = read_until(&first, 5).await;
    assert_eq!(batch.len(), 5);
    first.close();

    // The next member of the group gets the same five again, and commits them.
    let second = KafkaSource::connect(&connection, &config, CONNECT)
        .await
        .expect("second");
    let again = read_until(&second, 5).await;
    let offsets: Vec<i64> = again.iter().map(|record| record.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    let batch = nightjar_kafka::KafkaBatch { records: again };
    second.commit(&batch.offsets()).expect("commit");
    second.close();

    // After the commit, a new member finds nothing left.
    let third = KafkaSource::connect(&connection, &config, CONNECT)
        .await
        .expect("third");
    let committed = wait_for_assignment_and_committed(&third).await;
    assert_eq!(committed.next.get(&(topic.clone(), 0)), Some(&5));
    let rest = third.next_batch().await.expect("poll");
    assert!(
        rest.is_empty(),
        "nothing after the committed offset: {:?}",
        rest.records.len()
    );
    third.close();
}

async fn read_until(source: &KafkaSource, n: usize) -> Vec<nightjar_kafka::KafkaRecord> {
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while records.len() < n && std::time::Instant::now() < deadline {
        records.extend(source.next_batch().await.expect("poll").records);
    }
    records
}

async fn wait_for_assignment_and_committed(source: &KafkaSource) -> nightjar_kafka::BatchOffsets {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while source.assignment().is_empty() && std::time::Instant::now() < deadline {
        let batch = source.next_batch().await.expect("poll");
        assert!(batch.is_empty(), "nothing after the committed offset");
    }
    source.committed(Duration::from_secs(10)).expect("committed")
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_error_after_retries_not_a_hang() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("port")
        .port();
    let connection = nightjar_kafka::KafkaConnection::plaintext(format!("127.0.0.1:{port}"));
    let started = std::time::Instant::now();
    let error = nightjar_kafka::wait_for_brokers(&connection, Duration::from_secs(3))
        .await
        .expect_err("nobody listens");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3),
        "it retried for the whole wait: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(15), "it gave up: {elapsed:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("unreachable"), "{message}");
}

/// A decoded Avro value as JSON, with byte fields (the cutouts) as null: `serde_json::Value`
/// itself cannot hold bytes.
struct Loose(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Loose, D::Error> {
        deserializer.deserialize_any(LooseVisitor).map(Loose)
    }
}

struct LooseVisitor;

impl<'de> serde::de::Visitor<'de> for LooseVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an Avro value")
    }
    fn visit_bool<E>(self, value: bool) -> Result<serde_json::Value, E> {
        Ok(value.into())
    }
    fn visit_i64<E>(self, value: i64) -> Result<serde_json::Value, E> {
        Ok(value.into())
    }
    fn visit_u64<E>(self, value: u64) -> Result<serde_json::Value, E> {
        Ok(value.into())
    }
    fn visit_f64<E>(self, value: f64) -> Result<serde_json::Value, E> {
        Ok(value.into())
    }
    fn visit_str<E>(self, value: &str) -> Result<serde_json::Value, E> {
        Ok(value.into())
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_unit<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> Result<serde_json::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<serde_json::Value, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<serde_json::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Loose(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<serde_json::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some((key, Loose(value))) = map.next_entry::<String, Loose>()? {
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

/// The value at a dotted column name in a decoded output record (`lc_features_g.mean` is the
/// field `mean` of the record `lc_features_g`); unions decode to their value.
fn output_value<'a>(record: &'a serde_json::Value, column: &str) -> Option<&'a serde_json::Value> {
    column.split('.').try_fold(record, |value, name| value.get(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_alerts_carry_every_module_output_that_is_stored() {
    let connection = testing::connection();
    let input_topic = unique_name("enrich-in");
    let output_topic = unique_name("enrich-out");
    ensure_topics(&connection, &[TopicSpec::new(&input_topic, 1)])
        .await
        .expect("input topic");
    // Both surveys, including the known asteroids (solar_system and classification fire).
    let files: Vec<PathBuf> = alert_files()
        .into_iter()
        .filter(|file| {
            let name = file.display().to_string();
            name.contains("pittgoogle_20210831") || name.contains("lsst/wire") || name.contains("ZTF21abiuvdk")
        })
        .collect();
    assert!(files.len() >= 10, "{files:?}");
    let messages: Vec<Vec<u8>> = files.iter().map(|file| std::fs::read(file).expect("read")).collect();
    let producer = testing::producer(&connection);
    testing::produce(&producer, &input_topic, &messages, Some(1)).await;

    let data_dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(data_dir.path()).expect("store"));
    let source = KafkaSource::connect(&connection, &source_config(&input_topic, &unique_name("g"), 8), CONNECT)
        .await
        .expect("source");
    let sink_config = KafkaSinkConfig {
        topic: output_topic.clone(),
        partitions: 1,
        ..KafkaSinkConfig::default()
    };
    let sink = AlertSink::connect(&connection, &sink_config, CONNECT)
        .await
        .expect("sink");
    let modules_config = nightjar_modules::ModulesConfig::default();
    let mut modules =
        nightjar_modules::ModuleRunner::new(nightjar_modules::builtin_modules(&modules_config).expect("modules"))
            .expect("runner");
    let module_names: Vec<String> = modules.module_names().iter().map(|name| name.to_string()).collect();
    let summary = run_stream(
        StreamParts {
            source: &source,
            decoder: &mut Decoder::new(),
            registry: None,
            store: store.clone(),
            sink: Some(&sink),
            dead_letter_sink: None,
            modules: &mut modules,
            filters: &mut FilterStage::without_filters(
                &nightjar_modules::ModuleRunner::new(Vec::new()).expect("no modules"),
            )
            .expect("no filters"),
            sinks: &mut FilterSinks::new(None, Arc::default()),
            metrics: Arc::default(),
        },
        &StreamOptions {
            keep_cutouts: false,
            max_messages: Some(files.len() as u64),
            stop_when_idle: Some(Duration::from_secs(60)),
            crash_at: None,
        },
        no_shutdown(),
        |_| {},
    )
    .await
    .expect("the stream runs");
    assert!(summary.delivered > 0);
    assert!(
        summary
            .ingest
            .modules
            .iter()
            .all(|stats| stats.alerts == summary.ingest.alerts_read)
    );

    let reader = KafkaSource::connect(
        &connection,
        &source_config(&output_topic, &unique_name("r"), 500),
        CONNECT,
    )
    .await
    .expect("reader");
    let records = read_until(&reader, summary.delivered as usize).await;
    // A source id that comes in several messages (the same alert in two schema versions) is
    // stored once, from the first: compare the alerts that came once.
    let mut seen: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for record in &records {
        *seen
            .entry(record.header(SOURCE_ID_HEADER).unwrap_or_default().to_vec())
            .or_default() += 1;
    }
    let mut n_values = 0;
    let mut n_compared = 0;
    for record in &records {
        if seen.get(record.header(SOURCE_ID_HEADER).unwrap_or_default()) != Some(&1) {
            continue;
        }
        n_compared += 1;
        let key = std::str::from_utf8(record.key.as_deref().expect("key")).expect("utf-8");
        let schema: serde_json::Value = serde_json::from_str(key).expect("the key is JSON");
        for module in &module_names {
            assert!(
                schema["nightjar.modules"][module].is_string(),
                "the schema names {module}'s version"
            );
        }
        let writer = WriterSchema::parse(key).expect("the key is an Avro schema");
        let Loose(value) = nightjar_avro::decode_datum(&record.payload, &writer.schema).expect("decodes");
        let source_id: i64 = std::str::from_utf8(record.header(SOURCE_ID_HEADER).expect("header"))
            .expect("utf-8")
            .parse()
            .expect("a number");
        let survey = match record.header("survey") {
            Some(b"rubin") => Survey::Rubin,
            _ => Survey::Ztf,
        };
        let stored = store.alert(survey, source_id).await.expect("reads").expect("stored");
        assert!(!stored.modules.is_empty(), "{source_id} has module outputs");
        for (column, expected) in &stored.modules {
            assert_eq!(output_value(&value, column), Some(expected), "{column} of {source_id}");
            n_values += 1;
        }
        assert_eq!(
            output_value(&value, "class").and_then(serde_json::Value::as_str),
            stored.class.as_deref(),
            "class of {source_id}"
        );
    }
    assert!(
        n_compared * 2 >= records.len() && n_compared >= 20,
        "{n_compared} of {} compared",
        records.len()
    );
    assert!(n_values > n_compared * 5, "{n_values} values checked");
}
