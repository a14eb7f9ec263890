//! Amplifies every folder of real sample alerts (tests/data) and checks the copies: they decode,
//! their ids are unique, their positions valid, their history consistent with the template's,
//! their cutouts unchanged, nothing else changed, and the same seed gives the same bytes.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use nightjar_avro::{Container, SchemaCache, decode_datum, split_wire};
use nightjar_core::{Origin, RawBytes, Survey};
use nightjar_rubin::{RubinAlert, RubinSchemas};
use nightjar_simulate::{Amplifier, AmplifyConfig, SimulateError, Template, TemplateOptions, angular_distance_deg};
use nightjar_ztf::ZtfAlert;
use serde_json::Value;

/// Copies made of each sample folder.
const N_COPIES: u64 = 200;

/// Tolerances: positions in degrees (about 4 microarcseconds), times in days (under 1 ms).
const POSITION_TOLERANCE_DEG: f64 = 1e-9;
const TIME_TOLERANCE_DAYS: f64 = 1e-8;

const JD_TO_MJD: f64 = 2_400_000.5;

/// Leaf fields a copy may change; everything else must be identical to the template.
const CHANGED_FIELDS: &[&str] = &[
    // ids
    "objectId",
    "candid",
    "alertId",
    "diaSourceId",
    "diaObjectId",
    "ssObjectId",
    "diaForcedSourceId",
    // positions
    "ra",
    "dec",
    "ranr",
    "decnr",
    "psfRa",
    "psfDec",
    "trailRa",
    "trailDec",
    "dipoleRa",
    "dipoleDec",
    "ephRa",
    "ephDec",
    // times
    "jd",
    "jdstarthist",
    "jdendhist",
    "jdstartref",
    "jdendref",
    "midpointMjdTai",
    "timeProcessedMjdTai",
    "timeWithdrawnMjdTai",
    "radecMjdTai",
    "validityStartMjdTai",
    "firstDiaSourceMjdTai",
    "lastDiaSourceMjdTai",
    "time_processed",
    "validityStart",
];

fn data_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// Every `.avro` file under a folder, sorted.
fn avro_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read the sample folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "avro") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The sample folders: one per source and schema, as tests/data/README.md lists them.
fn sample_folders() -> Vec<String> {
    let root = data_root();
    let mut folders: Vec<String> = avro_files(&root)
        .iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).expect("under the data root");
            let parent = relative.parent().expect("in a folder");
            // `ztf/multi` holds two unrelated files: one folder each.
            if parent.ends_with("multi") {
                relative.to_string_lossy().into_owned()
            } else {
                parent.to_string_lossy().into_owned()
            }
        })
        .collect();
    folders.dedup();
    folders
}

/// The templates of a folder (or one file). The samples that cannot be templates: the wire
/// message with schema id 1101, which no bundled schema reads, and the synthetic 7.x wire
/// messages, whose times are not MJDs.
fn templates_of(folder: &str) -> Vec<Template> {
    let path = data_root().join(folder);
    let files = if path.is_dir() { avro_files(&path) } else { vec![path] };
    let mut templates = Vec::new();
    for file in files {
        let name = file
            .strip_prefix(data_root())
            .expect("under the data root")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&file).expect("read the sample");
        match Template::records_from_message(&name, &bytes) {
            Ok(records) => {
                for record in records {
                    match record {
                        Ok(template) => templates.push(template),
                        // The synthetic 7.x wire samples hold Unix seconds in midpointMjdTai.
                        Err(SimulateError::Unusable { reason, .. })
                            if name.starts_with("lsst/wire/pittgoogle-client/lsst.v7_")
                                && reason.contains("not a plausible MJD") => {}
                        Err(error) => panic!("{error}"),
                    }
                }
            }
            Err(SimulateError::Decode {
                kind: nightjar_core::DecodeErrorKind::UnknownSchemaId { id: 1101, .. },
                ..
            }) if name.ends_with("lsst.v11_1.avro") => {}
            Err(error) => panic!("{error}"),
        }
    }
    assert!(!templates.is_empty(), "{folder}: no templates");
    templates
}

/// A decoded copy or template.
#[derive(Debug, Clone)]
enum Decoded {
    Ztf(Box<ZtfAlert>),
    Rubin(Box<RubinAlert>),
}

