//! [`Outbox`]: the durable queue of webhook posts, its files and its in-memory index.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic::{create_directory, remove_temporary_files, sync_directory, write_atomically};
use crate::delivery::Delivery;
use crate::error::SinkError;
use crate::webhook::{DeliveryOptions, DeliveryStats};

/// How long the marker of a delivered entry is kept: a replay within this time posts nothing.
pub const DONE_MARKER_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A webhook sink: where a filter's alerts are posted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint, an absolute `http://` or `https://` URL. It may hold a secret (Slack's do):
    /// logs show only its scheme, host and a hash.
    pub url: String,
    /// Post a Slack-compatible `{"text": "..."}` line per alert instead of the alert's JSON.
    #[serde(default)]
    pub slack: bool,
}

impl WebhookConfig {
    pub fn new(url: impl Into<String>, slack: bool) -> WebhookConfig {
        WebhookConfig { url: url.into(), slack }
    }

    /// Checks that the URL is an absolute http(s) URL with a host.
    pub fn validate(&self) -> Result<(), SinkError> {
        let invalid = |reason: &str| SinkError::InvalidUrl {
            url: self.url.chars().take(200).collect(),
            reason: reason.to_string(),
        };
        let url = reqwest::Url::parse(&self.url).map_err(|error| invalid(&error.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("expected an http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        Ok(())
    }
}

/// The URL's scheme, host and port with a hash of the whole URL: names an endpoint in logs and
/// in `failed/` without its path or query, where secrets live.
pub(crate) fn endpoint_label(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}#{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().map(|port| format!(":{port}")).unwrap_or_default(),
            url_hash(url)
        ),
        Err(_) => format!("#{}", url_hash(url)),
    }
}

fn url_hash(url: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(url.as_bytes()))
}

/// One (webhook, delivery) as stored in `pending/{name}.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub url: String,
    pub slack: bool,
    pub filter: String,
    pub survey: String,
    pub night: String,
    pub position: String,
    pub generation: String,
    pub enqueued_at_ms: u64,
    pub rows: Vec<Value>,
}

/// `pending/{name}.progress`: the rows before `next_row` were accepted or moved to `failed/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    generation: String,
    next_row: usize,
}

/// What the outbox knows of a pending entry without reading its rows.
#[derive(Debug, Clone)]
pub(crate) struct EntryState {
    pub url: String,
    pub generation: String,
    pub n_rows: usize,
    pub next_row: usize,
    pub enqueued_at_ms: u64,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub entries: BTreeMap<String, EntryState>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub directory: PathBuf,
    pub pending_directory: PathBuf,
    pub failed_directory: PathBuf,
    pub done_directory: PathBuf,
    state: Mutex<State>,
    /// Bumped by every enqueue: wakes the delivery task.
    pub changed: tokio::sync::watch::Sender<u64>,
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
    /// A delivery task is running.
    pub delivering: AtomicBool,
    /// Held (flock) while this outbox is open; released when the last handle goes.
    _lock: File,
}

