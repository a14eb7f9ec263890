//! The `quality` module on the real ZTF and Rubin alerts in `tests/data`, checked against the
//! raw fields read independently.

mod common;

use nightjar_core::{Alert, FieldValue, Survey};
use nightjar_modules::quality::QualityConfig;
use nightjar_modules::{ModuleOutputs, ModuleRunner, ModulesConfig, builtin_modules};

/// Every decodable alert of one survey in `tests/data` (the one file meant to fail is skipped).
fn alerts(survey: Survey) -> Vec<Alert> {
    common::all_alerts()
        .into_iter()
        .filter(|alert| alert.survey == survey)
        .collect()
}

fn run_quality(config: &ModulesConfig, batch: &[Alert]) -> ModuleOutputs {
    let mut runner = ModuleRunner::new(builtin_modules(config).expect("build modules")).expect("build runner");
    let columns: Vec<&str> = runner
        .columns()
        .into_iter()
        .filter(|(module, _)| *module == "quality")
        .map(|(_, column)| column.name)
        .collect();
    assert_eq!(
        columns[..6],
        [
            "rb",
            "drb",
            "reliability",
            "real_bogus",
            "is_good_quality",
            "quality_flags"
        ]
    );
    let outputs = runner.run(batch);
    assert!(outputs.failures().is_empty(), "{:?}", outputs.failures());
    outputs
}

fn raw_f64(alert: &Alert, path: &str) -> Option<f64> {
    alert.raw.get(path).and_then(|value| value.as_f64())
}

fn good(outputs: &ModuleOutputs, alert_index: usize) -> bool {
    outputs
        .get(alert_index, "is_good_quality")
        .and_then(|value| value.as_bool())
        .expect("is_good_quality is never null")
}

fn flags(outputs: &ModuleOutputs, alert_index: usize) -> &str {
    outputs
        .get(alert_index, "quality_flags")
        .and_then(|value| value.as_str())
        .expect("quality_flags is never null")
}

#[test]
fn ztf_default_cuts_are_finks_nbad_and_rb() {
    let batch = alerts(Survey::Ztf);
    assert!(batch.len() > 50, "only {} ZTF alerts", batch.len());
    let outputs = run_quality(&ModulesConfig::default(), &batch);
    let (mut n_good, mut n_low_rb, mut n_bad_pixels) = (0, 0, 0);
    for (alert_index, alert) in batch.iter().enumerate() {
        let rb = raw_f64(alert, "candidate.rb");
        let drb = raw_f64(alert, "candidate.drb");
        let nbad = alert.raw.get("candidate.nbad").and_then(|v| v.as_i64());
        assert_eq!(outputs.get(alert_index, "rb").and_then(|v| v.as_f64()), rb);
        assert_eq!(outputs.get(alert_index, "drb").and_then(|v| v.as_f64()), drb);
        assert_eq!(
            outputs.get(alert_index, "real_bogus").and_then(|v| v.as_f64()),
            alert.detection.reliability,
            "real_bogus is the core reliability: drb where the version defines it, else rb ({})",
            alert.object_id
        );
        let expected = rb.is_some_and(|rb| rb >= 0.55) && nbad == Some(0);
        assert_eq!(good(&outputs, alert_index), expected, "{}", alert.object_id);
        let alert_flags = flags(&outputs, alert_index);
        assert_eq!(alert_flags.is_empty(), expected);
        if rb.is_some_and(|rb| rb < 0.55) {
            n_low_rb += 1;
            assert!(alert_flags.split(',').any(|flag| flag == "rb"), "{alert_flags}");
        }
        if nbad.is_some_and(|nbad| nbad > 0) {
            n_bad_pixels += 1;
            assert!(alert_flags.split(',').any(|flag| flag == "nbad"), "{alert_flags}");
        }
        n_good += usize::from(expected);
    }
    // The fixtures hold both kinds, so both branches above were exercised.
    assert!(n_good > 0 && n_low_rb > 0, "good {n_good}, low rb {n_low_rb}");
    eprintln!(
        "ztf: {} alerts, {n_good} good, {n_low_rb} with rb < 0.55, {n_bad_pixels} with nbad > 0",
        batch.len()
    );
}

