//! Avro library comparison for nightjar's Avro-library ADR: decodes the same real ZTF alert
//! messages (every `.avro` file under `tests/data/ztf/alerts`, each a complete object container
//! with its writer schema embedded and one alert in it) with apache-avro, arrow-avro and
//! serde_avro_fast on one thread, and prints Markdown tables of alerts/s and MB/s, the machine,
//! and which library failed on which files and why.
//!
//! Run it with
//!
//! ```text
//! cargo bench -p nightjar-avro --bench avro_libraries
//! ```
//!
//! (`NIGHTJAR_BENCH_SECS=5` lengthens each timed loop, the default being 2 s;
//! `NIGHTJAR_BENCH_ROUNDS=5` times each row five times, the default being 3;
//! `NIGHTJAR_BENCH_ONLY=2,7` runs only those methods, numbered as in a full run.) All messages are
//! loaded into memory first. Each method then gets a probe pass, message by message, that
//! records which files it cannot read and why (or whose records disagree with the reference:
//! record count and the alerts' `candid`, from nightjar's own path). Then, per table and round,
//! it gets a warm-up pass over the table's files, checked against the reference again, and a
//! timed loop of whole passes over them until the time is up. Table 1 times each method on
//! every file it reads; where some cannot read some files, table 2 times the methods that read
//! at least half of the files on the files they all read, and table 3 every method on the files
//! all of them read, so that rates also compare on the same input. Each round runs every row of
//! every table in turn; the fastest round is reported, with the spread between rounds. MB/s
//! counts the messages' bytes as they arrive (compressed where the container is).
//!
//! Where a method keeps a schema cache, the cache lives across passes, as in a long-running
//! consumer: its cost in the timed loop is the lookup (xxh3 of the schema text, as in
//! [`nightjar_avro::SchemaCache`]), not the parse. On a shared machine, the report's load
//! average (before and after) and round spread say how far to trust the numbers.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_avro::reader::{DecoderMode, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, SchemaStore};
use nightjar_avro::{Container, SchemaCache};
use nightjar_ztf::wire::ZtfAlert;

/// Rows per Arrow batch for the batched arrow-avro method.
const ARROW_BATCH_ROWS: usize = 256;

/// One input message: a whole object container, as a Kafka consumer receives it.
struct Message {
    /// Path relative to the alerts folder.
    name: String,
    bytes: Vec<u8>,
    /// Codec named in the container header (`null` when absent).
    codec: String,
    /// Full name of the writer schema's top-level record.
    record_name: String,
}

/// Decodes a list of messages, appending each record's `candid` (top-level, else
/// `candidate.candid`) to `out`. `flush` asks a batching method to hand over every pending row;
/// the others ignore it.
type Pass = Box<dyn FnMut(&[&[u8]], &mut Vec<Option<i64>>, bool) -> Result<(), String>>;

struct Method {
    /// Position in [`methods`], from 1: the number shown in the tables.
    number: usize,
    label: &'static str,
    /// What the method does per message: shown under the tables.
    how: &'static str,
    pass: Pass,
}

/// Which files a method reads, and why it does not read the others.
struct Probe {
    /// Files it could not read, with the reason.
    failed: Vec<(usize, String)>,
    /// Files whose records did not match the reference (count or candid).
    mismatched: Vec<(usize, String)>,
    /// Files it reads correctly.
    readable: Vec<usize>,
}

struct Timing {
    records: u64,
    bytes: u64,
    elapsed: Duration,
    passes: u64,
}

impl Timing {
    fn alerts_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
}

/// One results table: some methods timed on some files.
struct View {
    title: String,
    rows: Vec<Row>,
}

/// One method timed on some files, once per round.
struct Row {
    /// Index into the method list.
    method: usize,
    files: Vec<usize>,
    rounds: Vec<Timing>,
}

impl Row {
    /// The fastest round: the one least disturbed by whatever else the machine was doing.
    fn best(&self) -> &Timing {
        self.rounds
            .iter()
            .max_by(|a, b| a.alerts_per_s().total_cmp(&b.alerts_per_s()))
            .expect("every row is timed at least once")
    }

    /// How much slower the slowest round was than the fastest, in percent.
    fn spread(&self) -> f64 {
        let best = self.best().alerts_per_s();
        let worst = self
            .rounds
            .iter()
            .map(Timing::alerts_per_s)
            .fold(f64::INFINITY, f64::min);
        100.0 * (best - worst) / best
    }
}

