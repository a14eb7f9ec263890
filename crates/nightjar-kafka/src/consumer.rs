//! The Kafka source: a consumer-group member that yields micro-batches of records and commits
//! their offsets only when told the batch is done (stored and delivered).
//!
//! At least once: `enable.auto.commit` is off, and [`KafkaSource::commit`] is called by the
//! pipeline after the store and the sinks. Records are polled only between batches, after the
//! previous batch was committed, so when a rebalance takes partitions away everything done is
//! committed already (a commit that failed is retried in the revoke callback), and the records
//! of the revoked partitions polled into an unfinished batch are dropped from it: their new
//! owner reads them again from the committed offset.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use nightjar_core::Origin;
use nightjar_pipeline::Message as PipelineMessage;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use crate::config::{KafkaConnection, KafkaSourceConfig};
use crate::error::KafkaError;

/// One record read from Kafka.
#[derive(Debug, Clone)]
pub struct KafkaRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp (producer's create time or broker's append time), ms since the
    /// Unix epoch, when it has one.
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    /// The value; empty for a record without one.
    pub payload: Vec<u8>,
    /// Headers in order; a header without a value has an empty one.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl KafkaRecord {
    /// Where the record came from, for errors and dead letters.
    pub fn origin(&self) -> Origin {
        Origin::Kafka {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
        }
    }

    /// The value of the first header of this name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
    }

    fn from_message<M: Message>(message: &M) -> KafkaRecord {
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        (
                            header.key.to_string(),
                            header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        KafkaRecord {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }
}

/// A micro-batch of records, in the order read.
#[derive(Debug, Clone, Default)]
pub struct KafkaBatch {
    pub records: Vec<KafkaRecord>,
}

impl KafkaBatch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The offsets to commit once the batch is done: per partition, one past the last record.
    pub fn offsets(&self) -> BatchOffsets {
        let mut next = BTreeMap::new();
        for record in &self.records {
            let entry = next
                .entry((record.topic.clone(), record.partition))
                .or_insert(record.offset + 1);
            *entry = (*entry).max(record.offset + 1);
        }
        BatchOffsets { next }
    }

    /// The records as pipeline messages (bytes and origin), moving the payloads out.
    pub fn take_messages(&mut self) -> Vec<PipelineMessage> {
        self.records
            .iter_mut()
            .map(|record| PipelineMessage {
                origin: record.origin(),
                bytes: std::mem::take(&mut record.payload),
            })
            .collect()
    }
}

/// Offsets to commit: per topic and partition, the offset of the next record to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOffsets {
    pub next: BTreeMap<(String, i32), i64>,
}

impl BatchOffsets {
    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    fn to_list(&self) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.next {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        Ok(list)
    }
}

impl std::fmt::Display for BatchOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .next
            .iter()
            .map(|((topic, partition), offset)| format!("{topic}/{partition}@{offset}"))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// The consumer's callbacks: rebalances and statistics.
