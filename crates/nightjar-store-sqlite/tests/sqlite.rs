//! Behaviour of the SQLite store beyond the conformance suite: the writer lock, read-only
//! opening, migrations, module columns, the two files, and rollback of failed batches.

use std::path::Path;

use nightjar_core::Survey;
use nightjar_store::conformance::{all_alerts, rubin_alerts, ztf_light_curve_alerts};
use nightjar_store::{Store, StoreCounts, StoreError};
use nightjar_store_sqlite::{CUTOUTS_FILE_NAME, DATABASE_FILE_NAME, LOCK_FILE_NAME, SqliteStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn sqlite(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("opening a database file directly")
}

#[tokio::test]
async fn second_writer_is_refused_with_the_lock_path_and_holder() -> TestResult {
    let dir = tempfile::tempdir()?;
    let first = SqliteStore::open(dir.path())?;
    let error = SqliteStore::open(dir.path()).expect_err("a second writer must be refused");
    let StoreError::Locked { path, holder } = &error else {
        panic!("expected StoreError::Locked, got {error:?}");
    };
    let lock_path = dir.path().join(LOCK_FILE_NAME);
    assert_eq!(path, &lock_path.display().to_string());
    assert!(
        holder.contains(&format!("pid {}", std::process::id())),
        "holder: {holder}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&lock_path.display().to_string()),
        "message names the lock: {message}"
    );
    assert!(message.contains("locked by another writer"), "{message}");

    // The lock goes with the store; a new writer may then open it.
    drop(first);
    let again = SqliteStore::open(dir.path())?;
    assert_eq!(again.counts().await?, StoreCounts::default());
    Ok(())
}

#[tokio::test]
async fn readers_open_while_a_writer_holds_the_lock() -> TestResult {
    let dir = tempfile::tempdir()?;
    let writer = SqliteStore::open(dir.path())?;
    let alerts = ztf_light_curve_alerts();
    writer.write_batch(&alerts[..6]).await?;

    let reader = SqliteStore::open_read_only(dir.path())?;
    assert_eq!(reader.counts().await?, writer.counts().await?);
    assert!(reader.light_curve(Survey::Ztf, "ZTF21abiuvdk").await?.is_some());
    assert_eq!(reader.cutouts(Survey::Ztf, alerts[0].source_id()).await?.len(), 3);

    // The reader sees later commits.
    writer.write_batch(&alerts[6..]).await?;
    assert_eq!(reader.counts().await?.alerts, 12);

    // It cannot write.
    let refused = reader.write_batch(&alerts).await;
    assert!(matches!(refused, Err(StoreError::InvalidArgument(ref message)) if message.contains("read-only")));
    assert!(matches!(
        reader.prune(nightjar_store::Night(20300101)).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(reader.ensure_columns("objects", &[("score", "REAL")]).is_err());
    Ok(())
}

#[test]
fn read_only_open_of_a_missing_store_says_so() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let error = SqliteStore::open_read_only(dir.path()).expect_err("no store there");
    assert!(
        matches!(error, StoreError::InvalidArgument(ref message) if message.contains("no store at")),
        "{error}"
    );
}

#[tokio::test]
async fn store_keeps_tables_and_cutouts_in_two_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.write_batch(&all_alerts()).await?;
    let counts = store.counts().await?;
    assert_eq!(store.path(), dir.path().join(DATABASE_FILE_NAME));

    let cutouts = sqlite(&dir.path().join(CUTOUTS_FILE_NAME));
    let n: i64 = cutouts.query_row("SELECT COUNT(*) FROM cutouts", [], |row| row.get(0))?;
    assert_eq!(n as u64, counts.cutouts);
    let mode: String = cutouts.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    assert_eq!(mode, "wal");

    let main = sqlite(&dir.path().join(DATABASE_FILE_NAME));
    let has_cutouts: bool = main.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'cutouts')",
        [],
        |row| row.get(0),
    )?;
    assert!(!has_cutouts, "no cutouts in the tabular file");
    let mode: String = main.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    assert_eq!(mode, "wal");
    // Users can query it with plain SQL.
    let n_alerts: i64 = main.query_row("SELECT COUNT(*) FROM alerts WHERE survey = 'ztf'", [], |row| row.get(0))?;
    assert!(n_alerts > 0);
    Ok(())
}

#[tokio::test]
async fn reopening_applies_no_migration_and_keeps_the_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.write_batch(&all_alerts()).await?;
    let counts = store.counts().await?;
    drop(store);

    let store = SqliteStore::open(dir.path())?;
    assert_eq!(store.counts().await?, counts);
    drop(store);
    let main = sqlite(&dir.path().join(DATABASE_FILE_NAME));
    let (n, version): (i64, i64) =
        main.query_row("SELECT COUNT(*), MAX(version) FROM schema_migrations", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    assert_eq!(version, SqliteStore::schema_version());
    assert_eq!(n, SqliteStore::schema_version(), "each step recorded once");
    Ok(())
}