fn main() {
    // `cargo bench` passes --bench; test runners (cargo test --all-targets, nextest's --list)
    // run this binary without it, and must not wait minutes for a benchmark.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let alerts_dir = root.join("tests/data/ztf/alerts");
    let min_time = Duration::from_secs_f64(
        std::env::var("NIGHTJAR_BENCH_SECS")
            .ok()
            .and_then(|secs| secs.parse().ok())
            .unwrap_or(2.0),
    );
    let rounds: usize = std::env::var("NIGHTJAR_BENCH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(3)
        .max(1);
    let load_before = load_average();

    let messages = load_messages(&alerts_dir);
    assert!(!messages.is_empty(), "no .avro files under {}", alerts_dir.display());
    let distinct_schemas = {
        let mut cache = SchemaCache::new();
        for message in &messages {
            if let Ok(container) = Container::open(&message.bytes, &mut cache) {
                black_box(container.codec);
            }
        }
        cache.len()
    };

    // The reference: nightjar's own decode (serde_avro_fast through the schema cache).
    let reference: Vec<Vec<Option<i64>>> = {
        let mut cache = SchemaCache::new();
        messages
            .iter()
            .map(|message| {
                let mut out = Vec::new();
                nightjar_decode(&message.bytes, &mut cache, &mut out)
                    .unwrap_or_else(|error| panic!("reference decode failed on {}: {error}", message.name));
                out
            })
            .collect()
    };
    let all: Vec<usize> = (0..messages.len()).collect();

    println!(
        "Input: {} from {}; {} distinct writer schemas, {} records.",
        describe_files(&messages, &all),
        alerts_dir.display(),
        distinct_schemas,
        reference.iter().map(Vec::len).sum::<usize>()
    );
    println!(
        "Each method: a probe pass file by file, then per table and round a warm-up pass checked \
         against the reference and a timed loop of >= {:.1} s on one thread; {rounds} rounds, \
         each running every table's methods in turn; the fastest round is reported.\n",
        min_time.as_secs_f64()
    );

    let mut methods = methods();
    for (index, method) in methods.iter_mut().enumerate() {
        method.number = index + 1;
    }
    // `NIGHTJAR_BENCH_ONLY=2,7` runs only those methods (numbered as in the tables).
    if let Ok(only) = std::env::var("NIGHTJAR_BENCH_ONLY") {
        let keep: Vec<usize> = only
            .split(',')
            .filter_map(|number| number.trim().parse().ok())
            .collect();
        methods.retain(|method| keep.contains(&method.number));
    }
    let probes: Vec<Probe> = methods
        .iter_mut()
        .map(|method| probe(method, &messages, &reference))
        .collect();

    let mut views = Vec::new();

    // 1. Each method on every file it reads.
    let readers: Vec<usize> = (0..methods.len())
        .filter(|&index| !probes[index].readable.is_empty())
        .collect();
    views.push(View {
        title: format!("Every file each method can read (⚠: not all {} files)", messages.len()),
        rows: readers
            .iter()
            .map(|&method| Row {
                method,
                files: probes[method].readable.clone(),
                rounds: Vec::new(),
            })
            .collect(),
    });

    // 2. The same files for every method that reads at least half of them; 3. the files every
    // method reads. Each only where it differs from what the tables before it timed.
    let most: Vec<usize> = readers
        .iter()
        .copied()
        .filter(|&index| probes[index].readable.len() * 2 >= messages.len())
        .collect();
    let common_most = intersection(&probes, &most);
    let common_all = intersection(&probes, &readers);
    let mut subsets = Vec::new();
    if most.iter().any(|&index| probes[index].readable != common_most) {
        subsets.push((
            "the files every method that reads at least half of them can read",
            most,
            common_most.clone(),
        ));
    }
    if !common_all.is_empty() && common_all != common_most {
        subsets.push(("the files every method can read", readers.clone(), common_all));
    }
    for (what, members, files) in subsets {
        views.push(View {
            title: format!("Same files for each: {what}: {}", describe_files(&messages, &files)),
            rows: members
                .into_iter()
                .map(|method| Row {
                    method,
                    files: files.clone(),
                    rounds: Vec::new(),
                })
                .collect(),
        });
    }

    // Rounds over every table, so that a burst of load elsewhere hits one round, not one method.
    for round in 0..rounds {
        eprintln!("round {} of {rounds}", round + 1);
        for view in &mut views {
            for row in &mut view.rows {
                let timing = time(&mut methods[row.method], &row.files, &messages, &reference, min_time);
                row.rounds.push(timing);
            }
        }
    }

    print_report(
        &root,
        &messages,
        &methods,
        &probes,
        &views,
        (load_before, load_average()),
    );
}

/// Files in every listed method's readable set.
fn intersection(probes: &[Probe], members: &[usize]) -> Vec<usize> {
    let Some((&first, rest)) = members.split_first() else {
        return Vec::new();
    };
    probes[first]
        .readable
        .iter()
        .copied()
        .filter(|file| rest.iter().all(|&index| probes[index].readable.contains(file)))
        .collect()
}

/// `N files (X MB): 10 × topLevelRecord/snappy, ...`.
fn describe_files(messages: &[Message], files: &[usize]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for &index in files {
        let kind = format!("{}/{}", messages[index].record_name, messages[index].codec);
        match kinds.iter_mut().find(|(known, _)| *known == kind) {
            Some((_, count)) => *count += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let bytes: usize = files.iter().map(|&index| messages[index].bytes.len()).sum();
    let kinds: Vec<String> = kinds
        .into_iter()
        .map(|(kind, count)| format!("{count} × {kind}"))
        .collect();
    format!(
        "{} files ({:.2} MB; record/codec: {})",
        files.len(),
        bytes as f64 / 1e6,
        kinds.join(", ")
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_string())
}
/// Every `.avro` file under `dir`, sorted by path, read into memory.
fn load_messages(dir: &Path) -> Vec<Message> {
    let mut paths = Vec::new();
    collect_avro_files(dir, &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            let name = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
            let (codec, record_name) = match ocf::parse(&bytes) {
                Ok(container) => (container.codec.to_string(), top_level_name(container.schema_json)),
                Err(error) => (format!("unreadable: {error}"), String::new()),
            };
            Message {
                name,
                bytes,
                codec,
                record_name,
            }
        })
        .collect()
}

fn collect_avro_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()));
    for entry in entries {
        let path = entry.expect("a readable directory entry").path();
        if path.is_dir() {
            collect_avro_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "avro") {
            out.push(path);
        }
    }
}

