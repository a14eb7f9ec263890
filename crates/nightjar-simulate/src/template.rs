//! Templates: real alerts, decoded and checked once, that copies are made from.
//!
//! A template holds its alert as one encoded Avro datum plus the [`Layout`] of what a copy
//! rewrites in it. ZTF templates keep the writer schema of the container they came in; Rubin
//! templates are held in the bundled schema of their version, ready for the Confluent wire
//! format.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use nightjar_avro::{CONTAINER_MAGIC, Container, SchemaCache, WIRE_MAGIC, WriterSchema, split_wire};
use nightjar_core::{DecodeErrorKind, Survey};
use nightjar_rubin::RubinAlert;
use nightjar_ztf::ZtfAlert;
use serde::Deserialize;
use serde_avro_fast::object_container_file_encoding::WriterBuilder;
use serde_avro_fast::schema::SchemaMut;
use serde_avro_fast::ser::SerializerConfig;

use crate::binary::write_long;
use crate::error::SimulateError;
use crate::layout::{Layout, Point, find_sites};
use crate::sky::{mix64, unit_vector};

/// Times (MJD) a template's detection may have: 1941 to 2132.
const PLAUSIBLE_MJD: std::ops::RangeInclusive<f64> = 30_000.0..=100_000.0;

/// A real alert that copies are made from. Cheap to clone (shared).
#[derive(Clone)]
pub struct Template {
    pub(crate) inner: Arc<TemplateData>,
}

pub(crate) struct TemplateData {
    pub(crate) label: String,
    pub(crate) survey: Survey,
    /// The schema copies are written with.
    pub(crate) schema: Arc<WriterSchema>,
    pub(crate) framing: Framing,
    /// The alert, encoded with `schema`.
    pub(crate) datum: Vec<u8>,
    pub(crate) layout: Layout,
    /// Unit vectors of `layout.points`, computed once.
    pub(crate) unit_vectors: Vec<[f64; 3]>,
    /// Position of the triggering detection.
    pub(crate) center: Point,
    /// Time of the triggering detection (MJD).
    pub(crate) alert_mjd: f64,
}

/// How a copy's datum is framed into a message.
pub(crate) enum Framing {
    /// A one-record object container, as ZTF publishes on Kafka: the header (magic, metadata
    /// with the writer schema and codec null, sync marker), written once per template.
    Container { header: Arc<[u8]>, sync: [u8; 16] },
    /// Confluent wire format (`0x00`, schema id, datum), as Rubin publishes.
    Wire { schema_id: u32 },
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = &self.inner;
        f.debug_struct("Template")
            .field("label", &data.label)
            .field("survey", &data.survey)
            .field("schema", &data.schema.name)
            .field("schema_id", &self.schema_id())
            .field("datum_len", &data.datum.len())
            .field("n_sites", &data.layout.sites.len())
            .field("n_points", &data.layout.points.len())
            .finish()
    }
}

/// How templates are made from real alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TemplateOptions {
    /// Leave the cutouts out (null), for streams of small messages: a ZTF or Rubin alert is
    /// 70-180 KB with its three cutouts and a few KB without.
    pub drop_cutouts: bool,
}

/// Fink's storage format names the Rubin schema version of each record.
#[derive(Deserialize)]
struct FinkSchemaVersion {
    #[serde(default)]
    lsst_schema_version: Option<String>,
}

impl Template {
    /// One template per record of an alert message: a ZTF object container (one or many
    /// records, any codec, native or broker-rewritten schema), a Rubin Confluent wire message,
    /// or a Rubin container as a broker writes it. Fails on the first record that cannot be
    /// used; see [`Template::records_from_message`] to keep the others.
    pub fn from_message(bytes: &[u8]) -> Result<Vec<Template>, SimulateError> {
        Template::from_named_message("message", bytes)
    }

    /// [`Template::from_message`], naming the input (a file name, a topic and offset) in errors.
    pub fn from_named_message(input: &str, bytes: &[u8]) -> Result<Vec<Template>, SimulateError> {
        Template::records_from_message(input, bytes)?.into_iter().collect()
    }

