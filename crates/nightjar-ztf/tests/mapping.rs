//! The mapping to the core model on small synthetic containers: each test changes one value of
//! a clean record and checks what the decoder makes of it.

mod common;

use nightjar_avro::SchemaCache;
use nightjar_core::{Alert, Band, DecodeErrorKind};

use common::{MINI_ZTF_SCHEMA, decode_bytes, mini_ztf_record, synthetic_container};

/// Decodes one record of the mini schema.
fn decode(record: serde_json::Value) -> Result<Alert, DecodeErrorKind> {
    let bytes = synthetic_container(MINI_ZTF_SCHEMA, &[record]);
    let mut alerts = decode_bytes(&bytes, &mut SchemaCache::new())?;
    assert_eq!(alerts.len(), 1);
    Ok(alerts.remove(0))
}

/// The clean record with one value replaced (a JSON pointer such as `/candidate/ra`).
fn with(pointer: &str, value: serde_json::Value) -> serde_json::Value {
    let mut record = mini_ztf_record();
    *record.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = value;
    record
}

fn check_missing(pointer: &str, value: serde_json::Value, expected_path: &str) {
    match decode(with(pointer, value)) {
        Err(DecodeErrorKind::MissingField(path)) => assert_eq!(path, expected_path, "{pointer}"),
        other => panic!("{pointer}: expected a missing {expected_path}, got {other:?}"),
    }
}

#[test]
fn a_clean_record_maps_field_by_field() {
    let alert = decode(mini_ztf_record()).unwrap();
    assert_eq!(alert.object_id, "ZTF99aaaaaaa");
    assert_eq!(alert.source_id(), 1001);
    assert_eq!(alert.schema_version, "3.3");
    assert_eq!(alert.detection.mjd, 60000.25);
    assert_eq!(alert.detection.band, Some(Band::R));
    assert!(!alert.detection.is_negative, "isdiffpos \"1\" is positive");
    assert!((alert.detection.flux.unwrap() - 10f64.powf(-0.4 * (19.0 - 31.4))).abs() < 1e-6);
    assert_eq!(alert.detection.reliability, Some(f64::from(0.9f32)), "drb in 3.3");
    // History sorted by time; the entry without candid is a limit.
    let history: Vec<(i64, Option<Band>, bool)> = alert
        .history
        .iter()
        .map(|detection| (detection.source_id, detection.band, detection.is_negative))
        .collect();
    assert_eq!(history, [(998, Some(Band::I), false), (999, Some(Band::G), true)]);
    assert!(alert.history[1].flux.unwrap() < 0.0, "isdiffpos \"0\" is negative");
    assert_eq!(alert.upper_limits.len(), 1);
    assert_eq!(alert.upper_limits[0].mjd, 59990.0);
    assert_eq!(alert.upper_limits[0].limiting_magnitude, Some(20.0));
    assert!(alert.forced_photometry.is_empty() && alert.cutouts.is_empty());
}

#[test]
fn reliability_is_rb_where_drb_is_absent_or_not_in_the_version() {
    let alert = decode(with("/candidate/drb", serde_json::Value::Null)).unwrap();
    assert_eq!(alert.detection.reliability, Some(0.5));
    let alert = decode(with("/schemavsn", "3.1".into())).unwrap();
    assert_eq!(
        alert.detection.reliability,
        Some(0.5),
        "3.1 has no drb: 0.9 would be filler"
    );
}

#[test]
fn a_missing_schemavsn_is_inferred() {
    // The mini schema's fields are a small subset of every version; the inference still gives
    // a bundled version rather than failing.
    let alert = decode(with("/schemavsn", serde_json::Value::Null)).unwrap();
    assert!(
        nightjar_ztf::version::bundled_schema(&alert.schema_version).is_some(),
        "{}",
        alert.schema_version
    );
    let alert = decode(with("/schemavsn", "  ".into())).unwrap();
    assert!(nightjar_ztf::version::bundled_schema(&alert.schema_version).is_some());
}

#[test]
fn missing_required_values_are_named() {
    let null = serde_json::Value::Null;
    check_missing("/objectId", null.clone(), "objectId");
    check_missing("/candidate/candid", null.clone(), "candidate.candid");
    check_missing("/candidate/jd", null.clone(), "candidate.jd");
    check_missing("/candidate/ra", null.clone(), "candidate.ra");
    check_missing("/candidate/dec", null.clone(), "candidate.dec");
    check_missing("/prv_candidates/0/jd", null.clone(), "prv_candidates[0].jd");
    check_missing("/prv_candidates/2/dec", null.clone(), "prv_candidates[2].dec");
    check_missing("/prv_candidates/1/jd", null, "prv_candidates[1].jd");
}

#[test]
fn optional_values_may_be_missing() {
    let alert = decode(with("/candidate/magpsf", serde_json::Value::Null)).unwrap();
    assert_eq!(
        (
            alert.detection.magnitude,
            alert.detection.flux,
            alert.detection.flux_err
        ),
        (None, None, None)
    );
    let alert = decode(with("/candidate/fid", 7.into())).unwrap();
    assert_eq!(alert.detection.band, None, "fid 7 is no ZTF band");
    let alert = decode(with("/candidate/isdiffpos", serde_json::Value::Null)).unwrap();
    assert!(!alert.detection.is_negative);
}

#[test]
fn null_and_empty_histories() {
    // Both give an empty history in the core model; raw keeps null and [] apart.
    for (history, expected_json) in [(serde_json::Value::Null, "null"), (serde_json::json!([]), "[]")] {
        let alert = decode(with("/prv_candidates", history)).unwrap();
        assert!(alert.history.is_empty() && alert.upper_limits.is_empty());
        assert_eq!(alert.raw.to_json()["prv_candidates"].to_string(), expected_json);
    }
}

#[test]
fn a_multi_record_container_reports_each_record() {
    let records = [
        mini_ztf_record(),
        with("/candidate/candid", serde_json::Value::Null),
        mini_ztf_record(),
    ];
    let bytes = synthetic_container(MINI_ZTF_SCHEMA, &records);
    let container = nightjar_avro::Container::open(&bytes, &mut SchemaCache::new()).unwrap();
    let results = nightjar_ztf::decode_container(&container).unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(
        results[1].as_ref().err(),
        Some(&DecodeErrorKind::MissingField("candidate.candid".into()))
    );
}