fn top_level_name(schema_json: &[u8]) -> String {
    let Ok(serde_json::Value::Object(schema)) = serde_json::from_slice(schema_json) else {
        return "?".to_string();
    };
    let name = schema.get("name").and_then(|name| name.as_str()).unwrap_or("?");
    match schema.get("namespace").and_then(|namespace| namespace.as_str()) {
        Some(namespace) if !namespace.is_empty() && !name.contains('.') => {
            format!("{namespace}.{name}")
        }
        _ => name.to_string(),
    }
}

/// Runs a method file by file, so that a failure is pinned to its file.
fn probe(method: &mut Method, messages: &[Message], reference: &[Vec<Option<i64>>]) -> Probe {
    eprintln!("probing {} ...", method.label);
    let mut probe = Probe {
        failed: Vec::new(),
        mismatched: Vec::new(),
        readable: Vec::new(),
    };
    let mut out = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        out.clear();
        match (method.pass)(&[message.bytes.as_slice()], &mut out, true) {
            Ok(()) => match compare(&out, &reference[index]) {
                Some(reason) => probe.mismatched.push((index, reason)),
                None => probe.readable.push(index),
            },
            Err(error) => probe.failed.push((index, error)),
        }
    }
    probe
}

/// Warms a method up on `files` (checking its records against the reference), then times whole
/// passes over them until `min_time` is up.
fn time(
    method: &mut Method,
    files: &[usize],
    messages: &[Message],
    reference: &[Vec<Option<i64>>],
    min_time: Duration,
) -> Timing {
    eprintln!("timing {} on {} files ...", method.label, files.len());
    let inputs: Vec<&[u8]> = files.iter().map(|&index| messages[index].bytes.as_slice()).collect();
    let pass_bytes: u64 = inputs.iter().map(|input| input.len() as u64).sum();
    let expected: Vec<Option<i64>> = files
        .iter()
        .flat_map(|&index| reference[index].iter().copied())
        .collect();
    let mut out = Vec::new();

    // Warm-up: all the files in one pass, checked again.
    (method.pass)(&inputs, &mut out, true)
        .unwrap_or_else(|error| panic!("{}: warm-up pass failed: {error}", method.label));
    if let Some(reason) = compare(&out, &expected) {
        panic!("{}: warm-up pass does not match the reference: {reason}", method.label);
    }

    // Timed loop: whole passes until the time is up, then a final flush.
    let mut records = 0u64;
    let mut passes = 0u64;
    let start = Instant::now();
    loop {
        out.clear();
        (method.pass)(black_box(&inputs), &mut out, false)
            .unwrap_or_else(|error| panic!("{}: timed pass failed: {error}", method.label));
        records += out.len() as u64;
        black_box(&out);
        passes += 1;
        if start.elapsed() >= min_time {
            break;
        }
    }
    out.clear();
    (method.pass)(&[], &mut out, true).unwrap_or_else(|error| panic!("{}: final flush failed: {error}", method.label));
    records += out.len() as u64;
    let elapsed = start.elapsed();
    assert_eq!(
        records,
        passes * expected.len() as u64,
        "{}: records decoded in the timed loop",
        method.label
    );
    Timing {
        records,
        bytes: pass_bytes * passes,
        elapsed,
        passes,
    }
}