    /// One result per record: a message whose framing is bad fails as a whole; otherwise each
    /// record gives a template or the reason it cannot be one (e.g. a broker dropped a field
    /// that the bundled Rubin schema requires), so callers can skip it and say why.
    pub fn records_from_message(
        input: &str,
        bytes: &[u8],
    ) -> Result<Vec<Result<Template, SimulateError>>, SimulateError> {
        Template::records_from_message_with(input, bytes, TemplateOptions::default())
    }

    /// [`Template::records_from_message`] with options (cutouts left out).
    pub fn records_from_message_with(
        input: &str,
        bytes: &[u8],
        options: TemplateOptions,
    ) -> Result<Vec<Result<Template, SimulateError>>, SimulateError> {
        let decode_error = |kind| SimulateError::Decode {
            input: input.to_string(),
            kind,
        };
        match bytes.first() {
            None => Err(decode_error(DecodeErrorKind::Empty)),
            Some(_) if bytes.starts_with(CONTAINER_MAGIC) => from_container(input, bytes, options),
            Some(&WIRE_MAGIC) => from_wire(input, bytes, options),
            Some(_) => {
                let shown: Vec<String> = bytes.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
                Err(decode_error(DecodeErrorKind::UnknownFormat(format!(
                    "bytes {}",
                    shown.join(" ")
                ))))
            }
        }
    }

    /// The template itself as a message in the form its copies take (ZTF: one-record container,
    /// codec null, its writer schema; Rubin: Confluent wire format, bundled schema), unchanged.
    pub fn message(&self) -> Vec<u8> {
        let data = &*self.inner;
        match &data.framing {
            Framing::Container { header, sync } => {
                let mut message = Vec::with_capacity(header.len() + 20 + data.datum.len() + sync.len());
                message.extend_from_slice(header);
                write_long(&mut message, 1);
                write_long(&mut message, data.datum.len() as i64);
                message.extend_from_slice(&data.datum);
                message.extend_from_slice(sync);
                message
            }
            Framing::Wire { schema_id } => nightjar_avro::frame_wire(*schema_id, &data.datum),
        }
    }

    /// `"<input> record <n>"`: where the template came from.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The survey whose format copies are written in.
    pub fn survey(&self) -> Survey {
        self.inner.survey
    }

    /// The writer schema of the copies: the container's for ZTF, the bundled one for Rubin.
    pub fn writer_schema(&self) -> &Arc<WriterSchema> {
        &self.inner.schema
    }

    /// The Confluent schema id of a Rubin template (`MAJOR * 100 + MINOR`); `None` for ZTF.
    pub fn schema_id(&self) -> Option<u32> {
        match self.inner.framing {
            Framing::Wire { schema_id } => Some(schema_id),
            Framing::Container { .. } => None,
        }
    }

    /// The template's own alert id (ZTF `candid`, Rubin `diaSourceId` / `alertId`).
    pub fn alert_id(&self) -> Option<i64> {
        self.inner.layout.alert_id
    }

    /// The template's own object id: ZTF `objectId`, or Rubin `diaObjectId` in decimal.
    pub fn object_id(&self) -> Option<&str> {
        self.inner.layout.object_id.as_deref()
    }

    /// Position (ra, dec in degrees) of the triggering detection.
    pub fn position(&self) -> (f64, f64) {
        (self.inner.center.ra, self.inner.center.dec)
    }

    /// Time of the triggering detection, as MJD.
    pub fn time_mjd(&self) -> f64 {
        self.inner.alert_mjd
    }

    /// Ids a copy gives to history entries (`prv_candidates` with a `candid`,
    /// `prvDiaSources`, `prvDiaForcedSources`).
    pub fn n_history_ids(&self) -> u32 {
        self.inner.layout.n_history_ids
    }

    /// Number of distinct sky positions a copy moves (the detection, history entries, nearest
    /// reference sources, the object; forced photometry usually repeats the object's).
    pub fn n_positions(&self) -> usize {
        self.inner.layout.points.len()
    }

    /// Size of the encoded alert datum in bytes (a message adds its framing).
    pub fn datum_len(&self) -> usize {
        self.inner.datum.len()
    }
}

