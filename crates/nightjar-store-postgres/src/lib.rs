//! nightjar's PostgreSQL store: one database shared by many ingestion workers and the API,
//! with the same logical schema, keys and idempotent writes as the embedded SQLite store.
//!
//! - [`PostgresStore::connect`] applies the versioned migrations (`schema_migrations`) under a
//!   session advisory lock, so workers starting together do not race; a database written by a
//!   newer nightjar is refused with [`StoreError::TooNew`].
//! - A batch is one transaction: rows are sorted by key and sent per table as one
//!   `INSERT ... SELECT FROM UNNEST(arrays) ON CONFLICT DO NOTHING` (see `write.rs`). Every
//!   writer takes rows and tables in the same order, so concurrent workers with overlapping
//!   batches do not deadlock; a deadlock or serialization failure that happens all the same is
//!   retried a few times.
//! - The tables that grow every night (detections, upper limits, forced photometry, alerts,
//!   cutouts) are partitioned by month of `night`; a batch first creates the partitions it
//!   needs, and [`Store::prune`] drops whole months before the night (see `schema.rs`).
//! - Cone search uses q3c's index (`q3c_radial_query`) where the server has the q3c extension
//!   and [`Options::use_q3c`] asks for it, else the HEALPix index of the objects' mean positions
//!   (NESTED, order [`nightjar_store::HEALPIX_ORDER`], as in SQLite); then the exact distance.
//!   [`PostgresStore::cone_search_method`] says which.
//! - Connections come from a small pool of idle clients; each client's connection task runs on
//!   the tokio runtime that opened it, so a store belongs to one runtime.
//!
//! Invariant: the only crate that links the PostgreSQL driver.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio_postgres::{Client, Config, NoTls};

use nightjar_core::{Alert, Survey};
use nightjar_store::{
    AlertRow, AlertSelection, ClassCount, CutoutRow, DeadLetter, LightCurve, Night, NightCount, ObjectSummary,
    PruneSummary, Store, StoreCounts, StoreError, TimeWindow, WriteSummary,
};

mod error;
mod read;
mod schema;
mod write;

use error::{Failed, display_url, map_postgres};
use read::ReadFailure;

/// True for text holding a NUL character: PostgreSQL's `text` cannot hold one (the server
/// refuses it as a parameter), so no stored value matches it and the query is not sent.
fn holds_nul(text: &str) -> bool {
    text.contains('\0')
}

/// Idle connections kept open between calls.
const MAX_IDLE_CONNECTIONS: usize = 8;

/// Attempts of a write transaction that failed with a deadlock or serialization failure.
const MAX_WRITE_ATTEMPTS: usize = 5;

/// How to connect; [`Options::default`] is what [`PostgresStore::connect`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Cone search with the q3c extension: installed at connect (`CREATE EXTENSION IF NOT EXISTS
    /// q3c`, which needs the server package, e.g. Debian's `postgresql-15-q3c`, and a user allowed
    /// to create it) with an index on the objects. Where that fails, or when false, cone search
    /// uses the HEALPix index. Default true.
    pub use_q3c: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { use_q3c: true }
    }
}

/// A PostgreSQL store.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The database, for messages: `postgres://user@host:port/db`, without the password.
    url: String,
    config: Config,
    idle: Mutex<Vec<Client>>,
    raw_paths: nightjar_store::rows::RawPathCache,
    cone_search: schema::ConeSearch,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore").field("url", &self.inner.url).finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host:port/db`, or the
    /// `key=value` form) and applies the schema migrations it lacks. A database written by a
    /// newer nightjar is refused with [`StoreError::TooNew`]. Must be called inside a tokio
    /// runtime, which then runs the store's connections.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, Options::default()).await
    }

    /// [`PostgresStore::connect`] with `options`.
    pub async fn connect_with(url: &str, options: Options) -> Result<PostgresStore, StoreError> {
        let config: Config = url.parse().map_err(|error| {
            StoreError::InvalidArgument(format!(
                "invalid PostgreSQL URL: {error}; expected postgres://user@host:port/database"
            ))
        })?;
        let mut inner = Inner {
            url: display_url(&config),
            config,
            idle: Mutex::new(Vec::new()),
            raw_paths: nightjar_store::rows::RawPathCache::default(),
            cone_search: schema::ConeSearch::Healpix,
        };
        // Migrations on a connection of their own: closing it releases the advisory lock even if
        // migrating fails half-way.
        let mut client = inner.open().await?;
        inner.cone_search = schema::migrate(&mut client, &inner.url, options.use_q3c).await?;
        drop(client);
        tracing::debug!(
            url = inner.url,
            version = schema::latest_version(),
            cone_search = inner.cone_search.name(),
            "connected to the store"
        );
        Ok(PostgresStore { inner: Arc::new(inner) })
    }

    /// The database, as `postgres://user@host:port/db` (never the password).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How cone search finds candidates: `"q3c"` (the q3c extension's index) or `"healpix"`.
    pub fn cone_search_method(&self) -> &'static str {
        self.inner.cone_search.name()
    }

    /// The schema version this code writes.
    pub fn schema_version() -> i64 {
        schema::latest_version()
    }
}

