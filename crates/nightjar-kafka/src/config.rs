//! Kafka configuration: the connection (brokers, SASL, TLS), the source (topics, group,
//! micro-batches, session timeouts) and the sink (output topic, its creation, bounded queues).
//! Doc comments on the fields are the user documentation of the `[kafka]` table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::error::KafkaError;

/// Everything Kafka (the `[kafka]` table): the connection shared by the source and the sink,
/// and each of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`. Left out, it follows from `sasl`
    /// and `tls`: SASL over TLS when both are set.
    pub security_protocol: Option<SecurityProtocol>,
    /// SASL credentials (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512).
    pub sasl: Option<SaslConfig>,
    /// TLS settings (CA file, client certificate).
    pub tls: Option<TlsConfig>,
    /// Extra librdkafka properties, passed through unchanged (`"socket.keepalive.enable" =
    /// "true"`). They are applied last and win over nightjar's own settings.
    pub properties: BTreeMap<String, String>,
    /// The input stream.
    pub source: KafkaSourceConfig,
    /// The output stream.
    pub sink: KafkaSinkConfig,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: KafkaConnection::default().brokers,
            security_protocol: None,
            sasl: None,
            tls: None,
            properties: BTreeMap::new(),
            source: KafkaSourceConfig::default(),
            sink: KafkaSinkConfig::default(),
        }
    }
}

impl KafkaConfig {
    /// The connection part.
    pub fn connection(&self) -> KafkaConnection {
        KafkaConnection {
            brokers: if self.brokers.is_empty() {
                KafkaConnection::default().brokers
            } else {
                self.brokers.clone()
            },
            security_protocol: self.security_protocol,
            sasl: self.sasl.clone(),
            tls: self.tls.clone(),
            properties: self.properties.clone(),
        }
    }

    /// Checks every part.
    pub fn validate(&self) -> Result<(), KafkaError> {
        self.connection().validate()?;
        self.source.validate()?;
        self.sink.validate()
    }
}

/// How to reach the brokers (the connection fields of [`KafkaConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaConnection {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl`. Left out, it follows from `sasl`
    /// and `tls`: SASL over TLS when both are set.
    pub security_protocol: Option<SecurityProtocol>,
    /// SASL credentials (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512).
    pub sasl: Option<SaslConfig>,
    /// TLS settings (CA file, client certificate).
    pub tls: Option<TlsConfig>,
    /// Extra librdkafka properties, passed through unchanged (`"socket.keepalive.enable" =
    /// "true"`). They are applied last and win over nightjar's own settings.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConnection {
    fn default() -> Self {
        KafkaConnection {
            brokers: "localhost:9092".to_string(),
            security_protocol: None,
            sasl: None,
            tls: None,
            properties: BTreeMap::new(),
        }
    }
}

/// The transport to the brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// SASL mechanisms nightjar supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: SaslMechanism,
    pub username: String,
    /// Never logged nor shown in errors.
    pub password: String,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// CA certificates (PEM) to verify the brokers with; the system's when left out.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for brokers that authenticate clients by certificate.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Skip the check that the broker's certificate names its host (testing only).
    pub skip_hostname_check: bool,
}

impl KafkaConnection {
    /// A plaintext connection to these brokers.
    pub fn plaintext(brokers: impl Into<String>) -> KafkaConnection {
        KafkaConnection {
            brokers: brokers.into(),
            ..KafkaConnection::default()
        }
    }

