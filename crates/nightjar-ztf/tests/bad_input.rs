//! Bad input is an error, never a panic: truncated and corrupted real files, empty input,
//! Rubin data, and containers whose schema is not ZTF's.

mod common;

use nightjar_avro::{Container, SchemaCache};
use nightjar_core::DecodeErrorKind;
use nightjar_ztf::decode_container;
use proptest::prelude::*;

use common::{data, decode_bytes, synthetic_container};

/// One-record files, null codec and snappy, and a 3-record, 3-block container.
const V4_02: &str = "ztf/alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro";
const SNAPPY: &str = "ztf/alerts/alerce_snappy_v3.x/0000105101211233001.avro";
const THREE_BLOCKS: &str = "ztf/multi/ztf_v3.3_3alerts_20211124.avro";

#[test]
fn truncated_single_alerts_are_errors_at_every_offset() {
    for file in [V4_02, SNAPPY] {
        let bytes = data(file);
        let mut cache = SchemaCache::new();
        assert_eq!(
            decode_bytes(&bytes, &mut cache).map(|alerts| alerts.len()),
            Ok(1),
            "{file}"
        );
        for cut in (0..bytes.len()).step_by(13).chain(bytes.len() - 20..bytes.len()) {
            let result = decode_bytes(&bytes[..cut], &mut cache);
            assert!(result.is_err(), "{file} cut at {cut} of {} decoded", bytes.len());
        }
    }
}

#[test]
fn a_truncated_multi_block_container_yields_an_error_or_fewer_alerts() {
    // A container cut exactly between two blocks is a valid, shorter container: nothing in Avro
    // can tell it was cut. Everywhere else the cut is an error; the container cut right after
    // its header holds no record, which is an error too.
    let bytes = data(THREE_BLOCKS);
    let mut cache = SchemaCache::new();
    let full = decode_bytes(&bytes, &mut cache).unwrap();
    let full_ids: Vec<i64> = full.iter().map(|alert| alert.source_id()).collect();
    // Blocks (and the header) end with the 16-byte sync marker, which also ends the file.
    let sync = &bytes[bytes.len() - 16..];
    let block_ends: Vec<usize> = bytes
        .windows(16)
        .enumerate()
        .filter(|(_, window)| *window == sync)
        .map(|(start, _)| start + 16)
        .collect();
    assert_eq!(block_ends.len(), 4, "header + 3 blocks");
    let near_ends = block_ends
        .iter()
        .flat_map(|end| end.saturating_sub(2)..(end + 3).min(bytes.len()));
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(41).chain(near_ends).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut n_shorter = 0;
    for cut in cuts {
        match decode_bytes(&bytes[..cut], &mut cache) {
            Err(_) => {}
            Ok(alerts) => {
                let ids: Vec<i64> = alerts.iter().map(|alert| alert.source_id()).collect();
                assert!(!ids.is_empty() && ids.len() < full_ids.len(), "cut at {cut}: {ids:?}");
                assert_eq!(ids, full_ids[..ids.len()], "cut at {cut}");
                n_shorter += 1;
            }
        }
    }
    assert_eq!(n_shorter, 2, "the cuts after the first and second block");
}

#[test]
fn flipped_bytes_in_a_snappy_container_are_errors_everywhere() {
    // Snappy blocks end with a CRC-32 of their data, and the header is checked as it is read
    // (magic, UTF-8 schema text, codec name, sync marker), so every flipped byte is caught.
    let bytes = data(SNAPPY);
    let mut cache = SchemaCache::new();
    for offset in (0..bytes.len()).step_by(7) {
        let mut corrupt = bytes.clone();
        corrupt[offset] ^= 0xff;
        assert!(
            decode_bytes(&corrupt, &mut cache).is_err(),
            "flip at {offset} of {} decoded",
            bytes.len()
        );
    }
}

#[test]
fn flipped_bytes_in_the_header_or_sync_marker_are_errors() {
    // With codec null a flipped byte inside a value cannot be detected (Avro has no checksum
    // there; the bytes still decode, to other values): only the framing is checked here, and
    // the property test below checks that no corruption panics.
    let bytes = data(V4_02);
    let container = Container::open(&bytes, &mut SchemaCache::new()).unwrap();
    let header_len = bytes
        .windows(container.schema.json.len())
        .position(|window| window == container.schema.json.as_bytes())
        .unwrap()
        + container.schema.json.len();
    let mut cache = SchemaCache::new();
    let offsets = (0..header_len).step_by(5).chain(bytes.len() - 16..bytes.len());
    for offset in offsets {
        let mut corrupt = bytes.clone();
        corrupt[offset] ^= 0xff;
        assert!(decode_bytes(&corrupt, &mut cache).is_err(), "flip at {offset} decoded");
    }
}

#[test]
fn empty_input_is_an_error() {
    assert!(matches!(
        decode_bytes(&[], &mut SchemaCache::new()),
        Err(DecodeErrorKind::Container(_))
    ));
    assert!(decode_bytes(b"Obj\x01", &mut SchemaCache::new()).is_err());
}

