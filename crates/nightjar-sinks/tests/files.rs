//! File sink tests on real temporary directories: names, atomic replay overwrite, JSON lines
//! and Parquet read back with the parquet crate, bad inputs.

use std::fs;
use std::path::Path;

use nightjar_sinks::{Delivery, FileFormat, FileSink, SinkError};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};

fn delivery<'a>(position: &'a str, rows: &'a [Value]) -> Delivery<'a> {
    Delivery {
        filter: "bright_risers",
        survey: "ztf",
        night: "20240612",
        position,
        rows,
    }
}

fn alert_rows() -> Vec<Value> {
    vec![
        json!({
            "objectId": "ZTF24aaaaaaa",
            "candid": 2_700_000_000_001_i64,
            "candidate": {"ra": 123.456789, "dec": -12.5, "magpsf": 18.25, "isdiffpos": "t"},
            "mag_rate_g": -1.5,
            "tags": ["fast", "red"],
            "is_good_quality": true,
            "class": null,
        }),
        json!({
            "objectId": "ZTF24aaaaaab",
            "candid": 2_700_000_000_002_i64,
            "candidate": {"ra": 200.0, "dec": 45.25, "magpsf": 19.5, "isdiffpos": "f"},
            "mag_rate_g": null,
            "tags": [],
            "is_good_quality": false,
            "class": null,
        }),
    ]
}

fn files_in(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .expect("list directory")
        .map(|item| item.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn jsonl_is_written_per_night_and_a_replay_overwrites_it() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sink = FileSink::new(directory.path().join("sinks"), FileFormat::Jsonl).expect("sink");
    let rows = alert_rows();
    let path = sink
        .write(&delivery("ztf_2024_p3_o1200-1299", &rows))
        .expect("write")
        .expect("a file");
    assert_eq!(
        path,
        directory
            .path()
            .join("sinks/20240612/bright_risers_ztf_ztf_2024_p3_o1200-1299.jsonl")
    );
    let first_bytes = fs::read(&path).expect("read");
    let lines: Vec<Value> = String::from_utf8(first_bytes.clone())
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines, rows);

    let replayed = sink
        .write(&delivery("ztf_2024_p3_o1200-1299", &rows))
        .expect("write again")
        .expect("a file");
    assert_eq!(replayed, path);
    assert_eq!(
        fs::read(&path).expect("read"),
        first_bytes,
        "a replay writes the same content"
    );
    assert_eq!(
        files_in(path.parent().expect("night directory")),
        vec!["bright_risers_ztf_ztf_2024_p3_o1200-1299.jsonl".to_string()],
        "one file, no duplicate and no temporary file left"
    );

    // A replay with other rows (a new filter version) replaces the file; it never appends.
    let fewer = vec![rows[1].clone()];
    sink.write(&delivery("ztf_2024_p3_o1200-1299", &fewer))
        .expect("write fewer");
    let text = fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 1);
    assert_eq!(serde_json::from_str::<Value>(text.trim()).expect("json"), rows[1]);
}

/// Reads a Parquet file back as JSON objects, every column present (nulls explicit).
fn read_parquet(path: &Path) -> (Vec<Value>, arrow_schema::SchemaRef) {
    let file = fs::File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet reader");
    let schema = builder.schema().clone();
    let reader = builder.build().expect("reader");
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
    for batch in reader {
        writer.write(&batch.expect("batch")).expect("to json");
    }
    writer.finish().expect("finish");
    let rows: Vec<Value> = serde_json::from_slice(&writer.into_inner()).expect("json array");
    (rows, schema)
}

#[test]
fn parquet_reads_back_equal_to_the_rows() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sink = FileSink::new(directory.path(), "parquet".parse().expect("format")).expect("sink");
    let rows = alert_rows();
    let path = sink
        .write(&delivery("files_b12", &rows))
        .expect("write")
        .expect("a file");
    assert_eq!(
        path,
        directory.path().join("20240612/bright_risers_ztf_files_b12.parquet")
    );
    let (read_back, schema) = read_parquet(&path);
    assert_eq!(read_back, rows);
    // A column null on every row is still written.
    let class = schema.field_with_name("class").expect("class column kept");
    assert_eq!(class.data_type(), &arrow_schema::DataType::Null);
    assert!(matches!(
        schema.field_with_name("candidate").expect("nested").data_type(),
        arrow_schema::DataType::Struct(_)
    ));

    let first_bytes = fs::read(&path).expect("read");
    sink.write(&delivery("files_b12", &rows)).expect("replay");
    assert_eq!(
        fs::read(&path).expect("read"),
        first_bytes,
        "a replay writes the same bytes"
    );
    assert_eq!(files_in(path.parent().expect("night")).len(), 1);
}

