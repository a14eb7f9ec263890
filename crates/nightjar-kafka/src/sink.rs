//! The Kafka sink: publishes output records to a topic and waits for every delivery report
//! (`acks=all`) before a batch counts as delivered. The partition is chosen explicitly from a
//! hash of the object id (every key is the same schema text, so the key cannot spread them);
//! the source id goes in a header so that consumers can drop the duplicates that at-least-once
//! delivery allows. [`DeadLetterSink`] publishes undecodable messages to a dead-letter topic.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nightjar_core::Survey;

use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::admin::{TopicSpec, ensure_topics, partition_count};
use crate::config::{KafkaConnection, KafkaSinkConfig};
use crate::error::KafkaError;
use crate::output::OutputRecord;
use nightjar_core::Origin;
use nightjar_store::DeadLetter;

/// Header holding the alert's source id (candid, diaSourceId) as decimal text.
pub const SOURCE_ID_HEADER: &str = "source_id";
/// Header holding the survey (`ztf`, `rubin`).
pub const SURVEY_HEADER: &str = "survey";
/// Header holding the value's content type on filter topics with `lite` or `ids` payloads
/// (`application/json`); absent on Avro records.
pub const CONTENT_TYPE_HEADER: &str = "content-type";

/// One record to publish, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// The key: the schema JSON of an Avro value (what fink-client reads), none for JSON.
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    /// `Some("application/json")` for JSON values.
    pub content_type: Option<&'a str>,
    /// Chooses the partition.
    pub object_id: &'a str,
    pub source_id: i64,
    pub survey: Survey,
}

impl<'a> RecordView<'a> {
    /// The view of an enriched Avro output record.
    pub fn of(record: &'a OutputRecord) -> RecordView<'a> {
        RecordView {
            key: Some(record.schema.json.as_bytes()),
            value: &record.datum,
            content_type: None,
            object_id: &record.object_id,
            source_id: record.source_id,
            survey: record.survey,
        }
    }
}

/// The partition of an object: a stable hash of its id, so that an object's alerts stay in
/// order on one partition.
pub fn partition_for(object_id: &str, partitions: i32) -> i32 {
    (xxhash_rust::xxh3::xxh3_64(object_id.as_bytes()) % partitions.max(1) as u64) as i32
}

/// What a batch's delivery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub records: u64,
    pub bytes: u64,
}

/// Records enqueued whose delivery reports are not in yet.
#[derive(Default)]
pub struct PendingDeliveries {
    in_flight: VecDeque<(Arc<str>, i32, DeliveryFuture)>,
    delivered: Delivered,
}

impl PendingDeliveries {
    /// Adds another publication's pending deliveries to these.
    pub fn extend(&mut self, other: PendingDeliveries) {
        self.in_flight.extend(other.in_flight);
        self.delivered.records += other.delivered.records;
        self.delivered.bytes += other.delivered.bytes;
    }
}

impl std::fmt::Debug for PendingDeliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDeliveries")
            .field("in_flight", &self.in_flight.len())
            .field("records", &self.delivered.records)
            .finish()
    }
}

/// A producer bound to one output topic (the stream of every alert; none when only filter
/// topics are published), which also publishes to filter topics, creating them on first use.
pub struct AlertSink {
    producer: FutureProducer,
    topic: String,
    partitions: i32,
    connection: KafkaConnection,
    config: KafkaSinkConfig,
    /// Partition counts of the filter topics in use.
    filter_topics: Mutex<HashMap<String, i32>>,
}

