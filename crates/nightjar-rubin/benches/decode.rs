//! Decode benchmarks: Rubin wire messages (7.4 and 9.0, with cutouts), a Fink single-alert
//! container, Fink's 7-alert 10.0 container with long histories, from bytes to core-model
//! alerts; plus the serde decoding alone and version detection alone.
//!
//! `cargo bench -p nightjar-rubin --bench decode`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nightjar_avro::{CONTAINER_MAGIC, Container, SchemaCache, decode_datum, split_wire};
use nightjar_rubin::{RubinAlert, RubinSchemas, decode_container, detect_version};

fn data(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/lsst")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn decode_all(bytes: &[u8], schemas: &RubinSchemas, cache: &mut SchemaCache) -> usize {
    if bytes.starts_with(CONTAINER_MAGIC) {
        let container = Container::open(bytes, cache).expect("opens");
        decode_container(&container)
            .expect("decodes")
            .into_iter()
            .filter(Result::is_ok)
            .count()
    } else {
        usize::from(schemas.decode_wire(bytes).is_ok())
    }
}

fn decode(c: &mut Criterion) {
    let cases = [
        ("wire_9.0_negative", "wire/boom/7912941781254298.avro"),
        ("wire_7.4_history", "wire/alerce_v7.4/message_2.avro"),
        (
            "fink_9.0_container",
            "alerts/fink_lsstcam_20250906_v9.0/169298433314652171_169298433314652171.avro",
        ),
        ("fink_10.0_7_alerts", "multi/fink_lsst_v10.0_7alerts_20260306.avro"),
    ];
    let schemas = RubinSchemas::bundled();
    let mut group = c.benchmark_group("rubin_decode");
    for (name, path) in cases {
        let bytes = data(path);
        let mut cache = SchemaCache::new();
        let n_alerts = decode_all(&bytes, &schemas, &mut cache);
        assert!(n_alerts > 0, "{path}");
        group.throughput(Throughput::Elements(n_alerts as u64));
        group.bench_function(name, |b| b.iter(|| decode_all(black_box(&bytes), &schemas, &mut cache)));
    }
    // The serde decoding alone, for the share the mapping to the core model adds.
    let bytes = data(cases[0].1);
    let (id, datum) = split_wire(&bytes).expect("wire");
    let schema = schemas.get(id).expect("bundled");
    group.throughput(Throughput::Elements(1));
    group.bench_function("wire_9.0_negative_serde_only", |b| {
        b.iter(|| decode_datum::<RubinAlert>(black_box(datum), &schema.schema).expect("decodes"))
    });
    // Version detection from the fields, as a container would need it without the cache.
    let bytes = data(cases[3].1);
    let mut cache = SchemaCache::new();
    let container = Container::open(&bytes, &mut cache).expect("opens");
    group.bench_function("detect_version_uncached", |b| {
        b.iter(|| detect_version(black_box(&container.schema)))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
