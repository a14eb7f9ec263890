//! Real Rubin alerts: every file decodes to what fastavro reads from it, versions are recognised,
//! and the core model carries the values the files hold (read independently with fastavro).

mod common;

use nightjar_avro::{Container, SchemaCache, split_wire};
use nightjar_core::compare::compare_records;
use nightjar_core::raw::FieldValue;
use nightjar_core::{Alert, Band, CutoutKind, DecodeErrorKind};
use nightjar_rubin::{RubinAlert, RubinSchemas, detect_version, is_rubin};

use common::{decode_bytes, decode_file, decode_one, fixture, read_data, rubin_files};

const UNKNOWN_SCHEMA_FILE: &str = "lsst/wire/pittgoogle-client/lsst.v11_1.avro";

/// Columns Fink adds to the Rubin record, by folder (or file).
fn expected_extra_columns(file: &str) -> Vec<&'static str> {
    let mut columns = if file.starts_with("lsst/alerts/fink_ecdfs_20250411_v7.4/") {
        vec![
            "brokerIngestMjd",
            "brokerEndProcessMjd",
            "brokerStartProcessTimestamp",
            "fink_broker_version",
            "fink_science_version",
            "publisher",
            "cdsxmatch",
            "tns",
            "DR3Name",
            "Plx",
            "e_Plx",
            "vsx",
            "spicy_id",
            "spicy_class",
            "gcvs",
            "x3hsp",
            "x4lac",
            "mangrove",
            "roid",
            "snn_sn_vs_others",
            "cats_broad_class",
            "brokerEndProcessTimestamp",
        ]
    } else if file.ends_with("_fink_enriched.avro") {
        vec![
            "brokerIngestMjd",
            "lsst_schema_version",
            "brokerStartProcessTimestamp",
            "fink_broker_version",
            "fink_science_version",
            "publisher",
            "cdsxmatch",
            "tns",
            "DR3Name",
            "Plx",
            "e_Plx",
            "gaiaVarFlag",
            "gaiaClass",
            "vsx",
            "spicy_id",
            "spicy_class",
            "gcvs",
            "x3hsp",
            "x4lac",
            "mangrove",
            "roid",
            "snn_sn_vs_others",
            "cats_broad_class",
            "finkclass",
            "brokerEndProcessTimestamp",
        ]
    } else if file.starts_with("lsst/alerts/fink_hsc_cosmos_57454_v9.0/")
        || file.starts_with("lsst/alerts/fink_lsstcam_20250906_v9.0/")
    {
        vec!["brokerIngestMjd", "lsst_schema_version"]
    } else if file.starts_with("lsst/multi/") {
        vec![
            "brokerIngestMjd",
            "lsst_schema_version",
            "brokerStartProcessTimestamp",
            "fink_broker_version",
            "fink_science_version",
            "publisher",
            "lc_features",
            "clf",
            "xm",
            "pred",
            "misc",
            "brokerEndProcessTimestamp",
            "timestamp",
            "year",
            "month",
            "day",
            "tns_type_recomputed",
        ]
    } else {
        Vec::new()
    };
    columns.sort_unstable();
    columns
}

/// The schema version each folder was written with.
fn expected_version(file: &str) -> String {
    let folders = [
        ("lsst/alerts/alerce_v9.0/", "9.0"),
        ("lsst/alerts/fink_ecdfs_20250411_v7.4/", "7.4"),
        ("lsst/alerts/fink_hsc_cosmos_57454_v9.0/", "9.0"),
        ("lsst/alerts/fink_lsstcam_20250906_v9.0/", "9.0"),
        ("lsst/multi/", "10.0"),
        ("lsst/wire/alerce_v7.4/", "7.4"),
        ("lsst/wire/boom/25409136044802067", "7.1"),
        ("lsst/wire/boom/3527242430321524769", "7.3"),
        ("lsst/wire/boom/7912941781254298", "9.0"),
    ];
    if let Some(name) = file.strip_prefix("lsst/wire/pittgoogle-client/lsst.v") {
        // lsst.v10_0.avro -> 10.0
        let stem = name.trim_end_matches(".avro");
        return stem.replace('_', ".");
    }
    folders
        .iter()
        .find(|(prefix, _)| file.starts_with(prefix))
        .map(|(_, version)| version.to_string())
        .unwrap_or_else(|| panic!("no expected version for {file}"))
}