impl std::fmt::Debug for AlertSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSink")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl AlertSink {
    /// Connects, creates the topic when configured to and missing, and reads its partition
    /// count.
    pub async fn connect(
        connection: &KafkaConnection,
        config: &KafkaSinkConfig,
        connect_timeout: Duration,
    ) -> Result<AlertSink, KafkaError> {
        if config.topic.is_empty() {
            return Err(KafkaError::Config("kafka.sink.topic is empty".to_string()));
        }
        AlertSink::connect_any(connection, config, connect_timeout).await
    }

    /// Connects for filter topics only: no stream of every alert (`kafka.sink.topic` empty).
    pub async fn connect_for_filters(
        connection: &KafkaConnection,
        config: &KafkaSinkConfig,
        connect_timeout: Duration,
    ) -> Result<AlertSink, KafkaError> {
        let config = KafkaSinkConfig {
            topic: String::new(),
            ..config.clone()
        };
        AlertSink::connect_any(connection, &config, connect_timeout).await
    }

    async fn connect_any(
        connection: &KafkaConnection,
        config: &KafkaSinkConfig,
        connect_timeout: Duration,
    ) -> Result<AlertSink, KafkaError> {
        connection.validate()?;
        config.validate()?;
        crate::wait_for_brokers(connection, connect_timeout).await?;
        let producer = config.producer(connection)?;
        let mut sink = AlertSink {
            producer,
            topic: config.topic.clone(),
            partitions: 0,
            connection: connection.clone(),
            config: config.clone(),
            filter_topics: Mutex::new(HashMap::new()),
        };
        if !config.topic.is_empty() {
            sink.partitions = sink.prepare_topic(&config.topic).await?;
            tracing::info!(topic = %config.topic, partitions = sink.partitions, "publishing alerts");
        }
        Ok(sink)
    }

    /// Creates `topic` when configured to and missing; its partition count.
    async fn prepare_topic(&self, topic: &str) -> Result<i32, KafkaError> {
        let (connection, config) = (&self.connection, &self.config);
        if config.create_topics {
            ensure_topics(
                connection,
                &[TopicSpec {
                    name: topic.to_string(),
                    partitions: config.partitions,
                    replication: config.replication,
                    retention_ms: config.retention_ms,
                }],
            )
            .await?;
        }
        partition_count(connection, topic, Duration::from_secs(10))
            .await?
            .ok_or_else(|| KafkaError::Topic {
                topic: topic.to_string(),
                reason: "does not exist (create it, or set kafka.sink.create_topics = true)".to_string(),
            })
    }

    /// The partition count of a filter topic, creating the topic on first use.
    async fn filter_topic(&self, topic: &str) -> Result<i32, KafkaError> {
        let known = self
            .filter_topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(topic)
            .copied();
        if let Some(partitions) = known {
            return Ok(partitions);
        }
        let partitions = self.prepare_topic(topic).await?;
        tracing::info!(topic, partitions, "publishing a filter's alerts");
        self.filter_topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(topic.to_string(), partitions);
        Ok(partitions)
    }

    /// True when there is a stream of every alert (`kafka.sink.topic` set).
    pub fn has_main_topic(&self) -> bool {
        !self.topic.is_empty()
    }

    /// The output topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Its partition count.
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Publishes every record and waits for each delivery report.
    pub async fn send_all(&self, records: &[OutputRecord]) -> Result<Delivered, KafkaError> {
        let pending = self.publish(records).await?;
        self.wait(pending).await
    }

    /// Enqueues every record on the stream of every alert without waiting for their delivery
    /// reports (nothing when there is no such stream). When the producer's bounded queue is
    /// full, waits for the oldest delivery first (backpressure).
    pub async fn publish(&self, records: &[OutputRecord]) -> Result<PendingDeliveries, KafkaError> {
        if self.topic.is_empty() {
            return Ok(PendingDeliveries::default());
        }
        let topic: Arc<str> = Arc::from(self.topic.as_str());
        self.enqueue(&topic, self.partitions, records.iter().map(RecordView::of))
            .await
    }

    /// Enqueues records on a filter's topic (created on first use), as [`AlertSink::publish`].
    pub async fn publish_to<'a>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = RecordView<'a>>,
    ) -> Result<PendingDeliveries, KafkaError> {
        let partitions = self.filter_topic(topic).await?;
        self.enqueue(&Arc::from(topic), partitions, records).await
    }

    async fn enqueue<'a>(
        &self,
        topic: &Arc<str>,
        partitions: i32,
        records: impl IntoIterator<Item = RecordView<'a>>,
    ) -> Result<PendingDeliveries, KafkaError> {
        let mut pending = PendingDeliveries::default();
        for record in records {
            let partition = partition_for(record.object_id, partitions);
            let source_id = record.source_id.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(3)
                .insert(Header {
                    key: SOURCE_ID_HEADER,
                    value: Some(source_id.as_bytes()),
                })
                .insert(Header {
                    key: SURVEY_HEADER,
                    value: Some(record.survey.as_str().as_bytes()),
                });
            if let Some(content_type) = record.content_type {
                headers = headers.insert(Header {
                    key: CONTENT_TYPE_HEADER,
                    value: Some(content_type.as_bytes()),
                });
            }
            let mut future_record = FutureRecord::to(topic)
                .partition(partition)
                .payload(record.value)
                .headers(headers);
            if let Some(key) = record.key {
                future_record = future_record.key(key);
            }
            loop {
                match self.producer.send_result(future_record) {
                    Ok(delivery) => {
                        pending.in_flight.push_back((Arc::clone(topic), partition, delivery));
                        break;
                    }
                    Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        future_record = returned;
                        match pending.in_flight.pop_front() {
                            Some((topic, partition, delivery)) => {
                                Self::await_delivery(&topic, partition, delivery).await?
                            }
                            None => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                    Err((error, _)) => {
                        return Err(KafkaError::Delivery {
                            topic: topic.to_string(),
                            partition,
                            reason: error.to_string(),
                        });
                    }
                }
            }
            pending.delivered.records += 1;
            pending.delivered.bytes += (record.value.len() + record.key.map_or(0, <[u8]>::len)) as u64;
        }
        Ok(pending)
    }

    /// Waits for every delivery report of a [`AlertSink::publish`] or
    /// [`AlertSink::publish_to`].
    pub async fn wait(&self, mut pending: PendingDeliveries) -> Result<Delivered, KafkaError> {
        while let Some((topic, partition, delivery)) = pending.in_flight.pop_front() {
            Self::await_delivery(&topic, partition, delivery).await?;
        }
        Ok(pending.delivered)
    }

    async fn await_delivery(topic: &str, partition: i32, delivery: DeliveryFuture) -> Result<(), KafkaError> {
        let error = |reason: String| KafkaError::Delivery {
            topic: topic.to_string(),
            partition,
            reason,
        };
        match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((kafka_error, _))) => Err(error(kafka_error.to_string())),
            Err(_canceled) => Err(error("the producer dropped the message".to_string())),
        }
    }

    /// Waits for every message still queued (at shutdown).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout).map_err(|error| KafkaError::Delivery {
            topic: self.topic.clone(),
            partition: -1,
            reason: format!("flushing: {error}"),
        })
    }
}

