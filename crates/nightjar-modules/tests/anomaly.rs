//! The `anomaly` module: the forests evaluated natively against onnxruntime on light-curve
//! features of the real ZTF alerts of `tests/data` (`scripts/anomaly_reference.py`, fixture
//! `tests/fixtures/modules/anomaly_scores.json`), Fink's band pairing and mean filling, and
//! the module reading its features from another module's outputs.

mod common;

use nightjar_core::Alert;
use nightjar_modules::anomaly::{Anomaly, AnomalyConfig, AnomalyForests, FeatureVector, MODEL_COLUMNS};
use nightjar_modules::{ColumnType, ModuleError, ModuleOutputs, ModuleRunner, OutputColumn, Row, ScienceModule, Value};

fn vector(value: &serde_json::Value) -> Option<FeatureVector> {
    let values = value.as_array()?;
    assert_eq!(values.len(), 18);
    Some(std::array::from_fn(|i| values[i].as_f64()))
}

/// The features of fid 1 and fid 2 of one alert.
type Bands = (Option<FeatureVector>, Option<FeatureVector>);

fn cases() -> (Vec<Bands>, serde_json::Value) {
    let fixture = common::fixture("anomaly_scores.json");
    let columns: Vec<&str> = fixture["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .map(|c| c.as_str().expect("name"))
        .collect();
    assert_eq!(columns, MODEL_COLUMNS, "the fixture's feature order is the model's");
    let cases = fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| (vector(&case["fid1"]), vector(&case["fid2"])))
        .collect();
    (cases, fixture["scores"].clone())
}

fn check(forests: &AnomalyForests, model: &str) -> usize {
    let (cases, scores) = cases();
    let scores = scores[model].as_array().expect("scores").clone();
    assert_eq!(cases.len(), scores.len());
    let mut n_scored = 0;
    for (index, ((fid1, fid2), expected)) in cases.iter().zip(&scores).enumerate() {
        let got = forests.score(fid1.as_ref(), fid2.as_ref()).expect("score");
        let want = expected["anomaly_score"].as_f64().expect("score");
        // The same float32 arithmetic as onnxruntime up to the order of the trees' sum.
        assert!(
            (got - want).abs() < 2e-6,
            "{model} case {index}: {got} vs onnxruntime {want}"
        );
        if expected["forest_g"].is_null() {
            assert_eq!(got, 0.0, "a band without features scores 0.0");
        } else {
            n_scored += 1;
        }
    }
    n_scored
}

#[test]
fn bundled_forests_equal_onnxruntime_on_real_light_curves() {
    let forests = AnomalyForests::bundled().expect("load the bundled forests");
    let n_scored = check(&forests, "default");
    assert!(n_scored >= 40, "only {n_scored} alerts with both bands");
}

#[test]
fn a_users_model_is_plugged_in_by_config() {
    let config = AnomalyConfig {
        enabled: true,
        model: Some(common::repo_root().join("data/models/anomaly_detection/anomaly_detection_forest_AAD_beta.zip")),
        g_means: Some(common::repo_root().join("data/models/anomaly_detection/g_means.csv")),
        ..AnomalyConfig::default()
    };
    let module = Anomaly::build(&config).expect("load the beta model");
    assert_eq!(module.depends_on(), ["light_curve_features"]);
    check(module.forests(), "_beta");
}

#[test]
fn bands_are_paired_as_fink_7_4_0_and_missing_features_take_the_means() {
    let forests = AnomalyForests::bundled().expect("load");
    let (cases, _) = cases();
    let (fid1, fid2) = cases
        .iter()
        .find_map(|(fid1, fid2)| Some((fid1.as_ref()?, fid2.as_ref()?)))
        .expect("a case with both bands");
    // Swapping the bands changes the score: the pairing matters and is checked above.
    let straight = forests.score(Some(fid1), Some(fid2)).expect("score");
    let swapped = forests.score(Some(fid2), Some(fid1)).expect("score");
    assert_ne!(straight, swapped);
    // A missing feature is the mean: g_means.csv for fid 2 (forest "g"), r_means.csv for fid 1.
    let text = |name: &str| {
        std::fs::read_to_string(common::repo_root().join("data/models/anomaly_detection").join(name)).expect("means")
    };
    let mean = |text: &str, feature: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{feature},")))
            .and_then(|value| value.parse().ok())
            .expect("mean")
    };
    let (g_means, r_means) = (text("g_means.csv"), text("r_means.csv"));
    let mut fid2_missing = *fid2;
    fid2_missing[0] = None;
    let mut fid2_mean = *fid2;
    fid2_mean[0] = Some(mean(&g_means, "amplitude"));
    assert_eq!(
        forests.score(Some(fid1), Some(&fid2_missing)).expect("score"),
        forests.score(Some(fid1), Some(&fid2_mean)).expect("score")
    );
    let mut fid1_missing = *fid1;
    fid1_missing[13] = None;
    let mut fid1_mean = *fid1;
    fid1_mean[13] = Some(mean(&r_means, "median"));
    assert_eq!(
        forests.score(Some(&fid1_missing), Some(fid2)).expect("score"),
        forests.score(Some(&fid1_mean), Some(fid2)).expect("score")
    );
    assert_eq!(forests.score(Some(fid1), None).expect("score"), 0.0);
}

