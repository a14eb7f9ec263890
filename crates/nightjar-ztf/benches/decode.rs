//! Decode benchmarks: one full ZTF alert (4.02 with forced photometry), one snappy
//! Spark-rewritten alert and an 11-alert Fink file, from bytes to core-model alerts.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nightjar_avro::{Container, SchemaCache};
use nightjar_ztf::{ZtfAlert, decode_container, infer_schema_version, to_alert};

fn data(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/data/ztf")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn decode_all(bytes: &[u8], cache: &mut SchemaCache) -> usize {
    let container = Container::open(bytes, cache).expect("opens");
    let alerts = decode_container(&container).expect("decodes");
    alerts.into_iter().filter(Result::is_ok).count()
}

fn decode(c: &mut Criterion) {
    let cases = [
        (
            "v4.02_fp_hists",
            "alerts/boom_tests_v4.02_fp_hists/3005140370015010009.avro",
        ),
        (
            "v3.3_snappy_spark",
            "alerts/alerce_snappy_v3.x/0000105101211233001.avro",
        ),
        ("v1.8", "alerts/skyportal_20180626_v1.8/541174153215010001.avro"),
        ("fink_11_alerts", "multi/fink_ztf_v3.3_11alerts_enriched_20191101.avro"),
    ];
    let mut group = c.benchmark_group("ztf_decode");
    for (name, path) in cases {
        let bytes = data(path);
        let mut cache = SchemaCache::new();
        let n_alerts = decode_all(&bytes, &mut cache);
        group.throughput(Throughput::Elements(n_alerts as u64));
        group.bench_function(name, |b| b.iter(|| decode_all(black_box(&bytes), &mut cache)));
    }
    // The serde decoding alone, for the share the mapping to the core model adds.
    let bytes = data(cases[0].1);
    let mut cache = SchemaCache::new();
    group.throughput(Throughput::Elements(1));
    group.bench_function("v4.02_fp_hists_wire_only", |b| {
        b.iter(|| {
            let container = Container::open(black_box(&bytes), &mut cache).expect("opens");
            container.records::<ZtfAlert>().expect("decodes").len()
        })
    });
    // The mapping to the core model alone, and the version inference a 1.8 packet needs.
    let container = Container::open(&bytes, &mut cache).expect("opens");
    let raw = container
        .records::<ZtfAlert>()
        .expect("decodes")
        .remove(0)
        .expect("decodes");
    group.bench_function("v4.02_fp_hists_to_alert_only", |b| {
        b.iter_batched(
            || raw.clone(),
            |raw| to_alert(raw, &container.schema).expect("maps"),
            BatchSize::SmallInput,
        )
    });
    let bytes_1_8 = data(cases[2].1);
    let container_1_8 = Container::open(&bytes_1_8, &mut cache).expect("opens");
    group.bench_function("v1.8_infer_schema_version", |b| {
        b.iter(|| infer_schema_version(black_box(&container_1_8.schema)))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