    /// Checks the settings fit together.
    pub fn validate(&self) -> Result<(), KafkaError> {
        let invalid = |reason: String| Err(KafkaError::Config(reason));
        if self.brokers.trim().is_empty() {
            return invalid("kafka.brokers is empty (expected host:port[,host:port...])".to_string());
        }
        for broker in self.brokers.split(',') {
            let broker = broker.trim();
            let port_ok = broker
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return invalid(format!("kafka.brokers: {broker:?} is not host:port"));
            }
        }
        let protocol = self.effective_protocol();
        let wants_sasl = matches!(protocol, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl);
        if wants_sasl && self.sasl.is_none() {
            return invalid(format!(
                "kafka.security_protocol is {} but kafka.sasl is not set (mechanism, username, password)",
                protocol.as_str()
            ));
        }
        if !wants_sasl && self.sasl.is_some() {
            return invalid(format!(
                "kafka.sasl is set but kafka.security_protocol is {} (use sasl_plaintext or sasl_ssl)",
                protocol.as_str()
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return invalid("kafka.tls: cert_file and key_file go together".to_string());
            }
            if !matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
                return invalid(format!(
                    "kafka.tls is set but kafka.security_protocol is {} (use ssl or sasl_ssl)",
                    protocol.as_str()
                ));
            }
        }
        Ok(())
    }

    /// The protocol set, or the one that `sasl` and `tls` imply.
    pub fn effective_protocol(&self) -> SecurityProtocol {
        self.security_protocol.unwrap_or(match (&self.sasl, &self.tls) {
            (Some(_), Some(_)) => SecurityProtocol::SaslSsl,
            (Some(_), None) => SecurityProtocol::SaslPlaintext,
            (None, Some(_)) => SecurityProtocol::Ssl,
            (None, None) => SecurityProtocol::Plaintext,
        })
    }

    /// librdkafka properties for this connection (any client: consumer, producer, admin).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("security.protocol", self.effective_protocol().as_str())
            // A broker that is down shows within seconds rather than after librdkafka's
            // default of 5 minutes for a request.
            .set("socket.connection.setup.timeout.ms", "10000")
            .set("reconnect.backoff.ms", "200")
            .set("reconnect.backoff.max.ms", "5000");
        if let Some(sasl) = &self.sasl {
            config
                .set("sasl.mechanism", sasl.mechanism.as_str())
                .set("sasl.username", &sasl.username)
                .set("sasl.password", &sasl.password);
        }
        if let Some(tls) = &self.tls {
            if let Some(ca) = &tls.ca_file {
                config.set("ssl.ca.location", ca.display().to_string());
            }
            if let Some(cert) = &tls.cert_file {
                config.set("ssl.certificate.location", cert.display().to_string());
            }
            if let Some(key) = &tls.key_file {
                config.set("ssl.key.location", key.display().to_string());
            }
            if tls.skip_hostname_check {
                config.set("ssl.endpoint.identification.algorithm", "none");
            }
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Where offsets start for a group that has none committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOffset {
    /// The oldest message the topic still holds.
    #[default]
    Earliest,
    /// Only messages produced from now on.
    Latest,
}

/// The input stream: topics, consumer group and micro-batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSourceConfig {
    /// Topics to read. A name that starts with `^` is a regular expression matched against
    /// every topic, now and later (`^ztf_.*_programid1$`).
    pub topics: Vec<String>,
    /// Consumer group; workers with the same group share the partitions.
    pub group_id: String,
    /// Static membership (`group.instance.id`): a worker restarted with the same id gets its
    /// partitions back without a rebalance, as long as it returns within the session timeout.
    /// Unique per worker.
    pub instance_id: Option<String>,
    /// A worker silent this long is dead and its partitions go to the others, ms.
    pub session_timeout_ms: u32,
    /// Longest time a batch may take (`max.poll.interval.ms`), ms; also how long a rebalance
    /// waits for members to rejoin, so a dead member that never leaves holds its partitions
    /// up to this long. At least `session_timeout_ms`.
    pub max_poll_interval_ms: u32,
    /// Most messages in one micro-batch.
    pub max_batch: usize,
    /// Longest wait to fill a micro-batch, ms; a partial batch is processed after it.
    pub max_wait_ms: u64,
    /// Where a new group starts.
    pub start_offset: StartOffset,
    /// Bound of librdkafka's prefetch queue, per partition, KiB (librdkafka's default: 64 MiB).
    pub queue_max_kbytes: u32,
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        KafkaSourceConfig {
            topics: Vec::new(),
            group_id: "nightjar".to_string(),
            instance_id: None,
            session_timeout_ms: 10_000,
            max_poll_interval_ms: 300_000,
            max_batch: 500,
            max_wait_ms: 1_000,
            start_offset: StartOffset::Earliest,
            queue_max_kbytes: 16 * 1024,
        }
    }
}

