//! Filters on the real ZTF and Rubin alerts in `tests/data`: values checked against the raw
//! fields read independently, and every kind of bad filter rejected with a clear error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nightjar_core::{Alert, FieldValue, Origin, Survey};
use nightjar_decode::Decoder;
use nightjar_filter::arrow::array::{Array, Float64Array, Int64Array, StringArray};
use nightjar_filter::{
    AlertBatch, AlertSchema, ColumnSelection, CompiledFilter, FilterDefinition, FilterEngine, FilterError,
    FilterLimits, column_by_path,
};
use nightjar_modules::{ModuleOutputs, ModuleRunner, ModulesConfig, builtin_modules};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

fn avro_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read test data folder")
        .map(|entry| entry.expect("read folder entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            avro_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "avro") {
            files.push(path);
        }
    }
}

/// Every decodable alert in `tests/data`, both surveys.
fn alerts() -> Vec<Alert> {
    let mut files = Vec::new();
    avro_files(&data_dir(), &mut files);
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read alert file");
        alerts.extend(decoder.decode(&bytes, &Origin::file(&path)).into_iter().flatten());
    }
    alerts
}

fn modules() -> ModuleRunner {
    ModuleRunner::new(builtin_modules(&ModulesConfig::default()).expect("build modules")).expect("runner")
}

fn schema(runner: &ModuleRunner) -> AlertSchema {
    AlertSchema::new(
        runner
            .columns()
            .into_iter()
            .map(|(_, column)| column)
            .collect::<Vec<_>>()
            .iter(),
    )
    .expect("schema")
}

fn compile(schema: &AlertSchema, sql: &str) -> Result<CompiledFilter, FilterError> {
    CompiledFilter::compile("test", sql, &[], schema, &FilterLimits::default())
}

struct Setup {
    alerts: Vec<Alert>,
    outputs: ModuleOutputs,
    schema: AlertSchema,
}

fn setup() -> Setup {
    let alerts = alerts();
    let mut runner = modules();
    let outputs = runner.run(&alerts);
    let schema = schema(&runner);
    Setup {
        alerts,
        outputs,
        schema,
    }
}

