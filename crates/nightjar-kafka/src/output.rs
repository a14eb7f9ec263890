//! Output records: what nightjar publishes for an alert. The value is the schemaless Avro datum
//! of the alert, the key the Avro schema as JSON (the format fink-client reads). Until science
//! modules add columns, the datum and schema are the input's own, passed on unchanged: a ZTF
//! container's writer schema and record bytes, a Rubin wire message's datum and the schema of
//! its id.

use std::sync::Arc;

use nightjar_avro::WriterSchema;
use nightjar_core::{Alert, Origin, Survey};
use nightjar_decode::{Decoder, Format, detect_format};

use crate::error::KafkaError;

/// One alert ready for an output topic.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    /// The writer schema of `datum`; its JSON text is the record's key.
    pub schema: Arc<WriterSchema>,
    /// The alert as a schemaless Avro datum.
    pub datum: Vec<u8>,
    /// Chooses the partition.
    pub object_id: String,
    /// Goes in the `source_id` header, so that consumers can drop duplicates.
    pub source_id: i64,
    pub survey: Survey,
    /// Timestamp of the input record, ms since the Unix epoch (for latency).
    pub input_timestamp_ms: Option<i64>,
}

/// The raw records of one message, taken before decoding moves its bytes.
#[derive(Debug)]
pub enum RawRecords {
    /// A container: its writer schema and each record's datum.
    Container {
        schema: Arc<WriterSchema>,
        datums: Vec<Vec<u8>>,
    },
    /// A Confluent wire message: its schema id and datum. The schema is looked up after
    /// decoding, which may have fetched it from a registry.
    Wire { schema_id: u32, datum: Vec<u8> },
}

impl RawRecords {
    /// Splits a message into its raw records.
    pub fn split(decoder: &mut Decoder, bytes: &[u8], origin: &Origin) -> Result<RawRecords, KafkaError> {
        let error = |reason: String| KafkaError::Output {
            origin: origin.to_string(),
            reason,
        };
        match detect_format(bytes).map_err(|kind| error(kind.to_string()))? {
            Format::Container => {
                let container = decoder.open_container(bytes).map_err(|kind| error(kind.to_string()))?;
                let datums = container.datums().map_err(|kind| error(kind.to_string()))?;
                Ok(RawRecords::Container {
                    schema: container.schema.clone(),
                    datums,
                })
            }
            Format::ConfluentWire => {
                let (schema_id, datum) = nightjar_avro::split_wire(bytes).map_err(|kind| error(kind.to_string()))?;
                Ok(RawRecords::Wire {
                    schema_id,
                    datum: datum.to_vec(),
                })
            }
        }
    }

    /// Pairs the raw records with the alerts decoded from the same message. Every record must
    /// have decoded (a message with an undecodable record gives an error, and its decoded
    /// alerts are stored but not published).
    pub fn into_output(
        self,
        decoder: &Decoder,
        alerts: &[Alert],
        origin: &Origin,
        input_timestamp_ms: Option<i64>,
    ) -> Result<Vec<OutputRecord>, KafkaError> {
        let error = |reason: String| KafkaError::Output {
            origin: origin.to_string(),
            reason,
        };
        let (schema, datums) = match self {
            RawRecords::Container { schema, datums } => (schema, datums),
            RawRecords::Wire { schema_id, datum } => {
                let schema = decoder
                    .rubin_schema(schema_id)
                    .ok_or_else(|| error(format!("schema id {schema_id} is not known")))?;
                (schema, vec![datum])
            }
        };
        if datums.len() != alerts.len() {
            return Err(error(format!(
                "{} of its {} records decoded; a message is published whole or not at all",
                alerts.len(),
                datums.len()
            )));
        }
        Ok(datums
            .into_iter()
            .zip(alerts)
            .map(|(datum, alert)| OutputRecord {
                schema: schema.clone(),
                datum,
                object_id: alert.object_id.clone(),
                source_id: alert.source_id(),
                survey: alert.survey,
                input_timestamp_ms,
            })
            .collect())
    }
}

/// Reads nightjar's output records (key = schema JSON, value = schemaless datum) back into
/// alerts, as a livestream client does.
#[derive(Debug, Default)]
pub struct OutputReader {
    schemas: nightjar_avro::SchemaCache,
    decoder: Decoder,
    /// Container framing per schema (by the cached schema's address; the schema is kept).
    framers: std::collections::HashMap<usize, (Arc<WriterSchema>, nightjar_avro::RecordFramer)>,
}