#[test]
fn parquet_fills_missing_keys_with_null_and_reconciles_types() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sink = FileSink::new(directory.path(), FileFormat::Parquet).expect("sink");
    let rows = vec![
        json!({"object_id": "a", "flux": 1, "extra": {}, "label": "x"}),
        json!({"object_id": "b", "flux": 2.5, "band": "g", "label": 3}),
    ];
    let path = sink
        .write(&delivery("files_b1", &rows))
        .expect("write")
        .expect("a file");
    let (read_back, _) = read_parquet(&path);
    assert_eq!(
        read_back,
        vec![
            json!({"object_id": "a", "flux": 1.0, "extra": null, "band": null, "label": "x"}),
            json!({"object_id": "b", "flux": 2.5, "extra": null, "band": "g", "label": "3"}),
        ]
    );
}

#[test]
fn no_rows_no_file() {
    let directory = tempfile::tempdir().expect("temporary directory");
    for format in [FileFormat::Jsonl, FileFormat::Parquet] {
        let sink = FileSink::new(directory.path(), format).expect("sink");
        assert_eq!(sink.write(&delivery("files_b1", &[])).expect("write"), None);
    }
    assert!(files_in(directory.path()).is_empty(), "no night directory either");
}

#[test]
fn unknown_format_is_a_clear_error() {
    let error = "csv".parse::<FileFormat>().expect_err("csv is not a format");
    assert_eq!(
        error.to_string(),
        "unknown file sink format \"csv\": expected \"jsonl\" or \"parquet\""
    );
    assert_eq!("jsonl".parse::<FileFormat>().expect("jsonl"), FileFormat::Jsonl);
    assert!("Parquet".parse::<FileFormat>().is_err(), "formats are lowercase");
}

#[test]
fn unsafe_names_are_refused_before_anything_is_written() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sink = FileSink::new(directory.path(), FileFormat::Jsonl).expect("sink");
    let rows = alert_rows();
    for bad_position in ["../escape", "a/b", "", ".hidden", "p o", "p\u{e9}", &"x".repeat(129)] {
        let error = sink.write(&delivery(bad_position, &rows)).expect_err("bad position");
        assert!(
            matches!(error, SinkError::InvalidDelivery { field: "position", .. }),
            "{bad_position:?}: {error}"
        );
        assert!(error.to_string().contains("invalid delivery position"), "{error}");
    }
    let bad_filter = Delivery {
        filter: "Bright-Risers",
        ..delivery("p1", &rows)
    };
    assert!(matches!(
        sink.write(&bad_filter),
        Err(SinkError::InvalidDelivery { field: "filter", .. })
    ));
    let bad_night = Delivery {
        night: "2024-06-12",
        ..delivery("p1", &rows)
    };
    let error = sink.write(&bad_night).expect_err("bad night");
    assert_eq!(
        error.to_string(),
        "invalid delivery night \"2024-06-12\": expected the UTC night as YYYYMMDD"
    );
    let not_objects = vec![json!({"a": 1}), json!([1, 2])];
    let error = sink
        .write(&delivery("p1", &not_objects))
        .expect_err("a row that is not an object");
    assert_eq!(
        error.to_string(),
        "filter bright_risers: row 1 is not a JSON object (found an array)"
    );
    assert!(files_in(directory.path()).is_empty(), "nothing written");
}

#[test]
fn parquet_with_irreconcilable_types_is_an_error_not_a_panic() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let sink = FileSink::new(directory.path(), FileFormat::Parquet).expect("sink");
    let rows = vec![json!({"x": {"a": 1}}), json!({"x": 5})];
    let error = sink.write(&delivery("p1", &rows)).expect_err("struct and number");
    assert!(matches!(error, SinkError::Parquet { .. }), "{error}");
    assert!(error.to_string().contains("cannot be written as parquet"), "{error}");
    let night = directory.path().join("20240612");
    assert!(!night.exists() || files_in(&night).is_empty(), "no partial file");
}