#[test]
fn every_rubin_file_decodes_to_what_fastavro_reads() {
    let schemas = RubinSchemas::bundled();
    let mut cache = SchemaCache::new();
    let files = rubin_files();
    assert_eq!(files.len(), 35, "{files:#?}");
    let (mut n_records, mut n_equal) = (0, 0);
    for file in &files {
        let bytes = read_data(file);
        let expected = fixture(file);
        let decoded = decode_bytes(&bytes, &schemas, &mut cache);
        if file == UNKNOWN_SCHEMA_FILE {
            assert_eq!(expected["error"], "unknown schema id 1101");
            match decoded {
                Err(DecodeErrorKind::UnknownSchemaId { id: 1101, known }) => {
                    assert_eq!(known, "700, 701, 702, 703, 704, 800, 900, 1000, 1100");
                }
                other => panic!("{file}: expected unknown schema id 1101, got {other:?}"),
            }
            continue;
        }
        let alerts = decoded.unwrap_or_else(|error| panic!("{file}: {error}"));
        let records = expected["records"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: fixture has no records"));
        assert_eq!(alerts.len(), records.len(), "{file}");
        if let Some(id) = expected["schema_id"].as_u64() {
            assert_eq!(split_wire(&bytes).expect("wire").0 as u64, id, "{file}");
        }
        for (index, (alert, record)) in alerts.iter().zip(records).enumerate() {
            let alert = alert
                .as_ref()
                .unwrap_or_else(|error| panic!("{file} record {index}: {error}"));
            let comparison = compare_records(&alert.raw.to_json(), record);
            assert!(
                comparison.mismatches.is_empty(),
                "{file} record {index}: {} mismatches, first: {:#?}",
                comparison.mismatches.len(),
                &comparison.mismatches[..comparison.mismatches.len().min(10)]
            );
            let mut extra = comparison.extra_top_level.clone();
            extra.sort_unstable();
            assert_eq!(
                extra,
                expected_extra_columns(file),
                "{file} record {index}: extra top-level columns"
            );
            assert!(
                comparison.n_equal > 100,
                "{file} record {index}: only {} values compared",
                comparison.n_equal
            );
            assert_eq!(alert.schema_version, expected_version(file), "{file} record {index}");
            n_equal += comparison.n_equal;
            n_records += 1;
        }
    }
    assert_eq!(n_records, 40);
    assert!(n_equal > 100_000, "{n_equal} values compared");
}

#[test]
fn container_versions_are_detected_from_the_fields() {
    let mut cache = SchemaCache::new();
    let mut n_containers = 0;
    for file in rubin_files() {
        let bytes = read_data(&file);
        let Ok(container) = Container::open(&bytes, &mut cache) else {
            continue;
        };
        assert!(is_rubin(&container.schema), "{file}");
        assert_eq!(detect_version(&container.schema), expected_version(&file), "{file}");
        let expected_name = if file.contains("/alerce_v9.0/") {
            "lsst.v9_0.alert"
        } else if file.starts_with("lsst/multi/") {
            "topLevelRecord.value"
        } else {
            "topLevelRecord"
        };
        assert_eq!(container.schema.name, expected_name, "{file}");
        n_containers += 1;
    }
    assert_eq!(n_containers, 17);
}

#[test]
fn wire_ids_700_to_1100_give_their_version() {
    for (name, id) in [
        ("7_0", 700),
        ("7_1", 701),
        ("7_2", 702),
        ("7_3", 703),
        ("7_4", 704),
        ("8_0", 800),
        ("9_0", 900),
        ("10_0", 1000),
        ("11_0", 1100),
    ] {
        let file = format!("lsst/wire/pittgoogle-client/lsst.v{name}.avro");
        assert_eq!(split_wire(&read_data(&file)).expect("wire").0, id);
        let alert = decode_one(&file);
        assert_eq!(alert.schema_version, name.replace('_', "."), "{file}");
        // The synthetic sample alert: the same values under every version.
        assert_eq!(alert.detection.source_id, 281323062375219200, "{file}");
        assert_eq!(
            alert.object_id, "281323062375219201",
            "{file}: from diaObject, diaSource has none"
        );
        assert_eq!(alert.detection.band, Some(Band::R));
        assert_eq!(alert.detection.flux, Some(1241.0));
        assert_eq!(alert.history.len(), 2, "{file}");
        assert!(
            alert.history.windows(2).all(|pair| pair[0].mjd <= pair[1].mjd),
            "{file}: history sorted"
        );
        assert!(alert.cutouts.is_empty());
    }
}

fn assert_fits(alert: &Alert, sizes: [usize; 3]) {
    for (kind, size) in CutoutKind::ALL.into_iter().zip(sizes) {
        let cutout = alert.cutout(kind).unwrap_or_else(|| panic!("{kind:?} cutout"));
        assert_eq!(cutout.data.len(), size, "{kind:?}");
        assert!(cutout.data.starts_with(b"SIMPLE"), "{kind:?} is FITS");
        assert!(!cutout.is_gzip());
    }
}

#[test]
fn negative_flux_alert_9_0() {
    let alert = decode_one("lsst/wire/boom/7912941781254298.avro");
    assert_eq!(alert.schema_version, "9.0");
    assert_eq!(alert.object_id, "7912941781254298");
    let detection = &alert.detection;
    assert_eq!(detection.source_id, 7912941781254298);
    assert_eq!(detection.band, Some(Band::R));
    assert_eq!(detection.mjd, 60961.23309222222);
    assert_eq!(detection.ra, 55.75212760972686);
    assert_eq!(detection.dec, -32.26847858422095);
    assert_eq!(detection.flux, Some(-1230.2757568359375));
    assert_eq!(detection.flux_err, Some(245.93679809570312));
    assert!(detection.is_negative);
    let magnitude = detection.magnitude.expect("magnitude of |flux|");
    assert!((magnitude - (31.4 - 2.5 * 1230.2757568359375f64.log10())).abs() < 1e-12);
    let magnitude_err = detection.magnitude_err.expect("magnitude error");
    assert!((magnitude_err - 1.0857362047581294 * 245.93679809570312 / 1230.2757568359375).abs() < 1e-12);
    assert_eq!(detection.reliability, Some(0.11247663199901581));
    assert!(alert.history.is_empty());
    assert!(alert.upper_limits.is_empty());
    assert!(alert.forced_photometry.is_empty());
    assert_fits(&alert, [34560, 69120, 34560]);

    // Raw fields stay reachable by name, and the cutouts are the raw record's bytes, not a copy.
    assert_eq!(alert.raw.get("diaSource.isNegative"), Some(FieldValue::Bool(true)));
    assert_eq!(alert.raw.get("diaSource.band"), Some(FieldValue::Str("r")));
    assert_eq!(alert.raw.get("diaSourceId"), Some(FieldValue::Int(7912941781254298)));
    assert_eq!(alert.raw.get("alertId"), Some(FieldValue::Null));
    assert_eq!(alert.raw.get("nonsense"), None);
    let raw = alert.raw.as_any().downcast_ref::<RubinAlert>().expect("a Rubin alert");
    let science = raw.cutoutScience.as_ref().expect("science cutout");
    let cutout = alert.cutout(CutoutKind::Science).expect("science cutout");
    assert!(std::sync::Arc::ptr_eq(&science.0, &cutout.data));
    assert!(alert.raw.field_paths().contains(&"diaSource.psfFlux".to_string()));
}

#[test]
fn alert_with_history_7_1() {
    let alert = decode_one("lsst/wire/boom/25409136044802067.avro");
    assert_eq!(alert.schema_version, "7.1");
    assert_eq!(alert.source_id(), 25409136044802067);
    assert_eq!(alert.object_id, "25401295582003262");
    assert_eq!(alert.detection.band, Some(Band::G));
    assert_eq!(alert.detection.mjd, 57454.32928159722);
    assert_eq!(alert.detection.flux, Some(2000.9814453125));
    assert!(!alert.detection.is_negative);
    assert_eq!(alert.detection.reliability, Some(0.8078683018684387));
    assert_eq!(alert.history.len(), 2);
    assert_eq!(alert.forced_photometry.len(), 3);
    assert!(alert.upper_limits.is_empty(), "7.1 allows limits; this alert has none");
    assert!(
        alert
            .history
            .iter()
            .all(|detection| detection.mjd < alert.detection.mjd)
    );
    assert!(
        alert
            .forced_photometry
            .iter()
            .all(|forced| forced.forced_source_id.is_some() && forced.flux.is_some())
    );
    assert_fits(&alert, [34560, 34560, 34560]);
}

#[test]
fn negative_flux_with_a_false_is_negative_flag_7_4() {
    // Rubin's `is_negative` says "detected as significantly negative"; the flux sign is what
    // the core model's `is_negative` means.
    let alert = decode_one("lsst/wire/alerce_v7.4/message_0.avro");
    assert_eq!(alert.schema_version, "7.4");
    assert_eq!(alert.source_id(), 396895243468944);
    assert_eq!(alert.detection.flux, Some(-218.23802185058594));
    assert_eq!(alert.raw.get("diaSource.is_negative"), Some(FieldValue::Bool(false)));
    assert!(alert.detection.is_negative);
    assert_eq!(alert.raw.get("alertId"), Some(FieldValue::Int(396895243468944)));
}

#[test]
fn fink_7_4_alert_with_history_and_forced_photometry() {
    let alert = decode_one("lsst/alerts/fink_ecdfs_20250411_v7.4/58804310665855007_58804310665855007.avro");
    assert_eq!(alert.schema_version, "7.4");
    assert_eq!(alert.source_id(), 58804310665855007);
    assert_eq!(alert.object_id, "3532611186686165018");
    assert_eq!(alert.detection.band, Some(Band::I));
    assert_eq!(alert.detection.mjd, 60776.83746458126);
    assert_eq!(alert.detection.reliability, Some(1.0));
    assert_eq!(alert.history.len(), 6);
    assert_eq!(alert.forced_photometry.len(), 7);
    assert_fits(&alert, [34560, 37440, 34560]);
}

#[test]
fn solar_system_alerts_use_the_ss_object_id() {
    let alert = decode_one("lsst/alerts/fink_lsstcam_20250906_v9.0/169298432757858307_169298432757858307.avro");
    assert_eq!(alert.object_id, "ss:21164715316492612");
    assert_eq!(alert.raw.get("diaSource.diaObjectId"), Some(FieldValue::Int(0)));
    assert_eq!(alert.raw.get("diaObject.diaObjectId"), Some(FieldValue::Null));
    assert_eq!(alert.detection.flux, Some(14694.1328125));
    assert_fits(&alert, [34560, 40320, 34560]);

    let alert = decode_one("lsst/alerts/fink_lsstcam_20250906_v9.0/169298433340342300_169298433340342300.avro");
    assert_eq!(alert.object_id, "ss:21164719644750924");
}

#[test]
fn native_9_0_container() {
    let alert = decode_one("lsst/alerts/alerce_v9.0/sample_v9.avro");
    assert_eq!(alert.schema_version, "9.0");
    assert_eq!(alert.source_id(), 169298433221853273);
    assert_eq!(alert.object_id, "169298433221853273");
    assert_eq!(alert.detection.band, Some(Band::I));
    assert_eq!(alert.detection.flux, Some(-60413.03125));
    assert!(
        alert.detection.is_negative,
        "negative psfFlux although isNegative is false"
    );
    assert_fits(&alert, [40320, 46080, 40320]);
}

#[test]
fn multi_record_fink_10_0_container() {
    let alerts = decode_file("lsst/multi/fink_lsst_v10.0_7alerts_20260306.avro");
    assert_eq!(alerts.len(), 7);
    let summary: Vec<(i64, &str, usize, usize)> = alerts
        .iter()
        .map(|alert| {
            (
                alert.source_id(),
                alert.object_id.as_str(),
                alert.history.len(),
                alert.forced_photometry.len(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (170094456272322680, "170028485706776685", 345, 395),
            (170094456251351059, "313897383979122767", 319, 408),
            (170094456523456557, "170028513894596704", 376, 777),
            (170094456248729605, "313893023095193658", 303, 401),
            (170094456480989258, "ss:21163624394469969", 0, 0),
            (170094456277565473, "314002971860926640", 391, 340),
            (170094456528175205, "ss:21165806389311562", 0, 0),
        ]
    );
    let first = &alerts[0];
    assert_eq!(first.schema_version, "10.0");
    assert_eq!(first.detection.flux, Some(-19549.39453125));
    assert!(first.detection.is_negative);
    assert_eq!(first.detection.mjd, 61105.093643486834);
    for alert in &alerts {
        assert!(alert.history.windows(2).all(|pair| pair[0].mjd <= pair[1].mjd));
        assert!(
            alert
                .forced_photometry
                .windows(2)
                .all(|pair| pair[0].mjd <= pair[1].mjd)
        );
        assert!(
            alert
                .history
                .iter()
                .all(|detection| detection.mjd < alert.detection.mjd)
        );
        assert_fits(
            alert,
            [
                34560,
                alert.cutout(CutoutKind::Template).expect("template").data.len(),
                34560,
            ],
        );
    }
}

#[test]
fn unsorted_history_is_sorted_oldest_first() {
    // The synthetic 9.0 sample lists its two earlier detections newest first.
    let alert = decode_one("lsst/wire/pittgoogle-client/lsst.v9_0.avro");
    let raw = alert.raw.as_any().downcast_ref::<RubinAlert>().expect("Rubin");
    let raw_times: Vec<f64> = raw
        .prvDiaSources
        .as_ref()
        .expect("history")
        .iter()
        .map(|source| source.midpointMjdTai.expect("time"))
        .collect();
    assert!(raw_times[0] > raw_times[1], "{raw_times:?}");
    let times: Vec<f64> = alert.history.iter().map(|detection| detection.mjd).collect();
    assert_eq!(times, vec![raw_times[1], raw_times[0]]);
    // The top-level diaSourceId of this synthetic alert is not its diaSource's id: the
    // detection keeps the diaSource's own.
    assert_eq!(alert.raw.get("diaSourceId"), Some(FieldValue::Int(1231321321)));
    assert_eq!(alert.source_id(), 281323062375219200);
}

#[test]
fn snapshot_of_a_decoded_alert() {
    let alert = decode_one("lsst/wire/boom/7912941781254298.avro");
    insta::assert_json_snapshot!("boom_9_0_negative_flux", alert.to_json());
}
