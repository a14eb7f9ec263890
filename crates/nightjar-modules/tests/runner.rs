//! The module runner with small test modules: dependency order, cycles and missing
//! dependencies, contained errors and panics, and the nulls they leave.

use std::sync::atomic::{AtomicUsize, Ordering};

use nightjar_core::{Alert, Origin};
use nightjar_decode::Decoder;
use nightjar_modules::{
    ColumnType, ModuleError, ModuleFailureKind, ModuleOutputs, ModuleRunner, OutputColumn, Row, ScienceModule, Value,
};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    /// Each alert gets its index plus the sum of its dependencies' values.
    Works,
    Errors,
    Panics,
    /// Returns one row too few.
    ShortOutput,
}

#[derive(Debug)]
struct TestModule {
    name: &'static str,
    depends_on: &'static [&'static str],
    behaviour: Behaviour,
    calls: AtomicUsize,
    /// One int column, `<name>_value` (output names are global, so each module has its own).
    outputs: &'static [OutputColumn],
}

fn module(name: &'static str, depends_on: &'static [&'static str], behaviour: Behaviour) -> Box<dyn ScienceModule> {
    Box::new(TestModule {
        name,
        depends_on,
        behaviour,
        calls: AtomicUsize::new(0),
        outputs: Box::leak(Box::new([OutputColumn::new(
            Box::leak(format!("{name}_value").into_boxed_str()),
            ColumnType::Int,
            "a test value",
        )])),
    })
}

impl ScienceModule for TestModule {
    fn name(&self) -> &str {
        self.name
    }

    fn version(&self) -> &str {
        "0.1.0"
    }

    fn outputs(&self) -> &[OutputColumn] {
        self.outputs
    }

    fn depends_on(&self) -> &[&str] {
        self.depends_on
    }

    fn run(&self, batch: &[Alert], inputs: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match self.behaviour {
            Behaviour::Errors => Err(ModuleError::Failed {
                module: self.name.into(),
                message: "catalogue unreadable".into(),
            }),
            Behaviour::Panics => panic!("test module {} panics", self.name),
            Behaviour::ShortOutput => Ok(Vec::new()),
            Behaviour::Works => Ok((0..batch.len())
                .map(|alert_index| {
                    let mut value = alert_index as i64;
                    for dependency in self.depends_on {
                        let column = format!("{dependency}_value");
                        // A dependency must already have run: its value is read here.
                        let input = inputs.get(alert_index, &column).and_then(Value::as_i64)?;
                        value += input;
                    }
                    Some(Value::Int(value))
                })
                .map(|value| vec![value])
                .collect()),
        }
    }
}

fn batch() -> Vec<Alert> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3"
    );
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .expect("read fixture folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    entries.sort();
    for file in entries.into_iter().take(3) {
        let bytes = std::fs::read(&file).expect("read fixture");
        for alert in decoder.decode(&bytes, &Origin::file(&file)) {
            alerts.push(alert.expect("decode fixture"));
        }
    }
    assert_eq!(alerts.len(), 3);
    alerts
}

fn int(outputs: &ModuleOutputs, alert_index: usize, column: &str) -> Option<i64> {
    outputs.get(alert_index, column).and_then(Value::as_i64)
}

#[test]
fn modules_run_after_their_dependencies_whatever_the_listed_order() {
    let mut runner = ModuleRunner::new(vec![
        module("classification", &["features", "crossmatch"], Behaviour::Works),
        module("features", &["crossmatch"], Behaviour::Works),
        module("independent", &[], Behaviour::Works),
        module("crossmatch", &[], Behaviour::Works),
    ])
    .expect("build runner");
    assert_eq!(
        runner.module_names(),
        ["independent", "crossmatch", "features", "classification"]
    );
    let alerts = batch();
    let outputs = runner.run(&alerts);
    assert!(outputs.failures().is_empty());
    for alert_index in 0..alerts.len() {
        let index = alert_index as i64;
        assert_eq!(int(&outputs, alert_index, "crossmatch_value"), Some(index));
        assert_eq!(int(&outputs, alert_index, "features_value"), Some(2 * index));
        assert_eq!(int(&outputs, alert_index, "classification_value"), Some(4 * index));
    }
    let json = outputs.alert_json(1);
    assert_eq!(json["classification_value"], 4);
    for stats in runner.stats() {
        assert_eq!((stats.batches, stats.alerts, stats.errors, stats.panics), (1, 3, 0, 0));
    }
}

#[test]
fn a_cycle_is_an_error_naming_it() {
    let error = ModuleRunner::new(vec![
        module("quality", &[], Behaviour::Works),
        module("a", &["c"], Behaviour::Works),
        module("b", &["a"], Behaviour::Works),
        module("c", &["b"], Behaviour::Works),
    ])
    .expect_err("cycle");
    let ModuleError::DependencyCycle { cycle } = &error else {
        panic!("expected a cycle, got {error}");
    };
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    assert_eq!(cycle.first(), cycle.last());
    for name in ["a", "b", "c"] {
        assert!(cycle.iter().any(|module| module == name), "{cycle:?}");
    }
    assert!(error.to_string().contains(" -> "), "{error}");
}

