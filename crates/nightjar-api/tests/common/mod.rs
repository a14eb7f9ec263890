//! Shared set-up of the API tests: a SQLite store filled once from real alerts (the ZTF21abiuvdk
//! light curve, six other ZTF alerts, eleven Rubin alerts) with the built-in science modules'
//! outputs, opened read-only, and a helper that calls the router without a network. The
//! light-curve alerts are given the class [`FIXTURE_CLASS`] to test the class routes.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use nightjar_api::{ApiConfig, router};
use nightjar_store::conformance::{rubin_alerts, ztf_light_curve_alerts, ztf_other_alerts};
use nightjar_store::{LightCurve, Store};
use nightjar_store_sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

/// The light-curve fixture's object.
pub const OBJECT: &str = "ZTF21abiuvdk";

/// The class given to the light-curve fixture's alerts.
pub const FIXTURE_CLASS: &str = "SN candidate";

/// The tags given to the light-curve fixture's alerts.
pub const FIXTURE_TAGS: &str = "sn_near_galaxy_candidate,extragalactic_new_candidate";

/// Runs the built-in science modules on a batch and attaches their outputs.
fn enrich(mut alerts: Vec<nightjar_core::Alert>) -> Vec<nightjar_core::Alert> {
    let modules = nightjar_modules::builtin_modules(&nightjar_modules::ModulesConfig::default()).expect("modules");
    let mut runner = nightjar_modules::ModuleRunner::new(modules).expect("runner");
    runner.run(&alerts).attach_to(&mut alerts);
    alerts
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// The data directory of the shared store, filled on first use.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Filled on a thread of its own: the caller may be inside a runtime already.
        std::thread::spawn(|| {
            let dir = tempfile::tempdir().expect("creating a temporary directory");
            let path = dir.path().to_path_buf();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let store = SqliteStore::open(&path).expect("opening the store for writing");
                let mut light_curve = enrich(ztf_light_curve_alerts());
                for alert in &mut light_curve {
                    // In place of the classification module's values for these alerts.
                    let class = nightjar_core::Value::Text(FIXTURE_CLASS.to_string());
                    alert.module_values.set("class", class);
                    let tags = nightjar_core::Value::Text(FIXTURE_TAGS.to_string());
                    alert.module_values.set("tags", tags);
                }
                for batch in [light_curve, enrich(ztf_other_alerts()), enrich(rubin_alerts())] {
                    store.write_batch(&batch).await.expect("writing the fixtures");
                }
            });
            Fixture { _dir: dir, path }
        })
        .join()
        .expect("filling the store")
    })
}

/// The shared store, read-only.
pub fn store() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_read_only(&fixture().path).expect("opening the store read-only"))
}

/// The router over the shared store.
pub fn app(config: ApiConfig) -> Router {
    router(store(), config)
}

/// The light curve of the fixture object, straight from the store.
pub async fn light_curve() -> LightCurve {
    let store = store();
    store
        .light_curve(nightjar_core::Survey::Ztf, OBJECT)
        .await
        .expect("reading")
        .expect("stored")
}

/// A response: status, content type, body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The records of a Fink answer.
    pub fn records(&self) -> Vec<serde_json::Map<String, Value>> {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        match self.json() {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Object(map) => map,
                    other => panic!("not a record: {other}"),
                })
                .collect(),
            other => panic!("not a list: {other}"),
        }
    }
}

/// Sends a request: `body` makes it a POST with that JSON text.
pub async fn call(router: &Router, method: Method, uri: &str, body: Option<&str>, token: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned())),
        None => request.body(Body::empty()),
    }
    .expect("a request");
    let response = router.clone().oneshot(request).await.expect("the router answers");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("reading the body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

pub async fn get(router: &Router, uri: &str) -> Answer {
    call(router, Method::GET, uri, None, None).await
}

pub async fn post(router: &Router, uri: &str, body: &str) -> Answer {
    call(router, Method::POST, uri, Some(body), None).await
}

/// Checks a 400 whose message contains each of `expected`.
pub fn check_bad_request(answer: &Answer, expected: &[&str]) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    let message = answer.json()["message"].as_str().unwrap_or_default().to_owned();
    for part in expected {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}
