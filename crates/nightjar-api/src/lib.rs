//! nightjar's HTTP API over a [`Store`]: Fink-compatible REST routes under `/api/v1/`
//! (including `cutouts`), SkyPortal's generic broker interface (`/alerts`), IVOA Simple Cone
//! Search 1.03 (`/scs`), `/health`, Prometheus `/metrics` and the OpenAPI document
//! (`/api/v1/openapi.json`).
//!
//! [`router`] builds the routes; [`serve`] runs them on a listener until a shutdown future
//! completes. The doc comments of the route handlers ([`fink`], [`cutouts`], [`skyportal`],
//! [`votable`], [`metrics`]) are the API reference, with a curl example each.
//!
//! Output formats of the Fink list routes: json (default), csv, votable, parquet. Cutouts: FITS (plain;
//! ZTF's gzip undone) or a JSON pixel array.
//!
//! Errors: one [`ApiError`]; a client's mistake is a 4xx whose message says what is wrong and
//! what is accepted, a store failure a 500 whose details go to the log. No request a client can
//! send yields a 500 or a panic (a property test feeds random parameters to every route).
//!
//! Invariant: the only crate that serves HTTP; it knows the `Store` trait, never a database.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use nightjar_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::OpenApi;

pub mod cutouts;
pub mod error;
pub mod fink;
pub mod metrics;
pub mod output;
pub mod params;
pub mod parquet_output;
pub mod records;
pub mod skyportal;
pub mod votable;

pub use error::ApiError;

/// Settings of the API server.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// When set, every data route (`/api/v1/*` except `openapi.json`, `/alerts*` and `/scs`)
    /// requires the header `Authorization: Bearer <token>`; `/health`, `/metrics` and the
    /// OpenAPI document stay open.
    pub bearer_token: Option<String>,
    /// Most rows one request returns (`latests`' largest `n`, alerts per `sso` name and per
    /// SkyPortal query).
    pub max_results: usize,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            bearer_token: None,
            max_results: 10_000,
        }
    }
}

impl fmt::Debug for ApiConfig {
    /// The token is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<set>"))
            .field("max_results", &self.max_results)
            .finish()
    }
}

impl ApiConfig {
    /// Checks the settings: a token, when set, is not empty; `max_results` is at least 1.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .bearer_token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty())
        {
            return Err(
                "api.bearer_token is empty: set a token, or remove the setting to serve without one".to_owned(),
            );
        }
        if self.max_results == 0 {
            return Err("api.max_results is 0: set at least 1".to_owned());
        }
        Ok(())
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: ApiConfig,
    /// This router's request metrics (`/metrics`).
    pub metrics: Arc<metrics::Metrics>,
    /// The ingestion metrics of the worker this server runs in (`nightjar run --serve`),
    /// served at `/metrics` after the request metrics.
    pub pipeline: Option<Arc<nightjar_metrics::PipelineMetrics>>,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The OpenAPI document of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "nightjar",
        description = "nightjar alert broker API: Fink-compatible routes and SkyPortal's generic broker interface"
    ),
    paths(
        fink::objects,
        fink::conesearch,
        fink::latests,
        fink::classes,
        fink::tags,
        fink::sources,
        fink::sso,
        fink::statistics,
        fink::schema,
        cutouts::cutouts,
        votable::simple_cone_search,
        skyportal::alerts,
        skyportal::alert,
        health,
        metrics::metrics,
        openapi_json,
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The routes over a store.
pub fn router(store: Arc<dyn Store>, config: ApiConfig) -> Router {
    router_in_worker(store, config, None)
}

/// [`router`] for a server running inside an ingesting worker: `/metrics` also serves the
/// worker's ingestion metrics.
pub fn router_in_worker(
    store: Arc<dyn Store>,
    config: ApiConfig,
    pipeline: Option<Arc<nightjar_metrics::PipelineMetrics>>,
) -> Router {
    let state = Arc::new(AppState {
        store,
        config,
        metrics: Arc::default(),
        pipeline,
    });
    let data_routes = Router::new()
        .route("/api/v1/objects", get(fink::objects).post(fink::objects))
        .route("/api/v1/conesearch", get(fink::conesearch).post(fink::conesearch))
        .route("/api/v1/latests", get(fink::latests).post(fink::latests))
        .route("/api/v1/classes", get(fink::classes).post(fink::classes))
        .route("/api/v1/tags", get(fink::tags).post(fink::tags))
        .route("/api/v1/sources", get(fink::sources).post(fink::sources))
        .route("/api/v1/sso", get(fink::sso).post(fink::sso))
        .route("/api/v1/statistics", get(fink::statistics).post(fink::statistics))
        .route("/api/v1/schema", get(fink::schema).post(fink::schema))
        .route("/api/v1/cutouts", get(cutouts::cutouts).post(cutouts::cutouts))
        .route("/scs", get(votable::simple_cone_search))
        .route("/alerts", get(skyportal::alerts))
        .route("/alerts/{candid}", get(skyportal::alert))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(openapi_json))
        .merge(data_routes)
        .layer(middleware::from_fn_with_state(state.clone(), metrics::record))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// A router with only `/metrics`, serving a worker's ingestion metrics
/// (`nightjar run --metrics-listen`).
pub fn metrics_router(pipeline: Arc<nightjar_metrics::PipelineMetrics>) -> Router {
    Router::new().route("/metrics", get(metrics::pipeline_metrics).with_state(pipeline))
}

/// Refuses a request without the configured bearer token.
async fn require_token(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Result<Response, ApiError> {
    if let Some(expected) = &state.config.bearer_token {
        let sent = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        if !sent.is_some_and(|sent| same_token(sent.as_bytes(), expected.as_bytes())) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(request).await)
}

/// Compares tokens in time independent of where they differ.
fn same_token(sent: &[u8], expected: &[u8]) -> bool {
    sent.len() == expected.len() && sent.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `{"status": "ok", "counts": {objects, alerts, detections, ...}}`; 500 if the store fails.
///
/// `curl 'localhost:8080/health'`
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "the store answers, with its row counts"), (status = 500, description = "the store failed")))]
pub async fn health(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let counts = state.store.counts().await?;
    Ok(Json(json!({"status": "ok", "counts": counts})))
}

/// This API's OpenAPI 3.1 document.
///
/// `curl 'localhost:8080/api/v1/openapi.json'`
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "the OpenAPI document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
