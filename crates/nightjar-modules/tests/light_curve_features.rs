//! The `light_curve_features` module on the real ZTF and Rubin alerts in `tests/data`,
//! checked against `tests/fixtures/fink_modules`: Fink's own `extract_features_ad_raw`
//! (fink-science 7.4.0, light-curve 0.13.3, the Python binding of the same crate) for ZTF,
//! and the light-curve package on the documented Rubin light curves.

mod real_alerts;

use nightjar_core::{Band, Survey};
use nightjar_modules::light_curve_features::{
    FEATURE_COLUMNS, FEATURE_NAMES, LightCurveFeatures, LightCurveFeaturesConfig, band_features, extractor_names,
};
use nightjar_modules::{ModuleRunner, ModulesConfig, builtin_modules};
use real_alerts::{alerts, close, fixture, run_module};

/// Checks every alert and band; returns the number of bands with features.
fn check_survey(survey: Survey) -> usize {
    let batch = alerts(survey);
    let (expected, fixture_names) = fixture(survey);
    assert_eq!(fixture_names, FEATURE_NAMES);
    let alerts_only: Vec<_> = batch.iter().map(|(_, alert)| alert.clone()).collect();
    let module = LightCurveFeatures::build(&LightCurveFeaturesConfig::default()).expect("build");
    let outputs = run_module(Box::new(module), &alerts_only);
    let mut n_bands = 0;
    let mut worst: f64 = 0.0;
    for (index, (key, alert)) in batch.iter().enumerate() {
        let reference = expected.get(key).unwrap_or_else(|| panic!("no reference for {key}"));
        for (band_name, band) in [("g", Band::G), ("r", Band::R)] {
            let reference_band = &reference[format!("lc_features_{band_name}")];
            let public = band_features(alert, band);
            let has_features = reference_band
                .as_object()
                .is_some_and(|features| features.values().any(|value| !value.is_null()));
            if !has_features {
                for column in FEATURE_COLUMNS {
                    let name = format!("lc_features_{band_name}.{column}");
                    assert_eq!(outputs.get(index, &name), None, "{key} {name}");
                }
                continue;
            }
            n_bands += 1;
            let public = public.unwrap_or_else(|| panic!("{key} {band_name}: band_features is None"));
            for (position, (fink_name, column)) in FEATURE_NAMES.iter().zip(FEATURE_COLUMNS).enumerate() {
                let name = format!("lc_features_{band_name}.{column}");
                let ours = outputs.get(index, &name).and_then(|value| value.as_f64());
                let theirs = reference_band[*fink_name].as_f64();
                assert!(
                    close(ours, theirs, 1e-8),
                    "{key} {name}: ours {ours:?}, reference {theirs:?}"
                );
                let public_value = Some(public[position]).filter(|value| value.is_finite());
                assert_eq!(
                    public_value, ours,
                    "{key} {name}: band_features differs from the module"
                );
                if let (Some(ours), Some(theirs)) = (ours, theirs) {
                    worst = worst.max((ours - theirs).abs() / theirs.abs().max(1.0));
                }
            }
        }
    }
    eprintln!("{survey:?}: {n_bands} bands compared, worst relative difference {worst:e}");
    n_bands
}

#[test]
fn feature_names_are_finks_and_the_crates() {
    assert_eq!(extractor_names(), FEATURE_NAMES);
    for (fink_name, column) in FEATURE_NAMES.iter().zip(FEATURE_COLUMNS) {
        assert_eq!(*fink_name, column, "column names are Fink's");
    }
    let runner = ModuleRunner::new(vec![Box::new(LightCurveFeatures)]).expect("runner");
    let columns: Vec<&str> = runner.columns().into_iter().map(|(_, column)| column.name).collect();
    assert_eq!(columns.len(), 52);
    assert_eq!(columns[0], "lc_features_g.mean");
    assert_eq!(columns[51], "lc_features_r.stetson_K");
}

#[test]
fn ztf_features_equal_finks_extract_features_ad() {
    let n_bands = check_survey(Survey::Ztf);
    assert!(n_bands > 100, "{n_bands} bands with features");
}

#[test]
fn rubin_features_equal_the_light_curve_package() {
    let n_bands = check_survey(Survey::Rubin);
    assert!(n_bands > 15, "{n_bands} bands with features");
}

#[test]
fn light_curve_features_config_enables_and_rejects_unknown_fields() {
    let config: ModulesConfig = serde_json::from_str(r#"{"light_curve_features": {"enabled": false}}"#).expect("parse");
    assert!(
        builtin_modules(&config)
            .expect("build")
            .iter()
            .all(|module| module.name() != "light_curve_features")
    );
    assert!(serde_json::from_str::<ModulesConfig>(r#"{"light_curve_features": {"bands": ["g"]}}"#).is_err());
}

/// ZTF17aaahryg (candid 1034542624415015000, Fink's 11-alert file) lists the g detection at jd
/// 2458766.9604167 twice; the light-curve package refuses repeated times, so Fink has no g
/// features for it, and neither has nightjar, while its r band is computed.
#[test]
fn ztf_band_with_a_repeated_time_has_no_features_as_in_fink() {
    let batch = alerts(Survey::Ztf);
    let (_, alert) = batch
        .iter()
        .find(|(_, alert)| alert.source_id() == 1034542624415015000)
        .expect("alert in tests/data");
    let curve = nightjar_modules::light_curve_features::band_light_curve(alert, Band::G).expect("ztf alert");
    assert!(curve.t.windows(2).any(|pair| pair[0] == pair[1]), "{:?}", curve.t);
    assert_eq!(band_features(alert, Band::G), None);
    assert!(band_features(alert, Band::R).is_some());
}