impl KafkaSourceConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), KafkaError> {
        let invalid = |reason: String| Err(KafkaError::Config(reason));
        for topic in &self.topics {
            if topic.starts_with('^') {
                if let Err(error) = regex::Regex::new(topic) {
                    return invalid(format!("kafka.source.topics: {topic:?} is not a valid regex: {error}"));
                }
            } else {
                check_topic_name(topic).map_err(KafkaError::Config)?;
            }
        }
        if self.group_id.trim().is_empty() {
            return invalid("kafka.source.group_id is empty".to_string());
        }
        if self.max_batch == 0 {
            return invalid("kafka.source.max_batch must be at least 1".to_string());
        }
        if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
            return invalid(format!(
                "kafka.source.session_timeout_ms = {} is outside 1000..=3600000",
                self.session_timeout_ms
            ));
        }
        if self.max_poll_interval_ms < self.session_timeout_ms {
            return invalid(format!(
                "kafka.source.max_poll_interval_ms = {} is less than session_timeout_ms = {}",
                self.max_poll_interval_ms, self.session_timeout_ms
            ));
        }
        if self.queue_max_kbytes == 0 {
            return invalid("kafka.source.queue_max_kbytes must be at least 1".to_string());
        }
        Ok(())
    }

    /// librdkafka consumer properties on top of the connection's.
    pub fn client_config(&self, connection: &KafkaConnection) -> ClientConfig {
        let mut config = connection.client_config();
        config
            .set("group.id", &self.group_id)
            // At least once: offsets are committed by nightjar after a batch is stored and
            // delivered, never by a timer.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", self.session_timeout_ms.to_string())
            .set(
                "heartbeat.interval.ms",
                (self.session_timeout_ms / 3).max(100).to_string(),
            )
            .set(
                "auto.offset.reset",
                match self.start_offset {
                    StartOffset::Earliest => "earliest",
                    StartOffset::Latest => "latest",
                },
            )
            .set("queued.max.messages.kbytes", self.queue_max_kbytes.to_string())
            .set("queued.min.messages", "1000")
            // New topics matching a pattern are picked up within seconds.
            .set("topic.metadata.refresh.interval.ms", "10000");
        if let Some(instance) = &self.instance_id {
            config.set("group.instance.id", instance);
        }
        for (key, value) in &connection.properties {
            config.set(key, value);
        }
        config
    }
}

/// The output stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSinkConfig {
    /// Output topic for every alert (one topic per filter once filters exist). Empty: no
    /// Kafka output.
    pub topic: String,
    /// Create the output topic when missing (Kafka deployments often forbid auto-creation).
    pub create_topics: bool,
    /// Partitions of a created topic.
    pub partitions: i32,
    /// Replication factor of a created topic.
    pub replication: i32,
    /// How long a created topic keeps messages, ms (7 days by default).
    pub retention_ms: i64,
    /// Most messages waiting in the producer's queue (librdkafka's default: 100,000).
    pub queue_max_messages: u32,
    /// Most bytes waiting in the producer's queue, KiB (librdkafka's default: 1 GiB).
    pub queue_max_kbytes: u32,
    /// Largest message accepted, bytes (an alert with cutouts is ~100 KB).
    pub message_max_bytes: u32,
    /// Compression of produced batches: none, gzip, snappy, lz4 or zstd.
    pub compression: String,
    /// How long to wait for every delivery report of a batch, ms, before the batch fails.
    pub delivery_timeout_ms: u32,
    /// Also publish every message that cannot be decoded to this topic (its bytes as received,
    /// headers `source_topic`, `source_partition`, `source_offset`, `reason`, `error`), before
    /// its offset is committed. Empty: dead letters go to the store only.
    pub dead_letter_topic: String,
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            topic: String::new(),
            create_topics: true,
            partitions: 4,
            replication: 1,
            retention_ms: 7 * 24 * 3600 * 1000,
            queue_max_messages: 10_000,
            queue_max_kbytes: 64 * 1024,
            message_max_bytes: 8 * 1024 * 1024,
            compression: "none".to_string(),
            delivery_timeout_ms: 60_000,
            dead_letter_topic: String::new(),
        }
    }
}