/// Why `got` differs from `expected` (compared as multisets: a batching method may reorder
/// records across schemas), or `None` when they agree.
fn compare(got: &[Option<i64>], expected: &[Option<i64>]) -> Option<String> {
    if got.len() != expected.len() {
        return Some(format!("{} records decoded, {} expected", got.len(), expected.len()));
    }
    let mut got = got.to_vec();
    let mut expected = expected.to_vec();
    got.sort_unstable();
    expected.sort_unstable();
    (got != expected).then(|| format!("candid values differ: {got:?} vs {expected:?}"))
}

fn print_report(
    root: &Path,
    messages: &[Message],
    methods: &[Method],
    probes: &[Probe],
    views: &[View],
    load: (String, String),
) {
    let versions = locked_versions(root);
    let version = |name: &str| versions.get(name).cloned().unwrap_or_else(|| "?".to_string());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let nproc = std::thread::available_parallelism().map_or(0, usize::from);

    println!(
        "Machine: nproc {nproc}, CPU model \"{cpu}\"; one decoding thread; load average {} before, \
         {} after. Libraries: apache-avro {}, arrow-avro {}, serde_avro_fast {}.",
        load.0,
        load.1,
        version("apache-avro"),
        version("arrow-avro"),
        version("serde_avro_fast")
    );

    for (number, view) in views.iter().enumerate() {
        println!("\nTable {}. {}\n", number + 1, view.title);
        let slowest = view
            .rows
            .iter()
            .map(|row| row.best().alerts_per_s())
            .fold(f64::INFINITY, f64::min);
        println!("| # | Method | Files | Alerts/s | MB/s | × slowest | µs/alert | Round spread |");
        println!("|---|---|---|---:|---:|---:|---:|---:|");
        for row in &view.rows {
            let timing = row.best();
            let files = &row.files;
            let files = if files.len() == messages.len() {
                format!("all {}", files.len())
            } else if number == 0 {
                format!("{} of {} ⚠", files.len(), messages.len())
            } else {
                files.len().to_string()
            };
            println!(
                "| {} | {} | {} | {:.0} | {:.1} | {:.2} | {:.1} | {:.0} % |",
                methods[row.method].number,
                methods[row.method].label,
                files,
                timing.alerts_per_s(),
                timing.mb_per_s(),
                timing.alerts_per_s() / slowest,
                1e6 / timing.alerts_per_s(),
                row.spread()
            );
        }
        let untimed: Vec<String> = (0..methods.len())
            .filter(|&index| view.rows.iter().all(|row| row.method != index))
            .map(|index| format!("{} ({})", methods[index].number, methods[index].label))
            .collect();
        if !untimed.is_empty() {
            println!("\nNot in this table (cannot read these files): {}.", untimed.join("; "));
        }
    }

    println!("\nMethods:\n");
    for (index, method) in methods.iter().enumerate() {
        let passes: Vec<String> = views
            .iter()
            .enumerate()
            .filter_map(|(table, view)| {
                view.rows.iter().find(|row| row.method == index).map(|row| {
                    let timing = row.best();
                    format!(
                        "table {}: {} files × {} passes in {:.2} s in the fastest of {} rounds",
                        table + 1,
                        row.files.len(),
                        timing.passes,
                        timing.elapsed.as_secs_f64(),
                        row.rounds.len()
                    )
                })
            })
            .collect();
        println!(
            "{}. {}: {}{}",
            method.number,
            method.label,
            method.how,
            if passes.is_empty() {
                String::new()
            } else {
                format!(" ({})", passes.join("; "))
            }
        );
    }

    if probes
        .iter()
        .all(|probe| probe.failed.is_empty() && probe.mismatched.is_empty())
    {
        println!("\nEvery method read every file, with the reference's record counts and candids.");
        return;
    }
    println!("\nFiles a method could not read:\n");
    for (method, probe) in methods.iter().zip(probes) {
        for (kind, list) in [
            ("fails", &probe.failed),
            ("disagrees with the reference", &probe.mismatched),
        ] {
            // Group the files by reason, and the files of a reason by folder.
            let mut by_reason: Vec<(String, Vec<usize>)> = Vec::new();
            for (index, reason) in list {
                let reason = shorten(&generalize(reason));
                match by_reason.iter_mut().find(|(known, _)| *known == reason) {
                    Some((_, files)) => files.push(*index),
                    None => by_reason.push((reason, vec![*index])),
                }
            }
            for (reason, files) in by_reason {
                println!(
                    "- {}. {} {} on {} file(s): {}\n  - files: {}",
                    method.number,
                    method.label,
                    kind,
                    files.len(),
                    reason,
                    describe_folders(messages, &files)
                );
            }
        }
    }
}