#[derive(Debug, Default)]
pub struct SourceContext {
    /// Offsets of finished batches not yet committed (normally empty: a commit failed).
    pending: Mutex<BTreeMap<(String, i32), i64>>,
    /// Partitions revoked since the last look, and whether there are any.
    revoked: Mutex<HashSet<(String, i32)>>,
    any_revoked: AtomicBool,
    /// Sum of the consumer lag over the assigned partitions, from librdkafka's statistics
    /// (-1 until known).
    lag: AtomicI64,
    /// Partitions assigned now.
    assigned: Mutex<Vec<(String, i32)>>,
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        let mut lag = 0i64;
        let mut known = false;
        for topic in statistics.topics.values() {
            for partition in topic.partitions.values() {
                if partition.partition >= 0 && partition.consumer_lag >= 0 {
                    lag += partition.consumer_lag;
                    known = true;
                }
            }
        }
        if known {
            self.lag.store(lag, Ordering::Relaxed);
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked: Vec<(String, i32)> = partitions
                .elements()
                .iter()
                .map(|element| (element.topic().to_string(), element.partition()))
                .collect();
            tracing::info!(partitions = ?revoked, "partitions revoked");
            // Commit whatever is done and not yet committed before the partitions go.
            let pending = std::mem::take(&mut *lock(&self.pending));
            if !pending.is_empty() {
                let offsets = BatchOffsets { next: pending };
                match offsets.to_list() {
                    Ok(list) => match consumer.commit(&list, CommitMode::Sync) {
                        Ok(()) => tracing::info!(offsets = %offsets, "committed before the rebalance"),
                        Err(error) => tracing::warn!(offsets = %offsets, "commit before the rebalance failed: {error}"),
                    },
                    Err(error) => tracing::warn!(offsets = %offsets, "offsets before the rebalance: {error}"),
                }
            }
            lock(&self.revoked).extend(revoked);
            self.any_revoked.store(true, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let assigned: Vec<(String, i32)> = partitions
                    .elements()
                    .iter()
                    .map(|element| (element.topic().to_string(), element.partition()))
                    .collect();
                tracing::info!(partitions = ?assigned, "partitions assigned");
                *lock(&self.assigned) = assigned;
            }
            Rebalance::Revoke(_) => lock(&self.assigned).clear(),
            Rebalance::Error(error) => tracing::warn!("rebalance failed: {error}"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A consumer with nightjar's callbacks and statistics, neither subscribed nor assigned.
fn create_consumer(
    connection: &KafkaConnection,
    config: &KafkaSourceConfig,
) -> Result<StreamConsumer<SourceContext>, KafkaError> {
    let mut client_config = config.client_config(connection);
    client_config.set("statistics.interval.ms", "5000");
    client_config
        .create_with_context(SourceContext {
            lag: AtomicI64::new(-1),
            ..SourceContext::default()
        })
        .map_err(|error| KafkaError::Client {
            what: "consumer",
            brokers: connection.brokers.clone(),
            error,
        })
}

/// A member of a consumer group reading alert topics in micro-batches.
pub struct KafkaSource {
    consumer: StreamConsumer<SourceContext>,
    config: KafkaSourceConfig,
    brokers: String,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("brokers", &self.brokers)
            .field("topics", &self.config.topics)
            .field("group_id", &self.config.group_id)
            .finish()
    }
}

impl KafkaSource {
    /// Joins the group and subscribes to the configured topics and patterns. The brokers must
    /// answer within `connect_timeout` (see [`crate::wait_for_brokers`]).
    pub async fn connect(
        connection: &KafkaConnection,
        config: &KafkaSourceConfig,
        connect_timeout: Duration,
    ) -> Result<KafkaSource, KafkaError> {
        connection.validate()?;
        config.validate()?;
        if config.topics.is_empty() {
            return Err(KafkaError::Config(
                "no topic to read (kafka.source.topics, or kafka://HOST:PORT/TOPIC)".to_string(),
            ));
        }
        crate::wait_for_brokers(connection, connect_timeout).await?;
        let consumer = create_consumer(connection, config)?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|error| KafkaError::Subscribe {
            topics: config.topics.clone(),
            error,
        })?;
        tracing::info!(
            brokers = %connection.brokers,
            topics = ?config.topics,
            group = %config.group_id,
            "subscribed"
        );
        Ok(KafkaSource {
            consumer,
            config: config.clone(),
            brokers: connection.brokers.clone(),
        })
    }

    /// Like [`KafkaSource::connect`], but instead of joining the group's partition assignment
    /// it reads every partition of the topics itself, from the first record whose timestamp is
    /// at or after `since_ms` (ms since the Unix epoch; partitions with none start at their
    /// end), found with the brokers' time index. Commits still go to the group. Topic patterns
    /// (`^...`) are not accepted.
    pub async fn connect_since(
        connection: &KafkaConnection,
        config: &KafkaSourceConfig,
        since_ms: i64,
        connect_timeout: Duration,
    ) -> Result<KafkaSource, KafkaError> {
        connection.validate()?;
        config.validate()?;
        if config.topics.is_empty() || config.topics.iter().any(|topic| topic.starts_with('^')) {
            return Err(KafkaError::Config(
                "reading from a time needs topic names, not patterns".to_string(),
            ));
        }
        crate::wait_for_brokers(connection, connect_timeout).await?;
        let consumer = create_consumer(connection, config)?;
        let metadata_timeout = Duration::from_secs(10);
        let mut wanted = TopicPartitionList::new();
        for topic in &config.topics {
            let topic_error = |reason: String| KafkaError::Topic {
                topic: topic.clone(),
                reason,
            };
            let metadata = consumer
                .fetch_metadata(Some(topic), metadata_timeout)
                .map_err(|error| topic_error(format!("reading its metadata: {error}")))?;
            let partitions = metadata
                .topics()
                .iter()
                .find(|entry| entry.name() == topic && entry.error().is_none())
                .map(|entry| {
                    entry
                        .partitions()
                        .iter()
                        .map(|partition| partition.id())
                        .collect::<Vec<_>>()
                })
                .filter(|partitions| !partitions.is_empty())
                .ok_or_else(|| topic_error("does not exist".to_string()))?;
            for partition in partitions {
                wanted
                    .add_partition_offset(topic, partition, Offset::Offset(since_ms))
                    .map_err(|error| topic_error(format!("partition {partition}: {error}")))?;
            }
        }
        let start = consumer
            .offsets_for_times(wanted, metadata_timeout)
            .map_err(|error| KafkaError::Consume {
                brokers: connection.brokers.clone(),
                error,
            })?;
        consumer.assign(&start).map_err(|error| KafkaError::Subscribe {
            topics: config.topics.clone(),
            error,
        })?;
        let assigned: Vec<(String, i32)> = start
            .elements()
            .iter()
            .map(|element| (element.topic().to_string(), element.partition()))
            .collect();
        tracing::info!(
            brokers = %connection.brokers,
            topics = ?config.topics,
            since_ms,
            start = ?start
                .elements()
                .iter()
                .map(|element| format!("{}/{}@{:?}", element.topic(), element.partition(), element.offset()))
                .collect::<Vec<_>>(),
            "reading from a time"
        );
        *lock(&consumer.context().assigned) = assigned;
        Ok(KafkaSource {
            consumer,
            config: config.clone(),
            brokers: connection.brokers.clone(),
        })
    }

    /// The next micro-batch: up to `max_batch` records, or what arrived within `max_wait_ms`
    /// (possibly none).
    pub async fn next_batch(&self) -> Result<KafkaBatch, KafkaError> {
        let deadline = Instant::now() + Duration::from_millis(self.config.max_wait_ms);
        let mut records: Vec<KafkaRecord> = Vec::new();
        while records.len() < self.config.max_batch {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let received = tokio::time::timeout(deadline - now, self.consumer.recv()).await;
            // A rebalance is served inside `recv`, before the message it returns: the records
            // held so far may belong to revoked partitions, the new one does not (it was
            // fetched under the new assignment, from the committed offset).
            self.drop_revoked(&mut records);
            match received {
                Err(_elapsed) => break,
                Ok(Ok(message)) => records.push(KafkaRecord::from_message(&message)),
                Ok(Err(error)) => {
                    if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal) {
                        return Err(KafkaError::Consume {
                            brokers: self.brokers.clone(),
                            error,
                        });
                    }
                    tracing::warn!(brokers = %self.brokers, "consuming: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Ok(KafkaBatch { records })
    }

    /// Drops the records of partitions revoked while the batch was being filled.
    fn drop_revoked(&self, records: &mut Vec<KafkaRecord>) {
        if !self.consumer.context().any_revoked.swap(false, Ordering::SeqCst) {
            return;
        }
        let revoked = std::mem::take(&mut *lock(&self.consumer.context().revoked));
        let before = records.len();
        records.retain(|record| !revoked.contains(&(record.topic.clone(), record.partition)));
        if records.len() < before {
            tracing::info!(
                dropped = before - records.len(),
                "dropped records of revoked partitions from the unfinished batch"
            );
        }
    }

    /// Commits a finished batch (stored and delivered). A failed commit is kept and retried
    /// with the next commit or before a rebalance; the records are then read again, which at
    /// least once allows.
    pub fn commit(&self, offsets: &BatchOffsets) -> Result<(), KafkaError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let context = self.consumer.context();
        let to_commit = {
            let mut pending = lock(&context.pending);
            for (key, offset) in &offsets.next {
                let entry = pending.entry(key.clone()).or_insert(*offset);
                *entry = (*entry).max(*offset);
            }
            BatchOffsets { next: pending.clone() }
        };
        let list = to_commit.to_list().map_err(|error| KafkaError::Commit {
            offsets: to_commit.to_string(),
            error,
        })?;
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|error| KafkaError::Commit {
                offsets: to_commit.to_string(),
                error,
            })?;
        let mut pending = lock(&context.pending);
        for (key, offset) in &to_commit.next {
            if pending.get(key) == Some(offset) {
                pending.remove(key);
            }
        }
        Ok(())
    }

    /// Consumer lag summed over the assigned partitions, from the last statistics (every 5 s);
    /// `None` until known.
    pub fn lag(&self) -> Option<i64> {
        let lag = self.consumer.context().lag.load(Ordering::Relaxed);
        (lag >= 0).then_some(lag)
    }

    /// Partitions assigned to this member now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        lock(&self.consumer.context().assigned).clone()
    }

    /// The committed offsets of the group for the assigned partitions (tests, diagnostics).
    pub fn committed(&self, timeout: Duration) -> Result<BatchOffsets, KafkaError> {
        let list = self.consumer.committed(timeout).map_err(|error| KafkaError::Consume {
            brokers: self.brokers.clone(),
            error,
        })?;
        let mut next = BTreeMap::new();
        for element in list.elements() {
            if let Offset::Offset(offset) = element.offset() {
                next.insert((element.topic().to_string(), element.partition()), offset);
            }
        }
        Ok(BatchOffsets { next })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &KafkaSourceConfig {
        &self.config
    }

    /// Leaves the group at once, so that the others take the partitions over without waiting
    /// for the session timeout.
    pub fn close(self) {
        self.consumer.unsubscribe();
        drop(self.consumer);
    }
}