/// Decodes a message with nightjar-avro and the wire types alone.
fn decode(message: &[u8], cache: &mut SchemaCache, rubin: &RubinSchemas) -> Decoded {
    if message.starts_with(nightjar_avro::CONTAINER_MAGIC) {
        let container = Container::open(message, cache).expect("a container");
        let mut records = container.records::<ZtfAlert>().expect("readable blocks");
        assert_eq!(records.len(), 1, "a ZTF message holds one record");
        Decoded::Ztf(Box::new(records.remove(0).expect("the record decodes")))
    } else {
        let (schema_id, datum) = split_wire(message).expect("wire format");
        let schema = rubin.get(schema_id).expect("a bundled schema id");
        Decoded::Rubin(Box::new(
            decode_datum::<RubinAlert>(datum, &schema.schema).expect("the datum decodes"),
        ))
    }
}

/// The cutout bytes of an alert: science, template, difference.
fn cutouts(decoded: &Decoded) -> Vec<Option<RawBytes>> {
    match decoded {
        Decoded::Ztf(alert) => [&alert.cutoutScience, &alert.cutoutTemplate, &alert.cutoutDifference]
            .into_iter()
            .map(|cutout| cutout.as_ref().and_then(|cutout| cutout.stampData.clone()))
            .collect(),
        Decoded::Rubin(alert) => {
            vec![
                alert.cutoutScience.clone(),
                alert.cutoutTemplate.clone(),
                alert.cutoutDifference.clone(),
            ]
        }
    }
}

/// The alert as JSON, cutout bytes left out.
fn json_without_cutouts(decoded: &Decoded) -> Value {
    match decoded {
        Decoded::Ztf(alert) => {
            let mut alert = (**alert).clone();
            for cutout in [
                &mut alert.cutoutScience,
                &mut alert.cutoutTemplate,
                &mut alert.cutoutDifference,
            ]
            .into_iter()
            .flatten()
            {
                cutout.stampData = None;
            }
            serde_json::to_value(&alert).expect("json")
        }
        Decoded::Rubin(alert) => {
            let mut alert = (**alert).clone();
            alert.cutoutScience = None;
            alert.cutoutTemplate = None;
            alert.cutoutDifference = None;
            serde_json::to_value(&alert).expect("json")
        }
    }
}

/// Paths of the leaves where two JSON values differ.
fn differences(path: &str, left: &Value, right: &Value, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            for key in keys {
                let null = Value::Null;
                differences(
                    &format!("{path}.{key}"),
                    left.get(key).unwrap_or(&null),
                    right.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (index, (left, right)) in left.iter().zip(right).enumerate() {
                differences(&format!("{path}[{index}]"), left, right, out);
            }
        }
        _ if left == right => {}
        _ => out.push(path.to_string()),
    }
}