/// Headers of a dead-letter record: where the message came from and why it was rejected.
pub const DEAD_LETTER_TOPIC_HEADER: &str = "source_topic";
pub const DEAD_LETTER_PARTITION_HEADER: &str = "source_partition";
pub const DEAD_LETTER_OFFSET_HEADER: &str = "source_offset";
pub const DEAD_LETTER_REASON_HEADER: &str = "reason";
pub const DEAD_LETTER_ERROR_HEADER: &str = "error";

/// The optional dead-letter topic (`kafka.sink.dead_letter_topic`): every message nightjar
/// could not decode, its bytes as received, with headers naming the source topic, partition
/// and offset, the reason (a stable name such as `truncated`) and the full error. The store
/// keeps them too; the topic lets other services see and replay them.
pub struct DeadLetterSink {
    producer: FutureProducer,
    topic: String,
}

impl std::fmt::Debug for DeadLetterSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterSink").field("topic", &self.topic).finish()
    }
}

impl DeadLetterSink {
    /// Connects to `config.dead_letter_topic`, creating it when configured to and missing.
    pub async fn connect(
        connection: &KafkaConnection,
        config: &KafkaSinkConfig,
        connect_timeout: Duration,
    ) -> Result<DeadLetterSink, KafkaError> {
        connection.validate()?;
        config.validate()?;
        let topic = config.dead_letter_topic.clone();
        if topic.is_empty() {
            return Err(KafkaError::Config("kafka.sink.dead_letter_topic is empty".to_string()));
        }
        crate::wait_for_brokers(connection, connect_timeout).await?;
        if config.create_topics {
            ensure_topics(
                connection,
                &[TopicSpec {
                    name: topic.clone(),
                    partitions: 1,
                    replication: config.replication,
                    retention_ms: config.retention_ms,
                }],
            )
            .await?;
        }
        let producer: FutureProducer =
            config
                .client_config(connection)
                .create()
                .map_err(|error| KafkaError::Client {
                    what: "dead-letter producer",
                    brokers: connection.brokers.clone(),
                    error,
                })?;
        tracing::info!(topic = %topic, "publishing dead letters");
        Ok(DeadLetterSink { producer, topic })
    }

