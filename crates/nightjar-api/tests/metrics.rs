//! `/metrics`: request counts and latencies by method, route and status, per router.

mod common;

use common::{OBJECT, app, get};
use nightjar_api::ApiConfig;

/// The value of the series whose line starts with `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_status() {
    let router = app(ApiConfig {
        bearer_token: Some("secret".to_owned()),
        ..ApiConfig::default()
    });
    for _ in 0..3 {
        get(&router, "/health").await;
    }
    get(&router, &format!("/api/v1/objects?objectId={OBJECT}")).await;
    get(&router, "/alerts/1").await;
    get(&router, "/no/such/route").await;
    let answer = get(&router, "/metrics").await;
    assert_eq!(answer.status, axum::http::StatusCode::OK, "open without the token");
    assert!(answer.content_type.starts_with("application/openmetrics-text"));
    let text = answer.text();
    let counted = |route: &str, status: u16| {
        value(
            &text,
            &format!(r#"nightjar_http_requests_total{{method="GET",route="{route}",status="{status}"}}"#),
        )
    };
    assert_eq!(counted("/health", 200), Some(3.0), "{text}");
    assert_eq!(counted("/api/v1/objects", 401), Some(1.0), "{text}");
    assert_eq!(
        counted("/alerts/{candid}", 401),
        Some(1.0),
        "the pattern, not the path: {text}"
    );
    assert_eq!(counted("unmatched", 404), Some(1.0), "{text}");
    let latencies = value(
        &text,
        r#"nightjar_http_request_duration_seconds_count{method="GET",route="/health",status="200"}"#,
    );
    assert_eq!(latencies, Some(3.0), "{text}");
    assert!(text.contains("# TYPE nightjar_http_request_duration_seconds histogram"));
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn metrics_belong_to_their_router() {
    let first = app(ApiConfig::default());
    let second = app(ApiConfig::default());
    get(&first, "/health").await;
    let text = get(&second, "/metrics").await.text();
    assert!(!text.contains(r#"route="/health""#), "{text}");
}
