//! `nightjar serve` over a store filled by `nightjar run`, and `nightjar run` into PostgreSQL
//! (a throwaway cluster started by the test support of the PostgreSQL store).

#[allow(dead_code, reason = "each test file uses some of the helpers")]
mod common;

use common::{Server, http_get as get, nightjar, stderr};

#[path = "../../nightjar-store-postgres/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

const LIGHT_CURVE: &str = "tests/data/ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3";

#[test]
fn serve_answers_from_the_store_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    assert!(
        nightjar(&["run", "--source", LIGHT_CURVE, "--data-dir", data_dir, "--quiet"])
            .status
            .success()
    );

    let server = Server::start(&["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let address = server.address.clone();

    let (status, body) = get(&address, "/health");
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&address, "/api/v1/objects?objectId=ZTF21abiuvdk&columns=i:candid,i:jd");
    assert_eq!(status, 200, "{body}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 12, "one row per alert of the object");
    let (status, body) = get(&address, "/api/v1/conesearch?ra=1000&dec=0&radius=5");
    assert_eq!(status, 400, "{body}");

    assert!(server.stop(), "SIGTERM stops the server cleanly");
}

#[test]
fn run_into_postgres_is_idempotent_and_readable() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(support::fresh_database());
    let first = nightjar(&["--store", &url, "run", "--source", LIGHT_CURVE, "--quiet"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stderr(&first);
    assert!(text.contains("alerts stored (new)          12"), "{text}");
    assert!(!text.contains("password"), "{text}");
    let second = nightjar(&["--store", &url, "run", "--source", LIGHT_CURVE, "--quiet"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("alerts stored (new)           0"),
        "{}",
        stderr(&second)
    );
    let query = nightjar(&["--store", &url, "query", "object", "ZTF21abiuvdk"]);
    assert!(query.status.success(), "{}", stderr(&query));
    let light_curve: serde_json::Value = serde_json::from_slice(&query.stdout).unwrap();
    assert!(light_curve["detections"].as_array().unwrap().len() >= 12);

    let bad = nightjar(&["--store", "mysql://localhost/x", "query", "nights"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("store.url"), "{}", stderr(&bad));
}

#[test]
fn run_serve_ingests_then_keeps_serving_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&[
        "run",
        "--serve",
        "--source",
        LIGHT_CURVE,
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    let address = server.address.clone();
    // Wait for the end of the ingestion.
    assert!(
        server
            .lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("still serving")),
        "the run did not finish ingesting"
    );
    let (status, body) = get(&address, "/api/v1/objects?objectId=ZTF21abiuvdk&columns=i:candid");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&body).unwrap().len(), 12);
    assert!(server.stop(), "SIGTERM stops the server cleanly");
}