fn from_container(
    input: &str,
    bytes: &[u8],
    options: TemplateOptions,
) -> Result<Vec<Result<Template, SimulateError>>, SimulateError> {
    let decode_error = |kind| SimulateError::Decode {
        input: input.to_string(),
        kind,
    };
    let mut cache = SchemaCache::new();
    let container = Container::open(bytes, &mut cache).map_err(decode_error)?;
    let schema = container.schema.clone();
    if nightjar_ztf::is_ztf(&schema) {
        ztf_templates(input, &container, options)
    } else if nightjar_rubin::is_rubin(&schema) {
        rubin_container_templates(input, &container, options)
    } else {
        Err(SimulateError::UnknownSurvey {
            input: input.to_string(),
            reason: format!(
                "writer schema {} has top-level fields {}",
                schema.name,
                schema.fields.join(", ")
            ),
        })
    }
}

fn ztf_templates(
    input: &str,
    container: &Container<'_>,
    options: TemplateOptions,
) -> Result<Vec<Result<Template, SimulateError>>, SimulateError> {
    let decode_error = |kind| SimulateError::Decode {
        input: input.to_string(),
        kind,
    };
    let schema = container.schema.clone();
    let walk_schema: SchemaMut = schema
        .json
        .parse()
        .map_err(|error| decode_error(DecodeErrorKind::Schema(format!("{error}"))))?;
    let sync = sync_marker(&schema.json);
    let header = container_header(&schema, sync).map_err(|reason| decode_error(DecodeErrorKind::Container(reason)))?;
    let records = container.records::<ZtfAlert>().map_err(decode_error)?;
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(record, alert)| {
            let mut alert = alert.map_err(|kind| SimulateError::DecodeRecord {
                input: input.to_string(),
                record,
                kind,
            })?;
            if options.drop_cutouts {
                alert.cutoutScience = None;
                alert.cutoutTemplate = None;
                alert.cutoutDifference = None;
            }
            let datum =
                serde_avro_fast::to_datum_vec(&alert, &mut SerializerConfig::new(&schema.schema)).map_err(|error| {
                    SimulateError::Reencode {
                        input: input.to_string(),
                        record,
                        schema: format!("its writer schema {}", schema.name),
                        reason: error.to_string(),
                    }
                })?;
            let framing = Framing::Container {
                header: header.clone(),
                sync,
            };
            build(input, record, Survey::Ztf, schema.clone(), &walk_schema, framing, datum)
        })
        .collect())
}

fn rubin_container_templates(
    input: &str,
    container: &Container<'_>,
    options: TemplateOptions,
) -> Result<Vec<Result<Template, SimulateError>>, SimulateError> {
    let decode_error = |kind| SimulateError::Decode {
        input: input.to_string(),
        kind,
    };
    let records = container.records::<RubinAlert>().map_err(decode_error)?;
    let named_versions = match container.schema.has_field("lsst_schema_version") {
        true => container.records::<FinkSchemaVersion>().map_err(decode_error)?,
        false => Vec::new(),
    };
    let detected_id = schema_id_of_version(&nightjar_rubin::detect_version(&container.schema));
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(record, alert)| {
            let mut alert = alert.map_err(|kind| SimulateError::DecodeRecord {
                input: input.to_string(),
                record,
                kind,
            })?;
            drop_empty_records(&mut alert);
            if options.drop_cutouts {
                drop_rubin_cutouts(&mut alert);
            }
            let named_id = named_versions
                .get(record)
                .and_then(|named| named.as_ref().ok())
                .and_then(|named| named.lsst_schema_version.as_deref())
                .and_then(schema_id_of_name);
            let schema_id = named_id.or(detected_id).ok_or_else(|| SimulateError::Unusable {
                input: input.to_string(),
                record,
                reason: "cannot tell its Rubin schema version".to_string(),
            })?;
            let bundled = bundled_rubin(schema_id).map_err(|kind| SimulateError::DecodeRecord {
                input: input.to_string(),
                record,
                kind,
            })?;
            let datum = serde_avro_fast::to_datum_vec(&alert, &mut SerializerConfig::new(&bundled.schema.schema))
                .map_err(|error| SimulateError::Reencode {
                    input: input.to_string(),
                    record,
                    schema: format!(
                        "the bundled Rubin schema {}",
                        nightjar_rubin::schema_version_of_id(schema_id)
                    ),
                    reason: error.to_string(),
                })?;
            let framing = Framing::Wire { schema_id };
            build(
                input,
                record,
                Survey::Rubin,
                bundled.schema.clone(),
                &bundled.walk_schema,
                framing,
                datum,
            )
        })
        .collect())
}