#[test]
fn rubin_data_is_not_ztf() {
    // A Rubin container (native lsst.v9_0.alert schema) opens, then is refused as Rubin.
    let bytes = data("lsst/alerts/alerce_v9.0/sample_v9.avro");
    let container = Container::open(&bytes, &mut SchemaCache::new()).unwrap();
    assert!(!nightjar_ztf::is_ztf(&container.schema));
    assert_eq!(
        decode_container(&container).err(),
        Some(DecodeErrorKind::WrongSurvey {
            expected: "ztf".into(),
            found: "rubin".into()
        })
    );
    // A Spark-rewritten Rubin file from Fink, the same.
    let bytes = data("lsst/multi/fink_lsst_v10.0_7alerts_20260306.avro");
    let container = Container::open(&bytes, &mut SchemaCache::new()).unwrap();
    assert!(matches!(
        decode_container(&container),
        Err(DecodeErrorKind::WrongSurvey { .. })
    ));
    // A Rubin Confluent wire-format message is no container at all.
    let bytes = data("lsst/wire/boom/7912941781254298.avro");
    assert!(matches!(
        decode_bytes(&bytes, &mut SchemaCache::new()),
        Err(DecodeErrorKind::Container(_))
    ));
}

#[test]
fn a_schema_without_candidate_is_an_unknown_survey() {
    let schema = r#"{"type": "record", "name": "alert", "namespace": "ztf", "fields": [
        {"name": "objectId", "type": "string"}, {"name": "candid", "type": "long"}]}"#;
    let bytes = synthetic_container(schema, &[serde_json::json!({"objectId": "ZTF18aaaaaaa", "candid": 1})]);
    let container = Container::open(&bytes, &mut SchemaCache::new()).unwrap();
    assert!(!nightjar_ztf::is_ztf(&container.schema));
    match decode_container(&container) {
        Err(DecodeErrorKind::UnknownSurvey(fields)) => assert_eq!(fields, "objectId, candid"),
        other => panic!("expected an unknown survey, got {other:?}"),
    }
}

#[test]
fn a_candidate_without_ztf_fields_is_refused() {
    let schema = r#"{"type": "record", "name": "alert", "fields": [
        {"name": "candidate", "type": {"type": "record", "name": "candidate", "fields": [
            {"name": "candid", "type": "long"}, {"name": "jd", "type": "double"}]}}]}"#;
    let bytes = synthetic_container(
        schema,
        &[serde_json::json!({"candidate": {"candid": 1, "jd": 2460000.5}})],
    );
    let container = Container::open(&bytes, &mut SchemaCache::new()).unwrap();
    match decode_container(&container) {
        Err(DecodeErrorKind::Schema(message)) => assert_eq!(
            message,
            "not a ZTF alert: the writer schema has a `candidate` but lacks candidate.fid, candidate.ra, \
             candidate.dec, candidate.magpsf, objectId"
        ),
        other => panic!("expected a schema error, got {other:?}"),
    }
}

/// One corruption of a real file.
#[derive(Debug, Clone)]
enum Corruption {
    /// Replace the byte at (offset modulo length).
    Set(usize, u8),
    /// Insert a byte.
    Insert(usize, u8),
    /// Remove a run of bytes.
    Remove(usize, usize),
    /// Cut the file.
    Truncate(usize),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(offset, byte)| Corruption::Set(offset, byte)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(offset, byte)| Corruption::Insert(offset, byte)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(offset, len)| Corruption::Remove(offset, len)),
        1 => any::<usize>().prop_map(Corruption::Truncate),
    ]
}

fn corrupt(mut bytes: Vec<u8>, corruptions: &[Corruption]) -> Vec<u8> {
    for corruption in corruptions {
        let len = bytes.len().max(1);
        match *corruption {
            Corruption::Set(offset, byte) => {
                if let Some(slot) = bytes.get_mut(offset % len) {
                    *slot = byte;
                }
            }
            Corruption::Insert(offset, byte) => bytes.insert(offset % (bytes.len() + 1), byte),
            Corruption::Remove(offset, run) => {
                let start = offset % len;
                let end = (start + run).min(bytes.len());
                bytes.drain(start.min(end)..end);
            }
            Corruption::Truncate(offset) => bytes.truncate(offset % len),
        }
    }
    bytes
}

/// Files the property test corrupts: native null-codec 1.8 and 4.02, snappy Spark, Fink multi.
const CORRUPTED_FILES: [&str; 4] = [
    V4_02,
    SNAPPY,
    "ztf/alerts/skyportal_20180626_v1.8/541174151315010001.avro",
    "ztf/multi/fink_ztf_v3.3_11alerts_enriched_20191101.avro",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_corruptions_never_panic(
        file_index in 0..CORRUPTED_FILES.len(),
        corruptions in prop::collection::vec(corruption(), 1..8),
    ) {
        let bytes = corrupt(data(CORRUPTED_FILES[file_index]), &corruptions);
        let mut cache = SchemaCache::new();
        // Any outcome but a panic: an error, or alerts whose JSON view can be built.
        if let Ok(container) = Container::open(&bytes, &mut cache)
            && let Ok(results) = decode_container(&container)
        {
            for alert in results.into_iter().flatten() {
                let _ = alert.to_json();
            }
        }
    }
}
