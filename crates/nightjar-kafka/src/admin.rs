//! Topics: nightjar creates its own output topics (partitions, replication, retention,
//! `cleanup.policy=delete`), since Kafka deployments often forbid auto-creation and tansu has
//! none; and it waits for the brokers to answer, with backoff, before anything else.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{KafkaConnection, check_topic_name};
use crate::error::KafkaError;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    /// How long messages are kept, ms; -1 keeps them forever.
    pub retention_ms: i64,
}

impl TopicSpec {
    /// A topic with these partitions, replication 1, kept 7 days.
    pub fn new(name: impl Into<String>, partitions: i32) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions,
            replication: 1,
            retention_ms: 7 * 24 * 3600 * 1000,
        }
    }
}

/// Creates each topic that does not exist yet; one that exists is left as it is. Returns the
/// names created.
pub async fn ensure_topics(connection: &KafkaConnection, topics: &[TopicSpec]) -> Result<Vec<String>, KafkaError> {
    for topic in topics {
        check_topic_name(&topic.name).map_err(KafkaError::Config)?;
    }
    let admin: AdminClient<DefaultClientContext> =
        connection
            .client_config()
            .create()
            .map_err(|error| KafkaError::Client {
                what: "admin client",
                brokers: connection.brokers.clone(),
                error,
            })?;
    let retention: Vec<String> = topics.iter().map(|topic| topic.retention_ms.to_string()).collect();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retention)
        .map(|(topic, retention_ms)| {
            NewTopic::new(
                &topic.name,
                topic.partitions,
                TopicReplication::Fixed(topic.replication),
            )
            .set("retention.ms", retention_ms)
            .set("cleanup.policy", "delete")
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|error| KafkaError::Topic {
            topic: topics
                .iter()
                .map(|topic| topic.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: error.to_string(),
        })?;
    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, "created topic");
                created.push(name);
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(KafkaError::Topic {
                    topic: name,
                    reason: format!("creating it: {code}"),
                });
            }
        }
    }
    Ok(created)
}

/// Waits until the brokers answer a metadata request, retrying with exponential backoff
/// (0.5 s doubling to 8 s) and a warning each time, for at most `max_wait`. Returns the
/// number of brokers the cluster has.
pub async fn wait_for_brokers(connection: &KafkaConnection, max_wait: Duration) -> Result<usize, KafkaError> {
    let connection = connection.clone();
    let brokers = connection.brokers.clone();
    tokio::task::spawn_blocking(move || wait_for_brokers_blocking(&connection, max_wait))
        .await
        .map_err(|error| KafkaError::Unreachable {
            brokers,
            waited_s: 0.0,
            error: error.to_string(),
        })?
}

fn wait_for_brokers_blocking(connection: &KafkaConnection, max_wait: Duration) -> Result<usize, KafkaError> {
    let started = Instant::now();
    let mut config: ClientConfig = connection.client_config();
    // librdkafka logs every failed connection attempt at error level; the warning below says
    // the same once per retry.
    config.set("log_level", "0");
    let client: BaseConsumer = config.create().map_err(|error| KafkaError::Client {
        what: "metadata client",
        brokers: connection.brokers.clone(),
        error,
    })?;
    let mut backoff = Duration::from_millis(500);
    loop {
        let left = max_wait.saturating_sub(started.elapsed());
        let attempt_timeout = left.clamp(Duration::from_millis(100), Duration::from_secs(5));
        match client.fetch_metadata(None, attempt_timeout) {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(metadata.brokers().len()),
            result => {
                let reason = match result {
                    Ok(_) => "the cluster lists no broker".to_string(),
                    Err(error) => error.to_string(),
                };
                let left = max_wait.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(KafkaError::Unreachable {
                        brokers: connection.brokers.clone(),
                        waited_s: started.elapsed().as_secs_f64(),
                        error: reason,
                    });
                }
                let pause = backoff.min(left);
                tracing::warn!(
                    brokers = %connection.brokers,
                    retry_in_s = pause.as_secs_f64(),
                    "kafka brokers not answering: {reason}"
                );
                std::thread::sleep(pause);
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
        }
    }
}

/// Number of partitions of a topic (`None` when the topic does not exist).
pub async fn partition_count(
    connection: &KafkaConnection,
    topic: &str,
    timeout: Duration,
) -> Result<Option<i32>, KafkaError> {
    let connection = connection.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = connection
            .client_config()
            .create()
            .map_err(|error| KafkaError::Client {
                what: "metadata client",
                brokers: connection.brokers.clone(),
                error,
            })?;
        let metadata = client
            .fetch_metadata(Some(&topic), timeout)
            .map_err(|error| KafkaError::Topic {
                topic: topic.clone(),
                reason: format!("reading its metadata: {error}"),
            })?;
        let found = metadata.topics().iter().find(|entry| entry.name() == topic);
        Ok(match found {
            Some(entry) if entry.error().is_none() && !entry.partitions().is_empty() => {
                Some(entry.partitions().len() as i32)
            }
            _ => None,
        })
    })
    .await
    .map_err(|error| KafkaError::Topic {
        topic: String::new(),
        reason: error.to_string(),
    })?
}