/// Takes records whose every field is null as absent. Fink writes some record columns as
/// non-nullable, so an alert without a solar-system association carries an `ssSource` and an
/// `mpc_orbits` whose fields are all null instead of a null `ssSource`.
fn drop_empty_records(alert: &mut RubinAlert) {
    fn clear_if_empty<T: serde::Serialize>(record: &mut Option<T>) {
        let empty = record.as_ref().is_some_and(|value| {
            serde_json::to_value(value).is_ok_and(|json| json.as_object().is_some_and(|fields| fields.is_empty()))
        });
        if empty {
            *record = None;
        }
    }
    clear_if_empty(&mut alert.diaObject);
    clear_if_empty(&mut alert.ssObject);
    clear_if_empty(&mut alert.ssSource);
    clear_if_empty(&mut alert.MPCORB);
    clear_if_empty(&mut alert.mpc_orbits);
}

fn drop_rubin_cutouts(alert: &mut RubinAlert) {
    alert.cutoutDifference = None;
    alert.cutoutScience = None;
    alert.cutoutTemplate = None;
}

fn from_wire(
    input: &str,
    bytes: &[u8],
    options: TemplateOptions,
) -> Result<Vec<Result<Template, SimulateError>>, SimulateError> {
    let decode_error = |kind| SimulateError::Decode {
        input: input.to_string(),
        kind,
    };
    let (schema_id, datum) = split_wire(bytes).map_err(decode_error)?;
    let bundled = bundled_rubin(schema_id).map_err(decode_error)?;
    let framing = Framing::Wire { schema_id };
    let datum = if options.drop_cutouts {
        let mut alert: RubinAlert = nightjar_avro::decode_datum(datum, &bundled.schema.schema).map_err(decode_error)?;
        drop_rubin_cutouts(&mut alert);
        serde_avro_fast::to_datum_vec(&alert, &mut SerializerConfig::new(&bundled.schema.schema)).map_err(|error| {
            SimulateError::Reencode {
                input: input.to_string(),
                record: 0,
                schema: format!(
                    "the bundled Rubin schema {}",
                    nightjar_rubin::schema_version_of_id(schema_id)
                ),
                reason: error.to_string(),
            }
        })?
    } else {
        datum.to_vec()
    };
    Ok(vec![build(
        input,
        0,
        Survey::Rubin,
        bundled.schema.clone(),
        &bundled.walk_schema,
        framing,
        datum,
    )])
}

fn build(
    input: &str,
    record: usize,
    survey: Survey,
    schema: Arc<WriterSchema>,
    walk_schema: &SchemaMut,
    framing: Framing,
    datum: Vec<u8>,
) -> Result<Template, SimulateError> {
    let unusable = |reason: String| SimulateError::Unusable {
        input: input.to_string(),
        record,
        reason,
    };
    let layout = find_sites(walk_schema, &datum).map_err(|reason| SimulateError::DecodeRecord {
        input: input.to_string(),
        record,
        kind: DecodeErrorKind::Corrupt(reason),
    })?;
    let center = layout
        .center
        .filter(|point| point.ra.is_finite() && point.dec.is_finite() && (-90.0..=90.0).contains(&point.dec))
        .ok_or_else(|| unusable("the triggering detection has no valid ra/dec".to_string()))?;
    let alert_mjd = layout
        .alert_mjd
        .filter(|mjd| mjd.is_finite())
        .ok_or_else(|| unusable("the triggering detection has no time (jd / midpointMjdTai)".to_string()))?;
    if !PLAUSIBLE_MJD.contains(&alert_mjd) {
        // Synthetic Rubin 7.x samples hold Unix seconds there; shifting them would make nonsense.
        return Err(unusable(format!(
            "the triggering detection's time {alert_mjd} is not a plausible MJD ({} to {})",
            PLAUSIBLE_MJD.start(),
            PLAUSIBLE_MJD.end()
        )));
    }
    let unit_vectors = layout.points.iter().copied().map(unit_vector).collect();
    Ok(Template {
        inner: Arc::new(TemplateData {
            label: format!("{input} record {record}"),
            survey,
            schema,
            framing,
            datum,
            layout,
            unit_vectors,
            center,
            alert_mjd,
        }),
    })
}