/// The durable outbox of webhook posts. [`Outbox::enqueue`] writes a delivery's alerts to disk
/// (fsync) before it returns; the task started by [`Outbox::spawn_delivery`] posts them.
/// Cheap to clone (clones share the same queue).
///
/// Layout of the outbox directory:
///
/// ```text
/// lock                                  held while an Outbox is open
/// pending/{name}.json                   an entry: webhook, delivery names, the rows
/// pending/{name}.progress               rows accepted so far (for the entry's generation)
/// failed/{name}_{row_idx}.json          an alert the endpoint refused (3xx, 4xx), with the answer
/// failed/corrupt_{name}.json            an entry that could not be read back
/// done/{name}                           the generation of a delivered entry, kept 7 days
/// ```
///
/// `{name}` is `{url hash}_{filter}_{survey}_{night}_{position}` (one input range can hold
/// alerts of two nights): a replay of the same input range for
/// the same webhook overwrites its entry. An entry's generation is a hash of the webhook and
/// the rows: replaying identical rows keeps the progress of a pending entry and is skipped
/// for an entry delivered in the last 7 days, so a replay does not post again what an
/// endpoint already accepted; rows that differ replace the entry and are posted in full.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub(crate) inner: Arc<Inner>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `directory`. Entries left pending by an earlier run
    /// (a crash or a restart) are loaded and will be delivered by [`Outbox::spawn_delivery`],
    /// from the first row not yet accepted. An entry that cannot be read back is moved to
    /// `failed/` and logged. Only one `Outbox` may hold a directory at a time: the lock is
    /// released when every clone and the delivery task are gone.
    pub fn open(directory: impl Into<PathBuf>) -> Result<Outbox, SinkError> {
        let directory = directory.into();
        let pending_directory = directory.join("pending");
        let failed_directory = directory.join("failed");
        let done_directory = directory.join("done");
        for path in [&directory, &pending_directory, &failed_directory, &done_directory] {
            create_directory(path)?;
        }
        let lock_path = directory.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(SinkError::io("open lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SinkError::OutboxLocked { directory, lock_path });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(SinkError::Io {
                    action: "lock",
                    path: lock_path,
                    source,
                });
            }
        }
        for path in [&pending_directory, &failed_directory, &done_directory] {
            remove_temporary_files(path)?;
        }
        let (changed, _) = tokio::sync::watch::channel(0);
        let inner = Inner {
            directory,
            pending_directory,
            failed_directory,
            done_directory,
            state: Mutex::new(State::default()),
            changed,
            delivered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            delivering: AtomicBool::new(false),
            _lock: lock,
        };
        inner.load_pending()?;
        inner.prune_done_markers(DONE_MARKER_RETENTION)?;
        Ok(Outbox { inner: Arc::new(inner) })
    }

    /// The outbox directory.
    pub fn directory(&self) -> &Path {
        &self.inner.directory
    }

    /// Queues one post per row of `delivery` for `webhook`, durably: the entry is written,
    /// synced and renamed into `pending/` before this returns, so the caller may then commit
    /// its input. Never waits for an endpoint. The entry is named after (webhook URL, filter,
    /// survey, night, position): a replay of the same input range overwrites it (identical rows keep
    /// its progress, and are skipped if it was delivered in the last 7 days). No rows: nothing.
    ///
    /// This is blocking file I/O (a write and two fsyncs, a few milliseconds): from async code,
    /// call it where blocking is allowed (`spawn_blocking`) if that matters.
    pub fn enqueue(&self, webhook: &WebhookConfig, delivery: &Delivery) -> Result<(), SinkError> {
        webhook.validate()?;
        delivery.validate()?;
        if delivery.rows.is_empty() {
            return Ok(());
        }
        let name = entry_name(webhook, delivery);
        let generation = generation(webhook, delivery);
        let inner = &self.inner;
        let mut state = inner.lock_state();
        if state
            .entries
            .get(&name)
            .is_some_and(|entry| entry.generation == generation)
        {
            tracing::debug!(
                filter = delivery.filter,
                position = delivery.position,
                "outbox entry already pending"
            );
            return Ok(());
        }
        let done_path = inner.done_directory.join(&name);
        if std::fs::read_to_string(&done_path).is_ok_and(|text| text.trim() == generation) {
            tracing::debug!(
                filter = delivery.filter,
                position = delivery.position,
                "outbox entry already delivered"
            );
            return Ok(());
        }
        let entry = Entry {
            url: webhook.url.clone(),
            slack: webhook.slack,
            filter: delivery.filter.to_string(),
            survey: delivery.survey.to_string(),
            night: delivery.night.to_string(),
            position: delivery.position.to_string(),
            generation: generation.clone(),
            enqueued_at_ms: unix_ms(SystemTime::now()),
            rows: delivery.rows.to_vec(),
        };
        let entry_path = inner.entry_path(&name);
        let bytes = serde_json::to_vec(&entry).map_err(|error| SinkError::Io {
            action: "serialise",
            path: entry_path.clone(),
            source: error.into(),
        })?;
        write_atomically(&entry_path, &bytes)?;
        let replaced = state.entries.insert(
            name,
            EntryState {
                url: entry.url,
                generation,
                n_rows: entry.rows.len(),
                next_row: 0,
                enqueued_at_ms: entry.enqueued_at_ms,
            },
        );
        drop(state);
        tracing::debug!(
            filter = delivery.filter,
            survey = delivery.survey,
            position = delivery.position,
            endpoint = %endpoint_label(&webhook.url),
            n_rows = delivery.rows.len(),
            replaced = replaced.is_some(),
            "outbox entry queued"
        );
        inner.changed.send_modify(|version| *version = version.wrapping_add(1));
        Ok(())
    }

    /// Alerts waiting to be posted (every row of every pending entry not yet accepted or failed).
    pub fn pending(&self) -> usize {
        self.inner
            .lock_state()
            .entries
            .values()
            .map(|entry| entry.n_rows.saturating_sub(entry.next_row))
            .sum()
    }

    /// A snapshot of the counters (since this outbox was opened) and of the queue, for metrics.
    pub fn stats(&self) -> DeliveryStats {
        self.inner.stats()
    }

    /// Starts the background delivery on the current tokio runtime: one worker per endpoint,
    /// so a slow or failing endpoint never holds up another. It stops when `shutdown` becomes
    /// true (or its sender is dropped), promptly: a post in flight is abandoned and its alert
    /// stays pending (at-least-once). The task returns the final [`DeliveryStats`]. Only one
    /// delivery task runs per outbox: a second one, while the first runs, returns at once.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn`).
    pub fn spawn_delivery(
        &self,
        options: DeliveryOptions,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<DeliveryStats> {
        tokio::spawn(crate::webhook::run_delivery(self.inner.clone(), options, shutdown))
    }
}