#[test]
fn a_store_from_a_newer_nightjar_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    drop(SqliteStore::open(dir.path())?);
    let newer = SqliteStore::schema_version() + 1;
    sqlite(&dir.path().join(DATABASE_FILE_NAME)).execute(
        "INSERT INTO schema_migrations (version, description, applied_unix) VALUES (?1, 'from the future', 0)",
        [newer],
    )?;
    for error in [
        SqliteStore::open(dir.path()).expect_err("newer store"),
        SqliteStore::open_read_only(dir.path()).expect_err("newer store"),
    ] {
        let StoreError::TooNew { found, supported, .. } = error else {
            panic!("expected StoreError::TooNew, got {error:?}");
        };
        assert_eq!((found, supported), (newer, SqliteStore::schema_version()));
    }
    Ok(())
}

#[tokio::test]
async fn ensure_columns_adds_module_outputs_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let columns = [("anomaly_score", "REAL"), ("fink_class", "text")];
    assert_eq!(
        store.ensure_columns("objects", &columns)?,
        vec!["anomaly_score", "fink_class"]
    );
    assert!(store.ensure_columns("objects", &columns)?.is_empty(), "idempotent");
    assert_eq!(
        store.ensure_columns("alerts", &[("anomaly_score", "REAL")])?,
        vec!["anomaly_score"]
    );

    // The new columns are plain nullable columns; writes go on.
    store.write_batch(&ztf_light_curve_alerts()).await?;
    drop(store);
    let main = sqlite(&dir.path().join(DATABASE_FILE_NAME));
    let nulls: i64 = main.query_row(
        "SELECT COUNT(*) FROM objects WHERE anomaly_score IS NULL AND fink_class IS NULL",
        [],
        |row| row.get(0),
    )?;
    assert_eq!(nulls, 1);
    drop(main);

    let store = SqliteStore::open(dir.path())?;
    let invalid = |table: &str, name: &str, sql_type: &str| {
        let result = store.ensure_columns(table, &[(name, sql_type)]);
        match result {
            Err(StoreError::InvalidArgument(message)) => message,
            other => panic!("{table}.{name} {sql_type}: expected InvalidArgument, got {other:?}"),
        }
    };
    assert!(invalid("objects", "bad name", "REAL").contains("invalid column name"));
    assert!(invalid("objects", "1st", "REAL").contains("invalid column name"));
    assert!(invalid("objects", "x\"; DROP TABLE objects; --", "REAL").contains("invalid column name"));
    assert!(invalid("objects", "", "REAL").contains("invalid column name"));
    assert!(invalid("objects", "sqlite_x", "REAL").contains("reserved"));
    assert!(invalid("objects", "score", "REAL; DROP TABLE objects").contains("invalid type"));
    assert!(invalid("objects", "anomaly_score", "TEXT").contains("exists with type REAL"));
    let unknown = invalid("no_such_table", "score", "REAL");
    assert!(
        unknown.contains("unknown table") && unknown.contains("detections"),
        "{unknown}"
    );
    assert!(invalid("schema_migrations", "score", "REAL").contains("unknown table"));
    assert!(invalid("objects; --", "score", "REAL").contains("invalid table name"));
    assert_eq!(store.counts().await?.objects, 1, "nothing dropped");
    Ok(())
}

#[tokio::test]
async fn a_failed_write_rolls_back_both_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let alerts = all_alerts();
    store.write_batch(&alerts[..2]).await?;
    let before = store.counts().await?;

    // Make every cutout insert fail, from outside the store.
    sqlite(&dir.path().join(CUTOUTS_FILE_NAME)).execute_batch(
        "CREATE TRIGGER fail_cutouts BEFORE INSERT ON cutouts BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )?;
    let error = store.write_batch(&alerts).await.expect_err("the cutout insert fails");
    assert!(
        matches!(&error, StoreError::Backend { reason, .. } if reason.contains("injected failure")),
        "{error:?}"
    );
    assert_eq!(store.counts().await?, before, "nothing of the failed batch is stored");

    sqlite(&dir.path().join(CUTOUTS_FILE_NAME)).execute_batch("DROP TRIGGER fail_cutouts;")?;
    store.write_batch(&alerts).await?;
    assert!(
        store.counts().await?.alerts > before.alerts,
        "the store works after a failed batch"
    );
    Ok(())
}

#[tokio::test]
async fn a_full_disk_is_reported_and_rolls_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let alerts = ztf_light_curve_alerts();
    store.write_batch(&alerts[..1]).await?;
    let before = store.counts().await?;

    // Cap both files at about their current size: the Rubin cutouts cannot fit.
    let largest = [DATABASE_FILE_NAME, CUTOUTS_FILE_NAME]
        .iter()
        .map(|name| std::fs::metadata(dir.path().join(name)).map(|meta| meta.len()))
        .collect::<Result<Vec<u64>, _>>()?
        .into_iter()
        .max()
        .unwrap_or_default();
    store.set_size_limit(largest + 8192)?;
    let error = store.write_batch(&rubin_alerts()).await.expect_err("the disk is full");
    let StoreError::DiskFull { path, reason } = &error else {
        panic!("expected StoreError::DiskFull, got {error:?}");
    };
    assert_eq!(path, &store.path().display().to_string());
    assert!(reason.contains("full"), "{reason}");
    assert_eq!(store.counts().await?, before, "nothing of the failed batch is stored");

    store.set_size_limit(u64::MAX / 2)?;
    store.write_batch(&rubin_alerts()).await?;
    assert_eq!(
        store.counts().await?.alerts,
        before.alerts + rubin_alerts().len() as u64
    );
    Ok(())
}
