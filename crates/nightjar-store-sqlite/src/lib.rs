//! nightjar's embedded default store: SQLite in WAL mode, zero set-up, readable with `sqlite3`,
//! DuckDB or pandas.
//!
//! A data directory holds:
//! - `nightjar.sqlite`: objects, detections, upper limits, forced photometry, alerts, dead
//!   letters (the tabular data; see `schema.rs` for the tables);
//! - `cutouts.sqlite`: the image stamps (about three quarters of the bytes), kept apart so the
//!   tabular file stays small and fast to back up or query; attached to every connection as
//!   schema `cutouts`, so one transaction covers both files;
//! - `writer.lock`: the writer lock (see [`SqliteStore::open`]).
//!
//! A batch is one transaction over both files: a failed batch leaves neither changed. SQLite
//! commits attached WAL databases one after the other, so a crash in the middle of a commit
//! can leave the cutouts of a batch without its rows or the reverse; the batch is then replayed
//! (its offsets were not committed) and the idempotent writes fill in what is missing.
//!
//! SQLite is synchronous: every [`Store`] call runs on a blocking thread
//! (`tokio::task::spawn_blocking`). Writes go through one connection behind a mutex; reads use a
//! small pool of read-only connections, which WAL lets run while a batch is being written.
//!
//! Invariant: the only crate that links SQLite.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};

use nightjar_core::{Alert, Survey};
use nightjar_store::{
    AlertRow, AlertSelection, ClassCount, CutoutRow, DeadLetter, LightCurve, Night, NightCount, ObjectSummary,
    PruneSummary, Store, StoreCounts, StoreError, TimeWindow, WriteSummary,
};

mod error;
mod lock;
mod read;
mod schema;
mod write;

pub use lock::LOCK_FILE_NAME;

use error::{backend, map_sqlite};
use lock::WriterLock;

