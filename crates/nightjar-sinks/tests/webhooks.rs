//! Webhook outbox tests against a real HTTP server (axum) in the test process, on real
//! temporary directories: healthy, failing, down, slow and refusing endpoints, restarts,
//! replays and shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nightjar_sinks::{Delivery, DeliveryOptions, DeliveryStats, Outbox, SinkError, WebhookConfig};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

/// How the test endpoint answers.
#[derive(Debug, Default, Clone)]
struct Behaviour {
    /// Answer 500 to the first this many requests.
    n_server_errors: usize,
    /// Then answer 429 (`Retry-After: 0`) to this many.
    n_too_many: usize,
    /// Hold every request from this index on until the gate opens.
    hold_from: Option<usize>,
}

#[derive(Debug)]
struct Endpoint {
    behaviour: Mutex<Behaviour>,
    n_requests: AtomicUsize,
    /// Bodies answered with 200, in order.
    accepted: Mutex<Vec<Value>>,
    content_types: Mutex<Vec<String>>,
    gate: Semaphore,
}

impl Endpoint {
    fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().expect("lock").clone()
    }

    fn n_requests(&self) -> usize {
        self.n_requests.load(Ordering::SeqCst)
    }

    fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("lock") = behaviour;
    }

    fn open_gate(&self) {
        self.gate.add_permits(1_000);
    }
}

async fn hook(State(endpoint): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_idx = endpoint.n_requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = endpoint.behaviour.lock().expect("lock").clone();
    if behaviour.hold_from.is_some_and(|from| request_idx >= from) {
        let permit = endpoint.gate.acquire().await.expect("gate");
        permit.forget();
    }
    if request_idx < behaviour.n_server_errors {
        return (StatusCode::INTERNAL_SERVER_ERROR, "try later").into_response();
    }
    if request_idx < behaviour.n_server_errors + behaviour.n_too_many {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    if body.get("reject") == Some(&Value::Bool(true)) {
        return (
            StatusCode::BAD_REQUEST,
            "alert rejected: objectId unknown to this broker",
        )
            .into_response();
    }
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_string();
    endpoint.content_types.lock().expect("lock").push(content_type);
    endpoint.accepted.lock().expect("lock").push(body);
    StatusCode::OK.into_response()
}

/// Serves `endpoint` on `listener` for the rest of the test.
fn serve(listener: tokio::net::TcpListener, endpoint: Arc<Endpoint>) {
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .route(
            "/moved",
            axum::routing::post(|| async { (StatusCode::PERMANENT_REDIRECT, [("location", "/hook")]) }),
        )
        .with_state(endpoint);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
}

fn new_endpoint(behaviour: Behaviour) -> Arc<Endpoint> {
    Arc::new(Endpoint {
        behaviour: Mutex::new(behaviour),
        n_requests: AtomicUsize::new(0),
        accepted: Mutex::new(Vec::new()),
        content_types: Mutex::new(Vec::new()),
        gate: Semaphore::new(0),
    })
}

/// A running endpoint and its webhook.
async fn start_endpoint(behaviour: Behaviour) -> (Arc<Endpoint>, WebhookConfig) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let endpoint = new_endpoint(behaviour);
    serve(listener, endpoint.clone());
    (endpoint, webhook_at(address, false))
}

/// An address nothing listens on (yet): connections are refused.
async fn down_address() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("address")
}

fn webhook_at(address: SocketAddr, slack: bool) -> WebhookConfig {
    WebhookConfig::new(format!("http://{address}/hook"), slack)
}

fn fast_options() -> DeliveryOptions {
    DeliveryOptions {
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..DeliveryOptions::default()
    }
}

fn rows(n_rows: usize, prefix: &str) -> Vec<Value> {
    (0..n_rows)
        .map(|row_idx| json!({"objectId": format!("{prefix}{row_idx}"), "magpsf": 18.0 + row_idx as f64 / 10.0}))
        .collect()
}

