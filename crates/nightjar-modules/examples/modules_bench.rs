//! Benchmark of the `crossmatch`, `anomaly` and `early_snia` modules:
//!
//! - a generated catalogue of 1,000,000 sources (random positions on the sphere, an id, a
//!   magnitude), written as CSV and as Parquet: load time, memory held, match time;
//! - each module on the real alerts of `tests/data`, repeated: alerts per second on one core.
//!
//! ```sh
//! cargo run --release -p nightjar-modules --example modules_bench [N_SOURCES]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use nightjar_core::{Alert, Origin};
use nightjar_decode::Decoder;
use nightjar_modules::anomaly::{AnomalyForests, FeatureVector};
use nightjar_modules::crossmatch::{Catalogue, CatalogueConfig, Coordinates, Crossmatch, CrossmatchConfig};
use nightjar_modules::early_snia::{EarlySnia, EarlySniaConfig};
use nightjar_modules::{ModuleOutputs, ScienceModule};

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn position(&mut self) -> (f64, f64) {
        (360.0 * self.next(), (2.0 * self.next() - 1.0).asin().to_degrees())
    }
}

/// Resident memory of this process, bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn config(name: &str, path: &Path, radius_arcsec: f64) -> CatalogueConfig {
    CatalogueConfig {
        name: name.to_owned(),
        path: Some(path.to_path_buf()),
        bundled: None,
        format: None,
        ra_column: "ra".to_owned(),
        dec_column: "dec".to_owned(),
        coordinates: Coordinates::Degrees,
        id_column: Some("id".to_owned()),
        columns: BTreeMap::from([("mag".to_owned(), "mag".to_owned())]),
        radius_arcsec,
    }
}

fn alerts() -> Vec<Alert> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|ext| ext == "avro") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data"),
        &mut files,
    );
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for path in files {
        if let Ok(bytes) = std::fs::read(&path) {
            alerts.extend(decoder.decode(&bytes, &Origin::file(&path)).into_iter().flatten());
        }
    }
    alerts
}

