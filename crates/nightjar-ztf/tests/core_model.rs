//! The core model of real ZTF alerts: values read with fastavro from the same files, checked
//! field by field, plus properties that hold for every alert in the test data.

mod common;

use std::sync::Arc;

use nightjar_avro::{Container, SchemaCache};
use nightjar_core::photometry::{jd_to_mjd, mag_err_to_flux_err, mag_to_flux};
use nightjar_core::{Alert, Band, CutoutKind, Survey};
use nightjar_ztf::{ZtfAlert, infer_schema_version, schema_version};

use common::{data, decode_file, decode_one, fixture, ztf_files};

/// The expected core fields of one alert, from fastavro's reading of the file (floats as it
/// prints them: ZTF's f32 values widened to f64, exactly).
struct Expected {
    file: &'static str,
    object_id: &'static str,
    source_id: i64,
    schema_version: &'static str,
    band: Band,
    jd: f64,
    ra: f64,
    dec: f64,
    magpsf: f64,
    sigmapsf: f64,
    is_negative: bool,
    reliability: f64,
    n_history: usize,
    n_upper_limits: usize,
    n_forced: usize,
    n_forced_with_flux: usize,
    cutout_bytes: [usize; 3],
}

fn check(expected: &Expected) {
    let alert = decode_one(expected.file);
    let context = expected.file;
    assert_eq!(alert.survey, Survey::Ztf, "{context}");
    assert_eq!(alert.object_id, expected.object_id, "{context}");
    assert_eq!(alert.source_id(), expected.source_id, "{context}");
    assert_eq!(alert.schema_version, expected.schema_version, "{context}");

    let detection = &alert.detection;
    assert_eq!(detection.band, Some(expected.band), "{context}");
    assert_eq!(detection.mjd, jd_to_mjd(expected.jd), "{context}");
    assert!((detection.mjd - (expected.jd - 2_400_000.5)).abs() < 1e-9, "{context}");
    assert_eq!((detection.ra, detection.dec), (expected.ra, expected.dec), "{context}");
    assert_eq!(detection.magnitude, Some(expected.magpsf), "{context}");
    assert_eq!(detection.magnitude_err, Some(expected.sigmapsf), "{context}");
    assert_eq!(detection.is_negative, expected.is_negative, "{context}");
    let flux = mag_to_flux(expected.magpsf) * if expected.is_negative { -1.0 } else { 1.0 };
    assert_eq!(detection.flux, Some(flux), "{context}");
    assert_eq!(
        detection.flux_err,
        Some(mag_err_to_flux_err(flux, expected.sigmapsf)),
        "{context}"
    );
    assert_eq!(detection.reliability, Some(expected.reliability), "{context}");

    assert_eq!(alert.history.len(), expected.n_history, "{context}: history");
    assert_eq!(
        alert.upper_limits.len(),
        expected.n_upper_limits,
        "{context}: upper limits"
    );
    assert_eq!(
        alert.forced_photometry.len(),
        expected.n_forced,
        "{context}: forced photometry"
    );
    let with_flux = alert
        .forced_photometry
        .iter()
        .filter(|forced| forced.flux.is_some())
        .count();
    assert_eq!(
        with_flux, expected.n_forced_with_flux,
        "{context}: forced photometry with a flux"
    );

    let lengths: Vec<usize> = alert.cutouts.iter().map(|cutout| cutout.data.len()).collect();
    assert_eq!(lengths, expected.cutout_bytes, "{context}: cutout sizes");
    let kinds: Vec<CutoutKind> = alert.cutouts.iter().map(|cutout| cutout.kind).collect();
    assert_eq!(kinds, CutoutKind::ALL, "{context}");
    for cutout in &alert.cutouts {
        assert!(cutout.is_gzip(), "{context}: {:?} is not gzip", cutout.kind);
        let file_name = cutout.file_name.as_deref().unwrap_or_default();
        assert!(
            file_name.starts_with(&format!("candid{}", expected.source_id)),
            "{context}: {file_name}"
        );
        assert!(file_name.ends_with(".fits.gz"), "{context}: {file_name}");
    }
}