#[test]
fn a_missing_dependency_or_duplicate_name_is_an_error() {
    let error =
        ModuleRunner::new(vec![module("features", &["crossmatch"], Behaviour::Works)]).expect_err("missing dependency");
    assert_eq!(
        error,
        ModuleError::MissingDependency {
            module: "features".into(),
            dependency: "crossmatch".into()
        }
    );
    let error = ModuleRunner::new(vec![
        module("features", &[], Behaviour::Works),
        module("features", &[], Behaviour::Works),
    ])
    .expect_err("duplicate");
    assert!(matches!(error, ModuleError::DuplicateModule { .. }));
    let error = ModuleRunner::new(vec![module("bad.name", &[], Behaviour::Works)]).expect_err("dot in name");
    assert!(matches!(error, ModuleError::InvalidDeclaration { .. }));
}

#[test]
fn a_panicking_module_leaves_nulls_and_later_independent_modules_still_run() {
    let mut runner = ModuleRunner::new(vec![
        module("exploding", &[], Behaviour::Panics),
        module("dependent", &["exploding"], Behaviour::Works),
        module("transitive", &["dependent"], Behaviour::Works),
        module("independent", &[], Behaviour::Works),
    ])
    .expect("build runner");
    let alerts = batch();
    for _ in 0..2 {
        let outputs = runner.run(&alerts);
        for alert_index in 0..alerts.len() {
            assert_eq!(outputs.get(alert_index, "exploding_value"), None);
            assert_eq!(outputs.get(alert_index, "dependent_value"), None);
            assert_eq!(outputs.get(alert_index, "transitive_value"), None);
            assert_eq!(
                int(&outputs, alert_index, "independent_value"),
                Some(alert_index as i64)
            );
        }
        // The null columns exist, so the store and filters see every declared column.
        let column = outputs.column("dependent_value").expect("column present");
        assert_eq!(column.values, vec![None; alerts.len()]);
        let failures = outputs.failures();
        assert_eq!(failures.len(), 3, "{failures:?}");
        assert!(matches!(
            &failures[0].kind,
            ModuleFailureKind::Panic(message) if message.contains("exploding panics")
        ));
        assert_eq!(
            failures[1].kind,
            ModuleFailureKind::DependencyFailed("exploding".into())
        );
        assert_eq!(
            failures[2].kind,
            ModuleFailureKind::DependencyFailed("dependent".into())
        );
    }
    let stats = runner.stats();
    let by_name = |name: &str| stats.iter().find(|stats| stats.module == name).expect("stats").clone();
    assert_eq!(by_name("exploding").panics, 2);
    assert_eq!(by_name("exploding").batches, 2);
    assert_eq!(by_name("dependent").skipped, 2);
    assert_eq!(by_name("dependent").batches, 0);
    assert_eq!(by_name("independent").alerts, 6);
}

#[test]
fn an_erroring_module_nulls_its_dependents() {
    let mut runner = ModuleRunner::new(vec![
        module("crossmatch", &[], Behaviour::Errors),
        module("classification", &["crossmatch"], Behaviour::Works),
        module("short", &[], Behaviour::ShortOutput),
    ])
    .expect("build runner");
    let alerts = batch();
    let outputs = runner.run(&alerts);
    assert_eq!(outputs.get(0, "classification_value"), None);
    assert_eq!(outputs.get(0, "short_value"), None);
    let kinds: Vec<&ModuleFailureKind> = outputs.failures().iter().map(|f| &f.kind).collect();
    assert!(matches!(kinds[0], ModuleFailureKind::Error(m) if m.contains("catalogue unreadable")));
    assert_eq!(*kinds[1], ModuleFailureKind::DependencyFailed("crossmatch".into()));
    assert!(matches!(kinds[2], ModuleFailureKind::Error(m) if m.contains("0 rows for a batch of 3")));
    let errors: Vec<u64> = runner.stats().iter().map(|stats| stats.errors).collect();
    assert_eq!(errors, [1, 0, 1]);
}

#[test]
fn an_empty_batch_gives_empty_columns() {
    let mut runner = ModuleRunner::new(vec![module("crossmatch", &[], Behaviour::Works)]).expect("runner");
    let outputs = runner.run(&[]);
    assert_eq!(outputs.n_alerts(), 0);
    assert!(outputs.failures().is_empty());
    assert_eq!(outputs.column("crossmatch_value").map(|c| c.values.len()), Some(0));
}

#[test]
fn two_modules_declaring_the_same_column_are_refused() {
    struct Copy(&'static str);
    impl ScienceModule for Copy {
        fn name(&self) -> &str {
            self.0
        }
        fn version(&self) -> &str {
            "0.1.0"
        }
        fn outputs(&self) -> &[OutputColumn] {
            const SCORE: &[OutputColumn] = &[OutputColumn::new("score", ColumnType::Float, "a score")];
            SCORE
        }
        fn run(&self, batch: &[Alert], _: &ModuleOutputs) -> Result<Vec<Row>, ModuleError> {
            Ok(vec![vec![None]; batch.len()])
        }
    }
    let error = ModuleRunner::new(vec![Box::new(Copy("first")), Box::new(Copy("second"))])
        .expect_err("a column declared by two modules is refused");
    let message = error.to_string();
    assert!(message.contains("score") && message.contains("first"), "{message}");
}