#[test]
fn ztf_optional_cuts_follow_the_raw_fields() {
    let batch = alerts(Survey::Ztf);
    let mut config = ModulesConfig::default();
    config.quality.ztf.max_fwhm = Some(3.0);
    config.quality.ztf.max_elong = Some(1.2);
    config.quality.ztf.max_abs_magdiff = Some(0.1);
    config.quality.ztf.require_positive_difference = true;
    let outputs = run_quality(&config, &batch);
    let mut n_failed_fwhm = 0;
    for (alert_index, alert) in batch.iter().enumerate() {
        let alert_flags: Vec<&str> = flags(&outputs, alert_index).split(',').collect();
        let fwhm = raw_f64(alert, "candidate.fwhm");
        let elong = raw_f64(alert, "candidate.elong");
        let magdiff = raw_f64(alert, "candidate.magdiff");
        let positive = match alert.raw.get("candidate.isdiffpos") {
            Some(FieldValue::Str(text)) => text == "t" || text == "1",
            _ => false,
        };
        let failed_fwhm = fwhm.is_none_or(|fwhm| fwhm > 3.0);
        n_failed_fwhm += usize::from(failed_fwhm);
        assert_eq!(alert_flags.iter().any(|f| f.starts_with("fwhm")), failed_fwhm);
        assert_eq!(
            alert_flags.iter().any(|f| f.starts_with("elong")),
            elong.is_none_or(|elong| elong > 1.2)
        );
        assert_eq!(
            alert_flags.iter().any(|f| f.starts_with("magdiff")),
            magdiff.is_none_or(|magdiff| magdiff.abs() > 0.1)
        );
        assert_eq!(alert_flags.iter().any(|f| f.starts_with("isdiffpos")), !positive);
    }
    assert!(n_failed_fwhm > 0 && n_failed_fwhm < batch.len());
}

#[test]
fn rubin_reliability_and_pixel_flags() {
    let batch = alerts(Survey::Rubin);
    assert!(!batch.is_empty());
    let config = ModulesConfig::default();
    let outputs = run_quality(&config, &batch);
    let reject = &config.quality.rubin.reject_pixel_flags;
    let (mut n_good, mut n_flagged) = (0, 0);
    for (alert_index, alert) in batch.iter().enumerate() {
        let reliability = raw_f64(alert, "diaSource.reliability");
        assert_eq!(
            outputs.get(alert_index, "reliability").and_then(|v| v.as_f64()),
            reliability
        );
        assert_eq!(outputs.get(alert_index, "rb"), None);
        let set_flags: Vec<&String> = reject
            .iter()
            .filter(|flag| {
                matches!(
                    alert.raw.get(&format!("diaSource.{flag}")),
                    Some(FieldValue::Bool(true))
                )
            })
            .collect();
        let expected = reliability.is_some_and(|r| r >= 0.5) && set_flags.is_empty();
        assert_eq!(good(&outputs, alert_index), expected, "{}", alert.object_id);
        let alert_flags: Vec<&str> = flags(&outputs, alert_index).split(',').collect();
        for flag in &set_flags {
            assert!(alert_flags.contains(&flag.as_str()));
        }
        n_good += usize::from(expected);
        n_flagged += usize::from(!set_flags.is_empty());
    }
    eprintln!(
        "rubin: {} alerts, {n_good} good, {n_flagged} with a rejecting pixel flag",
        batch.len()
    );
}