/// Files grouped by folder: `folder/ (3 of 5: record/codec)`.
fn describe_folders(messages: &[Message], files: &[usize]) -> String {
    let folder = |index: usize| {
        let name = &messages[index].name;
        name.rsplit_once('/')
            .map_or(String::new(), |(folder, _)| format!("{folder}/"))
    };
    let mut folders: Vec<(String, Vec<usize>)> = Vec::new();
    for &index in files {
        let name = folder(index);
        match folders.iter_mut().find(|(known, _)| *known == name) {
            Some((_, list)) => list.push(index),
            None => folders.push((name, vec![index])),
        }
    }
    folders
        .into_iter()
        .map(|(name, list)| {
            let total = (0..messages.len()).filter(|&index| folder(index) == name).count();
            let kind = format!("{}/{}", messages[list[0]].record_name, messages[list[0]].codec);
            if list.len() == total {
                format!("`{name}` (all {total}, {kind})")
            } else {
                let names: Vec<String> = list
                    .iter()
                    .map(|&index| format!("`{}`", messages[index].name))
                    .collect();
                format!("`{name}` ({} of {total}, {kind}: {})", list.len(), names.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Folds the per-file details out of a reason (the writer schema, the value that failed), so
/// that files failing the same way group together.
fn generalize(reason: &str) -> String {
    let mut reason = reason.to_string();
    // apache-avro's schema-aware errors print the whole writer schema before the cause.
    if let (Some(start), Some(end)) = (reason.find(" using schema "), reason.rfind("}): "))
        && start < end
    {
        reason.replace_range(start..end + 2, " using schema <the writer schema>");
    }
    // `but got String("3.3")`, `but got Long(87704463155000)`: keep the kind, drop the value.
    if let Some(start) = reason.find("but got ").map(|start| start + "but got ".len())
        && let Some(open) = reason[start..].find('(').map(|open| start + open)
        && let Some(close) = reason[open..].find(')').map(|close| open + close)
    {
        reason.replace_range(open + 1..close, "…");
    }
    reason
}

/// A reason short enough for the report: apache-avro's errors embed the whole schema, so keep
/// the start and the end (where the cause is).
fn shorten(reason: &str) -> String {
    const HEAD: usize = 100;
    const TAIL: usize = 220;
    let reason = reason.replace('\n', " ");
    let chars: Vec<char> = reason.chars().collect();
    if chars.len() <= HEAD + TAIL + 10 {
        return reason;
    }
    let head: String = chars[..HEAD].iter().collect();
    let tail: String = chars[chars.len() - TAIL..].iter().collect();
    format!("{head} … {tail}")
}

/// Versions of the compared crates as locked in the workspace's `Cargo.lock`.
fn locked_versions(root: &Path) -> HashMap<String, String> {
    let Ok(lock) = std::fs::read_to_string(root.join("Cargo.lock")) else {
        return HashMap::new();
    };
    let field = |package: &str, key: &str| {
        package
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .map(|value| value.trim_matches('"').to_string())
    };
    lock.split("[[package]]")
        .filter_map(|package| Some((field(package, "name = ")?, field(package, "version = ")?)))
        .collect()
}

fn methods() -> Vec<Method> {
    vec![
        Method {
            number: 0,
            label: "apache-avro `Reader` → `Value` (schema parsed per message)",
            how: "`apache_avro::Reader::new(&msg[..])`, iterated to `types::Value`: header and \
                  writer schema parsed for every message, as a naive consumer does",
            pass: apache_reader_value(),
        },
        Method {
            number: 0,
            label: "apache-avro cached schema → `Value`",
            how: "container framing by hand (header map, blocks), `apache_avro::Codec::decompress`, \
                  then `GenericDatumReader::read_value` with a reader built once per distinct \
                  writer schema. `Reader` cannot skip the schema parse (it parses the header's \
                  schema even given a reader schema), and `from_avro_datum` is deprecated in 0.22 \
                  in favour of this reader, so this is the fastest `Value` path the crate offers",
            pass: apache_cached(ApacheOutput::Value),
        },
        Method {
            number: 0,
            label: "apache-avro cached schema → `Value` → `from_value::<ZtfAlert>`",
            how: "as the cached `Value` path, then serde from the `Value` into \
                  `nightjar_ztf::wire::ZtfAlert`",
            pass: apache_cached(ApacheOutput::FromValue),
        },
        Method {
            number: 0,
            label: "apache-avro cached schema → `read_deser::<ZtfAlert>`",
            how: "as the cached `Value` path, but `GenericDatumReader::read_deser`: 0.22's \
                  schema-aware serde deserializer straight into `ZtfAlert`, no `Value`",
            pass: apache_cached(ApacheOutput::Deser),
        },
        Method {
            number: 0,
            label: "arrow-avro `Reader` per message → `RecordBatch`",
            how: "`ReaderBuilder::new().build(&msg[..])`, iterated to `RecordBatch`es (one per \
                  message): header, writer schema and Arrow decoder built for every message \
                  (`with_batch_size(1)` instead of the default 1024 makes no measurable difference)",
            pass: arrow_per_message(),
        },
        Method {
            number: 0,
            label: "arrow-avro cached `Decoder`, batched → `RecordBatch`",
            how: "container framing by hand, one `Decoder` (`DecoderMode::UnframedDatum`) built \
                  once per distinct writer schema, every message's records appended to it and \
                  flushed every 256 rows (and at the end): several messages per `RecordBatch`",
            pass: arrow_batched(),
        },
        Method {
            number: 0,
            label: "serde_avro_fast via nightjar `Container` + `SchemaCache` → `ZtfAlert`",
            how: "`nightjar_avro::Container::open(msg, &mut cache)` + \
                  `container.records::<ZtfAlert>()`: what nightjar does; schema parsed once per \
                  distinct writer schema",
            pass: Box::new({
                let mut cache = SchemaCache::new();
                move |inputs, out, _flush| {
                    inputs
                        .iter()
                        .try_for_each(|input| nightjar_decode(input, &mut cache, out))
                }
            }),
        },
        Method {
            number: 0,
            label: "serde_avro_fast `object_container_file_encoding::Reader` → `ZtfAlert` (schema parsed per message)",
            how: "`Reader::from_slice(msg)` + `reader.deserialize::<ZtfAlert>()`: the library's own \
                  container reader, writer schema parsed for every message",
            pass: Box::new(|inputs, out, _flush| {
                for input in inputs {
                    let mut reader = serde_avro_fast::object_container_file_encoding::Reader::from_slice(input)
                        .map_err(|error| error.to_string())?;
                    for alert in reader.deserialize::<ZtfAlert>() {
                        out.push(alert_candid(&alert.map_err(|error| error.to_string())?));
                    }
                }
                Ok(())
            }),
        },
    ]
}

fn nightjar_decode(input: &[u8], cache: &mut SchemaCache, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    let container = Container::open(input, cache).map_err(|error| error.to_string())?;
    for alert in container.records::<ZtfAlert>().map_err(|error| error.to_string())? {
        out.push(alert_candid(&alert.map_err(|error| error.to_string())?));
    }
    Ok(())
}

fn alert_candid(alert: &ZtfAlert) -> Option<i64> {
    alert
        .candid
        .or_else(|| alert.candidate.as_ref().and_then(|candidate| candidate.candid))
}

// ---------------------------------------------------------------------------------------------
// apache-avro

fn apache_reader_value() -> Pass {
    Box::new(|inputs, out, _flush| {
        for input in inputs {
            let reader = apache_avro::Reader::new(*input).map_err(|error| error.to_string())?;
            for value in reader {
                out.push(value_candid(&value.map_err(|error| error.to_string())?));
            }
        }
        Ok(())
    })
}

#[derive(Clone, Copy)]
enum ApacheOutput {
    Value,
    FromValue,
    Deser,
}

/// A reader for one writer schema; the schema is leaked so the reader can borrow it for the
/// life of the process (a handful of schemas, kept as long as a consumer would keep them).
struct ApacheSchema {
    json: Vec<u8>,
    reader: GenericDatumReader<'static>,
}

fn apache_cached(output: ApacheOutput) -> Pass {
    let mut cache: HashMap<u64, ApacheSchema> = HashMap::new();
    let mut buffer = Vec::new();
    Box::new(move |inputs, out, _flush| {
        for input in inputs {
            let container = ocf::parse(input)?;
            let key = xxhash_rust::xxh3::xxh3_64(container.schema_json);
            if cache
                .get(&key)
                .is_none_or(|cached| cached.json != container.schema_json)
            {
                let text = std::str::from_utf8(container.schema_json).map_err(|error| error.to_string())?;
                let schema = apache_avro::Schema::parse_str(text).map_err(|error| format!("schema: {error}"))?;
                let schema: &'static apache_avro::Schema = Box::leak(Box::new(schema));
                let reader = GenericDatumReader::builder(schema)
                    .build()
                    .map_err(|error| format!("schema: {error}"))?;
                cache.insert(
                    key,
                    ApacheSchema {
                        json: container.schema_json.to_vec(),
                        reader,
                    },
                );
            }
            let cached = &cache[&key];
            let codec = apache_avro::Codec::from_str(container.codec)
                .map_err(|_| format!("codec {} not supported", container.codec))?;
            for block in container.blocks() {
                let block = block?;
                let mut data: &[u8] = if codec == apache_avro::Codec::Null {
                    block.data
                } else {
                    buffer.clear();
                    buffer.extend_from_slice(block.data);
                    codec.decompress(&mut buffer).map_err(|error| error.to_string())?;
                    &buffer
                };
                for _ in 0..block.count {
                    let candid = match output {
                        ApacheOutput::Value => {
                            value_candid(&cached.reader.read_value(&mut data).map_err(|error| error.to_string())?)
                        }
                        ApacheOutput::FromValue => {
                            let value = cached.reader.read_value(&mut data).map_err(|error| error.to_string())?;
                            alert_candid(
                                &apache_avro::from_value::<ZtfAlert>(&value)
                                    .map_err(|error| format!("from_value: {error}"))?,
                            )
                        }
                        ApacheOutput::Deser => alert_candid(
                            &cached
                                .reader
                                .read_deser::<ZtfAlert>(&mut data)
                                .map_err(|error| format!("read_deser: {error}"))?,
                        ),
                    };
                    out.push(candid);
                }
                if !data.is_empty() {
                    return Err(format!("{} bytes left over in a block", data.len()));
                }
            }
        }
        Ok(())
    })
}

fn value_candid(value: &Value) -> Option<i64> {
    fn unwrap_union(value: &Value) -> &Value {
        match value {
            Value::Union(_, inner) => inner,
            other => other,
        }
    }
    fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
        match unwrap_union(value) {
            Value::Record(fields) => fields
                .iter()
                .find(|(field, _)| field == name)
                .map(|(_, value)| unwrap_union(value)),
            _ => None,
        }
    }
    let candid =
        field(value, "candid").or_else(|| field(value, "candidate").and_then(|candidate| field(candidate, "candid")));
    match candid {
        Some(Value::Long(candid)) => Some(*candid),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// arrow-avro

fn arrow_per_message() -> Pass {
    Box::new(|inputs, out, _flush| {
        for input in inputs {
            let reader = ReaderBuilder::new().build(*input).map_err(|error| error.to_string())?;
            for batch in reader {
                batch_candids(&batch.map_err(|error| error.to_string())?, out);
            }
        }
        Ok(())
    })
}

fn arrow_batched() -> Pass {
    let mut decoders: HashMap<u64, (Vec<u8>, arrow_avro::reader::Decoder)> = HashMap::new();
    let mut buffer = Vec::new();
    Box::new(move |inputs, out, flush| {
        for input in inputs {
            let container = ocf::parse(input)?;
            let key = xxhash_rust::xxh3::xxh3_64(container.schema_json);
            if decoders.get(&key).is_none_or(|(json, _)| json != container.schema_json) {
                let text = std::str::from_utf8(container.schema_json).map_err(|error| error.to_string())?;
                let mut store = SchemaStore::new();
                let fingerprint = store
                    .register(AvroSchema::new(text.to_string()))
                    .map_err(|error| format!("schema: {error}"))?;
                let decoder = ReaderBuilder::new()
                    .with_batch_size(ARROW_BATCH_ROWS)
                    .with_writer_schema_store(store)
                    .with_active_fingerprint(fingerprint)
                    .with_decoder_mode(DecoderMode::UnframedDatum)
                    .build_decoder()
                    .map_err(|error| format!("schema: {error}"))?;
                decoders.insert(key, (container.schema_json.to_vec(), decoder));
            }
            let (_, decoder) = decoders.get_mut(&key).expect("the decoder was just inserted");
            if let Err(error) = decode_blocks(&container, decoder, &mut buffer, out) {
                // The decoder may hold a half-decoded row: drop it.
                decoders.remove(&key);
                return Err(error);
            }
        }
        if flush {
            for (_, decoder) in decoders.values_mut() {
                flush_decoder(decoder, out)?;
            }
        }
        Ok(())
    })
}

fn decode_blocks(
    container: &ocf::Container<'_>,
    decoder: &mut arrow_avro::reader::Decoder,
    buffer: &mut Vec<u8>,
    out: &mut Vec<Option<i64>>,
) -> Result<(), String> {
    for block in container.blocks() {
        let block = block?;
        let mut data = ocf::decompress(container.codec, block.data, buffer)?;
        for _ in 0..block.count {
            if decoder.batch_is_full() {
                flush_decoder(decoder, out)?;
            }
            let consumed = decoder.decode(data).map_err(|error| error.to_string())?;
            data = &data[consumed..];
        }
        if !data.is_empty() {
            return Err(format!("{} bytes left over in a block", data.len()));
        }
    }
    Ok(())
}

fn flush_decoder(decoder: &mut arrow_avro::reader::Decoder, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    if let Some(batch) = decoder.flush().map_err(|error| error.to_string())? {
        batch_candids(&batch, out);
    }
    Ok(())
}

fn batch_candids(batch: &RecordBatch, out: &mut Vec<Option<i64>>) {
    let rows = batch.num_rows();
    let top = batch
        .column_by_name("candid")
        .and_then(|column| column.as_primitive_opt::<Int64Type>());
    if let Some(candid) = top {
        out.extend((0..rows).map(|row| candid.is_valid(row).then(|| candid.value(row))));
        return;
    }
    let nested = batch
        .column_by_name("candidate")
        .and_then(|column| column.as_struct_opt())
        .and_then(|candidate| {
            candidate
                .column_by_name("candid")
                .and_then(|column| column.as_primitive_opt::<Int64Type>())
                .map(|candid| (candidate, candid))
        });
    match nested {
        Some((candidate, candid)) => out
            .extend((0..rows).map(|row| (candidate.is_valid(row) && candid.is_valid(row)).then(|| candid.value(row)))),
        None => out.extend(std::iter::repeat_n(None, rows)),
    }
}

// ---------------------------------------------------------------------------------------------
// Object-container framing for the methods that keep their own schema cache: neither
// apache-avro nor arrow-avro can read a container's blocks against a schema parsed earlier, so
// the header and blocks are split here (zero-copy) and the records handed to the library.

mod ocf {
    use super::Read;

    pub struct Container<'a> {
        pub schema_json: &'a [u8],
        pub codec: &'a str,
        sync: &'a [u8],
        body: &'a [u8],
    }

    pub struct Block<'a> {
        pub count: usize,
        pub data: &'a [u8],
    }

    pub fn parse(input: &[u8]) -> Result<Container<'_>, String> {
        let mut rest = input.strip_prefix(b"Obj\x01").ok_or("not an object container")?;
        let mut schema_json = None;
        let mut codec = "null";
        loop {
            let mut count = long(&mut rest)?;
            if count == 0 {
                break;
            }
            if count < 0 {
                count = -count;
                long(&mut rest)?; // byte size of the block of entries
            }
            for _ in 0..count {
                let key = bytes(&mut rest)?;
                let value = bytes(&mut rest)?;
                match key {
                    b"avro.schema" => schema_json = Some(value),
                    b"avro.codec" => {
                        codec = std::str::from_utf8(value).map_err(|error| error.to_string())?;
                    }
                    _ => {}
                }
            }
        }
        let sync = take(&mut rest, 16)?;
        Ok(Container {
            schema_json: schema_json.ok_or("no avro.schema in the header")?,
            codec,
            sync,
            body: rest,
        })
    }

    impl<'a> Container<'a> {
        pub fn blocks(&self) -> impl Iterator<Item = Result<Block<'a>, String>> + use<'a> {
            let mut rest = self.body;
            let sync = self.sync;
            std::iter::from_fn(move || {
                if rest.is_empty() {
                    return None;
                }
                let block = (|| {
                    let count = usize::try_from(long(&mut rest)?).map_err(|e| e.to_string())?;
                    let data = bytes(&mut rest)?;
                    if take(&mut rest, 16)? != sync {
                        return Err("block sync marker differs from the header's".to_string());
                    }
                    Ok(Block { count, data })
                })();
                if block.is_err() {
                    rest = &[];
                }
                Some(block)
            })
        }
    }

    /// A block's records, decompressed into `buffer` unless the codec is `null`.
    pub fn decompress<'a>(codec: &str, data: &'a [u8], buffer: &'a mut Vec<u8>) -> Result<&'a [u8], String> {
        match codec {
            "null" => Ok(data),
            "snappy" => {
                let (compressed, crc) = data.split_last_chunk::<4>().ok_or("snappy block too short")?;
                buffer.clear();
                let length = snap::raw::decompress_len(compressed).map_err(|e| e.to_string())?;
                buffer.resize(length, 0);
                snap::raw::Decoder::new()
                    .decompress(compressed, buffer)
                    .map_err(|error| error.to_string())?;
                if crc32fast::hash(buffer) != u32::from_be_bytes(*crc) {
                    return Err("snappy block CRC mismatch".to_string());
                }
                Ok(buffer)
            }
            "deflate" => {
                buffer.clear();
                flate2::read::DeflateDecoder::new(data)
                    .read_to_end(buffer)
                    .map_err(|error| error.to_string())?;
                Ok(buffer)
            }
            other => Err(format!("codec {other} not supported")),
        }
    }

    fn long(input: &mut &[u8]) -> Result<i64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = input.split_first().ok_or("truncated varint")?;
            *input = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
            }
        }
        Err("varint too long".to_string())
    }

    fn bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], String> {
        let length = usize::try_from(long(input)?).map_err(|error| error.to_string())?;
        take(input, length)
    }

    fn take<'a>(input: &mut &'a [u8], length: usize) -> Result<&'a [u8], String> {
        if input.len() < length {
            return Err("truncated".to_string());
        }
        let (head, rest) = input.split_at(length);
        *input = rest;
        Ok(head)
    }
}