impl Inner {
    /// Opens a new connection and spawns its connection task.
    async fn open(&self) -> Result<Client, StoreError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|error| map_postgres(&error, &self.url, "connecting to PostgreSQL"))?;
        let url = self.url.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(url, %error, "PostgreSQL connection closed with an error");
            }
        });
        Ok(client)
    }

    /// An idle connection, or a new one.
    async fn client(&self) -> Result<PooledClient<'_>, StoreError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
            match idle {
                Some(client) if client.is_closed() => continue,
                Some(client) => {
                    return Ok(PooledClient {
                        client: Some(client),
                        inner: self,
                    });
                }
                None => break,
            }
        }
        let client = self.open().await?;
        Ok(PooledClient {
            client: Some(client),
            inner: self,
        })
    }

    /// Converts a read failure.
    fn read_failed(&self) -> impl Fn(ReadFailure) -> StoreError + '_ {
        |failure| failure.into_store_error(&self.url)
    }

    /// After a failed write transaction: `Ok` to try again (a deadlock or serialization failure,
    /// fewer than [`MAX_WRITE_ATTEMPTS`] so far), else the error.
    fn retry_or_fail(&self, failure: Failed, attempts: &mut usize) -> Result<(), StoreError> {
        *attempts += 1;
        if failure.is_retryable() && *attempts < MAX_WRITE_ATTEMPTS {
            tracing::warn!(url = self.url, attempt = *attempts, context = failure.context, error = %failure.error,
                "retrying a write transaction");
            return Ok(());
        }
        Err(failure.into_store_error(&self.url))
    }
}

/// A connection taken from the pool; goes back to it when dropped, unless closed.
struct PooledClient<'a> {
    client: Option<Client>,
    inner: &'a Inner,
}

impl Deref for PooledClient<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        // Always Some until drop.
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("a pooled client is taken only on drop"))
    }
}

impl DerefMut for PooledClient<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("a pooled client is taken only on drop"))
    }
}

impl Drop for PooledClient<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        if client.is_closed() {
            return;
        }
        let mut idle = self.inner.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(client);
        }
    }
}

/// Seconds since the Unix epoch, 0 if the clock is before it.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// Runs a write transaction, again after a deadlock or serialization failure.
macro_rules! write_with_retry {
    ($inner:expr, |$client:ident| $write:expr) => {{
        let inner = $inner;
        let mut attempts = 0;
        loop {
            let mut $client = inner.client().await?;
            match $write.await {
                Ok(value) => break Ok(value),
                Err(failure) => inner.retry_or_fail(failure, &mut attempts)?,
            }
        }
    }};
}

#[async_trait]
impl Store for PostgresStore {
    async fn write_batch(&self, alerts: &[Alert]) -> Result<WriteSummary, StoreError> {
        if alerts.is_empty() {
            return Ok(WriteSummary::default());
        }
        let raw_detections: Vec<String> = alerts
            .iter()
            .map(|alert| self.inner.raw_paths.raw_detection_json(alert))
            .collect();
        let nights = write::batch_nights(alerts);
        write_with_retry!(&self.inner, |client| write::write_batch_into_partitions(
            &mut client,
            alerts,
            &raw_detections,
            &nights
        ))
    }

    async fn write_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>, StoreError> {
        if letters.is_empty() {
            return Ok(Vec::new());
        }
        write_with_retry!(&self.inner, |client| write::write_dead_letters(&mut client, letters))
    }

    async fn light_curve(&self, survey: Survey, object_id: &str) -> Result<Option<LightCurve>, StoreError> {
        if holds_nul(object_id) {
            return Ok(None);
        }
        let mut client = self.inner.client().await?;
        read::light_curve(&mut client, survey, object_id)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn cone_search(
        &self,
        ra: f64,
        dec: f64,
        radius_deg: f64,
        window: TimeWindow,
    ) -> Result<Vec<(ObjectSummary, f64)>, StoreError> {
        nightjar_store::sky::validate_cone(ra, dec, radius_deg)?;
        let client = self.inner.client().await?;
        read::cone_search(&client, self.inner.cone_search, ra, dec, radius_deg, window)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn latest_alerts(
        &self,
        window: TimeWindow,
        selection: &AlertSelection,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        if let AlertSelection::Class(text) | AlertSelection::Tag(text) = selection
            && holds_nul(text)
        {
            return Ok(Vec::new());
        }
        let client = self.inner.client().await?;
        read::latest_alerts(&client, window, selection, limit)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn classes(&self) -> Result<Vec<ClassCount>, StoreError> {
        let client = self.inner.client().await?;
        read::classes(&client).await.map_err(self.inner.read_failed())
    }

    async fn alert(&self, survey: Survey, source_id: i64) -> Result<Option<AlertRow>, StoreError> {
        let client = self.inner.client().await?;
        read::alert(&client, survey, source_id)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn solar_system_alerts(&self, name: &str, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        if holds_nul(name) {
            return Ok(Vec::new());
        }
        let client = self.inner.client().await?;
        read::solar_system_alerts(&client, name, limit)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn cutouts(&self, survey: Survey, source_id: i64) -> Result<Vec<CutoutRow>, StoreError> {
        let client = self.inner.client().await?;
        read::cutouts(&client, survey, source_id)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn counts_per_night(&self) -> Result<Vec<NightCount>, StoreError> {
        let client = self.inner.client().await?;
        read::counts_per_night(&client).await.map_err(self.inner.read_failed())
    }

    async fn dead_letters(&self, reason: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        if reason.is_some_and(holds_nul) {
            return Ok(Vec::new());
        }
        let client = self.inner.client().await?;
        read::dead_letters(&client, reason, limit)
            .await
            .map_err(self.inner.read_failed())
    }

    async fn delete_dead_letters(&self, ids: &[i64]) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        write_with_retry!(&self.inner, |client| write::delete_dead_letters(&mut client, ids))
    }

    async fn prune(&self, before: Night) -> Result<PruneSummary, StoreError> {
        write_with_retry!(&self.inner, |client| write::prune(&mut client, before))
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        let client = self.inner.client().await?;
        read::counts(&client).await.map_err(self.inner.read_failed())
    }
}