/// The field name at the end of a path such as `.prv_candidates[3].jd`.
fn leaf_name(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

fn valid_position(ra: f64, dec: f64) -> bool {
    (0.0..360.0).contains(&ra) && (-90.0..=90.0).contains(&dec)
}

/// Whether a template position is one the copies move (sentinels such as -999 are kept).
fn movable(ra: Option<f64>, dec: Option<f64>) -> Option<(f64, f64)> {
    match (ra, dec) {
        (Some(ra), Some(dec)) if ra.is_finite() && dec.is_finite() && valid_position(ra, dec) => Some((ra, dec)),
        _ => None,
    }
}

/// Positions and times of an alert, each relative to the triggering detection, in a
/// survey-independent form: (name, distance to the detection in degrees) and (name, time minus
/// the detection's time in days).
#[derive(Debug, Default)]
struct Geometry {
    center: (f64, f64),
    mjd: f64,
    distances: Vec<(String, f64)>,
    positions: Vec<(String, f64, f64)>,
    time_offsets: Vec<(String, f64)>,
}

impl Geometry {
    fn position(&mut self, name: String, ra: Option<f64>, dec: Option<f64>) {
        if let Some((ra, dec)) = movable(ra, dec) {
            let distance = angular_distance_deg(self.center.0, self.center.1, ra, dec);
            self.distances.push((name.clone(), distance));
            self.positions.push((name, ra, dec));
        }
    }

    fn time(&mut self, name: String, mjd: Option<f64>) {
        if let Some(mjd) = mjd.filter(|mjd| mjd.is_finite()) {
            self.time_offsets.push((name, mjd - self.mjd));
        }
    }
}

fn geometry(decoded: &Decoded) -> Geometry {
    match decoded {
        Decoded::Ztf(alert) => {
            let candidate = alert.candidate.as_ref().expect("candidate");
            let mut geometry = Geometry {
                center: (candidate.ra.expect("ra"), candidate.dec.expect("dec")),
                mjd: candidate.jd.expect("jd") - JD_TO_MJD,
                ..Geometry::default()
            };
            geometry.position("candidate.nr".into(), candidate.ranr, candidate.decnr);
            for (name, jd) in [
                ("jdstarthist", candidate.jdstarthist),
                ("jdendhist", candidate.jdendhist),
                ("jdstartref", candidate.jdstartref),
                ("jdendref", candidate.jdendref),
            ] {
                geometry.time(format!("candidate.{name}"), jd.map(|jd| jd - JD_TO_MJD));
            }
            for (index, previous) in alert.prv_candidates.iter().flatten().enumerate() {
                geometry.position(format!("prv[{index}]"), previous.ra, previous.dec);
                geometry.position(format!("prv[{index}].nr"), previous.ranr, previous.decnr);
                geometry.time(format!("prv[{index}]"), previous.jd.map(|jd| jd - JD_TO_MJD));
            }
            for (index, forced) in alert.fp_hists.iter().flatten().enumerate() {
                geometry.position(format!("fp[{index}].nr"), forced.ranr, forced.decnr);
                geometry.time(format!("fp[{index}]"), forced.jd.map(|jd| jd - JD_TO_MJD));
            }
            geometry
        }
        Decoded::Rubin(alert) => {
            let source = alert.diaSource.as_ref().expect("diaSource");
            let mut geometry = Geometry {
                center: (source.ra.expect("ra"), source.dec.expect("dec")),
                mjd: source.midpointMjdTai.expect("midpointMjdTai"),
                ..Geometry::default()
            };
            geometry.time("diaSource.timeProcessed".into(), source.timeProcessedMjdTai);
            for (index, previous) in alert.prvDiaSources.iter().flatten().enumerate() {
                geometry.position(format!("prvDiaSources[{index}]"), previous.ra, previous.dec);
                geometry.time(format!("prvDiaSources[{index}]"), previous.midpointMjdTai);
            }
            for (index, forced) in alert.prvDiaForcedSources.iter().flatten().enumerate() {
                geometry.position(format!("prvDiaForcedSources[{index}]"), forced.ra, forced.dec);
                geometry.time(format!("prvDiaForcedSources[{index}]"), forced.midpointMjdTai);
            }
            for (index, limit) in alert.prvDiaNondetectionLimits.iter().flatten().enumerate() {
                geometry.time(format!("prvDiaNondetectionLimits[{index}]"), limit.midpointMjdTai);
            }
            if let Some(object) = &alert.diaObject {
                geometry.position("diaObject".into(), object.ra, object.dec);
                geometry.time("diaObject.first".into(), object.firstDiaSourceMjdTai);
                geometry.time("diaObject.last".into(), object.lastDiaSourceMjdTai);
                geometry.time("diaObject.radec".into(), object.radecMjdTai);
            }
            geometry
        }
    }
}

/// Every id a copy must make unique: (kind, id). History entries without an id are skipped.
fn source_ids(decoded: &Decoded) -> Vec<(&'static str, i64)> {
    match decoded {
        Decoded::Ztf(alert) => {
            let candidate = alert.candidate.as_ref().expect("candidate");
            let mut ids = vec![("candid", candidate.candid.expect("candidate.candid"))];
            ids.extend(
                alert
                    .prv_candidates
                    .iter()
                    .flatten()
                    .filter_map(|previous| previous.candid)
                    .map(|id| ("candid", id)),
            );
            ids
        }
        Decoded::Rubin(alert) => {
            let source = alert.diaSource.as_ref().expect("diaSource");
            let mut ids = vec![("diaSourceId", source.diaSourceId.expect("diaSourceId"))];
            ids.extend(
                alert
                    .prvDiaSources
                    .iter()
                    .flatten()
                    .filter_map(|previous| previous.diaSourceId)
                    .map(|id| ("diaSourceId", id)),
            );
            ids.extend(
                alert
                    .prvDiaForcedSources
                    .iter()
                    .flatten()
                    .filter_map(|forced| forced.diaForcedSourceId)
                    .map(|id| ("diaForcedSourceId", id)),
            );
            ids
        }
    }
}

/// Object ids of a Rubin alert, wherever they appear (0 and null stand for none): diaObjectId,
/// or ssObjectId for a solar-system source without a diaObject.
fn rubin_object_ids(alert: &RubinAlert) -> Vec<i64> {
    let mut ids = Vec::new();
    ids.extend(alert.diaSource.as_ref().and_then(|source| source.diaObjectId));
    ids.extend(alert.diaSource.as_ref().and_then(|source| source.ssObjectId));
    ids.extend(alert.ssSource.as_ref().and_then(|source| source.ssObjectId));
    ids.extend(alert.diaObject.as_ref().and_then(|object| object.diaObjectId));
    ids.extend(
        alert
            .prvDiaSources
            .iter()
            .flatten()
            .filter_map(|previous| previous.diaObjectId),
    );
    ids.extend(
        alert
            .prvDiaForcedSources
            .iter()
            .flatten()
            .filter_map(|forced| forced.diaObjectId),
    );
    ids.retain(|id| *id != 0);
    ids
}

fn is_ztf_object_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 12
        && name.starts_with("ZTF")
        && bytes[3..5].iter().all(u8::is_ascii_digit)
        && bytes[5..].iter().all(u8::is_ascii_lowercase)
}