/// A bundled Rubin schema, parsed for encoding and for walking.
struct BundledRubin {
    schema: Arc<WriterSchema>,
    walk_schema: SchemaMut,
}

/// Parses each bundled Rubin schema once per process.
fn bundled_rubin(schema_id: u32) -> Result<Arc<BundledRubin>, DecodeErrorKind> {
    static PARSED: LazyLock<Mutex<HashMap<u32, Arc<BundledRubin>>>> = LazyLock::new(Default::default);
    if let Some(parsed) = PARSED.lock().unwrap_or_else(PoisonError::into_inner).get(&schema_id) {
        return Ok(parsed.clone());
    }
    let json = nightjar_rubin::bundled_schema_json(schema_id).ok_or_else(|| {
        let known: Vec<String> = nightjar_rubin::bundled_schema_ids()
            .iter()
            .map(u32::to_string)
            .collect();
        DecodeErrorKind::UnknownSchemaId {
            id: schema_id,
            known: known.join(", "),
        }
    })?;
    let schema = WriterSchema::parse(&json).map_err(DecodeErrorKind::Schema)?;
    let walk_schema = json
        .parse()
        .map_err(|error| DecodeErrorKind::Schema(format!("{error}")))?;
    let parsed = Arc::new(BundledRubin {
        schema: Arc::new(schema),
        walk_schema,
    });
    PARSED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(schema_id, parsed.clone());
    Ok(parsed)
}

/// `"9.0"` -> 900, `"10.0"` -> 1000.
fn schema_id_of_version(version: &str) -> Option<u32> {
    let (major, minor) = version.split_once('.')?;
    Some(major.parse::<u32>().ok()? * 100 + minor.parse::<u32>().ok()?)
}

/// `"lsst.v9_0"` (Fink's `lsst_schema_version`) -> 900.
fn schema_id_of_name(name: &str) -> Option<u32> {
    schema_id_of_version(&name.strip_prefix("lsst.v")?.replace('_', "."))
}

/// A sync marker derived from the schema text, so that output is reproducible.
fn sync_marker(schema_json: &str) -> [u8; 16] {
    // FNV-1a, then two rounds of mixing for the 16 bytes.
    let hash = schema_json.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut marker = [0u8; 16];
    marker[..8].copy_from_slice(&mix64(hash).to_le_bytes());
    marker[8..].copy_from_slice(&mix64(hash ^ 0x5eed).to_le_bytes());
    marker
}

/// The object-container header (magic, `avro.schema`, `avro.codec` = null, sync marker),
/// written by serde_avro_fast.
pub(crate) fn container_header(schema: &WriterSchema, sync: [u8; 16]) -> Result<Arc<[u8]>, String> {
    let mut config = SerializerConfig::new(&schema.schema);
    let writer = WriterBuilder::new(&mut config)
        .sync_marker(sync)
        .build(Vec::new())
        .map_err(|error| error.to_string())?;
    let header = writer.into_inner().map_err(|error| error.to_string())?;
    Ok(Arc::from(header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions_map_to_ids() {
        assert_eq!(schema_id_of_version("9.0"), Some(900));
        assert_eq!(schema_id_of_version("10.0"), Some(1000));
        assert_eq!(schema_id_of_name("lsst.v7_4"), Some(704));
        assert_eq!(schema_id_of_name("ztf"), None);
    }

    #[test]
    fn bad_framing_is_an_error_naming_the_input() {
        let error = Template::from_named_message("x.avro", b"{}").unwrap_err();
        assert!(error.to_string().starts_with("x.avro: "), "{error}");
        assert!(matches!(Template::from_message(&[]), Err(SimulateError::Decode { .. })));
        let unknown_id = [0u8, 0, 0, 0x04, 0x4d, 0];
        let error = Template::from_named_message("y", &unknown_id).unwrap_err();
        assert!(
            matches!(
                &error,
                SimulateError::Decode {
                    kind: DecodeErrorKind::UnknownSchemaId { id: 1101, .. },
                    ..
                }
            ),
            "{error}"
        );
    }
}
