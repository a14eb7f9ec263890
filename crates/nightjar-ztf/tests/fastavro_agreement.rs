//! Every real ZTF file decodes, and nightjar's raw view of every record equals what fastavro
//! reads from the same bytes (the fixtures in `tests/fixtures/fastavro`), value by value.

mod common;

use nightjar_avro::{Container, SchemaCache};
use nightjar_core::compare::compare_records;
use nightjar_ztf::{ZtfAlert, decode_container, is_ztf};

use common::{data, fixture, ztf_files};

/// Fink's columns in its enriched 3.3 file: everything a broker added to ZTF's record.
const FINK_COLUMNS: [&str; 14] = [
    "timestamp",
    "topic",
    "cdsxmatch",
    "rfscore",
    "hour",
    "cjd",
    "cfid",
    "cmagpsf",
    "csigmapsf",
    "cmagnr",
    "csigmagnr",
    "cmagzpsci",
    "cisdiffpos",
    "snn",
];

const FINK_FILE: &str = "ztf/multi/fink_ztf_v3.3_11alerts_enriched_20191101.avro";

/// Checks one file against its fixture; returns the number of records and of equal values.
fn check(relative: &str, cache: &mut SchemaCache) -> (usize, usize) {
    let bytes = data(relative);
    let expected = fixture(relative);
    let container = Container::open(&bytes, cache).unwrap_or_else(|error| panic!("{relative}: {error}"));
    assert!(is_ztf(&container.schema), "{relative}: not recognised as ZTF");
    assert_eq!(
        container.schema.name,
        expected["writer_schema_name"].as_str().expect("a schema name"),
        "{relative}"
    );
    assert_eq!(
        container.codec.as_str(),
        expected["codec"].as_str().expect("a codec"),
        "{relative}"
    );

    let their_records = expected["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{relative}: no records"));
    let raw_records: Vec<ZtfAlert> = container
        .records::<ZtfAlert>()
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
        .into_iter()
        .enumerate()
        .map(|(index, record)| record.unwrap_or_else(|error| panic!("{relative} record {index}: {error}")))
        .collect();
    assert_eq!(raw_records.len(), their_records.len(), "{relative}: record count");

    let mut n_equal = 0;
    for (index, (ours, theirs)) in raw_records.iter().zip(their_records).enumerate() {
        let comparison = compare_records(&nightjar_core::raw::RawRecord::to_json(ours), theirs);
        assert!(
            comparison.mismatches.is_empty(),
            "{relative} record {index}: {} mismatches, first: {:?}",
            comparison.mismatches.len(),
            &comparison.mismatches[..comparison.mismatches.len().min(5)]
        );
        let mut extra = comparison.extra_top_level.clone();
        extra.sort();
        if relative == FINK_FILE {
            let mut expected: Vec<String> = FINK_COLUMNS.iter().map(|column| column.to_string()).collect();
            expected.sort();
            assert_eq!(extra, expected, "{relative} record {index}: Fink's columns");
        } else {
            assert!(
                extra.is_empty(),
                "{relative} record {index}: columns nightjar dropped: {extra:?}"
            );
        }
        n_equal += comparison.n_equal;
    }

    // The core model decodes every record too.
    let alerts = decode_container(&container).unwrap_or_else(|error| panic!("{relative}: {error}"));
    for (index, alert) in alerts.iter().enumerate() {
        if let Err(error) = alert {
            panic!("{relative} record {index}: {error}");
        }
    }
    (raw_records.len(), n_equal)
}

#[test]
fn every_ztf_file_matches_fastavro_value_by_value() {
    let files = ztf_files();
    assert_eq!(files.len(), 67, "ZTF files under tests/data/ztf");
    let mut cache = SchemaCache::new();
    let (mut n_records, mut n_equal) = (0, 0);
    for relative in &files {
        let (records, equal) = check(relative, &mut cache);
        n_records += records;
        n_equal += equal;
    }
    // 65 one-record files + 11 + 3 in the two multi-record containers.
    assert_eq!(n_records, 79);
    // Every leaf value of every fixture record (Fink's columns aside) was compared and found
    // equal: counted independently with Python over the fixture files.
    assert_eq!(n_equal, 101_336);
}

/// `"null"`, `"empty"` or `"items"`: what a list field holds.
fn list_kind<T>(list: Option<&Vec<T>>) -> &'static str {
    match list {
        None => "null",
        Some(items) if items.is_empty() => "empty",
        Some(_) => "items",
    }
}

fn json_list_kind(value: Option<&serde_json::Value>) -> &'static str {
    list_kind(value.and_then(serde_json::Value::as_array))
}

#[test]
fn null_and_empty_lists_stay_apart() {
    // A writer can send `prv_candidates: null` or `[]`; nightjar keeps them apart (`None` vs
    // `Some(vec![])`) exactly as fastavro does. The core model cannot: `Alert::history` is a
    // plain Vec, so both become an empty history there, and the difference lives on in `raw`.
    let mut cache = SchemaCache::new();
    let mut seen = std::collections::BTreeSet::new();
    for relative in ztf_files() {
        let expected = fixture(&relative);
        let bytes = data(&relative);
        let container = Container::open(&bytes, &mut cache).unwrap();
        let ours = container.records::<ZtfAlert>().unwrap();
        for (record, theirs) in ours.into_iter().zip(expected["records"].as_array().unwrap()) {
            let record = record.unwrap();
            let pairs = [
                ("prv_candidates", list_kind(record.prv_candidates.as_ref())),
                ("fp_hists", list_kind(record.fp_hists.as_ref())),
            ];
            for (field, ours_kind) in pairs {
                assert_eq!(ours_kind, json_list_kind(theirs.get(field)), "{relative}: {field}");
                seen.insert(format!("{field}:{ours_kind}"));
            }
        }
    }
    // The data holds fp_hists both absent (before 4.01) and filled.
    assert!(
        seen.contains("fp_hists:null") && seen.contains("fp_hists:items"),
        "{seen:?}"
    );
}