fn run(setup: &Setup, sql: &str) -> (Vec<usize>, nightjar_filter::arrow::array::RecordBatch) {
    let mut filter = compile(&setup.schema, sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
    let batch = AlertBatch::build(&setup.schema, &setup.alerts, &setup.outputs, filter.selection()).expect("batch");
    let output = filter.evaluate(&batch).expect("evaluate");
    (output.passed, output.selected)
}

#[test]
fn the_arrow_batch_holds_the_raw_fields_of_each_survey() {
    let setup = setup();
    let batch = AlertBatch::build(
        &setup.schema,
        &setup.alerts,
        &setup.outputs,
        &ColumnSelection::all(&setup.schema),
    )
    .expect("batch");
    let record = batch.record_batch();
    assert_eq!(record.num_rows(), setup.alerts.len());
    let magpsf = column_by_path(record, "candidate.magpsf").expect("candidate.magpsf");
    let magpsf = magpsf.as_any().downcast_ref::<Float64Array>().expect("float");
    let psf_flux = column_by_path(record, "diaSource.psfFlux").expect("diaSource.psfFlux");
    let psf_flux = psf_flux.as_any().downcast_ref::<Float64Array>().expect("float");
    let object_ids = column_by_path(record, "object_id").expect("object_id");
    let object_ids = object_ids.as_any().downcast_ref::<StringArray>().expect("text");
    let n_detections = column_by_path(record, "n_detections").expect("n_detections");
    let n_detections = n_detections.as_any().downcast_ref::<Int64Array>().expect("int");
    let (mut n_ztf, mut n_rubin) = (0, 0);
    for (row, alert) in setup.alerts.iter().enumerate() {
        assert_eq!(object_ids.value(row), alert.object_id);
        assert_eq!(n_detections.value(row), alert.history.len() as i64 + 1);
        match alert.survey {
            Survey::Ztf => {
                n_ztf += 1;
                let expected = alert.raw.get("candidate.magpsf").and_then(|value| value.as_f64());
                assert_eq!(magpsf.is_valid(row).then(|| magpsf.value(row)), expected, "row {row}");
                assert!(psf_flux.is_null(row), "a ZTF alert has no diaSource");
            }
            Survey::Rubin => {
                n_rubin += 1;
                let expected = match alert.raw.get("diaSource.psfFlux") {
                    Some(FieldValue::Float(value)) => Some(value),
                    _ => None,
                };
                assert_eq!(
                    psf_flux.is_valid(row).then(|| psf_flux.value(row)),
                    expected,
                    "row {row}"
                );
                assert!(magpsf.is_null(row), "a Rubin alert has no candidate");
            }
        }
    }
    assert!(n_ztf > 10 && n_rubin > 10, "{n_ztf} ZTF and {n_rubin} Rubin alerts");
}

#[test]
fn a_condition_selects_the_alerts_whose_raw_fields_match() {
    let setup = setup();
    let (passed, selected) = run(
        &setup,
        "SELECT objectId, candidate.magpsf FROM alerts WHERE candidate.magpsf < 18.5",
    );
    let expected: Vec<usize> = (0..setup.alerts.len())
        .filter(|&row| {
            setup.alerts[row]
                .raw
                .get("candidate.magpsf")
                .and_then(|value| value.as_f64())
                .is_some_and(|magpsf| magpsf < 18.5)
        })
        .collect();
    assert!(!expected.is_empty() && expected.len() < setup.alerts.len());
    assert_eq!(passed, expected);
    assert_eq!(selected.num_rows(), expected.len());
    assert_eq!(selected.schema().field(0).name(), "objectId");
    let ids = selected
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("objectId is text");
    for (position, &row) in expected.iter().enumerate() {
        let raw_id = setup.alerts[row]
            .raw
            .get("objectId")
            .and_then(|value| value.as_str().map(str::to_string));
        assert_eq!(ids.is_valid(position).then(|| ids.value(position).to_string()), raw_id);
    }
}

#[test]
fn a_bare_condition_reads_module_outputs_and_history() {
    let setup = setup();
    let (passed, selected) = run(&setup, "is_good_quality AND n_detections_r >= 2 AND survey = 'ztf'");
    let good = setup.outputs.column("is_good_quality").expect("quality output");
    let expected: Vec<usize> = (0..setup.alerts.len())
        .filter(|&row| {
            let alert = &setup.alerts[row];
            let n_r = alert
                .history
                .iter()
                .chain(std::iter::once(&alert.detection))
                .filter(|detection| detection.band == Some(nightjar_core::Band::R))
                .count();
            alert.survey == Survey::Ztf
                && good.values[row].as_ref().and_then(|value| value.as_bool()) == Some(true)
                && n_r >= 2
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(passed, expected);
    assert_eq!(selected.schema().field(0).name(), "object_id");
}

#[test]
fn identifiers_are_case_sensitive() {
    let setup = setup();
    let (passed, _) = run(&setup, "diaSource.psfFlux > 0");
    assert!(!passed.is_empty());
    let error = compile(&setup.schema, "diasource.psfflux > 0").expect_err("lowercase is another name");
    match &error {
        FilterError::UnknownColumn {
            column, suggestions, ..
        } => {
            assert_eq!(column, "diasource.psfflux");
            assert!(suggestions.contains(&"diaSource.psfFlux".to_string()), "{error}");
        }
        other => panic!("expected an unknown column, got {other}"),
    }
}

#[test]
fn the_survey_list_restricts_the_alerts_a_filter_sees() {
    let setup = setup();
    let mut filter = CompiledFilter::compile(
        "rubin_only",
        "ra >= 0",
        &[Survey::Rubin],
        &setup.schema,
        &FilterLimits::default(),
    )
    .expect("compile");
    let batch = AlertBatch::build(&setup.schema, &setup.alerts, &setup.outputs, filter.selection()).expect("batch");
    let output = filter.evaluate(&batch).expect("evaluate");
    let expected: Vec<usize> = (0..setup.alerts.len())
        .filter(|&row| setup.alerts[row].survey == Survey::Rubin)
        .collect();
    assert_eq!(output.passed, expected);
}

fn expect_error(schema: &AlertSchema, sql: &str) -> FilterError {
    match compile(schema, sql) {
        Ok(_) => panic!("{sql} compiled"),
        Err(error) => error,
    }
}

#[test]
fn a_syntax_error_says_where() {
    let setup = setup();
    let error = expect_error(&setup.schema, "candidate.magpsf < 18 AND AND candidate.drb > 0.5");
    assert_eq!(error.reason(), "syntax", "{error}");
    assert!(error.to_string().contains("Line: 1"), "{error}");
}

#[test]
fn an_unknown_column_is_located_and_close_names_suggested() {
    let setup = setup();
    let error = expect_error(
        &setup.schema,
        "SELECT objectId\nFROM alerts\nWHERE candidate.magpfs < 18",
    );
    match &error {
        FilterError::UnknownColumn {
            column,
            location,
            suggestions,
            ..
        } => {
            assert_eq!(column, "candidate.magpfs");
            assert_eq!((location.line, location.column), (3, 7));
            assert_eq!(
                suggestions.first().map(String::as_str),
                Some("candidate.magpsf"),
                "{error}"
            );
        }
        other => panic!("expected an unknown column, got {other}"),
    }
    assert!(error.to_string().contains("did you mean candidate.magpsf"), "{error}");
    // A bare condition is wrapped, but positions stay the user's.
    match expect_error(&setup.schema, "is_good_quality AND\n  rb_score > 0.5") {
        FilterError::UnknownColumn { location, .. } => assert_eq!((location.line, location.column), (2, 3)),
        other => panic!("expected an unknown column, got {other}"),
    }
}

#[test]
fn a_wrong_type_is_a_plan_error() {
    let setup = setup();
    let error = expect_error(&setup.schema, "candidate.magpsf");
    assert_eq!(error.reason(), "plan", "{error}");
    assert!(error.to_string().contains("boolean"), "{error}");
    let error = expect_error(&setup.schema, "objectId + 1 > 2");
    assert_eq!(error.reason(), "plan", "{error}");
}

#[test]
fn statements_ddl_dml_and_other_tables_are_refused() {
    let setup = setup();
    for sql in [
        "DROP TABLE alerts",
        "CREATE TABLE x AS SELECT * FROM alerts",
        "INSERT INTO alerts SELECT * FROM alerts",
        "DELETE FROM alerts",
        "COPY alerts TO '/tmp/out.csv'",
        "SET datafusion.execution.batch_size = 1",
        "EXPLAIN SELECT * FROM alerts",
        "SELECT * FROM alerts; SELECT * FROM alerts",
        "SELECT * FROM other",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM alerts a JOIN alerts b ON a.source_id = b.source_id",
        "SELECT * FROM alerts, alerts",
        "SELECT object_id FROM alerts GROUP BY object_id",
        "SELECT * FROM alerts ORDER BY mjd",
        "SELECT * FROM alerts LIMIT 1",
        "SELECT * FROM alerts WHERE source_id IN (SELECT source_id FROM alerts)",
        "WITH x AS (SELECT * FROM alerts) SELECT * FROM x",
        "SELECT * FROM (SELECT * FROM alerts) sub",
        "SELECT * FROM alerts UNION SELECT * FROM alerts",
    ] {
        let error = expect_error(&setup.schema, sql);
        assert!(
            matches!(error.reason(), "forbidden" | "syntax"),
            "{sql}: {error} ({})",
            error.reason()
        );
    }
}

#[test]
fn aggregate_functions_are_unknown() {
    let setup = setup();
    let error = expect_error(&setup.schema, "SELECT count(*) FROM alerts");
    assert_eq!(error.reason(), "plan", "{error}");
    assert!(error.to_string().contains("Invalid function 'count'"), "{error}");
}

#[test]
fn table_functions_and_file_access_are_refused() {
    let setup = setup();
    for sql in [
        "SELECT * FROM generate_series(1, 1000000000)",
        "SELECT * FROM range(10)",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('s3://bucket/x.parquet')",
    ] {
        let error = expect_error(&setup.schema, sql);
        assert_eq!(error.reason(), "forbidden", "{sql}: {error}");
    }
    for sql in [
        "random() < 0.5",
        "length(repeat(objectId, 1000000000)) > 1",
        "now() > now()",
    ] {
        let error = expect_error(&setup.schema, sql);
        assert_eq!(error.reason(), "plan", "{sql}: {error}");
        assert!(error.to_string().contains("function"), "{sql}: {error}");
    }
}

#[test]
fn deeply_nested_and_overlong_sql_is_refused_without_a_crash() {
    let setup = setup();
    let nested = format!("{}ra > 0{}", "(".repeat(10_000), ")".repeat(10_000));
    let error = expect_error(&setup.schema, &nested);
    assert!(matches!(error.reason(), "syntax" | "forbidden"), "{error}");
    let long = vec!["ra > 0"; 5_000].join(" OR ");
    let error = expect_error(&setup.schema, &long);
    assert_eq!(error.reason(), "forbidden", "{error}");
    assert!(error.to_string().contains("bytes long"), "{error}");
}

#[test]
fn a_huge_output_is_refused() {
    let setup = setup();
    let limits = FilterLimits {
        max_output_bytes: 4096,
        ..FilterLimits::default()
    };
    let mut filter =
        CompiledFilter::compile("everything", "SELECT * FROM alerts", &[], &setup.schema, &limits).expect("compile");
    let batch = AlertBatch::build(&setup.schema, &setup.alerts, &setup.outputs, filter.selection()).expect("batch");
    let error = filter.evaluate(&batch).expect_err("output over the cap");
    assert_eq!(error.reason(), "output_too_large", "{error}");
    assert_eq!(filter.metrics().errors, 1);
}

#[test]
fn a_filter_that_keeps_exceeding_its_budget_is_disabled() {
    let setup = setup();
    let limits = FilterLimits {
        time_budget: Duration::ZERO,
        max_overruns: 3,
        ..FilterLimits::default()
    };
    let sql = "regexp_like(concat(objectId, objectId, objectId), '(a|b|c|d)+z$') OR ra > 0";
    let mut filter = CompiledFilter::compile("slow", sql, &[], &setup.schema, &limits).expect("compile");
    let batch = AlertBatch::build(&setup.schema, &setup.alerts, &setup.outputs, filter.selection()).expect("batch");
    assert!(filter.evaluate(&batch).is_ok());
    assert!(filter.evaluate(&batch).is_ok());
    let error = filter.evaluate(&batch).expect_err("third overrun disables");
    assert_eq!(error.reason(), "disabled", "{error}");
    assert!(filter.metrics().disabled);
    assert_eq!(
        filter.evaluate(&batch).expect_err("stays disabled").reason(),
        "disabled"
    );
    assert_eq!(filter.metrics().batches, 3);
}

#[test]
fn a_broken_new_version_is_rejected_and_the_old_one_keeps_running() {
    let setup = setup();
    let mut engine = FilterEngine::new(setup.schema.clone(), FilterLimits::default());
    let good = FilterDefinition::parse(
        "name = \"bright\"\ndescription = \"bright detections\"\nsql = \"magnitude < 18\"\n",
        "bright.toml",
    )
    .expect("parse");
    let report = engine.update(vec![good]);
    assert_eq!(report.activated, ["bright"]);
    let broken = FilterDefinition::parse(
        "name = \"bright\"\ndescription = \"bright detections\"\nsql = \"magnitud < 18\"\n",
        "bright.toml",
    )
    .expect("parse");
    let report = engine.update(vec![broken]);
    assert!(report.activated.is_empty());
    assert_eq!(report.rejected.len(), 1);
    assert!(
        report.rejected[0].to_string().contains("did you mean magnitude"),
        "{}",
        report.rejected[0]
    );
    let results = engine.run(&setup.alerts, &setup.outputs).expect("run");
    assert_eq!(results.len(), 1);
    let (name, output) = &results[0];
    assert_eq!(name, "bright");
    let passed = output.as_ref().expect("old version runs").passed.len();
    let expected = setup
        .alerts
        .iter()
        .filter(|alert| alert.detection.magnitude.is_some_and(|m| m < 18.0))
        .count();
    assert_eq!(passed, expected);
    assert!(expected > 0);
}

#[test]
fn a_bad_definition_file_names_the_file() {
    let error =
        FilterDefinition::parse("name = \"x\"\nsql = \"ra > 0\"\n", "filters/x.toml").expect_err("no description");
    assert!(error.to_string().starts_with("filter file filters/x.toml:"), "{error}");
    let error = FilterDefinition::parse("name = \"Bad Name\"\ndescription = \"d\"\nsql = \"ra > 0\"\n", "b.toml")
        .expect_err("bad name");
    assert!(error.to_string().contains("lowercase"), "{error}");
}

#[test]
fn history_columns_match_the_detections_each_alert_carries() {
    let setup = setup();
    let (_, selected) = run(
        &setup,
        "SELECT n_detections_r, last_magnitude_r, mag_rate_r, first_detection_mjd FROM alerts WHERE survey = 'ztf'",
    );
    let ztf: Vec<&Alert> = setup
        .alerts
        .iter()
        .filter(|alert| alert.survey == Survey::Ztf)
        .collect();
    assert_eq!(selected.num_rows(), ztf.len());
    let column = |index: usize| selected.column(index).clone();
    let (n_r, last_r, rate_r, first) = (column(0), column(1), column(2), column(3));
    let n_r = n_r.as_any().downcast_ref::<Int64Array>().expect("int");
    let last_r = last_r.as_any().downcast_ref::<Float64Array>().expect("float");
    let rate_r = rate_r.as_any().downcast_ref::<Float64Array>().expect("float");
    let first = first.as_any().downcast_ref::<Float64Array>().expect("float");
    let mut n_rates = 0;
    for (row, alert) in ztf.iter().enumerate() {
        let detections: Vec<&nightjar_core::Detection> =
            alert.history.iter().chain(std::iter::once(&alert.detection)).collect();
        let mut in_r: Vec<(f64, f64)> = detections
            .iter()
            .filter(|detection| detection.band == Some(nightjar_core::Band::R))
            .filter_map(|detection| detection.magnitude.map(|magnitude| (detection.mjd, magnitude)))
            .collect();
        in_r.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n_in_r = detections
            .iter()
            .filter(|d| d.band == Some(nightjar_core::Band::R))
            .count();
        assert_eq!(n_r.value(row), n_in_r as i64, "{}", alert.object_id);
        let min_mjd = detections.iter().map(|d| d.mjd).fold(f64::INFINITY, f64::min);
        assert_eq!(first.value(row), min_mjd);
        match in_r.as_slice() {
            [] => assert!(last_r.is_null(row)),
            [.., last] => assert_eq!(last_r.value(row), last.1, "{}", alert.object_id),
        }
        if let [.., before, last] = in_r.as_slice()
            && last.0 > before.0
        {
            let expected = (last.1 - before.1) / (last.0 - before.0);
            assert!((rate_r.value(row) - expected).abs() < 1e-9, "{}", alert.object_id);
            n_rates += 1;
        }
    }
    assert!(n_rates > 10, "{n_rates} alerts with an r-band rate");
}
