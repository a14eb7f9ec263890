//! The webhook delivery task: one worker per endpoint posts the outbox's pending alerts, one
//! HTTP POST of JSON per alert, retrying 408, 429, 5xx and connection errors with exponential
//! backoff and jitter (or the server's `Retry-After`), moving alerts refused with another status
//! to `failed/`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::atomic::write_atomically;
use crate::outbox::{DONE_MARKER_RETENTION, Entry, Inner, endpoint_label, unix_ms};
use crate::slack::slack_text;

/// The shortest wait a `Retry-After` gets: a server answering 429 with `Retry-After: 0` is not
/// hammered.
pub const MIN_RETRY_AFTER: Duration = Duration::from_millis(100);

/// How much of a refusing endpoint's answer is kept in `failed/`.
pub const MAX_FAILED_BODY_BYTES: usize = 4096;

/// How the delivery task posts.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOptions {
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole post (connection, request, answer).
    pub request_timeout: Duration,
    /// Backoff after an endpoint's first failed post; doubled after each further failure.
    pub initial_backoff: Duration,
    /// The longest backoff (before jitter, which takes up to half of it off).
    pub max_backoff: Duration,
    /// The longest wait a server's `Retry-After` can ask for.
    pub max_retry_after: Duration,
    /// At most this many posts per second to each endpoint (Slack's incoming webhooks allow
    /// about one); `None`: no limit.
    pub max_posts_per_second: Option<f64>,
}

impl Default for DeliveryOptions {
    fn default() -> DeliveryOptions {
        DeliveryOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
            max_posts_per_second: None,
        }
    }
}

/// Counters of an outbox since it was opened and the state of its queue: what the caller turns
/// into metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Alerts an endpoint accepted (2xx).
    pub delivered: u64,
    /// Posts to be tried again (408, 429, 5xx, connection error, timeout).
    pub retried: u64,
    /// Alerts moved to `failed/` (refused with another status, or in an unreadable entry).
    pub failed: u64,
    /// Alerts waiting to be posted.
    pub pending: usize,
    /// Outbox entries (one per webhook and delivery) waiting.
    pub pending_entries: usize,
    /// Age of the oldest pending entry.
    pub oldest_pending_age: Option<Duration>,
}

/// The answer to one post, as the worker acts on it.
#[derive(Debug, PartialEq)]
enum Outcome {
    Delivered,
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Refused {
        status: Option<u16>,
        reason: String,
        body: String,
    },
}

/// Whether a worker finished what it had or was told to stop.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

pub(crate) async fn run_delivery(
    inner: Arc<Inner>,
    options: DeliveryOptions,
    mut shutdown: watch::Receiver<bool>,
) -> DeliveryStats {
    if inner.delivering.swap(true, Ordering::SeqCst) {
        tracing::error!(directory = %inner.directory.display(), "outbox already has a delivery task: not starting another");
        return inner.stats();
    }
    let client = match reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .user_agent(concat!("nightjar/", env!("CARGO_PKG_VERSION")))
        // A redirected POST may turn into a GET elsewhere: a 3xx is a refusal (fix the URL).
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "webhook client could not be built: no delivery");
            inner.delivering.store(false, Ordering::SeqCst);
            return inner.stats();
        }
    };
    let mut changed = inner.changed.subscribe();
    let mut workers: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut last_prune = Instant::now();
    loop {
        changed.borrow_and_update();
        for url in inner.pending_urls() {
            workers.entry(url.clone()).or_insert_with(|| {
                tokio::spawn(endpoint_worker(
                    inner.clone(),
                    client.clone(),
                    options.clone(),
                    url,
                    shutdown.clone(),
                ))
            });
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = Instant::now();
            if let Err(error) = inner.prune_done_markers(DONE_MARKER_RETENTION) {
                tracing::warn!(error = %error, "outbox: pruning delivered markers failed");
            }
        }
        tokio::select! {
            result = changed.changed() => {
                if result.is_err() {
                    break;
                }
            }
            () = stopped(&mut shutdown) => break,
        }
    }
    for (_, worker) in workers {
        if let Err(error) = worker.await {
            tracing::error!(error = %error, "webhook worker ended abnormally");
        }
    }
    inner.delivering.store(false, Ordering::SeqCst);
    inner.stats()
}