#[test]
fn negative_difference_v4_02_with_forced_photometry() {
    check(&Expected {
        file: "ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro",
        object_id: "ZTF18acullba",
        source_id: 3005140370015010009,
        schema_version: "4.02",
        band: Band::G,
        jd: 2460759.6403704,
        ra: 101.1378372,
        dec: -26.2822705,
        magpsf: 16.752946853637695,
        sigmapsf: 0.04972594231367111,
        is_negative: true,
        reliability: 0.99997878074646, // drb
        n_history: 12,
        n_upper_limits: 14,
        n_forced: 16,
        n_forced_with_flux: 14, // two have procstatus 55/61 and flux -99999
        cutout_bytes: [13172, 12629, 14919],
    });
}

#[test]
fn positive_difference_v4_01() {
    check(&Expected {
        file: "ztf/alerts/kowalski_20231012_v4.01/2475433850315015009.avro",
        object_id: "ZTF17aadcuwj",
        source_id: 2475433850315015009,
        schema_version: "4.01",
        band: Band::G,
        jd: 2460229.9338542,
        ra: 47.1080664,
        dec: 8.0839276,
        magpsf: 16.62807846069336,
        sigmapsf: 0.053554173558950424,
        is_negative: false,
        reliability: 0.990909993648529,
        n_history: 37,
        n_upper_limits: 28,
        n_forced: 21,
        n_forced_with_flux: 15,
        cutout_bytes: [13401, 12738, 14885],
    });
}

#[test]
fn version_1_8_without_schemavsn_or_drb() {
    check(&Expected {
        file: "ztf/alerts/skyportal_20180626_v1.8/541174151315010001.avro",
        object_id: "ZTF17aabudoc",
        source_id: 541174151315010001,
        schema_version: "1.8",
        band: Band::G,
        jd: 2458295.6741551,
        ra: 191.3483675,
        dec: 16.6813703,
        magpsf: 17.54349708557129,
        sigmapsf: 0.04651639237999916,
        is_negative: true,
        reliability: 0.8399999737739563, // rb: 1.8 has no drb
        n_history: 12,
        n_upper_limits: 3,
        n_forced: 0,
        n_forced_with_flux: 0,
        cutout_bytes: [12978, 12728, 15031],
    });
}

#[test]
fn spark_rewritten_3_2_without_top_level_candid_ignores_filler_drb() {
    let file = "ztf/alerts/alerce_snappy_v3.x/000010510166461127.avro";
    check(&Expected {
        file,
        object_id: "ZTF17aabuohg",
        source_id: 721164661015010000,
        schema_version: "3.2",
        band: Band::R,
        jd: 2458475.6646644,
        ra: 353.270138,
        dec: -5.54171,
        magpsf: 18.307939529418945,
        sigmapsf: 0.0979079157114029,
        is_negative: true,
        // Spark wrote drb = 0.0 into this 3.2 record, whose schema has no drb: rb is used.
        reliability: 0.7400000095367432,
        n_history: 2,
        n_upper_limits: 1,
        n_forced: 0,
        n_forced_with_flux: 0,
        cutout_bytes: [7968, 7341, 9009],
    });
    let alert = decode_one(file);
    let raw = raw_of(&alert);
    assert_eq!(raw.candid, None, "Spark dropped the top-level candid");
    assert_eq!(raw.candidate.as_ref().unwrap().drb, Some(0.0));
}

