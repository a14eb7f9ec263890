//! Errors of the Kafka crate: each names the broker, topic or partition it is about.

use thiserror::Error;

/// Why a Kafka operation failed.
#[derive(Debug, Error)]
pub enum KafkaError {
    /// The configuration is inconsistent; the message names the key.
    #[error("kafka configuration: {0}")]
    Config(String),
    /// A librdkafka client could not be created.
    #[error("creating the kafka {what} for {brokers}: {error}")]
    Client {
        what: &'static str,
        brokers: String,
        error: rdkafka::error::KafkaError,
    },
    /// The brokers did not answer.
    #[error(
        "kafka brokers {brokers} are unreachable after {waited_s:.0} s: {error} (is the broker running, and is kafka.brokers right?)"
    )]
    Unreachable {
        brokers: String,
        waited_s: f64,
        error: String,
    },
    /// Subscribing failed.
    #[error("subscribing to {topics:?}: {error}")]
    Subscribe {
        topics: Vec<String>,
        error: rdkafka::error::KafkaError,
    },
    /// Reading a message failed for a reason that is not transient.
    #[error("consuming from {brokers}: {error}")]
    Consume {
        brokers: String,
        error: rdkafka::error::KafkaError,
    },
    /// Committing offsets failed.
    #[error("committing offsets {offsets}: {error}")]
    Commit {
        offsets: String,
        error: rdkafka::error::KafkaError,
    },
    /// A topic could not be created or described.
    #[error("topic {topic}: {reason}")]
    Topic { topic: String, reason: String },
    /// A message was not delivered.
    #[error("delivering to topic {topic} partition {partition}: {reason}")]
    Delivery {
        topic: String,
        partition: i32,
        reason: String,
    },
    /// An alert's output record could not be built from its message.
    #[error("building the output record of {origin}: {reason}")]
    Output { origin: String, reason: String },
}
