//! Module benchmarks: alerts per second of each built-in module, and of the whole module stage
//! through the runner, on the real ZTF and Rubin alerts of `tests/data` (one thread).
//!
//! Every module that `builtin_modules` enables by default is measured, so modules added later
//! appear here without changes. `cargo bench -p nightjar-modules --bench modules`; criterion
//! prints `thrpt` in alerts/s (elements/s).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nightjar_core::{Alert, Origin, Survey};
use nightjar_decode::Decoder;
use nightjar_modules::{ModuleOutputs, ModuleRunner, ModulesConfig, builtin_modules};

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

/// Every decodable alert of `survey` in `tests/data`.
fn real_alerts(survey: Survey) -> Vec<Alert> {
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut files = Vec::new();
    avro_files(&data_dir, &mut files);
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).expect("read alert file");
        alerts.extend(
            decoder
                .decode(&bytes, &Origin::file(&path))
                .into_iter()
                .flatten()
                .filter(|alert| alert.survey == survey),
        );
    }
    alerts
}

fn modules(c: &mut Criterion) {
    for (survey, label) in [(Survey::Ztf, "ztf"), (Survey::Rubin, "rubin")] {
        let batch = real_alerts(survey);
        let n_alerts = batch.len() as u64;
        let mut group = c.benchmark_group(format!("modules_{label}"));
        group.throughput(Throughput::Elements(n_alerts));
        let built = builtin_modules(&ModulesConfig::default()).expect("build modules");
        for module in &built {
            let inputs = ModuleOutputs::new(batch.len());
            group.bench_function(module.name().to_owned(), |b| {
                b.iter(|| module.run(black_box(&batch), &inputs).expect("module runs"))
            });
        }
        let mut runner = ModuleRunner::new(built).expect("build runner");
        group.bench_function("all_modules_runner", |b| b.iter(|| runner.run(black_box(&batch))));
        group.finish();
    }
}

criterion_group!(benches, modules);
criterion_main!(benches);