#[test]
fn version_3_5_history_is_forced_photometry() {
    let file = "ztf/alerts/ztf-avro-alert/v3.5/forcedphot_test_1660293514215020000.avro";
    check(&Expected {
        file,
        object_id: "ZTF18abstqbv",
        source_id: 1660293514215020000,
        schema_version: "3.5",
        band: Band::R,
        jd: 2459414.7935185,
        ra: 275.3377117,
        dec: -16.1796044,
        magpsf: 16.62234878540039,
        sigmapsf: 0.04047759249806404,
        is_negative: true,
        reliability: 0.9999953508377075,
        n_history: 0,
        n_upper_limits: 0,
        n_forced: 18,
        n_forced_with_flux: 18,
        cutout_bytes: [13358, 13271, 14879],
    });
    // The newest entry (first in the packet): forcediffimflux -1375.994384765625 DN at a zero
    // point of 26.17799949645996, jd 2459414.7700463, g band.
    let alert = decode_one(file);
    let newest = alert.forced_photometry.last().unwrap();
    let scale = 10f64.powf(-0.4 * (26.17799949645996 - 31.4));
    assert_eq!(newest.mjd, jd_to_mjd(2459414.7700463));
    assert_eq!(newest.band, Some(Band::G));
    assert_eq!(newest.flux, Some(-1375.994384765625 * scale));
    assert_eq!(newest.flux_err, Some(56.44232177734375 * scale));
    assert!(newest.flux.unwrap() < -100_000.0, "about -1.4e5 nJy");
}

#[test]
fn null_cutouts_and_a_long_history() {
    let alert = decode_one("ztf/alerts/edge_cases/ZTF20abyfpze_v3.3_null_cutouts.avro");
    assert_eq!(alert.object_id, "ZTF20abyfpze");
    assert_eq!(alert.source_id(), 1382302730115015012);
    assert!(alert.cutouts.is_empty());
    assert_eq!((alert.history.len(), alert.upper_limits.len()), (40, 83));
    assert_eq!(alert.detection.band, Some(Band::R));
    assert!(!alert.detection.is_negative);
}

fn raw_of(alert: &Alert) -> &ZtfAlert {
    alert
        .raw
        .as_any()
        .downcast_ref::<ZtfAlert>()
        .expect("a ZTF alert keeps its ZtfAlert")
}

#[test]
fn cutouts_share_the_raw_bytes_and_raw_fields_stay_reachable() {
    let alert = decode_one("ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro");
    let raw = raw_of(&alert);
    let raw_cutouts = [&raw.cutoutScience, &raw.cutoutTemplate, &raw.cutoutDifference];
    for (cutout, raw_cutout) in alert.cutouts.iter().zip(raw_cutouts) {
        let raw_bytes = &raw_cutout.as_ref().unwrap().stampData.as_ref().unwrap().0;
        assert!(Arc::ptr_eq(&cutout.data, raw_bytes), "{:?} was copied", cutout.kind);
        assert_eq!(&cutout.data[..3], &[0x1f, 0x8b, 0x08], "gzip, deflate");
    }
    assert_eq!(
        alert.raw.get("candidate.drb").and_then(|value| value.as_f64()),
        Some(0.99997878074646)
    );
    assert_eq!(
        alert
            .raw
            .get("objectId")
            .and_then(|value| value.as_str().map(str::to_string)),
        Some("ZTF18acullba".into())
    );
    assert_eq!(alert.raw.get("candidate.nope"), None);
    assert!(alert.raw.field_paths().iter().any(|path| path == "candidate.magzpsci"));
    assert_eq!(raw.fp_hists.as_ref().unwrap().len(), 16);
}

#[test]
fn the_same_alert_in_schemas_3_0_to_3_3_gives_the_same_core_alert() {
    let versions = ["3.0", "3.1", "3.2", "3.3"];
    let alerts: Vec<Alert> = versions
        .iter()
        .map(|version| decode_one(&format!("ztf/alerts/ztf-avro-alert/v{version}/472263571115115000.avro")))
        .collect();
    for (alert, version) in alerts.iter().zip(versions) {
        assert_eq!(alert.schema_version, version);
        assert_eq!(alert.object_id, "ZTF17aaajnnn");
        assert_eq!(alert.source_id(), 472263571115115000);
        assert_eq!((alert.history.len(), alert.upper_limits.len()), (0, 11));
    }
    // drb arrived in 3.3: before it, reliability is rb.
    let reliabilities: Vec<Option<f64>> = alerts.iter().map(|alert| alert.detection.reliability).collect();
    let rb = Some(0.8433333039283752);
    assert_eq!(reliabilities, [rb, rb, rb, Some(0.9876449704170227)]);
    // Everything else is identical.
    let first = &alerts[0];
    for alert in &alerts[1..] {
        let mut detection = alert.detection.clone();
        detection.reliability = first.detection.reliability;
        assert_eq!(detection, first.detection, "{}", alert.schema_version);
        assert_eq!(alert.history, first.history);
        assert_eq!(alert.upper_limits, first.upper_limits);
        assert_eq!(alert.forced_photometry, first.forced_photometry);
        assert_eq!(alert.cutouts, first.cutouts, "cutouts of {}", alert.schema_version);
    }
}

