//! A producer of raw messages (alert files replayed into a topic by `nightjar produce`, test
//! input): enqueue without waiting, back off on the bounded queue, and collect every delivery
//! report before saying a burst is delivered.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{KafkaConnection, KafkaSinkConfig};
use crate::error::KafkaError;

/// A producer to one topic that keeps its deliveries in flight until [`MessageProducer::flush`].
pub struct MessageProducer {
    producer: FutureProducer,
    topic: String,
    in_flight: VecDeque<DeliveryFuture>,
    delivered: u64,
}

impl std::fmt::Debug for MessageProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageProducer")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .field("delivered", &self.delivered)
            .finish()
    }
}

impl MessageProducer {
    /// A producer with the sink's queue bounds, `acks=all` and message size, after the
    /// brokers answered.
    pub async fn connect(
        connection: &KafkaConnection,
        settings: &KafkaSinkConfig,
        topic: &str,
        connect_timeout: Duration,
    ) -> Result<MessageProducer, KafkaError> {
        connection.validate()?;
        crate::wait_for_brokers(connection, connect_timeout).await?;
        let producer = settings.producer(connection)?;
        Ok(MessageProducer {
            producer,
            topic: topic.to_string(),
            in_flight: VecDeque::new(),
            delivered: 0,
        })
    }

    /// Enqueues one message; when the bounded queue is full, waits for the oldest delivery.
    pub async fn send(
        &mut self,
        key: Option<&[u8]>,
        payload: &[u8],
        partition: Option<i32>,
        headers: &[(&str, &[u8])],
    ) -> Result<(), KafkaError> {
        let mut owned_headers = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in headers {
            owned_headers = owned_headers.insert(Header {
                key: name,
                value: Some(*value),
            });
        }
        let topic = self.topic.clone();
        let mut record = FutureRecord::<[u8], [u8]>::to(&topic)
            .payload(payload)
            .headers(owned_headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(delivery) => {
                    self.in_flight.push_back(delivery);
                    return Ok(());
                }
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    match self.in_flight.pop_front() {
                        Some(delivery) => self.await_delivery(delivery).await?,
                        None => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
                Err((error, _)) => {
                    return Err(KafkaError::Delivery {
                        topic: self.topic.clone(),
                        partition: partition.unwrap_or(-1),
                        reason: error.to_string(),
                    });
                }
            }
        }
    }

    async fn await_delivery(&mut self, delivery: DeliveryFuture) -> Result<(), KafkaError> {
        let error = |reason: String| KafkaError::Delivery {
            topic: self.topic.clone(),
            partition: -1,
            reason,
        };
        match delivery.await {
            Ok(Ok(_)) => {
                self.delivered += 1;
                Ok(())
            }
            Ok(Err((kafka_error, _))) => Err(error(kafka_error.to_string())),
            Err(_canceled) => Err(error("the producer dropped the message".to_string())),
        }
    }

    /// Waits for every delivery still in flight; returns the messages delivered so far.
    pub async fn flush(&mut self) -> Result<u64, KafkaError> {
        while let Some(delivery) = self.in_flight.pop_front() {
            self.await_delivery(delivery).await?;
        }
        Ok(self.delivered)
    }
}