impl OutputReader {
    pub fn new() -> OutputReader {
        OutputReader::default()
    }

    /// The writer schema named by a record's key (parsed once per distinct text).
    pub fn schema(&mut self, key: &[u8], origin: &Origin) -> Result<Arc<WriterSchema>, KafkaError> {
        self.schemas.get_or_parse(key).map_err(|reason| KafkaError::Output {
            origin: origin.to_string(),
            reason: format!("the key is not an Avro schema: {reason}"),
        })
    }

    /// Decodes one output record into its alert.
    pub fn decode(&mut self, key: &[u8], value: &[u8], origin: &Origin) -> Result<Alert, KafkaError> {
        let schema = self.schema(key, origin)?;
        let framer = match self.framers.entry(Arc::as_ptr(&schema) as usize) {
            std::collections::hash_map::Entry::Occupied(entry) => &entry.into_mut().1,
            std::collections::hash_map::Entry::Vacant(entry) => {
                let framer = nightjar_avro::RecordFramer::new(&schema).map_err(|kind| KafkaError::Output {
                    origin: origin.to_string(),
                    reason: kind.to_string(),
                })?;
                &entry.insert((schema, framer)).1
            }
        };
        let container = framer.frame(value);
        let mut alerts = self.decoder.decode(&container, origin);
        match (alerts.pop(), alerts.is_empty()) {
            (Some(Ok(alert)), true) => Ok(alert),
            (Some(Err(error)), _) => Err(KafkaError::Output {
                origin: origin.to_string(),
                reason: error.to_string(),
            }),
            _ => Err(KafkaError::Output {
                origin: origin.to_string(),
                reason: "not exactly one alert".to_string(),
            }),
        }
    }
}

/// Adds the science modules' outputs to output records: the schema becomes the input schema
/// plus one nullable field per module column (naming the module versions), and the value the
/// input datum followed by the encoded outputs (see [`nightjar_avro::EnrichedSchema`]).
/// Extended schemas are built once per input schema.
#[derive(Debug, Default)]
pub struct OutputEnricher {
    columns: Vec<nightjar_avro::OutputField>,
    modules: Vec<(String, String)>,
    /// Input schema text -> (extended writer schema, encoder).
    extended: std::collections::HashMap<String, (Arc<WriterSchema>, nightjar_avro::EnrichedSchema)>,
    schemas: nightjar_avro::SchemaCache,
}

impl OutputEnricher {
    /// An enricher for these module columns and (module, version) pairs; with no columns it
    /// leaves records as they are.
    pub fn new(columns: Vec<nightjar_avro::OutputField>, modules: Vec<(String, String)>) -> OutputEnricher {
        OutputEnricher {
            columns,
            modules,
            ..OutputEnricher::default()
        }
    }

    /// Whether there is anything to add.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Rewrites `record` with `values`, the module outputs of its alert.
    pub fn enrich(
        &mut self,
        record: &mut OutputRecord,
        values: &nightjar_core::ModuleValues,
    ) -> Result<(), KafkaError> {
        if self.columns.is_empty() {
            return Ok(());
        }
        let (schema, encoder) = match self.extended.get(&record.schema.json) {
            Some(found) => found,
            None => {
                let error = |reason: String| KafkaError::Output {
                    origin: format!("output schema {}", record.schema.name),
                    reason,
                };
                let encoder = nightjar_avro::EnrichedSchema::new(&record.schema.json, &self.columns, &self.modules)
                    .map_err(|enrich| error(enrich.to_string()))?;
                let schema = self
                    .schemas
                    .get_or_parse(encoder.schema_json().as_bytes())
                    .map_err(|reason| error(format!("the extended schema does not parse: {reason}")))?;
                self.extended
                    .entry(record.schema.json.clone())
                    .or_insert((schema, encoder))
            }
        };
        let mut datum = Vec::with_capacity(record.datum.len() + 64);
        encoder.encode(&record.datum, values, &mut datum);
        record.datum = datum;
        record.schema = Arc::clone(schema);
        Ok(())
    }
}
