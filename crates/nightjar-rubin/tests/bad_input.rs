//! Bad input gives an error, never a panic: wrong framing, truncation, trailing bytes, unknown
//! schema ids, corrupted bytes, another survey's data, and random corruptions of real messages.

mod common;

use nightjar_avro::{Container, SchemaCache, frame_wire, split_wire};
use nightjar_core::DecodeErrorKind;
use nightjar_rubin::{RubinSchemas, decode_container, decode_wire_datum};
use proptest::prelude::*;

use common::{decode_bytes, read_data};

const WIRE_9_0: &str = "lsst/wire/boom/7912941781254298.avro";
const WIRE_7_4: &str = "lsst/wire/alerce_v7.4/message_1.avro";
const CONTAINER_9_0: &str = "lsst/alerts/fink_lsstcam_20250906_v9.0/169298433314652171_169298433314652171.avro";
const CONTAINER_10_0: &str = "lsst/multi/fink_lsst_v10.0_7alerts_20260306.avro";
const ZTF_CONTAINER: &str = "ztf/alerts/boom_20240715_v4.02";

fn first_ztf_file() -> String {
    let folder = common::data_path(ZTF_CONTAINER);
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("ZTF folder")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    format!("{ZTF_CONTAINER}/{}", names[0])
}

#[test]
fn wrong_magic_byte() {
    let mut bytes = read_data(WIRE_9_0);
    bytes[0] = 0x01;
    let error = RubinSchemas::bundled().decode_wire(&bytes).expect_err("bad magic");
    assert!(matches!(error, DecodeErrorKind::UnknownFormat(_)), "{error}");
}

#[test]
fn empty_and_truncated_header() {
    let schemas = RubinSchemas::bundled();
    assert_eq!(schemas.decode_wire(&[]).expect_err("empty"), DecodeErrorKind::Empty);
    let bytes = read_data(WIRE_9_0);
    for length in 1..5 {
        let error = schemas.decode_wire(&bytes[..length]).expect_err("truncated header");
        assert!(
            matches!(error, DecodeErrorKind::Truncated(_)),
            "{length} bytes: {error}"
        );
    }
}

#[test]
fn truncated_datum() {
    let schemas = RubinSchemas::bundled();
    let bytes = read_data(WIRE_7_4);
    // Cut in the records, in the history, in the cutouts, and one byte short.
    for length in [6, 100, 2_000, bytes.len() / 2, bytes.len() - 1] {
        let error = schemas.decode_wire(&bytes[..length]).expect_err("truncated datum");
        assert!(
            matches!(error, DecodeErrorKind::Truncated(_) | DecodeErrorKind::Corrupt(_)),
            "{length} of {} bytes: {error}",
            bytes.len()
        );
    }
    // A header with no datum at all.
    let error = schemas.decode_wire(&bytes[..5]).expect_err("no datum");
    assert!(matches!(error, DecodeErrorKind::Truncated(_)), "{error}");
}

#[test]
fn trailing_bytes_after_the_datum() {
    let mut bytes = read_data(WIRE_9_0);
    bytes.extend_from_slice(&[0, 0, 0]);
    let error = RubinSchemas::bundled().decode_wire(&bytes).expect_err("trailing bytes");
    assert_eq!(error, DecodeErrorKind::TrailingBytes(3));
}

#[test]
fn unknown_schema_id() {
    let bytes = read_data("lsst/wire/pittgoogle-client/lsst.v11_1.avro");
    let error = RubinSchemas::bundled()
        .decode_wire(&bytes)
        .expect_err("11.1 is not bundled");
    assert_eq!(
        error,
        DecodeErrorKind::UnknownSchemaId {
            id: 1101,
            known: "700, 701, 702, 703, 704, 800, 900, 1000, 1100".into()
        }
    );
    assert!(error.to_string().contains("unknown schema id 1101"), "{error}");
    // An empty set knows nothing.
    let error = RubinSchemas::empty()
        .decode_wire(&read_data(WIRE_9_0))
        .expect_err("no schemas");
    assert!(
        matches!(error, DecodeErrorKind::UnknownSchemaId { id: 900, .. }),
        "{error}"
    );
}

