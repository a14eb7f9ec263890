//! Measures how fast copies are made: copies per second for each sample folder given (default:
//! a ZTF and two Rubin folders of tests/data), against copying the template message as it is
//! (the floor: every copy must write that many bytes).
//!
//! `cargo run --release -p nightjar-simulate --example amplify_throughput [FOLDER...]`

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nightjar_simulate::{Amplifier, AmplifyConfig, Template};

/// How long each measurement runs.
const MEASURE_FOR: Duration = Duration::from_millis(1500);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut folders: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if folders.is_empty() {
        folders = [
            "ztf/alerts/boom_20240715_v4.02",
            "lsst/alerts/fink_lsstcam_20250906_v9.0",
            "lsst/multi",
        ]
        .iter()
        .map(|folder| root.join(folder))
        .collect();
    }
    println!(
        "{:<45} {:>9} {:>12} {:>14} {:>14} {:>8}",
        "folder", "templates", "mean bytes", "copies/s", "memcpy/s", "ratio"
    );
    for folder in folders {
        let templates = load(&folder);
        if templates.is_empty() {
            println!("{}: no templates", folder.display());
            continue;
        }
        let plain: Vec<Vec<u8>> = templates.iter().map(Template::message).collect();
        let mean_bytes = plain.iter().map(Vec::len).sum::<usize>() / plain.len();
        let config = AmplifyConfig {
            seed: 1,
            start_mjd: Some(61_000.0),
            cadence_s: 0.0001,
            ..AmplifyConfig::default()
        };
        let amplifier = Amplifier::new(templates, config).expect("an amplifier");

        let mut buffer = Vec::new();
        let copies_per_s = rate(|index| {
            buffer.clear();
            amplifier.write_message(index, &mut buffer).expect("a copy");
            black_box(&buffer);
        });
        let memcpy_per_s = rate(|index| {
            buffer.clear();
            buffer.extend_from_slice(&plain[(index % plain.len() as u64) as usize]);
            black_box(&buffer);
        });
        println!(
            "{:<45} {:>9} {:>12} {:>14.0} {:>14.0} {:>8.2}",
            folder
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            plain.len(),
            mean_bytes,
            copies_per_s,
            memcpy_per_s,
            memcpy_per_s / copies_per_s
        );
    }
}

/// Calls `make(index)` for increasing indices during [`MEASURE_FOR`]; returns calls per second.
fn rate(mut make: impl FnMut(u64)) -> f64 {
    let start = Instant::now();
    let mut index = 0u64;
    while start.elapsed() < MEASURE_FOR {
        for _ in 0..64 {
            make(index);
            index += 1;
        }
    }
    index as f64 / start.elapsed().as_secs_f64()
}

fn load(folder: &Path) -> Vec<Template> {
    let mut files = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read folder") {
                pending.push(entry.expect("entry").path());
            }
        } else if path.extension().is_some_and(|extension| extension == "avro") {
            files.push(path);
        }
    }
    files.sort();
    let mut templates = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).expect("read file");
        match Template::records_from_message(&file.to_string_lossy(), &bytes) {
            Ok(records) => {
                for record in records {
                    match record {
                        Ok(template) => templates.push(template),
                        Err(error) => eprintln!("skipped: {error}"),
                    }
                }
            }
            Err(error) => eprintln!("skipped: {error}"),
        }
    }
    templates
}