/// File name of the tabular database inside the data directory.
pub const DATABASE_FILE_NAME: &str = "nightjar.sqlite";
/// File name of the cutouts database inside the data directory.
pub const CUTOUTS_FILE_NAME: &str = "cutouts.sqlite";

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections kept open between calls.
const MAX_IDLE_READERS: usize = 4;
/// Prepared statements cached per connection.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// The SQLite store of one data directory.
///
/// Cloning is cheap and shares the connections (and, for a writer, the writer lock).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// State shared by the clones of a store.
pub(crate) struct Inner {
    /// The database file, for error messages.
    pub(crate) path: String,
    database_path: PathBuf,
    cutouts_path: PathBuf,
    /// The writer connection; `None` for a read-only store. Dropped before the lock.
    writer: Option<Mutex<write::Writer>>,
    /// Idle read connections.
    readers: Mutex<Vec<Connection>>,
    /// Held for the writer's lifetime; declared last so it is released last.
    lock: Option<WriterLock>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.writer.is_none())
            .field("lock", &self.inner.lock.as_ref().map(WriterLock::path))
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` for writing.
    ///
    /// Takes the writer lock `<data_dir>/writer.lock` for the store's lifetime: a second writer
    /// gets [`StoreError::Locked`], naming the lock file and its holder (pid and start time).
    /// Applies the schema migrations this store lacks; a store written by a newer nightjar is
    /// refused with [`StoreError::TooNew`].
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|error| backend(&format!("creating the data directory {}", data_dir.display()), error))?;
        let lock = WriterLock::acquire(data_dir)?;
        let database_path = data_dir.join(DATABASE_FILE_NAME);
        let cutouts_path = data_dir.join(CUTOUTS_FILE_NAME);
        let path = database_path.display().to_string();

        let mut connection = open_connection(&database_path, &cutouts_path, &path, false)?;
        schema::migrate(&mut connection, &path)?;
        tracing::debug!(path, version = schema::latest_version(), "opened the store for writing");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                database_path,
                cutouts_path,
                writer: Some(Mutex::new(write::Writer::new(connection))),
                readers: Mutex::new(Vec::new()),
                lock: Some(lock),
            }),
        })
    }

    /// Opens the store in `data_dir` for reading only (the API server), without the writer lock:
    /// it may run while a writer holds it. The store must exist and be at this code's schema
    /// version; writes return [`StoreError::InvalidArgument`].
    pub fn open_read_only(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        let database_path = data_dir.join(DATABASE_FILE_NAME);
        let cutouts_path = data_dir.join(CUTOUTS_FILE_NAME);
        let path = database_path.display().to_string();
        if !database_path.is_file() || !cutouts_path.is_file() {
            return Err(StoreError::InvalidArgument(format!(
                "no store at {}: expected {DATABASE_FILE_NAME} and {CUTOUTS_FILE_NAME}; run `nightjar run` on it first",
                data_dir.display()
            )));
        }
        let connection = open_connection(&database_path, &cutouts_path, &path, true)?;
        let found = schema::read_version(&connection, &path)?;
        let supported = schema::latest_version();
        if found > supported {
            return Err(StoreError::TooNew { path, found, supported });
        }
        if found < supported {
            return Err(StoreError::InvalidArgument(format!(
                "the store at {path} has schema version {found}, older than this nightjar's {supported}; \
                 open it once for writing (`nightjar run`) to upgrade it"
            )));
        }
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                database_path,
                cutouts_path,
                writer: None,
                readers: Mutex::new(vec![connection]),
                lock: None,
            }),
        })
    }

    /// The database file (`<data_dir>/nightjar.sqlite`).
    pub fn path(&self) -> &Path {
        &self.inner.database_path
    }

    /// The schema version this code writes.
    pub fn schema_version() -> i64 {
        schema::latest_version()
    }

    /// Adds the output columns a science module declares to `table` (`objects`, `detections`,
    /// `alerts`, ...), as `(name, type)` with type one of INTEGER, REAL, TEXT, BLOB, NUMERIC.
    /// Idempotent: columns that exist with the same type are left alone. Returns the columns
    /// added. Names must be plain identifiers (`[A-Za-z_][A-Za-z0-9_]*`).
    pub fn ensure_columns(&self, table: &str, columns: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        let mut writer = self.inner.writer()?;
        schema::ensure_columns(&mut writer.connection, &self.inner.path, table, columns)
    }

    /// Caps each of the two database files at about `max_bytes` (rounded down to whole pages, and
    /// never below what a file holds already) for this store's lifetime. A write that would pass
    /// the cap fails with [`StoreError::DiskFull`] and stores nothing, as on a full disk: a
    /// bound on the store's size, and how the tests simulate a full disk.
    pub fn set_size_limit(&self, max_bytes: u64) -> Result<(), StoreError> {
        let writer = self.inner.writer()?;
        for schema in ["main", "cutouts"] {
            let fail = |error| map_sqlite(error, &self.inner.path, "setting the size limit");
            let page_size: i64 = writer
                .connection
                .query_row(&format!("PRAGMA {schema}.page_size"), [], |row| row.get(0))
                .map_err(fail)?;
            let pages = max_bytes / u64::try_from(page_size.max(1)).unwrap_or(1);
            let pages = i64::try_from(pages).unwrap_or(i64::MAX);
            writer
                .connection
                .query_row(&format!("PRAGMA {schema}.max_page_count = {pages}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(fail)?;
        }
        Ok(())
    }

    /// Runs `operation` on a blocking thread with the shared state.
    async fn run<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || operation(&inner))
            .await
            .map_err(|error| backend("running a store operation", error))?
    }
}

impl Inner {
    /// The writer connection, or an error for a read-only store.
    pub(crate) fn writer(&self) -> Result<MutexGuard<'_, write::Writer>, StoreError> {
        let writer = self.writer.as_ref().ok_or_else(|| {
            StoreError::InvalidArgument(format!(
                "the store at {} was opened read-only; writes need SqliteStore::open",
                self.path
            ))
        })?;
        // A panic while holding the lock leaves no half-done transaction (it rolls back on drop).
        Ok(writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Runs `read` on an idle read connection (opened if none is idle) and puts it back.
    pub(crate) fn with_reader<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => open_connection(&self.database_path, &self.cutouts_path, &self.path, true)?,
        };
        let result = read(&connection);
        let mut readers = self.readers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if readers.len() < MAX_IDLE_READERS {
            readers.push(connection);
        }
        result
    }
}

/// Opens a connection to the database with the cutouts file attached as schema `cutouts`.
fn open_connection(
    database_path: &Path,
    cutouts_path: &Path,
    path: &str,
    read_only: bool,
) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let context = if read_only {
        "opening the store for reading"
    } else {
        "opening the store"
    };
    let connection =
        Connection::open_with_flags(database_path, flags).map_err(|error| map_sqlite(error, path, context))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| map_sqlite(error, path, context))?;
    let cutouts = cutouts_path
        .to_str()
        .ok_or_else(|| StoreError::InvalidArgument(format!("the path {} is not UTF-8", cutouts_path.display())))?;
    // Attached databases are opened with the connection's flags (read-only for readers).
    connection
        .execute("ATTACH DATABASE ?1 AS cutouts", [cutouts])
        .map_err(|error| map_sqlite(error, path, "attaching the cutouts database"))?;
    if read_only {
        connection
            .execute_batch("PRAGMA query_only = ON;")
            .map_err(|error| map_sqlite(error, path, context))?;
    } else {
        // journal_mode and synchronous are per database file; foreign_keys per connection.
        connection
            .execute_batch(
                "PRAGMA main.journal_mode = WAL;
                 PRAGMA cutouts.journal_mode = WAL;
                 PRAGMA main.synchronous = NORMAL;
                 PRAGMA cutouts.synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA main.cache_size = -32000;
                 PRAGMA cutouts.cache_size = -8000;",
            )
            .map_err(|error| map_sqlite(error, path, context))?;
    }
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(connection)
}

/// Seconds since the Unix epoch, 0 if the clock is before it.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Store for SqliteStore {
    async fn write_batch(&self, alerts: &[Alert]) -> Result<WriteSummary, StoreError> {
        if alerts.is_empty() {
            return Ok(WriteSummary::default());
        }
        // The blocking thread needs owned alerts; the clone shares raw records and cutout bytes.
        let alerts = alerts.to_vec();
        self.run(move |inner| {
            let mut writer = inner.writer()?;
            writer.write_batch(&inner.path, &alerts)
        })
        .await
    }

    async fn write_dead_letters(&self, letters: &[DeadLetter]) -> Result<Vec<i64>, StoreError> {
        let letters = letters.to_vec();
        self.run(move |inner| inner.writer()?.write_dead_letters(&inner.path, &letters))
            .await
    }

    async fn light_curve(&self, survey: Survey, object_id: &str) -> Result<Option<LightCurve>, StoreError> {
        let object_id = object_id.to_string();
        self.run(move |inner| {
            inner.with_reader(|connection| read::light_curve(connection, &inner.path, survey, &object_id))
        })
        .await
    }

    async fn cone_search(
        &self,
        ra: f64,
        dec: f64,
        radius_deg: f64,
        window: TimeWindow,
    ) -> Result<Vec<(ObjectSummary, f64)>, StoreError> {
        nightjar_store::sky::validate_cone(ra, dec, radius_deg)?;
        self.run(move |inner| {
            inner.with_reader(|connection| read::cone_search(connection, &inner.path, ra, dec, radius_deg, window))
        })
        .await
    }

    async fn latest_alerts(
        &self,
        window: TimeWindow,
        selection: &AlertSelection,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let selection = selection.clone();
        self.run(move |inner| {
            inner.with_reader(|connection| read::latest_alerts(connection, &inner.path, window, &selection, limit))
        })
        .await
    }

    async fn classes(&self) -> Result<Vec<ClassCount>, StoreError> {
        self.run(move |inner| inner.with_reader(|connection| read::classes(connection, &inner.path)))
            .await
    }

    async fn alert(&self, survey: Survey, source_id: i64) -> Result<Option<AlertRow>, StoreError> {
        self.run(move |inner| inner.with_reader(|connection| read::alert(connection, &inner.path, survey, source_id)))
            .await
    }

    async fn solar_system_alerts(&self, name: &str, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        let name = name.to_string();
        self.run(move |inner| {
            inner.with_reader(|connection| read::solar_system_alerts(connection, &inner.path, &name, limit))
        })
        .await
    }

    async fn cutouts(&self, survey: Survey, source_id: i64) -> Result<Vec<CutoutRow>, StoreError> {
        self.run(move |inner| inner.with_reader(|connection| read::cutouts(connection, &inner.path, survey, source_id)))
            .await
    }

    async fn counts_per_night(&self) -> Result<Vec<NightCount>, StoreError> {
        self.run(move |inner| inner.with_reader(|connection| read::counts_per_night(connection, &inner.path)))
            .await
    }

    async fn dead_letters(&self, reason: Option<&str>, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let reason = reason.map(str::to_string);
        self.run(move |inner| {
            inner.with_reader(|connection| read::dead_letters(connection, &inner.path, reason.as_deref(), limit))
        })
        .await
    }

    async fn delete_dead_letters(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let ids = ids.to_vec();
        self.run(move |inner| inner.writer()?.delete_dead_letters(&inner.path, &ids))
            .await
    }

    async fn prune(&self, before: Night) -> Result<PruneSummary, StoreError> {
        self.run(move |inner| inner.writer()?.prune(&inner.path, before)).await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.run(move |inner| inner.with_reader(|connection| read::counts(connection, &inner.path)))
            .await
    }
}
