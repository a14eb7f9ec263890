//! Request metrics of one router, served at `/metrics` in the Prometheus (OpenMetrics) text
//! format: requests answered and their latencies, by method, route and status.
//!
//! The registry belongs to the router ([`crate::router`] makes one each time), not to the
//! process, so two routers (two tests) never share counts.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiError;

/// The content type of the exposition.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one series: method, route (the route's pattern, e.g. `/alerts/{candid}`, or
/// `unmatched`), status.
type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~4 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// The metrics of one router.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    durations: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let requests = Family::<Labels, Counter>::default();
        let durations = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let mut registry = Registry::default();
        registry.register(
            "nightjar_http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        registry.register(
            "nightjar_http_request_duration_seconds",
            "time from receiving a request to its response head, seconds, by method, route and status",
            durations.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let labels: Labels = vec![
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    /// The text exposition of every series.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Middleware: times each request and counts it under its route's pattern.
pub async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Request counts and latencies of this server, by method, route and status, in the
/// Prometheus (OpenMetrics 1.0) text format: `nightjar_http_requests_total` and the histogram
/// `nightjar_http_request_duration_seconds`. Open like `/health`, even with a bearer token.
///
/// `curl 'localhost:8080/metrics'`
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "the metrics, OpenMetrics text (application/openmetrics-text)")))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let encoding_error = |error: std::fmt::Error| ApiError::Internal(format!("encoding the metrics: {error}"));
    let mut text = state.metrics.encode().map_err(encoding_error)?;
    if let Some(pipeline) = &state.pipeline {
        // One exposition: the request metrics without their end marker, then the worker's.
        if let Some(body) = text.strip_suffix("# EOF\n") {
            text.truncate(body.len());
        }
        text.push_str(&pipeline.encode().map_err(encoding_error)?);
    }
    Ok(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response())
}

/// The ingestion metrics of a worker (`nightjar run --metrics-listen`).
pub async fn pipeline_metrics(
    State(pipeline): State<Arc<nightjar_metrics::PipelineMetrics>>,
) -> Result<Response, ApiError> {
    let text = pipeline
        .encode()
        .map_err(|error| ApiError::Internal(format!("encoding the metrics: {error}")))?;
    Ok(([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response())
}