/// Amplifies one folder and checks every copy against its template.
fn check_folder(folder: &str, config: &AmplifyConfig) {
    let templates = templates_of(folder);
    let amplifier = Amplifier::new(templates.clone(), config.clone()).expect("an amplifier");
    let mut cache = SchemaCache::new();
    let rubin = RubinSchemas::bundled();
    let mut decoder = nightjar_decode::Decoder::new();
    let references: Vec<Decoded> = templates
        .iter()
        .map(|template| decode(&template.message(), &mut cache, &rubin))
        .collect();

    let mut seen_ids = HashSet::new();
    let mut seen_objects = HashSet::new();
    for index in 0..N_COPIES {
        let message = amplifier.message(index).expect("a copy");
        let info = amplifier.copy_info(index).expect("copy info");
        let template = &templates[info.template];
        let reference = &references[info.template];
        let copy = decode(&message, &mut cache, &rubin);
        let context = format!("{folder}: copy {index} of {}", template.label());

        // Nothing but ids, positions and times changed (checked on the first rounds through
        // the templates: comparing whole alerts as JSON is slow); cutouts are the template's.
        assert_eq!(cutouts(&copy), cutouts(reference), "{context}: cutouts differ");
        if index < 3 * templates.len() as u64 {
            let mut changed = Vec::new();
            differences(
                "",
                &json_without_cutouts(reference),
                &json_without_cutouts(&copy),
                &mut changed,
            );
            let unexpected: Vec<&String> = changed
                .iter()
                .filter(|path| !CHANGED_FIELDS.contains(&leaf_name(path)))
                .collect();
            assert!(unexpected.is_empty(), "{context}: unexpected changes {unexpected:?}");
        }

        // Ids: unique across all copies, and the alert's id where it is repeated.
        for (kind, id) in source_ids(&copy) {
            assert!(seen_ids.insert(id), "{context}: {kind} {id} given out twice");
        }
        assert_eq!(source_ids(&copy)[0].1, info.alert_id, "{context}");
        match &copy {
            Decoded::Ztf(alert) => {
                if let Some(name) = alert.objectId.clone() {
                    assert!(is_ztf_object_name(&name), "{context}: objectId {name}");
                    assert_eq!(Some(&name), info.object_id.as_ref(), "{context}");
                    assert!(seen_objects.insert(name), "{context}: objectId repeated");
                } else {
                    // A 2016 prototype packet: no objectId; its renewed alertId names it.
                    assert_eq!(alert.alertId, Some(info.alert_id), "{context}: alertId");
                    assert!(info.object_id.is_none(), "{context}");
                }
                if let Some(candid) = alert.candid {
                    assert_eq!(
                        Some(candid),
                        alert.candidate.as_ref().and_then(|candidate| candidate.candid)
                    );
                }
            }
            Decoded::Rubin(alert) => {
                let source_id = alert.diaSource.as_ref().and_then(|source| source.diaSourceId);
                for top_level in [alert.diaSourceId, alert.alertId].into_iter().flatten() {
                    assert_eq!(Some(top_level), source_id, "{context}");
                }
                if let Some(ss_dia_source_id) = alert.ssSource.as_ref().and_then(|ss_source| ss_source.diaSourceId) {
                    assert_eq!(Some(ss_dia_source_id), source_id, "{context}: ssSource.diaSourceId");
                }
                let Decoded::Rubin(reference_alert) = reference else {
                    panic!("{context}: survey changed")
                };
                let object_ids = rubin_object_ids(alert);
                assert_eq!(object_ids.len(), rubin_object_ids(reference_alert).len(), "{context}");
                if let Some(first) = object_ids.first() {
                    assert!(
                        object_ids.iter().all(|id| id == first),
                        "{context}: several diaObjectIds"
                    );
                    let core_id = info.object_id.as_deref().map(|id| id.trim_start_matches("ss:"));
                    assert_eq!(Some(first.to_string().as_str()), core_id, "{context}");
                    assert!(
                        seen_objects.insert(first.to_string()),
                        "{context}: diaObjectId repeated"
                    );
                    assert!(!seen_ids.contains(first), "{context}: diaObjectId equals a source id");
                }
            }
        }

        // Geometry: the detection is where copy_info says; every other position is as far
        // from it as in the template, every time as far from its time.
        let copy_geometry = geometry(&copy);
        let reference_geometry = geometry(reference);
        let (ra, dec) = copy_geometry.center;
        assert!(valid_position(ra, dec), "{context}: position {ra} {dec}");
        assert!(
            angular_distance_deg(ra, dec, info.ra, info.dec) < POSITION_TOLERANCE_DEG,
            "{context}"
        );
        assert!((copy_geometry.mjd - info.mjd).abs() < TIME_TOLERANCE_DAYS, "{context}");
        if let Some(start_mjd) = config.start_mjd {
            let expected = start_mjd + index as f64 * config.cadence_s / 86_400.0;
            assert!(
                (copy_geometry.mjd - expected).abs() < TIME_TOLERANCE_DAYS,
                "{context}: mjd {}",
                copy_geometry.mjd
            );
        }
        for (name, ra, dec) in &copy_geometry.positions {
            assert!(valid_position(*ra, *dec), "{context}: {name} at {ra} {dec}");
        }
        assert_eq!(
            copy_geometry.distances.len(),
            reference_geometry.distances.len(),
            "{context}"
        );
        for ((name, copy_distance), (_, reference_distance)) in
            copy_geometry.distances.iter().zip(&reference_geometry.distances)
        {
            assert!(
                (copy_distance - reference_distance).abs() < POSITION_TOLERANCE_DEG,
                "{context}: {name} is {copy_distance} deg from the detection, {reference_distance} in the template"
            );
        }
        assert_eq!(
            copy_geometry.time_offsets.len(),
            reference_geometry.time_offsets.len(),
            "{context}"
        );
        for ((name, copy_offset), (_, reference_offset)) in
            copy_geometry.time_offsets.iter().zip(&reference_geometry.time_offsets)
        {
            assert!(
                (copy_offset - reference_offset).abs() < TIME_TOLERANCE_DAYS,
                "{context}: {name} is {copy_offset} days from the detection, {reference_offset} in the template"
            );
        }

        // The project's own decoder reads the copy as the same alert.
        let alerts = decoder.decode(&message, &Origin::memory(context.clone()));
        assert_eq!(alerts.len(), 1, "{context}");
        let alert = alerts
            .into_iter()
            .next()
            .expect("one")
            .unwrap_or_else(|error| panic!("{context}: {error}"));
        assert_eq!(alert.source_id(), info.alert_id, "{context}");
        assert_eq!(alert.survey, template.survey(), "{context}");
        assert_eq!(template.object_id().is_some(), info.object_id.is_some(), "{context}");
        if let Some(object_id) = &info.object_id {
            assert_eq!(&alert.object_id, object_id, "{context}");
        }
    }
}