/// Resolves once shutdown is asked for (true, or the sender dropped).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Posts every pending entry of one endpoint, oldest first, then waits for more.
async fn endpoint_worker(
    inner: Arc<Inner>,
    client: reqwest::Client,
    options: DeliveryOptions,
    url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let endpoint = endpoint_label(&url);
    let mut changed = inner.changed.subscribe();
    let mut pacing = Pacing::new(&options);
    loop {
        changed.borrow_and_update();
        if let Some((name, _)) = inner.next_entry(&url) {
            let flow = deliver_entry(&inner, &client, &options, &endpoint, &name, &mut pacing, &mut shutdown).await;
            if flow == Flow::Stop {
                return;
            }
            continue;
        }
        tokio::select! {
            result = changed.changed() => {
                if result.is_err() {
                    return;
                }
            }
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Backoff and rate limit of one endpoint.
#[derive(Debug)]
struct Pacing {
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    min_interval: Option<Duration>,
    n_failures: u32,
    next_post_at: Instant,
}

impl Pacing {
    fn new(options: &DeliveryOptions) -> Pacing {
        let min_interval = options
            .max_posts_per_second
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map(|rate| Duration::from_secs_f64((1.0 / rate).min(3600.0)));
        // A zero backoff would retry a down endpoint in a busy loop.
        let initial_backoff = options.initial_backoff.max(Duration::from_millis(1));
        Pacing {
            initial_backoff,
            max_backoff: options.max_backoff.max(initial_backoff),
            max_retry_after: options.max_retry_after,
            min_interval,
            n_failures: 0,
            next_post_at: Instant::now(),
        }
    }

    fn posted(&mut self) {
        if let Some(interval) = self.min_interval {
            self.next_post_at = Instant::now() + interval;
        }
    }

    fn succeeded(&mut self) {
        self.n_failures = 0;
    }

    /// The wait before the next try after a failure: the server's `Retry-After` (between
    /// [`MIN_RETRY_AFTER`] and `max_retry_after`), or
    /// exponential backoff with jitter (between half and all of the doubled delay).
    fn failed(&mut self, retry_after: Option<Duration>) -> Duration {
        self.n_failures = self.n_failures.saturating_add(1);
        if let Some(retry_after) = retry_after {
            return retry_after.min(self.max_retry_after).max(MIN_RETRY_AFTER);
        }
        let doublings = self.n_failures.saturating_sub(1).min(30);
        let backoff = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        let half = backoff / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Posts the rows of one entry from its first row not yet done. Returns `Stop` on shutdown.
async fn deliver_entry(
    inner: &Arc<Inner>,
    client: &reqwest::Client,
    options: &DeliveryOptions,
    endpoint: &str,
    name: &str,
    pacing: &mut Pacing,
    shutdown: &mut watch::Receiver<bool>,
) -> Flow {
    let entry = match blocking(inner, name, |inner, name| inner.read_entry(name)).await {
        Ok(entry) => entry,
        Err(reason) => {
            let quarantined = blocking(inner, name, move |inner, name| inner.quarantine(name, &reason)).await;
            if let Err(error) = quarantined {
                tracing::error!(entry = name, error = %error, "outbox: moving an unreadable entry failed");
                return wait_or_stop(options.max_backoff, shutdown).await;
            }
            return Flow::Continue;
        }
    };
    let Some(start_row) = inner.next_row(name, &entry.generation) else {
        // Replaced by a replay between listing and reading: the worker picks it up again.
        return Flow::Continue;
    };
    for row_idx in start_row..entry.rows.len() {
        if !inner.is_current(name, &entry.generation) {
            return Flow::Continue;
        }
        let body = request_body(&entry, &entry.rows[row_idx]);
        loop {
            if pacing.next_post_at > Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(pacing.next_post_at) => {}
                    () = stopped(shutdown) => return Flow::Stop,
                }
            }
            pacing.posted();
            let outcome = tokio::select! {
                outcome = post(client, &entry.url, body.clone()) => outcome,
                () = stopped(shutdown) => return Flow::Stop,
            };
            match outcome {
                Outcome::Delivered => {
                    pacing.succeeded();
                    inner.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Outcome::Retry { reason, retry_after } => {
                    inner.retried.fetch_add(1, Ordering::Relaxed);
                    let wait = pacing.failed(retry_after);
                    tracing::warn!(
                        endpoint,
                        filter = %entry.filter,
                        position = %entry.position,
                        row_idx,
                        reason = %reason,
                        retry_in_ms = wait.as_millis() as u64,
                        "webhook post failed, will retry"
                    );
                    if wait_or_stop(wait, shutdown).await == Flow::Stop {
                        return Flow::Stop;
                    }
                }
                Outcome::Refused { status, reason, body } => {
                    pacing.succeeded();
                    tracing::error!(
                        endpoint,
                        filter = %entry.filter,
                        survey = %entry.survey,
                        position = %entry.position,
                        row_idx,
                        status,
                        reason = %reason,
                        "webhook refused an alert: moved to failed/"
                    );
                    let record = json!({
                        "endpoint": endpoint,
                        "filter": entry.filter,
                        "survey": entry.survey,
                        "night": entry.night,
                        "position": entry.position,
                        "row_idx": row_idx,
                        "status": status,
                        "reason": reason,
                        "response_body": body,
                        "failed_at_ms": unix_ms(SystemTime::now()),
                        "row": entry.rows[row_idx],
                    });
                    let path = inner.failed_directory.join(format!("{name}_{row_idx}.json"));
                    let written = blocking(inner, name, move |_, _| {
                        write_atomically(&path, record.to_string().as_bytes())
                    })
                    .await;
                    if let Err(error) = written {
                        // Not recorded: keep the alert pending (posted again later) rather than lose it.
                        tracing::error!(error = %error, "webhook: writing a failed alert failed, will retry");
                        if wait_or_stop(options.max_backoff, shutdown).await == Flow::Stop {
                            return Flow::Stop;
                        }
                        continue;
                    }
                    inner.failed.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        let generation = entry.generation.clone();
        let recorded = blocking(inner, name, move |inner, name| {
            inner.record_progress(name, &generation, row_idx + 1)
        })
        .await;
        if let Err(error) = recorded {
            // The alert may be posted again after a restart (at-least-once).
            tracing::warn!(entry = name, error = %error, "outbox: recording progress failed");
        }
    }
    let generation = entry.generation.clone();
    let completed = blocking(inner, name, move |inner, name| inner.complete(name, &generation)).await;
    if let Err(error) = completed {
        tracing::error!(entry = name, error = %error, "outbox: removing a delivered entry failed");
        return wait_or_stop(options.max_backoff, shutdown).await;
    }
    tracing::debug!(endpoint, filter = %entry.filter, position = %entry.position, n_rows = entry.rows.len(), "webhook entry delivered");
    Flow::Continue
}

/// Runs file work of the outbox on tokio's blocking threads, off the async workers.
async fn blocking<T, E>(
    inner: &Arc<Inner>,
    name: &str,
    work: impl FnOnce(&Inner, &str) -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: Send + 'static + From<String>,
{
    let inner = inner.clone();
    let name = name.to_string();
    match tokio::task::spawn_blocking(move || work(&inner, &name)).await {
        Ok(result) => result,
        Err(error) => Err(E::from(format!("outbox file work ended abnormally: {error}"))),
    }
}

async fn wait_or_stop(wait: Duration, shutdown: &mut watch::Receiver<bool>) -> Flow {
    tokio::select! {
        () = tokio::time::sleep(wait) => Flow::Continue,
        () = stopped(shutdown) => Flow::Stop,
    }
}

/// The JSON posted for one row: the row with `filter` and `survey` set, or in Slack mode
/// `{"text": "..."}`.
pub(crate) fn request_body(entry: &Entry, row: &Value) -> Vec<u8> {
    let body = if entry.slack {
        json!({ "text": slack_text(&entry.filter, &entry.survey, row) })
    } else {
        let mut object = row.as_object().cloned().unwrap_or_else(Map::new);
        object.insert("filter".to_string(), Value::String(entry.filter.clone()));
        object.insert("survey".to_string(), Value::String(entry.survey.clone()));
        Value::Object(object)
    };
    body.to_string().into_bytes()
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Outcome {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(error) if error.is_builder() => {
            return Outcome::Refused {
                status: None,
                reason: format!("request could not be built: {error}"),
                body: String::new(),
            };
        }
        Err(error) => {
            return Outcome::Retry {
                reason: error_chain(&error),
                retry_after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Delivered;
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        return Outcome::Retry {
            reason: format!("status {status}"),
            retry_after,
        };
    }
    let mut body = Vec::new();
    while body.len() < MAX_FAILED_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_FAILED_BODY_BYTES);
    Outcome::Refused {
        status: Some(code),
        reason: format!("status {status}"),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date; `None` if it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter() {
        let options = DeliveryOptions {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(10),
            ..DeliveryOptions::default()
        };
        let mut pacing = Pacing::new(&options);
        for expected_ms in [100, 200, 400, 800, 1000, 1000] {
            let wait = pacing.failed(None);
            let expected = Duration::from_millis(expected_ms);
            assert!(
                wait >= expected / 2 && wait <= expected,
                "{wait:?} not in [{:?}, {expected:?}]",
                expected / 2
            );
        }
        assert_eq!(pacing.failed(Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(pacing.failed(Some(Duration::ZERO)), MIN_RETRY_AFTER);
        assert_eq!(pacing.failed(Some(Duration::from_secs(99))), Duration::from_secs(10));
        pacing.succeeded();
        assert!(pacing.failed(None) <= Duration::from_millis(100));
    }

    #[test]
    fn posts_are_spaced_by_the_rate_limit() {
        let limited = DeliveryOptions {
            max_posts_per_second: Some(2.0),
            ..DeliveryOptions::default()
        };
        let mut pacing = Pacing::new(&limited);
        let before = Instant::now();
        pacing.posted();
        assert!(pacing.next_post_at >= before + Duration::from_millis(500));

        for unlimited in [None, Some(0.0), Some(-1.0), Some(f64::NAN)] {
            let options = DeliveryOptions {
                max_posts_per_second: unlimited,
                ..DeliveryOptions::default()
            };
            let mut pacing = Pacing::new(&options);
            let next_post_at = pacing.next_post_at;
            pacing.posted();
            assert_eq!(pacing.next_post_at, next_post_at, "{unlimited:?}: no limit");
        }
    }

    #[test]
    fn a_zero_backoff_is_raised_to_a_millisecond() {
        let options = DeliveryOptions {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            ..DeliveryOptions::default()
        };
        let wait = Pacing::new(&options).failed(None);
        assert!(wait >= Duration::from_micros(500), "{wait:?}");
    }

    #[test]
    fn body_is_the_row_with_filter_and_survey() {
        let entry = Entry {
            url: "http://127.0.0.1:1/hook".to_string(),
            slack: false,
            filter: "bright".to_string(),
            survey: "ztf".to_string(),
            night: "20240101".to_string(),
            position: "p".to_string(),
            generation: "g".to_string(),
            enqueued_at_ms: 0,
            rows: Vec::new(),
        };
        let row = json!({"objectId": "ZTF24aaaaaaa", "magpsf": 18.5});
        let body: Value = serde_json::from_slice(&request_body(&entry, &row)).expect("json");
        assert_eq!(
            body,
            json!({"objectId": "ZTF24aaaaaaa", "magpsf": 18.5, "filter": "bright", "survey": "ztf"})
        );
    }
}