fn delivery<'a>(position: &'a str, rows: &'a [Value]) -> Delivery<'a> {
    Delivery {
        filter: "bright_risers",
        survey: "ztf",
        night: "20240612",
        position,
        rows,
    }
}

/// What a healthy endpoint should receive for `rows`.
fn expected_bodies(rows: &[Value]) -> Vec<Value> {
    rows.iter()
        .map(|row| {
            let mut body = row.clone();
            body["filter"] = json!("bright_risers");
            body["survey"] = json!("ztf");
            body
        })
        .collect()
}

/// Waits for `condition`; the limit only guards against a hang and is far above what the
/// tests need.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..6000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(|value| value.to_string());
    values
}

fn count_files(directory: &Path) -> usize {
    std::fs::read_dir(directory).expect("list").count()
}

async fn stop(stop: watch::Sender<bool>, task: tokio::task::JoinHandle<DeliveryStats>) -> DeliveryStats {
    stop.send(true).expect("delivery task listening");
    task.await.expect("delivery task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_endpoint_gets_each_alert_once() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = rows(3, "ZTF24a");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    assert_eq!(outbox.pending(), 3, "queued before any delivery task runs");
    assert_eq!(count_files(&directory.path().join("pending")), 1, "one entry on disk");

    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;

    assert_eq!(endpoint.accepted(), expected_bodies(&rows), "in order, once each");
    assert_eq!(endpoint.n_requests(), 3);
    assert!(
        endpoint
            .content_types
            .lock()
            .expect("lock")
            .iter()
            .all(|value| value == "application/json")
    );
    assert_eq!(stats.delivered, 3);
    assert_eq!(stats.retried, 0);
    assert_eq!(stats.failed, 0);
    assert_eq!(stats.pending_entries, 0);
    assert_eq!(stats.oldest_pending_age, None);
    assert_eq!(count_files(&directory.path().join("pending")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_with_500_three_times_gets_every_alert_exactly_once() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour {
        n_server_errors: 3,
        ..Behaviour::default()
    })
    .await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = rows(4, "ZTF24b");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&rows));
    assert_eq!(stats.retried, 3);
    assert_eq!(stats.delivered, 4);
    assert_eq!(endpoint.n_requests(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_with_retry_after_is_retried() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour {
        n_too_many: 2,
        ..Behaviour::default()
    })
    .await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = rows(2, "ZTF24c");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    // A long backoff: only the server's `Retry-After: 0` lets this finish quickly.
    let options = DeliveryOptions {
        initial_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(3600),
        ..DeliveryOptions::default()
    };
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(options, shutdown);
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&rows));
    assert_eq!(stats.retried, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_endpoint_started_later_gets_everything() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let address = down_address().await;
    let webhook = webhook_at(address, false);
    let outbox = Outbox::open(directory.path()).expect("open");
    let first = rows(2, "ZTF24d");
    let second = rows(3, "ZTF24e");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &first))
        .expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("connections were refused a few times", || outbox.stats().retried >= 3).await;
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o100-199", &second))
        .expect("enqueue while down");
    assert_eq!(outbox.pending(), 5);

    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("bind the same port");
    let endpoint = new_endpoint(Behaviour::default());
    serve(listener, endpoint.clone());
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;
    let mut expected = expected_bodies(&first);
    expected.extend(expected_bodies(&second));
    assert_eq!(endpoint.accepted(), expected, "oldest entry first, each alert once");
    assert_eq!(stats.delivered, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_endpoint_does_not_hold_up_another() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let down = webhook_at(down_address().await, false);
    let (endpoint, healthy) = start_endpoint(Behaviour::default()).await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let for_down = rows(2, "ZTF24f");
    let for_healthy = rows(2, "ZTF24g");
    outbox
        .enqueue(&down, &delivery("ztf_p0_o0-99", &for_down))
        .expect("enqueue");
    outbox
        .enqueue(&healthy, &delivery("ztf_p0_o0-99", &for_healthy))
        .expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("the healthy endpoint's alerts are delivered", || {
        outbox.stats().delivered == 2
    })
    .await;
    let stats = stop(stop_sender, task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&for_healthy));
    assert_eq!(stats.pending, 2, "the down endpoint's alerts stay pending");
    assert_eq!(stats.pending_entries, 1);
    assert!(stats.oldest_pending_age.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_delivers_what_was_pending() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let rows = rows(3, "ZTF24h");
    {
        let outbox = Outbox::open(directory.path()).expect("open");
        outbox
            .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
            .expect("enqueue");
        // Dropped before any delivery: as after a crash.
    }
    let outbox = Outbox::open(directory.path()).expect("open again");
    assert_eq!(outbox.pending(), 3);
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    stop(stop_sender, task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&rows));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_after_the_alerts_already_accepted() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour {
        hold_from: Some(2),
        ..Behaviour::default()
    })
    .await;
    let rows = rows(5, "ZTF24i");
    {
        let outbox = Outbox::open(directory.path()).expect("open");
        outbox
            .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
            .expect("enqueue");
        let (stop_sender, shutdown) = watch::channel(false);
        let task = outbox.spawn_delivery(fast_options(), shutdown);
        wait_until("the third post is held", || endpoint.n_requests() == 3).await;
        let stats = stop(stop_sender, task).await;
        assert_eq!(stats.delivered, 2);
        assert_eq!(stats.pending, 3, "the post in flight stays pending");
    }
    // The held request is abandoned; later ones are answered at once.
    endpoint.set(Behaviour::default());
    let outbox = Outbox::open(directory.path()).expect("open again");
    assert_eq!(outbox.pending(), 3, "progress inside the entry survived the restart");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    stop(stop_sender, task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&rows), "each alert exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_moves_the_alert_to_failed_with_the_reason() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = vec![
        json!({"objectId": "ZTF24j0"}),
        json!({"objectId": "ZTF24j1", "reject": true}),
        json!({"objectId": "ZTF24j2"}),
    ];
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is handled", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;
    assert_eq!(
        endpoint.accepted(),
        expected_bodies(&[rows[0].clone(), rows[2].clone()])
    );
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.delivered, 2);
    assert_eq!(stats.retried, 0, "a 400 is not retried");

    let failed: Vec<_> = std::fs::read_dir(directory.path().join("failed"))
        .expect("failed directory")
        .map(|item| item.expect("entry").path())
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .to_string_lossy()
            .ends_with("_bright_risers_ztf_20240612_ztf_p0_o0-99_1.json")
    );
    let record: Value = serde_json::from_slice(&std::fs::read(&failed[0]).expect("read")).expect("json");
    assert_eq!(record["status"], json!(400));
    assert_eq!(
        record["response_body"],
        json!("alert rejected: objectId unknown to this broker")
    );
    assert_eq!(record["row"], rows[1]);
    assert_eq!(record["row_idx"], json!(1));
    assert_eq!(record["filter"], json!("bright_risers"));
    assert!(
        !record["endpoint"].as_str().expect("endpoint").contains("/hook"),
        "the URL's path (where secrets live) is not written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_mode_posts_one_text_line_per_alert() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let webhook = WebhookConfig::new(webhook.url, true);
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = vec![json!({
        "objectId": "ZTF24aakzmrq",
        "candidate": {"ra": 150.123456, "dec": 2.5, "magpsf": 18.456},
        "band": "g",
        "class": "Early SN Ia candidate",
    })];
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("the alert is delivered", || outbox.pending() == 0).await;
    stop(stop_sender, task).await;
    assert_eq!(
        endpoint.accepted(),
        vec![json!({
            "text": "bright_risers (ztf): ZTF24aakzmrq at RA 150.12346 Dec 2.50000, mag 18.46 (g), class Early SN Ia candidate"
        })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_block_enqueue() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour {
        hold_from: Some(0),
        ..Behaviour::default()
    })
    .await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    let first = rows(1, "ZTF24k");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &first))
        .expect("enqueue");
    wait_until("the first post is held by the endpoint", || endpoint.n_requests() == 1).await;

    let mut all_rows = first.clone();
    for batch_idx in 1..=20 {
        let batch = rows(2, &format!("ZTF24k{batch_idx}_"));
        outbox
            .enqueue(
                &webhook,
                &delivery(&format!("ztf_p0_o{batch_idx}00-{batch_idx}99"), &batch),
            )
            .expect("enqueue while the endpoint holds a post");
        all_rows.extend(batch);
    }
    assert_eq!(outbox.pending(), 41);
    assert!(endpoint.accepted().is_empty(), "the endpoint answered nothing yet");
    assert_eq!(endpoint.n_requests(), 1);

    endpoint.open_gate();
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    stop(stop_sender, task).await;
    assert_eq!(sorted(endpoint.accepted()), sorted(expected_bodies(&all_rows)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_promptly_and_leaves_entries_pending() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour {
        hold_from: Some(0),
        ..Behaviour::default()
    })
    .await;
    let rows = rows(2, "ZTF24l");
    {
        let outbox = Outbox::open(directory.path()).expect("open");
        outbox
            .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
            .expect("enqueue");
        let (stop_sender, shutdown) = watch::channel(false);
        // A request timeout longer than any test: only shutdown can end the held post.
        let options = DeliveryOptions {
            request_timeout: Duration::from_secs(3600),
            ..fast_options()
        };
        let task = outbox.spawn_delivery(options, shutdown);
        wait_until("the post is held by the endpoint", || endpoint.n_requests() == 1).await;
        let stats = stop(stop_sender, task).await;
        assert_eq!(stats.pending, 2);
        assert_eq!(stats.delivered, 0);
    }
    assert_eq!(
        count_files(&directory.path().join("pending")),
        1,
        "the entry is still on disk"
    );
    let outbox = Outbox::open(directory.path()).expect("open again");
    assert_eq!(outbox.pending(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_overwrites_its_entry_and_is_not_posted_again() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let first = rows(3, "ZTF24m");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &first))
        .expect("enqueue");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &first))
        .expect("replay");
    assert_eq!(outbox.pending(), 3, "a replay does not add alerts");
    assert_eq!(outbox.stats().pending_entries, 1);
    // The same range with other rows (a new filter version) replaces the entry.
    let changed = rows(2, "ZTF24n");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &changed))
        .expect("replay, other rows");
    assert_eq!(outbox.pending(), 2);
    assert_eq!(count_files(&directory.path().join("pending")), 1);

    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    // Replaying a delivered range posts nothing again.
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &changed))
        .expect("replay after delivery");
    assert_eq!(outbox.pending(), 0);
    let stats = stop(stop_sender, task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&changed));
    assert_eq!(stats.delivered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_give_clear_errors() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = rows(1, "ZTF24o");
    for (url, reason) in [
        ("ftp://example.org/hook", "expected an http:// or https:// URL"),
        ("not a url", "relative URL without a base"),
    ] {
        let error = outbox
            .enqueue(&WebhookConfig::new(url, false), &delivery("ztf_p0_o0-99", &rows))
            .expect_err("bad url");
        assert!(matches!(error, SinkError::InvalidUrl { .. }), "{error}");
        assert!(error.to_string().contains(reason), "{error}");
    }
    let webhook = WebhookConfig::new("http://127.0.0.1:9/hook", false);
    let error = outbox
        .enqueue(&webhook, &delivery("p/../../etc", &rows))
        .expect_err("bad position");
    assert_eq!(
        error.to_string(),
        "invalid delivery position \"p/../../etc\": expected 1 to 128 letters, digits, '_', '.' or '-', not starting with '.'"
    );
    assert_eq!(outbox.pending(), 0, "nothing queued");
    assert_eq!(count_files(&directory.path().join("pending")), 0);

    let error = Outbox::open(directory.path()).expect_err("a second outbox on the same directory");
    assert!(matches!(error, SinkError::OutboxLocked { .. }), "{error}");

    let config: Result<WebhookConfig, _> = serde_json::from_value(json!({"url": "http://x/", "slak": true}));
    assert!(
        config
            .expect_err("unknown field")
            .to_string()
            .contains("unknown field `slak`")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_entry_is_moved_to_failed_at_open() {
    let directory = tempfile::tempdir().expect("temporary directory");
    std::fs::create_dir_all(directory.path().join("pending")).expect("pending directory");
    std::fs::write(directory.path().join("pending/broken.json"), b"{\"url\": tru").expect("write");
    let outbox = Outbox::open(directory.path()).expect("open");
    assert_eq!(outbox.pending(), 0);
    assert!(directory.path().join("failed/corrupt_broken.json").exists());
    assert_eq!(count_files(&directory.path().join("pending")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_delivery_task_does_not_start() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let (stop_sender, shutdown) = watch::channel(false);
    let first_task = outbox.spawn_delivery(fast_options(), shutdown.clone());
    let rows = rows(2, "ZTF24p");
    outbox
        .enqueue(&webhook, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    // Delivered: the first task is running.
    wait_until("every alert is delivered", || outbox.pending() == 0).await;
    let second_task = outbox.spawn_delivery(fast_options(), shutdown);
    let second_stats = second_task.await.expect("second task");
    assert_eq!(second_stats.delivered, 2, "the second task returned the stats at once");
    stop(stop_sender, first_task).await;
    assert_eq!(endpoint.accepted(), expected_bodies(&rows), "posted once, by one task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_names_accepted_fit_in_every_outbox_file_name() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let outbox = Outbox::open(directory.path()).expect("open");
    let filter = "f".repeat(nightjar_sinks::MAX_FILTER_LEN);
    let survey = "s".repeat(nightjar_sinks::MAX_SURVEY_LEN);
    let position = "p".repeat(nightjar_sinks::MAX_POSITION_LEN);
    let rows = vec![json!({"objectId": "a"}), json!({"objectId": "b", "reject": true})];
    let longest = Delivery {
        filter: &filter,
        survey: &survey,
        night: "20240612",
        position: &position,
        rows: &rows,
    };
    outbox.enqueue(&webhook, &longest).expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("every alert is handled", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.failed, 1, "the failed/ record was written");
    assert_eq!(endpoint.accepted().len(), 1);
    assert_eq!(count_files(&directory.path().join("failed")), 1);
    let files = nightjar_sinks::FileSink::new(directory.path().join("files"), nightjar_sinks::FileFormat::Parquet)
        .expect("file sink");
    assert!(files.write(&longest).expect("write").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_the_alert_is_moved_to_failed() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let (endpoint, webhook) = start_endpoint(Behaviour::default()).await;
    let moved = WebhookConfig::new(webhook.url.replace("/hook", "/moved"), false);
    let outbox = Outbox::open(directory.path()).expect("open");
    let rows = rows(1, "ZTF24q");
    outbox
        .enqueue(&moved, &delivery("ztf_p0_o0-99", &rows))
        .expect("enqueue");
    let (stop_sender, shutdown) = watch::channel(false);
    let task = outbox.spawn_delivery(fast_options(), shutdown);
    wait_until("the alert is handled", || outbox.pending() == 0).await;
    let stats = stop(stop_sender, task).await;
    assert_eq!(stats.failed, 1);
    assert_eq!(endpoint.n_requests(), 0, "the redirect target got nothing");
    let failed = std::fs::read_dir(directory.path().join("failed"))
        .expect("failed directory")
        .next()
        .expect("a failed record")
        .expect("entry")
        .path();
    let record: Value = serde_json::from_slice(&std::fs::read(failed).expect("read")).expect("json");
    assert_eq!(record["status"], json!(308));
}