#[test]
fn every_sample_folder_amplifies_into_consistent_unique_copies() {
    let config = AmplifyConfig {
        seed: 7,
        start_mjd: Some(61_000.25),
        cadence_s: 0.5,
        ..AmplifyConfig::default()
    };
    let folders = sample_folders();
    assert!(folders.len() >= 20, "{folders:?}");
    for folder in &folders {
        check_folder(folder, &config);
    }
}

#[test]
fn without_a_start_copies_keep_their_template_time_plus_the_cadence() {
    let config = AmplifyConfig {
        seed: 3,
        start_mjd: None,
        cadence_s: 60.0,
        ..AmplifyConfig::default()
    };
    check_folder("ztf/alerts/boom_tests_v4.02_fp_hists", &config);
    check_folder("lsst/alerts/fink_ecdfs_20250411_v7.4", &config);
    let templates = templates_of("ztf/alerts/boom_tests_v4.02_fp_hists");
    let amplifier = Amplifier::new(templates.clone(), config).expect("an amplifier");
    for index in 0..10 {
        let info = amplifier.copy_info(index).expect("copy info");
        let expected = templates[info.template].time_mjd() + index as f64 * 60.0 / 86_400.0;
        assert!((info.mjd - expected).abs() < 1e-9);
    }
}