#[test]
fn quality_can_be_disabled_and_config_rejects_unknown_fields_and_bad_values() {
    let mut config = ModulesConfig::default();
    config.quality.enabled = false;
    let modules = builtin_modules(&config).expect("build");
    assert!(modules.iter().all(|module| module.name() != "quality"));

    let parsed: ModulesConfig =
        serde_json::from_str(r#"{"quality": {"ztf": {"min_rb": 0.65, "max_fwhm": 5.0}}}"#).expect("parse config");
    assert_eq!(parsed.quality.ztf.min_rb, Some(0.65));
    assert_eq!(parsed.quality.ztf.max_nbad, Some(0));
    assert!(parsed.validate().is_ok());

    let unknown = serde_json::from_str::<ModulesConfig>(r#"{"quality": {"min_rbb": 0.5}}"#);
    assert!(unknown.is_err());

    let mut bad = QualityConfig::default();
    bad.ztf.min_rb = Some(1.5);
    let error = ModulesConfig {
        quality: bad,
        ..ModulesConfig::default()
    }
    .validate()
    .expect_err("min_rb > 1");
    assert!(error.to_string().contains("ztf.min_rb"), "{error}");

    let mut bad = QualityConfig::default();
    bad.rubin.reject_pixel_flags = vec!["bad".into()];
    assert!(
        ModulesConfig {
            quality: bad,
            ..ModulesConfig::default()
        }
        .validate()
        .is_err()
    );
}

/// The alert of `batch` with this source id (ZTF candid, Rubin diaSourceId), and its index.
fn find(batch: &[Alert], source_id: i64) -> usize {
    batch
        .iter()
        .position(|alert| alert.source_id() == source_id)
        .unwrap_or_else(|| panic!("no alert with source id {source_id} in tests/data"))
}

#[test]
fn known_ztf_alerts_good_and_low_real_bogus() {
    let batch = alerts(Survey::Ztf);
    let outputs = run_quality(&ModulesConfig::default(), &batch);

    // ZTF21abiuvdk, candid 1642404680815015001: rb 0.857, drb 0.99999, nbad 0.
    let good_index = find(&batch, 1642404680815015001);
    assert!(good(&outputs, good_index));
    assert_eq!(flags(&outputs, good_index), "");
    let real_bogus = outputs
        .get(good_index, "real_bogus")
        .and_then(|v| v.as_f64())
        .expect("real_bogus");
    assert!((real_bogus - 0.9999971985816956).abs() < 1e-6, "{real_bogus}");

    // ZTF18abdbqrh, candid 541175091115015005 (schema 1.8, no drb): rb 0.193 < 0.55.
    let bogus_index = find(&batch, 541175091115015005);
    assert!(!good(&outputs, bogus_index));
    assert_eq!(flags(&outputs, bogus_index), "rb");
    assert_eq!(outputs.get(bogus_index, "drb"), None);
    let rb = outputs.get(bogus_index, "rb").and_then(|v| v.as_f64());
    assert_eq!(outputs.get(bogus_index, "real_bogus").and_then(|v| v.as_f64()), rb);
}

#[test]
fn known_rubin_alerts_reliability_and_a_set_pixel_flag() {
    let batch = alerts(Survey::Rubin);

    // A solar-system diaSource of schema 10.0 with reliability 0.99999 and no flag set.
    let good_index = find(&batch, 170094456480989258);
    // A schema 7.4 diaSource with reliability 0 and pixelFlags_saturated set (not at its centre).
    let flagged_index = find(&batch, 58804293150441522);

    let outputs = run_quality(&ModulesConfig::default(), &batch);
    assert!(good(&outputs, good_index));
    assert!(!good(&outputs, flagged_index));
    assert_eq!(flags(&outputs, flagged_index), "reliability");

    let mut config = ModulesConfig::default();
    config.quality.rubin.min_reliability = None;
    config.quality.rubin.reject_pixel_flags = vec!["pixelFlags_saturated".into()];
    let outputs = run_quality(&config, &batch);
    assert!(good(&outputs, good_index));
    assert_eq!(flags(&outputs, flagged_index), "pixelFlags_saturated");
}

#[test]
fn spark_filler_drb_of_old_versions_does_not_count_as_real_bogus() {
    let batch = alerts(Survey::Ztf);
    let outputs = run_quality(&ModulesConfig::default(), &batch);
    let mut n_filler = 0;
    for (alert_index, alert) in batch.iter().enumerate() {
        let old_version = matches!(alert.schema_version.as_str(), "3.0" | "3.1" | "3.2");
        if old_version && raw_f64(alert, "candidate.drb") == Some(0.0) {
            n_filler += 1;
            let real_bogus = outputs.get(alert_index, "real_bogus").and_then(|v| v.as_f64());
            assert_eq!(real_bogus, raw_f64(alert, "candidate.rb"), "{}", alert.object_id);
        }
    }
    assert!(
        n_filler > 0,
        "the Spark-rewritten 3.0-3.2 samples carry a filler drb of 0.0"
    );
}
