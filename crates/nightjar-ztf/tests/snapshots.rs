//! Snapshots of decoded alerts (insta): the whole JSON view of a 1.8 alert, and the core model
//! (detection, history, limits, forced photometry) of a 4.02 alert with forced photometry.

mod common;

use common::decode_one;

#[test]
fn alert_json_of_a_version_1_8_alert() {
    // Small history (one detection, one limit), no schemavsn: the version is inferred.
    let alert = decode_one("ztf/alerts/skyportal_20180626_v1.8/541173242915015029.avro");
    insta::assert_json_snapshot!(alert.to_json());
}

#[test]
fn core_model_of_a_version_4_02_alert_with_forced_photometry() {
    let alert = decode_one("ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro");
    let core = serde_json::json!({
        "object_id": alert.object_id,
        "schema_version": alert.schema_version,
        "detection": alert.detection,
        "history": alert.history,
        "upper_limits": alert.upper_limits,
        "forced_photometry": alert.forced_photometry,
        "cutouts": alert.cutouts,
    });
    insta::assert_json_snapshot!(core);
}