impl KafkaSinkConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), KafkaError> {
        let invalid = |reason: String| Err(KafkaError::Config(reason));
        if !self.topic.is_empty() {
            check_topic_name(&self.topic).map_err(KafkaError::Config)?;
        }
        if !self.dead_letter_topic.is_empty() {
            check_topic_name(&self.dead_letter_topic).map_err(KafkaError::Config)?;
            if self.dead_letter_topic == self.topic {
                return invalid(format!(
                    "kafka.sink.dead_letter_topic = {:?} is also the output topic",
                    self.dead_letter_topic
                ));
            }
        }
        if self.partitions < 1 {
            return invalid(format!(
                "kafka.sink.partitions = {} must be at least 1",
                self.partitions
            ));
        }
        if self.replication < 1 {
            return invalid(format!(
                "kafka.sink.replication = {} must be at least 1",
                self.replication
            ));
        }
        if self.retention_ms < -1 || self.retention_ms == 0 {
            return invalid(format!(
                "kafka.sink.retention_ms = {} (expected a positive number of ms, or -1 for forever)",
                self.retention_ms
            ));
        }
        if self.queue_max_messages == 0 || self.queue_max_kbytes == 0 {
            return invalid("kafka.sink.queue_max_messages and queue_max_kbytes must be at least 1".to_string());
        }
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.compression.as_str()) {
            return invalid(format!(
                "kafka.sink.compression = {:?} (expected none, gzip, snappy, lz4 or zstd)",
                self.compression
            ));
        }
        Ok(())
    }

    /// librdkafka producer properties on top of the connection's.
    pub fn client_config(&self, connection: &KafkaConnection) -> ClientConfig {
        let mut config = connection.client_config();
        config
            .set("acks", "all")
            .set("queue.buffering.max.messages", self.queue_max_messages.to_string())
            .set("queue.buffering.max.kbytes", self.queue_max_kbytes.to_string())
            .set("message.max.bytes", self.message_max_bytes.to_string())
            .set("compression.codec", &self.compression)
            .set("linger.ms", "5")
            .set("delivery.timeout.ms", self.delivery_timeout_ms.to_string());
        for (key, value) in &connection.properties {
            config.set(key, value);
        }
        config
    }

    /// A producer with these properties.
    pub fn producer(&self, connection: &KafkaConnection) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
        self.client_config(connection)
            .create()
            .map_err(|error| KafkaError::Client {
                what: "producer",
                brokers: connection.brokers.clone(),
                error,
            })
    }
}

/// Kafka's rules for a topic name: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    let valid_chars = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if topic.is_empty() || topic.len() > 249 || !valid_chars || topic == "." || topic == ".." {
        return Err(format!(
            "{topic:?} is not a valid topic name (1 to 249 of a-z A-Z 0-9 . _ -; a pattern starts with ^)"
        ));
    }
    Ok(())
}

/// A `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]` source or sink address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaUrl {
    /// Bootstrap brokers.
    pub brokers: String,
    /// Topics (or patterns starting with `^`); may be empty.
    pub topics: Vec<String>,
}