#[test]
fn a_datum_read_with_another_version_fails() {
    // A 7.4 datum under the 9.0 id: the layouts differ, so the read fails or leaves bytes over.
    let bytes = read_data(WIRE_7_4);
    let (_, datum) = split_wire(&bytes).expect("wire");
    let error = RubinSchemas::bundled()
        .decode_wire(&frame_wire(900, datum))
        .expect_err("wrong schema");
    assert!(
        matches!(
            error,
            DecodeErrorKind::Corrupt(_) | DecodeErrorKind::Truncated(_) | DecodeErrorKind::TrailingBytes(_)
        ),
        "{error}"
    );
}

#[test]
fn corrupted_bytes() {
    let schemas = RubinSchemas::bundled();
    let bytes = read_data(WIRE_7_4);
    // A varint length or count in the first record turned huge or negative.
    let mut n_errors = 0;
    for position in 5..200 {
        let mut corrupted = bytes.clone();
        corrupted[position] = 0xff;
        if schemas.decode_wire(&corrupted).is_err() {
            n_errors += 1;
        }
    }
    assert!(n_errors > 0, "some corruption must be detected");
}

#[test]
fn ztf_data_given_to_rubin_decoding() {
    let bytes = read_data(&first_ztf_file());
    // As a wire message: a ZTF container starts with "Obj", not 0x00.
    let error = RubinSchemas::bundled()
        .decode_wire(&bytes)
        .expect_err("not wire format");
    assert!(matches!(error, DecodeErrorKind::UnknownFormat(_)), "{error}");
    // As a container: the writer schema is ZTF's.
    let mut cache = SchemaCache::new();
    let container = Container::open(&bytes, &mut cache).expect("a valid container");
    let error = decode_container(&container).expect_err("not Rubin");
    assert_eq!(
        error,
        DecodeErrorKind::WrongSurvey {
            expected: "rubin".into(),
            found: "ztf".into()
        }
    );
    // Its datum given to the wire decoder with the ZTF writer schema.
    let error = decode_wire_datum(b"", &container.schema, 900).expect_err("not Rubin");
    assert!(matches!(error, DecodeErrorKind::WrongSurvey { .. }), "{error}");
}

#[test]
fn a_schema_of_no_known_survey() {
    let schema = nightjar_avro::WriterSchema::parse(
        r#"{"type": "record", "name": "thing", "fields": [{"name": "x", "type": "int"}]}"#,
    )
    .expect("valid schema");
    let error = decode_wire_datum(&[2], &schema, 900).expect_err("not Rubin");
    assert_eq!(error, DecodeErrorKind::UnknownSurvey("x".into()));
}

fn corrupt(bytes: &[u8], edits: &[(usize, u8)], truncate_at: Option<usize>) -> Vec<u8> {
    let mut corrupted = bytes.to_vec();
    for &(position, value) in edits {
        let position = position % corrupted.len();
        corrupted[position] = value;
    }
    if let Some(length) = truncate_at {
        corrupted.truncate(length % (corrupted.len() + 1));
    }
    corrupted
}

/// Edits aimed at the first kilobytes, where the header, records and array lengths are.
fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((prop_oneof![0usize..4096, any::<usize>()], any::<u8>()), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_wire_messages_never_panic(edits in edits(), truncate_at in prop::option::of(any::<usize>())) {
        static MESSAGES: std::sync::LazyLock<Vec<Vec<u8>>> =
            std::sync::LazyLock::new(|| [WIRE_9_0, WIRE_7_4].map(read_data).to_vec());
        let schemas = RubinSchemas::bundled();
        for message in MESSAGES.iter() {
            let corrupted = corrupt(message, &edits, truncate_at);
            let _ = schemas.decode_wire(&corrupted);
        }
    }

    #[test]
    fn corrupted_containers_never_panic(edits in edits(), truncate_at in prop::option::of(any::<usize>())) {
        static CONTAINERS: std::sync::LazyLock<Vec<Vec<u8>>> =
            std::sync::LazyLock::new(|| [CONTAINER_9_0, CONTAINER_10_0].map(read_data).to_vec());
        let schemas = RubinSchemas::bundled();
        for container in CONTAINERS.iter() {
            let corrupted = corrupt(container, &edits, truncate_at);
            let _ = decode_bytes(&corrupted, &schemas, &mut SchemaCache::new());
        }
    }
}
