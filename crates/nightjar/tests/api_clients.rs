//! Clients of the API against `nightjar serve` on a store of real alerts: the requests of the
//! TOM Toolkit's Fink module (`scripts/tom_fink_requests.py`), and schemathesis generating
//! requests from the OpenAPI document, none of which may get a server error, over the embedded
//! store and over PostgreSQL (a throwaway cluster started by the PostgreSQL store's test support).
//!
//! Both run Python from `NIGHTJAR_PYTHON` (scripts/test.sh sets it to a virtual environment
//! with scripts/requirements.txt installed).

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{Server, http_get, nightjar, repo, stderr, stdout};
use serde_json::Value;

#[path = "../../nightjar-store-postgres/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

/// Runs the Python interpreter with the test tools (`NIGHTJAR_PYTHON`, else `python3`) in
/// `dir`.
fn python(dir: &Path, args: &[&str]) -> Output {
    let python = std::env::var("NIGHTJAR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    Command::new(&python)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("running {python} (set NIGHTJAR_PYTHON, or use scripts/test.sh): {error}"))
}

/// Ingests each of `sources` into the embedded store in `data_dir`.
fn fill_store(data_dir: &str, sources: &[&str]) {
    for source in sources {
        let run = nightjar(&["run", "--source", source, "--data-dir", data_dir, "--quiet"]);
        assert!(run.status.success(), "{source}: {}", stderr(&run));
    }
}

/// A JSON GET that must answer 200.
fn get_json(address: &str, path: &str) -> Value {
    let (status, body) = http_get(address, path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
}

/// `degrees` as sexagesimal text with unit letters, as tom_fink's form accepts it: hours for
/// a right ascension (`12h55m17.280s`), degrees for a declination (`+02d53m50.35s`).
fn sexagesimal(degrees: f64, hours: bool) -> String {
    let value = if hours { degrees / 15.0 } else { degrees.abs() };
    let whole = value.trunc();
    let minutes = ((value - whole) * 60.0).trunc();
    let seconds = ((value - whole) * 60.0 - minutes) * 60.0;
    if hours {
        format!("{whole:.0}h{minutes:02.0}m{seconds:06.3}s")
    } else {
        let sign = if degrees < 0.0 { '-' } else { '+' };
        format!("{sign}{whole:02.0}d{minutes:02.0}m{seconds:05.2}s")
    }
}

#[test]
fn the_requests_of_tom_fink_get_answers_it_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8");
    fill_store(data_dir, &["tests/data/ztf/alerts"]);
    let server = Server::start(&["serve", "--data-dir", data_dir]);
    let address = server.address.clone();

    // What to ask for, from the store: an object and its position, the most common class and
    // the time of its latest alert, and a solar-system object.
    let object = "ZTF21abiuvdk";
    let rows = get_json(
        &address,
        &format!("/api/v1/objects?objectId={object}&columns=i:ra,i:dec"),
    );
    let (ra, dec) = (
        rows[0]["i:ra"].as_f64().expect("ra"),
        rows[0]["i:dec"].as_f64().expect("dec"),
    );
    let classes = get_json(&address, "/api/v1/classes");
    let class = classes[0]["class"].as_str().expect("a class").to_string();
    let class_alerts = classes[0]["alerts"].as_u64().expect("a count");
    let encoded: String = form_encoded(&class);
    let latest = get_json(&address, &format!("/api/v1/latests?class={encoded}&n=1&columns=i:jd"));
    let latest_jd = latest[0]["i:jd"].as_f64().expect("jd");
    let with_names = get_json(&address, "/api/v1/latests?n=1000&columns=i:ssnamenr");
    let sso_name = with_names
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|row| row["i:ssnamenr"].as_str())
        .find(|name| !name.is_empty() && *name != "null")
        .expect("an alert with an ssnamenr")
        .to_string();

    let cone = format!("{}, {}, 5", sexagesimal(ra, true), sexagesimal(dec, false));
    let output = python(
        &repo(),
        &[
            "scripts/tom_fink_requests.py",
            &server.url(),
            "--objectId",
            object,
            "--conesearch",
            &cone,
            "--classsearch",
            &format!("{class}, 5"),
            "--classsearchdate",
            &format!("{class}, 15"),
            "--now",
            &(latest_jd + 1.0).to_string(),
            "--ssosearch",
            &sso_name,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let answers: BTreeMap<String, Value> = stdout(&output)
        .lines()
        .map(|line| {
            let answer: Value = serde_json::from_str(line).expect("a JSON line");
            (answer["query"].as_str().expect("query").to_string(), answer)
        })
        .collect();
    assert_eq!(answers.len(), 5, "{answers:?}");

    // Object search: every alert of the object, with every column tom_fink asks for.
    let objects = &answers["objectId"];
    assert_eq!(objects["alerts"], 12, "{objects}");
    assert_eq!(objects["targets"].as_array().map(Vec::len), Some(1), "{objects}");
    assert_eq!(objects["targets"][0]["name"], object);
    assert_eq!(objects["targets"][0]["num_alerts"], 12);
    let keys: Vec<&str> = objects["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for column in "i:candid,d:rf_snia_vs_nonia,i:ra,i:dec,i:jd,i:magpsf,i:objectId,d:cdsxmatch".split(',') {
        assert!(keys.contains(&column), "{column} missing from {keys:?}");
    }

    // Cone search (sexagesimal, radius 5 arcsec): the object, at its position.
    let cone_targets = answers["conesearch"]["targets"].as_array().expect("targets");
    let found = cone_targets
        .iter()
        .find(|target| target["name"] == object)
        .unwrap_or_else(|| panic!("{object} not in the cone search {cone:?}: {cone_targets:?}"));
    assert!((found["ra"].as_f64().expect("ra") - ra).abs() < 1e-3, "{found}");

    // Class searches: the latest alerts of the class, by number and over the last days.
    assert_eq!(answers["classsearch"]["alerts"], class_alerts.min(5), "{class}");
    let recent = answers["classsearchdate"]["alerts"].as_u64().expect("count");
    assert!(
        recent >= 1 && recent <= class_alerts,
        "{class}: {recent} of {class_alerts}"
    );

    // Solar-system search, with tom_fink's SSO columns.
    let sso = &answers["ssosearch"];
    assert!(sso["alerts"].as_u64() >= Some(1), "{sso_name}: {sso}");
    let keys = sso["keys"].to_string();
    assert!(keys.contains("i:ssnamenr") && keys.contains("d:roid"), "{keys}");

    assert!(server.stop(), "SIGTERM stops the server cleanly");
}

/// `text` encoded for a URL query.
fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// Runs schemathesis against `server` (keeping its cache in `dir`): requests generated from
/// the OpenAPI document for every route, none of which may get a server error.
fn schemathesis_finds_no_server_error(server: Server, dir: &Path) {
    let report = dir.join("schemathesis.json");
    let output = python(
        dir,
        &[
            "-m",
            "schemathesis.cli",
            "run",
            &format!("{}/api/v1/openapi.json", server.url()),
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "50",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--workers",
            "2",
            "--request-timeout",
            "30",
            "--no-color",
            "--generation-database",
            "none",
            "--report",
            "json",
            "--report-json-path",
            report.to_str().expect("utf-8"),
        ],
    );
    let log = format!("{}{}", stdout(&output), stderr(&output));
    assert!(output.status.success(), "schemathesis found failures:\n{log}");
    // It did test every route of the document: "Selected: 25/25", then "Tested: 25".
    let summary_number = |label: &str| -> Option<u64> {
        log.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split('/').next())
            .and_then(|number| number.trim().parse().ok())
    };
    let (selected, tested) = (summary_number("Selected:"), summary_number("Tested:"));
    assert!(selected >= Some(20), "fewer routes than documented:\n{log}");
    assert_eq!(tested, selected, "routes left untested:\n{log}");
    eprintln!("{log}");
    assert!(server.stop(), "SIGTERM stops the server cleanly");
}

/// A small real store: one ZTF light curve, ZTF alerts with solar-system objects, Rubin alerts.
const SMALL_STORE: [&str; 3] = [
    "tests/data/ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3",
    "tests/data/ztf/alerts/boom_20240715_v4.02",
    "tests/data/lsst/wire/boom",
];

#[test]
fn schemathesis_finds_no_server_error_over_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("store");
    let data_dir = data_dir.to_str().expect("utf-8");
    fill_store(data_dir, &SMALL_STORE);
    let server = Server::start(&["serve", "--data-dir", data_dir]);
    schemathesis_finds_no_server_error(server, dir.path());
}

#[test]
fn schemathesis_finds_no_server_error_over_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = runtime.block_on(support::fresh_database());
    for source in SMALL_STORE {
        let run = nightjar(&["--store", &url, "run", "--source", source, "--quiet"]);
        assert!(run.status.success(), "{source}: {}", stderr(&run));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&["--store", &url, "serve"]);
    schemathesis_finds_no_server_error(server, dir.path());
}
