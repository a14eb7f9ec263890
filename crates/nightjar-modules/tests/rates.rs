//! The `rates` module on the real ZTF and Rubin alerts in `tests/data`, checked against
//! `tests/fixtures/fink_modules`: Fink's own `fast_transient_rate` (fink-science 7.4.0) for
//! the deterministic quantities, and the analytic rate computed in Python on the last
//! measurement that Fink's `get_last_alert` selects.

mod real_alerts;

use nightjar_core::Survey;
use nightjar_modules::rates::{RatesConfig, RatesModule};
use nightjar_modules::{ModuleOutputs, ModulesConfig, builtin_modules};
use real_alerts::{alerts, close, fixture, run_module};

const FLOAT_COLUMNS: [&str; 7] = [
    "jd_first_real_det",
    "jdstarthist_dt",
    "delta_time",
    "mag_rate",
    "sigma_rate",
    "lower_rate",
    "upper_rate",
];

fn float(outputs: &ModuleOutputs, index: usize, column: &str) -> Option<f64> {
    outputs.get(index, column).and_then(|value| value.as_f64())
}

/// Checks every alert of `survey`; returns (alerts with a rate, from an upper limit, outputs).
fn check_survey(survey: Survey) -> (usize, usize) {
    let batch = alerts(survey);
    let (expected, _) = fixture(survey);
    let alerts_only: Vec<_> = batch.iter().map(|(_, alert)| alert.clone()).collect();
    let module = RatesModule::build(&RatesConfig::default()).expect("build");
    let outputs = run_module(Box::new(module), &alerts_only);
    let (mut n_rates, mut n_from_upper) = (0, 0);
    for (index, (key, _)) in batch.iter().enumerate() {
        let reference = expected.get(key).unwrap_or_else(|| panic!("no reference for {key}"));
        for column in FLOAT_COLUMNS {
            if survey == Survey::Rubin && column == "jdstarthist_dt" {
                assert_eq!(float(&outputs, index, column), None, "{key}");
                continue;
            }
            let ours = float(&outputs, index, column);
            let theirs = reference[column].as_f64();
            assert!(
                close(ours, theirs, 1e-9),
                "{key} {column}: ours {ours:?}, reference {theirs:?}"
            );
        }
        let from_upper = reference["from_upper"].as_bool().expect("from_upper");
        assert_eq!(
            outputs.get(index, "from_upper").and_then(|value| value.as_bool()),
            Some(from_upper),
            "{key}"
        );
        n_rates += usize::from(float(&outputs, index, "mag_rate").is_some());
        n_from_upper += usize::from(from_upper);
    }
    (n_rates, n_from_upper)
}

#[test]
fn ztf_deterministic_quantities_equal_finks_and_the_rate_is_analytic() {
    let (n_rates, n_from_upper) = check_survey(Survey::Ztf);
    assert!(
        n_rates > 20 && n_from_upper > 10,
        "{n_rates} rates, {n_from_upper} from upper limits"
    );
}

#[test]
fn rubin_rates_follow_the_same_definitions() {
    let (n_rates, _) = check_survey(Survey::Rubin);
    assert!(n_rates > 5, "{n_rates} rates");
}

/// Fink's mag_rate is a mean of random draws; from two detections it must agree with the
/// analytic rate within the scatter (here: three analytic sigmas), and a significant change
/// must have the same sign. Fink's draws were made with a
/// fixed seed (2023) in the fixture script, one alert per batch.
#[test]
fn ztf_rate_between_detections_agrees_with_finks_random_draws() {
    let batch = alerts(Survey::Ztf);
    let (expected, _) = fixture(Survey::Ztf);
    let alerts_only: Vec<_> = batch.iter().map(|(_, alert)| alert.clone()).collect();
    let outputs = run_module(Box::new(RatesModule), &alerts_only);
    let mut n_compared = 0;
    for (index, (key, _)) in batch.iter().enumerate() {
        let reference = &expected[key];
        if reference["from_upper"].as_bool() == Some(true) {
            continue;
        }
        let (Some(ours), Some(sigma), Some(finks)) = (
            float(&outputs, index, "mag_rate"),
            float(&outputs, index, "sigma_rate"),
            reference["fink_seeded_mag_rate"].as_f64(),
        ) else {
            continue;
        };
        assert!(
            (ours - finks).abs() <= 3.0 * sigma,
            "{key}: ours {ours} +/- {sigma}, Fink's {finks}"
        );
        if ours.abs() > 3.0 * sigma {
            // A significant change: brightening or fading for both.
            assert_eq!(ours.signum(), finks.signum(), "{key}: ours {ours}, Fink's {finks}");
        }
        n_compared += 1;
    }
    assert!(n_compared > 10, "{n_compared}");
}

#[test]
fn rates_config_enables_and_rejects_unknown_fields() {
    let config: ModulesConfig = serde_json::from_str(r#"{"rates": {"enabled": false}}"#).expect("parse");
    assert!(
        builtin_modules(&config)
            .expect("build")
            .iter()
            .all(|module| module.name() != "rates")
    );
    assert!(serde_json::from_str::<ModulesConfig>(r#"{"rates": {"samples": 10000}}"#).is_err());
}
