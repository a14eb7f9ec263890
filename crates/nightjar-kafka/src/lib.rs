//! Kafka for nightjar: the source (a consumer-group member reading alert topics in
//! micro-batches, committing offsets only after a batch is stored and delivered), the sink
//! (output topics in the format fink-client reads), topic administration, and the streaming
//! loop that ties them to the decoder and the store.
//!
//! Invariant: the only crate that links rdkafka (librdkafka, built from source and linked
//! statically).

pub mod admin;
pub mod config;
pub mod consumer;
pub mod error;
pub mod output;
pub mod producer;
pub mod sink;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;

pub use admin::{TopicSpec, ensure_topics, partition_count, wait_for_brokers};
pub use config::{
    KafkaConfig, KafkaConnection, KafkaSinkConfig, KafkaSourceConfig, KafkaUrl, SaslConfig, SaslMechanism,
    SecurityProtocol, StartOffset, TlsConfig,
};
pub use consumer::{BatchOffsets, KafkaBatch, KafkaRecord, KafkaSource};
pub use error::KafkaError;
pub use output::{OutputReader, OutputRecord, RawRecords};
pub use producer::MessageProducer;
pub use sink::{
    AlertSink, DEAD_LETTER_ERROR_HEADER, DEAD_LETTER_OFFSET_HEADER, DEAD_LETTER_PARTITION_HEADER,
    DEAD_LETTER_REASON_HEADER, DEAD_LETTER_TOPIC_HEADER, DeadLetterSink, Delivered, PendingDeliveries,
    SOURCE_ID_HEADER, SURVEY_HEADER, partition_for,
};
pub use stream::{
    CrashAt, CrashPoint, StageTimes, StreamError, StreamOptions, StreamParts, StreamSummary, latency_quantiles,
    run_stream,
};