impl KafkaUrl {
    /// Parses `kafka://HOST:PORT[,HOST:PORT]/TOPIC[,TOPIC]`; `None` when `text` is not a
    /// Kafka address at all.
    pub fn parse(text: &str) -> Option<Result<KafkaUrl, KafkaError>> {
        let rest = text.strip_prefix("kafka://")?;
        let (brokers, topics) = rest.split_once('/').unwrap_or((rest, ""));
        if brokers.is_empty() {
            return Some(Err(KafkaError::Config(format!(
                "{text:?} names no broker (expected kafka://HOST:PORT/TOPIC)"
            ))));
        }
        let topics = topics
            .split(',')
            .filter(|topic| !topic.is_empty())
            .map(str::to_string)
            .collect();
        Some(Ok(KafkaUrl {
            brokers: brokers.to_string(),
            topics,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_brokers_and_topics() {
        let url = KafkaUrl::parse("kafka://localhost:9092,other:9093/ztf_a,^ztf_.*_programid1$")
            .expect("a kafka url")
            .expect("valid");
        assert_eq!(url.brokers, "localhost:9092,other:9093");
        assert_eq!(url.topics, vec!["ztf_a", "^ztf_.*_programid1$"]);
        assert!(KafkaUrl::parse("alerts/*.avro").is_none());
        assert!(KafkaUrl::parse("kafka:///topic").expect("a kafka url").is_err());
    }

    #[test]
    fn the_default_config_is_valid_and_bounds_queues() {
        let config = KafkaConfig::default();
        config.validate().expect("valid");
        let producer = config.sink.client_config(&config.connection());
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("queue.buffering.max.kbytes"), Some("65536"));
        let consumer = config.source.client_config(&config.connection());
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("queued.max.messages.kbytes"), Some("16384"));
    }

    #[test]
    fn bad_settings_are_named() {
        let mut source = KafkaSourceConfig {
            topics: vec!["^ztf_(".to_string()],
            ..KafkaSourceConfig::default()
        };
        let error = source.validate().expect_err("bad regex").to_string();
        assert!(error.contains("^ztf_("), "{error}");
        source.topics = vec!["has space".to_string()];
        assert!(
            source
                .validate()
                .expect_err("bad name")
                .to_string()
                .contains("has space")
        );

        let connection = KafkaConnection {
            security_protocol: Some(SecurityProtocol::SaslSsl),
            ..KafkaConnection::default()
        };
        let error = connection.validate().expect_err("sasl missing").to_string();
        assert!(error.contains("kafka.sasl"), "{error}");
        assert!(KafkaConnection::plaintext("nohostport").validate().is_err());
    }

    #[test]
    fn sasl_sets_the_mechanism_and_never_shows_the_password() {
        let connection = KafkaConnection {
            sasl: Some(SaslConfig {
                mechanism: SaslMechanism::ScramSha512,
                username: "fink".to_string(),
                password: "secret-word".to_string(),
            }),
            ..KafkaConnection::default()
        };
        connection.validate().expect("valid");
        let config = connection.client_config();
        assert_eq!(config.get("security.protocol"), Some("sasl_plaintext"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert!(!format!("{connection:?}").contains("secret-word"));
    }

    #[test]
    fn the_toml_shape_is_flat_for_the_connection() {
        let text = r#"
            brokers = "kafka1:9092"
            [sasl]
            mechanism = "PLAIN"
            username = "u"
            password = "p"
            [source]
            topics = ["^ztf_.*_programid1$"]
            group_id = "workers"
            instance_id = "worker-1"
            [sink]
            topic = "nightjar_all"
        "#;
        let config: KafkaConfig = toml::from_str(text).expect("parses");
        assert_eq!(config.connection().brokers, "kafka1:9092");
        assert_eq!(config.source.instance_id.as_deref(), Some("worker-1"));
        assert_eq!(config.sink.topic, "nightjar_all");
        config.validate().expect("valid");
    }
}