fn entry_name(webhook: &WebhookConfig, delivery: &Delivery) -> String {
    format!(
        "{}_{}_{}_{}_{}",
        url_hash(&webhook.url),
        delivery.filter,
        delivery.survey,
        delivery.night,
        delivery.position
    )
}

fn generation(webhook: &WebhookConfig, delivery: &Delivery) -> String {
    let key = serde_json::json!([webhook.url, webhook.slack, delivery.night, delivery.rows]);
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(key.to_string().as_bytes()))
}

pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Inner {
    pub(crate) fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as the files: go on.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn entry_path(&self, name: &str) -> PathBuf {
        self.pending_directory.join(format!("{name}.json"))
    }

    fn progress_path(&self, name: &str) -> PathBuf {
        self.pending_directory.join(format!("{name}.progress"))
    }

    pub(crate) fn stats(&self) -> DeliveryStats {
        let state = self.lock_state();
        let now_ms = unix_ms(SystemTime::now());
        DeliveryStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            pending: state
                .entries
                .values()
                .map(|entry| entry.n_rows.saturating_sub(entry.next_row))
                .sum(),
            pending_entries: state.entries.len(),
            oldest_pending_age: state
                .entries
                .values()
                .map(|entry| entry.enqueued_at_ms)
                .min()
                .map(|oldest_ms| Duration::from_millis(now_ms.saturating_sub(oldest_ms))),
        }
    }

    /// The URLs that have pending entries.
    pub(crate) fn pending_urls(&self) -> Vec<String> {
        let state = self.lock_state();
        let mut urls: Vec<String> = state.entries.values().map(|entry| entry.url.clone()).collect();
        urls.sort();
        urls.dedup();
        urls
    }

    /// The oldest pending entry for `url`.
    pub(crate) fn next_entry(&self, url: &str) -> Option<(String, EntryState)> {
        let state = self.lock_state();
        state
            .entries
            .iter()
            .filter(|(_, entry)| entry.url == url)
            .min_by_key(|(name, entry)| (entry.enqueued_at_ms, name.as_str()))
            .map(|(name, entry)| (name.clone(), entry.clone()))
    }

    /// The first row of `name` not yet done, if it is still pending with this generation.
    pub(crate) fn next_row(&self, name: &str, generation: &str) -> Option<usize> {
        self.lock_state()
            .entries
            .get(name)
            .filter(|entry| entry.generation == generation)
            .map(|entry| entry.next_row)
    }

    /// Whether `name` is still pending with this generation (not replaced by a replay).
    pub(crate) fn is_current(&self, name: &str, generation: &str) -> bool {
        self.lock_state()
            .entries
            .get(name)
            .is_some_and(|entry| entry.generation == generation)
    }

    /// Reads a pending entry's file.
    pub(crate) fn read_entry(&self, name: &str) -> Result<Entry, String> {
        let path = self.entry_path(name);
        let bytes = std::fs::read(&path).map_err(|error| format!("read {}: {error}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|error| format!("parse {}: {error}", path.display()))
    }

    /// Records that the rows before `next_row` of `name` (this generation) are done.
    pub(crate) fn record_progress(&self, name: &str, generation: &str, next_row: usize) -> Result<(), SinkError> {
        let path = self.progress_path(name);
        let progress = Progress {
            generation: generation.to_string(),
            next_row,
        };
        let bytes = serde_json::to_vec(&progress).map_err(|error| SinkError::Io {
            action: "serialise",
            path: path.clone(),
            source: error.into(),
        })?;
        let mut state = self.lock_state();
        if let Some(entry) = state.entries.get_mut(name)
            && entry.generation == generation
        {
            write_atomically(&path, &bytes)?;
            entry.next_row = next_row;
        }
        Ok(())
    }

    /// Removes a finished entry (unless a replay replaced it meanwhile) and leaves its marker.
    pub(crate) fn complete(&self, name: &str, generation: &str) -> Result<(), SinkError> {
        let mut state = self.lock_state();
        if state
            .entries
            .get(name)
            .is_none_or(|entry| entry.generation != generation)
        {
            return Ok(());
        }
        write_atomically(&self.done_directory.join(name), generation.as_bytes())?;
        for path in [self.entry_path(name), self.progress_path(name)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(SinkError::io("remove", &path)(error)),
            }
        }
        sync_directory(&self.pending_directory)?;
        state.entries.remove(name);
        Ok(())
    }

    /// Moves an entry that cannot be read back to `failed/corrupt_{name}.json`.
    pub(crate) fn quarantine(&self, name: &str, reason: &str) -> Result<(), SinkError> {
        let mut state = self.lock_state();
        let remaining = state
            .entries
            .remove(name)
            .map(|entry| entry.n_rows.saturating_sub(entry.next_row))
            .unwrap_or(0);
        self.quarantine_file(name, reason)?;
        self.failed.fetch_add(remaining as u64, Ordering::Relaxed);
        Ok(())
    }

    fn quarantine_file(&self, name: &str, reason: &str) -> Result<(), SinkError> {
        let from = self.entry_path(name);
        let to = self.failed_directory.join(format!("corrupt_{name}.json"));
        tracing::error!(entry = name, path = %from.display(), moved_to = %to.display(), reason, "outbox entry unreadable");
        std::fs::rename(&from, &to).map_err(SinkError::io("move an unreadable entry to", &to))?;
        let _ = std::fs::remove_file(self.progress_path(name));
        sync_directory(&self.pending_directory)?;
        sync_directory(&self.failed_directory)
    }

    /// Loads `pending/` into the state (at open).
    fn load_pending(&self) -> Result<(), SinkError> {
        let listing =
            std::fs::read_dir(&self.pending_directory).map_err(SinkError::io("list", &self.pending_directory))?;
        let mut names = Vec::new();
        let mut progress_names = Vec::new();
        for item in listing {
            let item = item.map_err(SinkError::io("list", &self.pending_directory))?;
            let file_name = item.file_name().to_string_lossy().into_owned();
            if let Some(name) = file_name.strip_suffix(".json") {
                names.push(name.to_string());
            } else if let Some(name) = file_name.strip_suffix(".progress") {
                progress_names.push(name.to_string());
            }
        }
        let mut state = self.lock_state();
        for name in names {
            let entry = match self.read_entry(&name) {
                Ok(entry) => entry,
                Err(reason) => {
                    self.quarantine_file(&name, &reason)?;
                    continue;
                }
            };
            let next_row = std::fs::read(self.progress_path(&name))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Progress>(&bytes).ok())
                .filter(|progress| progress.generation == entry.generation)
                .map_or(0, |progress| progress.next_row.min(entry.rows.len()));
            state.entries.insert(
                name,
                EntryState {
                    url: entry.url,
                    generation: entry.generation,
                    n_rows: entry.rows.len(),
                    next_row,
                    enqueued_at_ms: entry.enqueued_at_ms,
                },
            );
        }
        for name in progress_names {
            if !state.entries.contains_key(&name) {
                let _ = std::fs::remove_file(self.progress_path(&name));
            }
        }
        if !state.entries.is_empty() {
            tracing::info!(
                n_entries = state.entries.len(),
                directory = %self.directory.display(),
                "outbox has pending entries from an earlier run"
            );
        }
        Ok(())
    }

    /// Removes the markers of entries delivered more than `retention` ago.
    pub(crate) fn prune_done_markers(&self, retention: Duration) -> Result<usize, SinkError> {
        let listing = std::fs::read_dir(&self.done_directory).map_err(SinkError::io("list", &self.done_directory))?;
        let now = SystemTime::now();
        let mut n_removed = 0;
        for item in listing {
            let item = item.map_err(SinkError::io("list", &self.done_directory))?;
            let modified = item.metadata().and_then(|metadata| metadata.modified());
            let expired = modified
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > retention);
            if expired {
                let path = item.path();
                std::fs::remove_file(&path).map_err(SinkError::io("remove", &path))?;
                n_removed += 1;
            }
        }
        Ok(n_removed)
    }
}