/// The schema version each test-data folder holds; `None`: per file, from the fixture.
fn folder_version(relative: &str) -> Option<&'static str> {
    let folders = [
        ("skyportal_20180626_v1.8/", "1.8"),
        ("ztf-avro-alert/v1.1/", "1.1"),
        ("ztf-avro-alert/vpre1.1/", "pre1.1"),
        ("ztf-avro-alert/v2.0/", "2.0"),
        ("ztf-avro-alert/v3.0/", "3.0"),
        ("ztf-avro-alert/v3.1/", "3.1"),
        ("ztf-avro-alert/v3.2/", "3.2"),
        ("ztf-avro-alert/v3.3/", "3.3"),
        ("ztf-avro-alert/v3.5/", "3.5"),
        ("pittgoogle_ZTF21abiuvdk_lightcurve_v3.3/", "3.3"),
        ("pittgoogle_20210831-0901_v3.3/", "3.3"),
        ("kowalski_20231012_v4.01/", "4.01"),
        ("boom_20240715_v4.02/", "4.02"),
        ("boom_tests_v4.02_fp_hists/", "4.02"),
        ("edge_cases/", "3.3"),
        ("ztf/multi/", "3.3"),
    ];
    folders
        .iter()
        .find(|(folder, _)| relative.contains(folder))
        .map(|(_, version)| *version)
}

#[test]
fn schema_version_of_every_folder() {
    let mut cache = SchemaCache::new();
    let mut n_checked = 0;
    for relative in ztf_files() {
        let bytes = data(&relative);
        let container = Container::open(&bytes, &mut cache).unwrap();
        let expected_fixture = fixture(&relative);
        let is_spark = container.schema.name == "topLevelRecord";
        for (record, theirs) in container
            .records::<ZtfAlert>()
            .unwrap()
            .into_iter()
            .zip(expected_fixture["records"].as_array().unwrap())
        {
            let record = record.unwrap();
            let expected = match folder_version(&relative) {
                Some(version) => version.to_string(),
                None => theirs["schemavsn"].as_str().unwrap().to_string(),
            };
            assert_eq!(schema_version(&record, &container.schema), expected, "{relative}");
            if expected == "1.8" {
                assert_eq!(record.schemavsn, None, "{relative}: 1.8 has no schemavsn");
            }
            // Inferred from the field sets alone: right for every native writer schema (4.01
            // and 4.02 have the same fields: 4.02). Spark-rewritten ones carry the 3.3 field set
            // whatever their schemavsn says, and Fink's adds columns: both are closest to 3.3.
            let inferred = infer_schema_version(&container.schema);
            let expected_inferred = match expected.as_str() {
                _ if is_spark => "3.3",
                "4.01" => "4.02",
                version => version,
            };
            assert_eq!(inferred, expected_inferred, "{relative}: inferred");
            n_checked += 1;
        }
    }
    assert_eq!(n_checked, 79);
}

