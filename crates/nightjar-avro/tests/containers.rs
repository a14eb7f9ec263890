//! Opens real ZTF and Rubin container files and decodes their records generically.

use std::path::Path;

use nightjar_avro::{Codec, Container, SchemaCache};
use serde::Deserialize;

/// Just enough of a ZTF alert to check what was read; other fields are skipped.
#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
struct MinimalZtf {
    objectId: String,
    candidate: MinimalCandidate,
}

#[derive(Debug, Deserialize)]
struct MinimalCandidate {
    candid: i64,
    jd: f64,
}

fn data(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn ztf_container_decodes_into_json() {
    let bytes = data("ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro");
    let mut cache = SchemaCache::new();
    let container = Container::open(&bytes, &mut cache).unwrap();
    assert_eq!(container.codec, Codec::Null);
    assert_eq!(container.schema.name, "ztf.alert");
    assert!(container.schema.nested("candidate").iter().any(|field| field == "drb"));
    let records: Vec<MinimalZtf> = container.records().unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].candidate.candid, 3005140370015010009);
    assert!(records[0].objectId.starts_with("ZTF"));
    assert!(records[0].candidate.jd > 2_400_000.0);
    // The second message with the same schema reuses the parsed schema.
    Container::open(&bytes, &mut cache).unwrap();
    assert_eq!(cache.len(), 1);
}

#[test]
fn multi_record_container_yields_every_record() {
    let bytes = data("ztf/multi/ztf_v3.3_3alerts_20211124.avro");
    let mut cache = SchemaCache::new();
    let container = Container::open(&bytes, &mut cache).unwrap();
    let records: Vec<MinimalZtf> = container.records().unwrap().into_iter().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
}

#[test]
fn truncated_container_is_an_error_not_a_panic() {
    let bytes = data("ztf/multi/ztf_v3.3_3alerts_20211124.avro");
    let mut cache = SchemaCache::new();
    for cut in [3, 10, 200, bytes.len() / 2, bytes.len() - 1] {
        let result = Container::open(&bytes[..cut], &mut cache).and_then(|container| container.records::<MinimalZtf>());
        match result {
            Err(_) => {}
            Ok(records) => assert!(records.iter().any(Result::is_err), "cut at {cut} decoded cleanly"),
        }
    }
}

#[test]
fn datums_are_the_records_bytes_and_decode_alone() {
    for file in [
        "ztf/multi/ztf_v3.3_3alerts_20211124.avro",
        "ztf/multi/fink_ztf_v3.3_11alerts_enriched_20191101.avro",
        "ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro",
    ] {
        let bytes = data(file);
        let mut cache = SchemaCache::new();
        let container = Container::open(&bytes, &mut cache).unwrap();
        let records: Vec<MinimalZtf> = container.records().unwrap().into_iter().map(Result::unwrap).collect();
        let datums = container.datums().unwrap();
        assert_eq!(datums.len(), records.len(), "{file}");
        for (datum, record) in datums.iter().zip(&records) {
            let alone: MinimalZtf = nightjar_avro::decode_datum(datum, &container.schema.schema).unwrap();
            assert_eq!(alone.candidate.candid, record.candidate.candid, "{file}");
            assert_eq!(alone.objectId, record.objectId, "{file}");
        }
        // Written back into a container of their own, they read the same.
        let rewritten = nightjar_avro::write_container(&container.schema, datums.iter().map(Vec::as_slice)).unwrap();
        let reopened = Container::open(&rewritten, &mut cache).unwrap();
        assert_eq!(reopened.datums().unwrap(), datums, "{file}");
    }
}

#[test]
fn framed_records_are_the_one_record_containers_write_container_gives() {
    let mut cache = SchemaCache::new();
    let mut n_checked = 0;
    for folder in ["ztf/alerts/boom_20240715_v4.02", "ztf/multi"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/data")
            .join(folder);
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let container = Container::open(&bytes, &mut cache).unwrap();
            let framer = nightjar_avro::RecordFramer::new(&container.schema).unwrap();
            for datum in container.datums().unwrap() {
                let framed = framer.frame(&datum);
                assert_eq!(
                    framed,
                    nightjar_avro::write_container(&container.schema, [datum.as_slice()]).unwrap()
                );
                let reread = Container::open(&framed, &mut cache).unwrap();
                assert_eq!(reread.datums().unwrap(), vec![datum]);
                n_checked += 1;
            }
        }
    }
    assert!(n_checked >= 20, "{n_checked}");
}