fn time_module(module: &dyn ScienceModule, batch: &[Alert], repeat: usize) {
    let inputs = ModuleOutputs::new(batch.len());
    let start = Instant::now();
    for _ in 0..repeat {
        let rows = module.run(batch, &inputs).expect("run");
        assert_eq!(rows.len(), batch.len());
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = (batch.len() * repeat) as f64;
    println!(
        "module {:<12} {:>9.0} alerts/s on one core ({:.2} us per alert, {} alerts)",
        module.name(),
        n / seconds,
        seconds / n * 1e6,
        n
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("nightjar-modules-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // Generate the catalogue.
    let mut rng = Lcg(7);
    let mut ids = Vec::with_capacity(n);
    let mut ra = Vec::with_capacity(n);
    let mut dec = Vec::with_capacity(n);
    let mut mag = Vec::with_capacity(n);
    for i in 0..n {
        let (r, d) = rng.position();
        ids.push(format!("SRC{i:09}"));
        ra.push(r);
        dec.push(d);
        mag.push(10.0 + 10.0 * rng.next());
    }
    let csv_path = dir.join("catalogue.csv");
    let mut text = String::with_capacity(n * 50);
    text.push_str("id,ra,dec,mag\n");
    for i in 0..n {
        text.push_str(&format!("{},{:.8},{:.8},{:.3}\n", ids[i], ra[i], dec[i], mag[i]));
    }
    std::fs::write(&csv_path, &text).expect("write CSV");
    let parquet_path = dir.join("catalogue.parquet");
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(StringArray::from(ids.clone())) as arrow_array::ArrayRef),
        ("ra", Arc::new(Float64Array::from(ra.clone())) as arrow_array::ArrayRef),
        (
            "dec",
            Arc::new(Float64Array::from(dec.clone())) as arrow_array::ArrayRef,
        ),
        (
            "mag",
            Arc::new(Float64Array::from(mag.clone())) as arrow_array::ArrayRef,
        ),
    ])
    .expect("batch");
    let file = std::fs::File::create(&parquet_path).expect("create Parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write Parquet");
    writer.close().expect("close Parquet");
    drop((text, batch));
    println!(
        "catalogue: {n} sources; CSV {:.1} MB, Parquet {:.1} MB",
        std::fs::metadata(&csv_path).map_or(0, |m| m.len()) as f64 / 1e6,
        std::fs::metadata(&parquet_path).map_or(0, |m| m.len()) as f64 / 1e6
    );

    for (label, path) in [("CSV", &csv_path), ("Parquet", &parquet_path)] {
        let before = rss_bytes().unwrap_or(0);
        let start = Instant::now();
        let catalogue = Catalogue::load(&config("bench", path, 1.0)).expect("load");
        let seconds = start.elapsed().as_secs_f64();
        let after = rss_bytes().unwrap_or(0);
        println!(
            "load {label:<7}: {seconds:.2} s, {} rows, {:.1} MB held by the catalogue, resident memory +{:.1} MB",
            catalogue.len(),
            catalogue.heap_bytes() as f64 / 1e6,
            after.saturating_sub(before) as f64 / 1e6
        );
        drop(catalogue);
    }

    for radius in [1.0, 5.0, 60.0] {
        let catalogue = Catalogue::load(&config("bench", &parquet_path, radius)).expect("load");
        let queries = 1_000_000;
        let mut positions = Vec::with_capacity(queries);
        for i in 0..queries {
            // Half on a source (offset below the radius), half at random.
            if i % 2 == 0 {
                let row = i % n;
                positions.push((ra[row] + 0.3 * radius / 3600.0, dec[row]));
            } else {
                positions.push(rng.position());
            }
        }
        let start = Instant::now();
        let mut found = 0usize;
        for &(r, d) in &positions {
            found += usize::from(catalogue.nearest(r, d).is_some());
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "match radius {radius:>4}\": {:.3} us per match ({queries} matches, {found} found, HEALPix depth {})",
            seconds / queries as f64 * 1e6,
            catalogue.depth()
        );
    }
    std::fs::remove_dir_all(&dir).ok();

    // Modules on real alerts.
    let alerts = alerts();
    let batch: Vec<Alert> = alerts.iter().cycle().take(alerts.len() * 20).cloned().collect();
    let before = rss_bytes().unwrap_or(0);
    let crossmatch = Crossmatch::build(&CrossmatchConfig::default()).expect("crossmatch");
    let held: usize = crossmatch.catalogues().iter().map(Catalogue::heap_bytes).sum();
    println!(
        "bundled catalogues: {:.1} MB held, resident memory +{:.1} MB",
        held as f64 / 1e6,
        rss_bytes().unwrap_or(0).saturating_sub(before) as f64 / 1e6
    );
    time_module(&crossmatch, &batch, 5);
    let before = rss_bytes().unwrap_or(0);
    let start = Instant::now();
    let early_snia = EarlySnia::build(&EarlySniaConfig::default()).expect("early_snia");
    println!(
        "early SN Ia forest: loaded in {:.2} s, resident memory +{:.1} MB",
        start.elapsed().as_secs_f64(),
        rss_bytes().unwrap_or(0).saturating_sub(before) as f64 / 1e6
    );
    time_module(&early_snia, &batch, 5);
    // The forest alone on a feature vector that passes (every band fitted).
    let features = [0.46, 7.1, 1.1e6, 43.6, 2e-5, 5.0, 1.34, 4.27, 7.3e5, 45.3, 7e-4, 4.0];
    let start = Instant::now();
    let runs = 20_000;
    for _ in 0..runs {
        early_snia.probability(&features).expect("forest");
    }
    println!(
        "early SN Ia forest (1000 trees): {:.1} us per alert",
        start.elapsed().as_secs_f64() / runs as f64 * 1e6
    );
    let before = rss_bytes().unwrap_or(0);
    let start = Instant::now();
    let forests = AnomalyForests::bundled().expect("anomaly");
    println!(
        "anomaly forests: loaded in {:.2} s, resident memory +{:.1} MB",
        start.elapsed().as_secs_f64(),
        rss_bytes().unwrap_or(0).saturating_sub(before) as f64 / 1e6
    );
    let vector: FeatureVector = [
        Some(0.2),
        Some(0.5),
        Some(0.3),
        Some(30.0),
        Some(0.3),
        Some(0.3),
        Some(0.001),
        Some(0.002),
        Some(0.1),
        Some(0.006),
        Some(0.7),
        Some(0.2),
        Some(20.0),
        Some(16.0),
        None,
        Some(0.2),
        Some(0.07),
        Some(0.85),
    ];
    let start = Instant::now();
    for _ in 0..runs {
        forests.score(Some(&vector), Some(&vector)).expect("score");
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "module anomaly      {:>9.0} alerts/s on one core (both forests, {:.1} us per alert)",
        runs as f64 / seconds,
        seconds / runs as f64 * 1e6
    );

    whole_stage(&alerts);
}

/// The whole module stage as `nightjar run` runs it (every module enabled by default, through
/// the runner, batches of 500 alerts), on one thread and on two (two runners, as two
/// workers or two decode threads would).
fn whole_stage(alerts: &[Alert]) {
    const BATCH: usize = 500;
    const ROUNDS: usize = 40;
    let batch: Vec<Alert> = alerts.iter().cycle().take(BATCH).cloned().collect();
    let runner = || {
        let modules = nightjar_modules::builtin_modules(&nightjar_modules::ModulesConfig::default()).expect("modules");
        nightjar_modules::ModuleRunner::new(modules).expect("runner")
    };
    let names = runner().module_names().join(", ");
    let run_rounds = |rounds: usize| {
        let mut runner = runner();
        runner.run(&batch);
        let start = Instant::now();
        for _ in 0..rounds {
            let outputs = runner.run(&batch);
            assert_eq!(outputs.n_alerts(), batch.len());
        }
        start.elapsed()
    };
    let one = run_rounds(ROUNDS);
    let one_rate = (ROUNDS * BATCH) as f64 / one.as_secs_f64();
    // Each thread loads its own modules, then times its rounds; both run at once.
    let barrier = std::sync::Barrier::new(2);
    let elapsed: Vec<std::time::Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut runner = runner();
                    runner.run(&batch);
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..ROUNDS {
                        runner.run(&batch);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker"))
            .collect()
    });
    let slowest = elapsed.into_iter().max().unwrap_or_default();
    let two_rate = (2 * ROUNDS * BATCH) as f64 / slowest.as_secs_f64();
    println!("whole module stage ({names}) on real alerts, batches of {BATCH}:");
    println!("  1 thread  {one_rate:>9.0} alerts/s");
    println!(
        "  2 threads {two_rate:>9.0} alerts/s ({:.2}x one thread)",
        two_rate / one_rate
    );
}