/// Stands in for the `light_curve_features` module: publishes the fixture's features of
/// each alert (by candid) under Fink's column names.
#[derive(Debug)]
struct FixtureFeatures {
    outputs: Vec<OutputColumn>,
    by_candid: std::collections::HashMap<i64, Bands>,
}

impl FixtureFeatures {
    fn new() -> FixtureFeatures {
        let fixture = common::fixture("anomaly_scores.json");
        let by_candid = fixture["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|case| {
                (
                    case["candid"].as_i64().expect("candid"),
                    (vector(&case["fid1"]), vector(&case["fid2"])),
                )
            })
            .collect();
        let mut outputs = Vec::new();
        for prefix in ["lc_features_g", "lc_features_r"] {
            for feature in MODEL_COLUMNS {
                let name: &'static str = Box::leak(format!("{prefix}.{feature}").into_boxed_str());
                outputs.push(OutputColumn::new(name, ColumnType::Float, "test feature"));
            }
        }
        FixtureFeatures { outputs, by_candid }
    }
}

impl ScienceModule for FixtureFeatures {
    fn name(&self) -> &str {
        "light_curve_features"
    }
    fn version(&self) -> &str {
        "test"
    }
    fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }
    fn run(&self, batch: &[Alert], _inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        Ok(batch
            .iter()
            .map(|alert| {
                let (fid1, fid2) = self.by_candid.get(&alert.source_id()).cloned().unwrap_or((None, None));
                let band = |vector: Option<FeatureVector>| -> Vec<Option<Value>> {
                    (0..18).map(|i| vector.and_then(|v| v[i]).map(Value::Float)).collect()
                };
                band(fid1).into_iter().chain(band(fid2)).collect()
            })
            .collect())
    }
}

#[test]
fn module_reads_the_feature_columns_and_gives_finks_scores_per_alert() {
    let alerts: Vec<Alert> = common::all_alerts();
    let fixture = common::fixture("anomaly_scores.json");
    let expected: std::collections::HashMap<i64, f64> = fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .zip(fixture["scores"]["default"].as_array().expect("scores"))
        .map(|(case, score)| {
            (
                case["candid"].as_i64().expect("candid"),
                score["anomaly_score"].as_f64().expect("score"),
            )
        })
        .collect();
    let anomaly = Anomaly::build(&AnomalyConfig {
        enabled: true,
        ..AnomalyConfig::default()
    })
    .expect("build");
    // Listed before its features: the runner orders it after them.
    let mut runner = ModuleRunner::new(vec![Box::new(anomaly), Box::new(FixtureFeatures::new())]).expect("runner");
    let outputs = runner.run(&alerts);
    assert!(outputs.failures().is_empty(), "{:?}", outputs.failures());
    let mut n_nonzero = 0;
    for (index, alert) in alerts.iter().enumerate() {
        let score = outputs
            .get(index, "anomaly_score")
            .and_then(Value::as_f64)
            .expect("never null");
        match expected.get(&alert.source_id()) {
            Some(&want) => {
                assert!((score - want).abs() < 2e-6, "{}: {score} vs {want}", alert.object_id);
                n_nonzero += usize::from(want != 0.0);
            }
            None => assert_eq!(score, 0.0, "an alert without features scores 0.0"),
        }
    }
    assert!(n_nonzero >= 40);
}

#[test]
fn the_module_needs_its_features_module_and_bad_models_are_errors() {
    let anomaly = Anomaly::build(&AnomalyConfig {
        enabled: true,
        ..AnomalyConfig::default()
    })
    .expect("build");
    let error = ModuleRunner::new(vec![Box::new(anomaly)])
        .expect_err("no features module")
        .to_string();
    assert!(error.contains("light_curve_features"), "{error}");
    let config = AnomalyConfig {
        model: Some(common::repo_root().join("data/models/anomaly_detection/g_means.csv")),
        ..AnomalyConfig::default()
    };
    let error = Anomaly::build(&config).expect_err("not a zip").to_string();
    assert!(error.contains("not a readable zip"), "{error}");
    let config = AnomalyConfig {
        g_means: Some(common::repo_root().join("data/catalogs/hipparcos2_hp_lt7.csv")),
        ..AnomalyConfig::default()
    };
    let error = Anomaly::build(&config).expect_err("not means").to_string();
    assert!(
        error.contains("g_means") && error.contains("no mean for feature"),
        "{error}"
    );
}