#[test]
fn every_alert_is_consistent() {
    let mut n_alerts = 0;
    let mut n_negative = 0;
    for relative in ztf_files() {
        for alert in decode_file(&relative) {
            let raw = raw_of(&alert);
            let candidate = raw.candidate.as_ref().unwrap();
            assert_eq!(Some(alert.source_id()), candidate.candid, "{relative}");
            if let Some(candid) = raw.candid {
                assert_eq!(candid, alert.source_id(), "{relative}: top-level candid");
            }
            match (&raw.objectId, raw.alertId) {
                (Some(object_id), _) => assert_eq!(&alert.object_id, object_id, "{relative}"),
                // 2016 prototype packets: named by their alert id.
                (None, Some(alert_id)) => assert_eq!(alert.object_id, format!("alert{alert_id}")),
                (None, None) => panic!("{relative}: no objectId nor alertId"),
            }
            // History, limits and forced photometry account for every entry, oldest first.
            let n_prv = raw.prv_candidates.as_ref().map_or(0, Vec::len);
            let n_fp = raw.fp_hists.as_ref().map_or(0, Vec::len);
            assert_eq!(
                alert.history.len() + alert.upper_limits.len() + alert.forced_photometry.len(),
                n_prv + n_fp,
                "{relative}"
            );
            assert!(
                alert.history.windows(2).all(|pair| pair[0].mjd <= pair[1].mjd),
                "{relative}"
            );
            assert!(
                alert.upper_limits.windows(2).all(|pair| pair[0].mjd <= pair[1].mjd),
                "{relative}"
            );
            assert!(
                alert
                    .forced_photometry
                    .windows(2)
                    .all(|pair| pair[0].mjd <= pair[1].mjd),
                "{relative}"
            );
            // The flux sign follows isdiffpos, in the alert and its history.
            for detection in std::iter::once(&alert.detection).chain(&alert.history) {
                let flux = detection.flux.unwrap();
                assert_eq!(flux < 0.0, detection.is_negative, "{relative}");
                // From the 2016 prototypes (MJD 57581) to 2025.
                assert!(detection.mjd > 57_500.0 && detection.mjd < 61_000.0, "{relative}");
            }
            n_negative += usize::from(alert.detection.is_negative);
            // A forced-photometry flux is missing exactly where ZTF wrote -99999.
            // (and, in these files, exactly where procstatus is 55 or 61).
            let mut n_missing = 0;
            for entry in raw.fp_hists.iter().flatten() {
                let missing = entry.forcediffimflux == Some(-99999.0);
                let failed = matches!(entry.procstatus.as_deref(), Some("55" | "61"));
                assert_eq!(missing, failed, "{relative}: procstatus {:?}", entry.procstatus);
                n_missing += usize::from(missing);
            }
            let n_without_flux = alert
                .forced_photometry
                .iter()
                .filter(|forced| forced.flux.is_none())
                .count();
            assert_eq!(n_without_flux, n_missing, "{relative}");
            n_alerts += 1;
        }
    }
    assert_eq!(n_alerts, 79);
    assert!(n_negative > 20, "{n_negative} negative alerts");
}

#[test]
fn prototype_packets_of_2016_are_named_by_their_alert_id() {
    // Values read with fastavro: alertId 87704463155000, candid -87704463155000, fid 1,
    // isdiffpos 1 (an int in this schema), magpsf 18.9927, 18 prv_candidates.
    let alert = decode_one("ztf/alerts/ztf-avro-alert/vpre1.1/87704463155000.avro");
    assert_eq!(alert.object_id, "alert87704463155000");
    assert_eq!(alert.schema_version, "pre1.1");
    assert_eq!(alert.source_id(), -87704463155000);
    assert_eq!(alert.detection.band, Some(Band::G));
    assert!(!alert.detection.is_negative);
    assert!((alert.detection.magnitude.unwrap() - 18.9927).abs() < 1e-4);
    assert_eq!(
        alert.history.len() + alert.upper_limits.len() + alert.forced_photometry.len(),
        18
    );
    assert_eq!(
        alert.raw.get("candidate.isdiffpos"),
        Some(nightjar_core::FieldValue::Int(1))
    );

    let alert = decode_one("ztf/alerts/ztf-avro-alert/v1.1/1726958725155000.avro");
    assert_eq!(alert.object_id, "alert1726958725155000");
    assert_eq!(alert.schema_version, "1.1");
    assert_eq!(alert.detection.band, Some(Band::R));
}