#[test]
fn ids_of_another_length_than_the_templates_are_written_too() {
    // Small ids take fewer varint bytes than the templates' ids, so copies cannot overwrite
    // the template's bytes in place and are assembled piece by piece.
    let config = AmplifyConfig {
        seed: 9,
        start_mjd: Some(60_100.0),
        id_base: Some(1_000),
        ..AmplifyConfig::default()
    };
    check_folder("ztf/alerts/kowalski_20231012_v4.01", &config);
    check_folder("lsst/alerts/fink_hsc_cosmos_57454_v9.0", &config);
    check_folder("lsst/wire/boom", &config);
}

#[test]
fn templates_re_encode_native_alerts_without_change() {
    // A native ZTF container re-encoded with its own writer schema reads back identical.
    let mut cache = SchemaCache::new();
    let rubin = RubinSchemas::bundled();
    for folder in [
        "ztf/alerts/kowalski_20231012_v4.01",
        "ztf/alerts/skyportal_20180626_v1.8",
        "ztf/multi/ztf_v3.3_3alerts_20211124.avro",
    ] {
        let path = data_root().join(folder);
        let files = if path.is_dir() { avro_files(&path) } else { vec![path] };
        for file in files {
            let bytes = std::fs::read(&file).expect("read");
            let originals = Container::open(&bytes, &mut cache)
                .expect("container")
                .records::<ZtfAlert>()
                .expect("blocks");
            let templates = Template::from_named_message(&file.to_string_lossy(), &bytes).expect("templates");
            assert_eq!(originals.len(), templates.len());
            for (original, template) in originals.into_iter().zip(&templates) {
                let Decoded::Ztf(copy) = decode(&template.message(), &mut cache, &rubin) else {
                    panic!("survey")
                };
                let original = serde_json::to_value(original.expect("record")).expect("json");
                assert_eq!(
                    serde_json::to_value(*copy).expect("json"),
                    original,
                    "{}",
                    template.label()
                );
            }
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_ids() {
    let templates: Vec<Template> = ["ztf/alerts/pittgoogle_20210831-0901_v3.3", "lsst/wire/alerce_v7.4"]
        .iter()
        .flat_map(|folder| templates_of(folder))
        .collect();
    let config = AmplifyConfig {
        seed: 11,
        start_mjd: Some(60_500.0),
        ..AmplifyConfig::default()
    };
    let first = Amplifier::new(templates.clone(), config.clone()).expect("an amplifier");
    let second = Amplifier::new(templates.clone(), config.clone()).expect("an amplifier");
    let other_seed = Amplifier::new(templates, AmplifyConfig { seed: 12, ..config }).expect("an amplifier");
    let mut first_ids = HashSet::new();
    let mut other_ids = HashSet::new();
    // Out of order, to show that a copy depends on its index only.
    for index in (0..60).rev() {
        let message = first.message(index).expect("copy");
        assert_eq!(message, second.message(index).expect("copy"), "copy {index}");
        assert_eq!(message, first.message(index).expect("copy"), "copy {index} again");
        assert_ne!(
            message,
            other_seed.message(index).expect("copy"),
            "copy {index}, other seed"
        );
        let info = first.copy_info(index).expect("info");
        let other = other_seed.copy_info(index).expect("info");
        assert_ne!(info.object_id, other.object_id);
        assert_ne!((info.ra, info.dec), (other.ra, other.dec));
        first_ids.insert(info.alert_id);
        other_ids.insert(other.alert_id);
    }
    assert!(first_ids.is_disjoint(&other_ids));
    let mut collected = Vec::new();
    for message in first.messages(0..5) {
        collected.push(message.expect("copy"));
    }
    assert_eq!(collected[4], first.message(4).expect("copy"));
}

#[test]
fn a_container_file_holds_the_copies() {
    let templates = templates_of("ztf/alerts/boom_20240715_v4.02");
    let amplifier = Amplifier::new(
        templates,
        AmplifyConfig {
            seed: 5,
            ..AmplifyConfig::default()
        },
    )
    .expect("an amplifier");
    let file = amplifier.write_container_file(0..37).expect("a container file");
    let mut cache = SchemaCache::new();
    let rubin = RubinSchemas::bundled();
    let records = Container::open(&file, &mut cache)
        .expect("container")
        .records::<ZtfAlert>()
        .expect("blocks");
    assert_eq!(records.len(), 37);
    for (index, record) in records.into_iter().enumerate() {
        let Decoded::Ztf(single) = decode(&amplifier.message(index as u64).expect("copy"), &mut cache, &rubin) else {
            panic!("survey")
        };
        assert_eq!(
            serde_json::to_value(record.expect("record")).expect("json"),
            serde_json::to_value(*single).expect("json")
        );
    }
    // Nightjar's decoder reads the file too.
    let alerts = nightjar_decode::Decoder::new().decode(&file, &Origin::memory("file"));
    assert_eq!(alerts.iter().filter(|alert| alert.is_ok()).count(), 37);

    // Rubin copies of one version go into a container of the bundled schema.
    let rubin_templates = templates_of("lsst/alerts/fink_lsstcam_20250906_v9.0");
    let amplifier = Amplifier::new(rubin_templates, AmplifyConfig::default()).expect("an amplifier");
    let file = amplifier.write_container_file(0..10).expect("a container file");
    let alerts = nightjar_decode::Decoder::new().decode(&file, &Origin::memory("file"));
    assert_eq!(
        alerts
            .iter()
            .filter(|alert| alert.as_ref().is_ok_and(|alert| alert.survey == Survey::Rubin))
            .count(),
        10
    );
}

#[test]
fn a_container_file_refuses_mixed_schemas() {
    // ztf-avro-alert holds one alert per schema version 2.0 .. 3.5.
    let templates = templates_of("ztf/alerts/ztf-avro-alert");
    let amplifier = Amplifier::new(templates, AmplifyConfig::default()).expect("an amplifier");
    let error = amplifier.write_container_file(0..3).expect_err("mixed schemas");
    assert!(matches!(error, SimulateError::MixedSchemas { index: 1, .. }), "{error}");
}

#[test]
fn limits_and_bad_configurations_are_errors() {
    let templates = templates_of("ztf/alerts/edge_cases");
    assert!(templates[0].n_history_ids() > 10);
    let too_few = AmplifyConfig {
        ids_per_copy: 10,
        ..AmplifyConfig::default()
    };
    let error = Amplifier::new(templates.clone(), too_few).expect_err("too many ids");
    assert!(matches!(error, SimulateError::TooManyIds { .. }), "{error}");
    assert!(error.to_string().contains("edge_cases"), "{error}");

    let near_the_end = AmplifyConfig {
        id_base: Some(i64::MAX - 10_000),
        ..AmplifyConfig::default()
    };
    let amplifier = Amplifier::new(templates.clone(), near_the_end).expect("an amplifier");
    assert!(amplifier.message(0).is_ok());
    assert!(matches!(
        amplifier.message(3),
        Err(SimulateError::IdOverflow { index: 3, .. })
    ));

    assert!(matches!(
        Amplifier::new(Vec::new(), AmplifyConfig::default()),
        Err(SimulateError::NoTemplates)
    ));
    for bad in [
        AmplifyConfig {
            cadence_s: f64::NAN,
            ..AmplifyConfig::default()
        },
        AmplifyConfig {
            cadence_s: -1.0,
            ..AmplifyConfig::default()
        },
        AmplifyConfig {
            start_mjd: Some(2_460_000.5),
            ..AmplifyConfig::default()
        },
        AmplifyConfig {
            id_base: Some(0),
            ..AmplifyConfig::default()
        },
        AmplifyConfig {
            ids_per_copy: 1,
            ..AmplifyConfig::default()
        },
    ] {
        assert!(matches!(bad.validate(), Err(SimulateError::Config(_))), "{bad:?}");
        assert!(Amplifier::new(templates.clone(), bad).is_err());
    }

    let parsed: AmplifyConfig = serde_json::from_str(r#"{"seed": 4, "start_mjd": 60000.5}"#).expect("config");
    assert_eq!(
        parsed,
        AmplifyConfig {
            seed: 4,
            start_mjd: Some(60_000.5),
            ..AmplifyConfig::default()
        }
    );
    assert!(serde_json::from_str::<AmplifyConfig>(r#"{"sead": 4}"#).is_err());
}

#[test]
fn fink_rubin_records_with_all_null_records_become_templates() {
    // Fink's 10.0 file writes ssSource and mpc_orbits as records of nulls for alerts without a
    // solar-system association; those are taken as absent.
    let templates = templates_of("lsst/multi/fink_lsst_v10.0_7alerts_20260306.avro");
    assert_eq!(templates.len(), 7);
    assert!(templates.iter().all(|template| template.schema_id() == Some(1000)));
    let by_history: BTreeMap<u32, usize> = templates
        .iter()
        .enumerate()
        .map(|(index, template)| (template.n_history_ids(), index))
        .collect();
    // The longest history (prvDiaSources + prvDiaForcedSources) still fits one copy's ids.
    assert!(by_history.keys().next_back().copied().unwrap_or(0) > 1000);
}

#[test]
fn templates_without_cutouts_give_the_same_alerts_without_stamps() {
    let mut cache = SchemaCache::new();
    let rubin = RubinSchemas::bundled();
    let options = TemplateOptions { drop_cutouts: true };
    let mut n_checked = 0;
    for folder in [
        "ztf/alerts/boom_20240715_v4.02",
        "lsst/wire/alerce_v7.4",
        "lsst/alerts/alerce_v9.0",
    ] {
        for file in avro_files(&data_root().join(folder)) {
            let bytes = std::fs::read(&file).expect("read the sample");
            let name = file.to_string_lossy();
            let with = Template::from_named_message(&name, &bytes).expect("templates");
            let without: Vec<Template> = Template::records_from_message_with(&name, &bytes, options)
                .expect("templates")
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("every record a template");
            assert_eq!(with.len(), without.len(), "{name}");
            for (with, without) in with.iter().zip(&without) {
                assert!(
                    without.datum_len() * 2 < with.datum_len(),
                    "{name}: {} -> {} bytes",
                    with.datum_len(),
                    without.datum_len()
                );
                let (full, small) = (with.message(), without.message());
                let (full, small) = (decode(&full, &mut cache, &rubin), decode(&small, &mut cache, &rubin));
                assert!(
                    cutouts(&full).iter().any(Option::is_some),
                    "{name}: the sample has stamps"
                );
                assert!(cutouts(&small).iter().all(Option::is_none), "{name}: no stamp left");
                let mut changed = Vec::new();
                differences(
                    "",
                    &json_without_cutouts(&full),
                    &json_without_cutouts(&small),
                    &mut changed,
                );
                // ZTF cutout records go as a whole; everything else is the same.
                changed.retain(|path| !path.contains("cutout"));
                assert!(changed.is_empty(), "{name}: {changed:?}");
                n_checked += 1;
            }
        }
    }
    assert!(n_checked >= 15, "{n_checked}");
}