    /// The dead-letter topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes each dead letter with the origin of its message and waits for every delivery
    /// report; returns how many were delivered.
    pub async fn send_all(&self, letters: &[(Origin, &DeadLetter)]) -> Result<u64, KafkaError> {
        let mut in_flight = Vec::with_capacity(letters.len());
        for (origin, letter) in letters {
            let (topic, partition, offset) = match origin {
                Origin::Kafka {
                    topic,
                    partition,
                    offset,
                } => (topic.clone(), partition.to_string(), offset.to_string()),
                other => (other.to_string(), String::new(), String::new()),
            };
            let headers = [
                (DEAD_LETTER_TOPIC_HEADER, topic.as_bytes()),
                (DEAD_LETTER_PARTITION_HEADER, partition.as_bytes()),
                (DEAD_LETTER_OFFSET_HEADER, offset.as_bytes()),
                (DEAD_LETTER_REASON_HEADER, letter.reason.as_bytes()),
                (DEAD_LETTER_ERROR_HEADER, letter.message.as_bytes()),
            ]
            .into_iter()
            .fold(OwnedHeaders::new_with_capacity(5), |headers, (key, value)| {
                headers.insert(Header {
                    key,
                    value: Some(value),
                })
            });
            let record = FutureRecord::<[u8], [u8]>::to(&self.topic)
                .payload(letter.bytes.as_slice())
                .headers(headers);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(error, _)| KafkaError::Delivery {
                    topic: self.topic.clone(),
                    partition: -1,
                    reason: error.to_string(),
                })?;
            in_flight.push(delivery);
        }
        for delivery in in_flight {
            let error = |reason: String| KafkaError::Delivery {
                topic: self.topic.clone(),
                partition: -1,
                reason,
            };
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((kafka_error, _))) => return Err(error(kafka_error.to_string())),
                Err(_canceled) => return Err(error("the producer dropped the message".to_string())),
            }
        }
        Ok(letters.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_always_goes_to_the_same_partition_and_objects_spread() {
        let first = partition_for("ZTF18aaaaaaa", 8);
        assert_eq!(first, partition_for("ZTF18aaaaaaa", 8));
        let used: std::collections::BTreeSet<i32> = (0..200)
            .map(|index| partition_for(&format!("ZTF20obj{index:05}"), 8))
            .collect();
        assert_eq!(used.len(), 8);
        assert!(used.iter().all(|partition| (0..8).contains(partition)));
        assert_eq!(partition_for("anything", 1), 0);
    }
}
