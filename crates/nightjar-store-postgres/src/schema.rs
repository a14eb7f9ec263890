//! The SQL schema as numbered migrations, applied at connect under a session advisory lock so
//! that workers starting together do not race.
//!
//! A migration is never edited once released: a change is a new step at the end of
//! [`MIGRATIONS`]. `schema_migrations` records the steps applied; a database whose newest step is
//! beyond this code's is refused ([`StoreError::TooNew`]), since an older nightjar would not know
//! how to keep it consistent.
//!
//! The logical schema is the SQLite store's (same tables, keys and conventions), in PostgreSQL
//! types: `double precision` for times, positions and fluxes, `boolean` flags, `bytea` for
//! bytes. Text keys use the `"C"` collation, so rows sort by bytes whatever the database's
//! locale (as in Rust and SQLite).

use tokio_postgres::Client;

use nightjar_store::StoreError;

use crate::error::{Failed, failed};

/// One schema step.
#[derive(Debug)]
pub(crate) struct Migration {
    /// Version reached after this step; steps are numbered 1, 2, ...
    pub version: i64,
    /// What the step does, kept in `schema_migrations`.
    pub description: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
}

/// Every step, oldest first.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "objects, detections, upper limits, forced photometry, alerts, dead letters, cutouts",
    sql: SCHEMA_V1,
}];

/// The key of the session advisory lock held while migrating ("nightjar" in ASCII).
pub(crate) const MIGRATION_LOCK_KEY: i64 = 0x6e69_6768_746a_6172;

/// The newest schema version this code knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// The first schema. Conventions as in the SQLite store: `survey` is the lowercase survey name;
/// times are MJD; `night` is the observing night as the integer `YYYYMMDD`; positions are
/// degrees (ICRS); `healpix` is the NESTED index at `nightjar_store::HEALPIX_ORDER` (-1 for a
/// position off the sky); fluxes are nJy. `band` is the one-letter band; where it is part of the
/// key (`upper_limits`, `forced_photometry`) an unknown band is `''`, elsewhere NULL.
const SCHEMA_V1: &str = r#"
-- One row per object: a summary recomputed from its stored detections on every write and prune.
CREATE TABLE objects (
    survey TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    first_mjd DOUBLE PRECISION NOT NULL,
    last_mjd DOUBLE PRECISION NOT NULL,
    n_detections BIGINT NOT NULL,
    ra DOUBLE PRECISION NOT NULL,
    dec DOUBLE PRECISION NOT NULL,
    healpix BIGINT NOT NULL,
    PRIMARY KEY (survey, object_id)
);
CREATE INDEX objects_healpix ON objects (healpix);

-- Every detection: the alerts' own (is_alert) and those seen only in an alert's history.
CREATE TABLE detections (
    survey TEXT COLLATE "C" NOT NULL,
    source_id BIGINT NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    mjd DOUBLE PRECISION NOT NULL,
    night INTEGER NOT NULL,
    band TEXT COLLATE "C",
    ra DOUBLE PRECISION NOT NULL,
    dec DOUBLE PRECISION NOT NULL,
    magnitude DOUBLE PRECISION,
    magnitude_err DOUBLE PRECISION,
    flux DOUBLE PRECISION,
    flux_err DOUBLE PRECISION,
    is_negative BOOLEAN NOT NULL,
    reliability DOUBLE PRECISION,
    is_alert BOOLEAN NOT NULL,
    healpix BIGINT NOT NULL,
    PRIMARY KEY (survey, source_id),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
);
CREATE INDEX detections_object ON detections (survey, object_id, mjd);
CREATE INDEX detections_mjd ON detections (mjd);
CREATE INDEX detections_night ON detections (night);

-- Non-detections, one per object, time and band.
CREATE TABLE upper_limits (
    survey TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    mjd DOUBLE PRECISION NOT NULL,
    band TEXT COLLATE "C" NOT NULL,
    night INTEGER NOT NULL,
    limiting_magnitude DOUBLE PRECISION,
    noise_flux DOUBLE PRECISION,
    PRIMARY KEY (survey, object_id, mjd, band),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
);
CREATE INDEX upper_limits_night ON upper_limits (night);

-- Forced photometry at the object's position, one per object, time and band.
CREATE TABLE forced_photometry (
    survey TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    mjd DOUBLE PRECISION NOT NULL,
    band TEXT COLLATE "C" NOT NULL,
    night INTEGER NOT NULL,
    forced_source_id BIGINT,
    flux DOUBLE PRECISION,
    flux_err DOUBLE PRECISION,
    PRIMARY KEY (survey, object_id, mjd, band),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
);
CREATE INDEX forced_photometry_night ON forced_photometry (night);

-- Alerts received, keyed by their triggering detection; the detection itself is in `detections`.
-- raw_detection: the survey's record of that detection (ZTF candidate, Rubin diaSource) as JSON
-- text, kept exactly as written (jsonb would rewrite numbers: 1e15 would read back as an integer).
CREATE TABLE alerts (
    survey TEXT COLLATE "C" NOT NULL,
    source_id BIGINT NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    mjd DOUBLE PRECISION NOT NULL,
    night INTEGER NOT NULL,
    schema_version TEXT NOT NULL,
    solar_system_name TEXT,
    raw_detection TEXT NOT NULL,
    PRIMARY KEY (survey, source_id),
    FOREIGN KEY (survey, source_id) REFERENCES detections (survey, source_id)
);
CREATE INDEX alerts_object ON alerts (survey, object_id);
CREATE INDEX alerts_mjd ON alerts (mjd);
CREATE INDEX alerts_night ON alerts (night);
CREATE INDEX alerts_solar_system_name ON alerts (solar_system_name) WHERE solar_system_name IS NOT NULL;

-- Messages that could not be processed, with their bytes.
CREATE TABLE dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    received_unix BIGINT NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason, id);
-- One letter per message and reason: a re-run over the same bad input replaces, not adds.
CREATE UNIQUE INDEX dead_letters_origin ON dead_letters (origin, reason);

-- The image stamps exactly as received (ZTF gzip FITS, Rubin FITS), apart from the tabular data.
CREATE TABLE cutouts (
    survey TEXT COLLATE "C" NOT NULL,
    source_id BIGINT NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    night INTEGER NOT NULL,
    file_name TEXT,
    data BYTEA NOT NULL,
    PRIMARY KEY (survey, source_id, kind)
);
CREATE INDEX cutouts_night ON cutouts (night);
"#;

/// Applies the missing steps on `client` (a connection of its own), each in its own
/// transaction, holding the migration advisory lock throughout; refuses a database newer than
/// the code. The lock is released at the end, and in any case when the connection closes.
pub(crate) async fn migrate(client: &mut Client, url: &str) -> Result<(), StoreError> {
    let to_store_error = |failure: Failed| failure.into_store_error(url);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(failed("taking the schema migration lock"))
        .map_err(to_store_error)?;
    let result = apply_missing(client, url).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(failed("releasing the schema migration lock"))
        .map_err(to_store_error);
    result?;
    unlocked.map(|_| ())
}

async fn apply_missing(client: &mut Client, url: &str) -> Result<(), StoreError> {
    let to_store_error = |failure: Failed| failure.into_store_error(url);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                applied_unix BIGINT NOT NULL
            )",
        )
        .await
        .map_err(failed("creating schema_migrations"))
        .map_err(to_store_error)?;
    let found: i64 = client
        .query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(failed("reading schema_migrations"))
        .map_err(to_store_error)?;
    let supported = latest_version();
    if found > supported {
        return Err(StoreError::TooNew {
            path: url.to_string(),
            found,
            supported,
        });
    }
    for migration in MIGRATIONS.iter().filter(|migration| migration.version > found) {
        let context = format!(
            "applying schema migration {} ({})",
            migration.version, migration.description
        );
        let fail = failed(&context);
        let transaction = client.transaction().await.map_err(&fail).map_err(to_store_error)?;
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(&fail)
            .map_err(to_store_error)?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, description, applied_unix) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.description, &crate::unix_now()],
            )
            .await
            .map_err(&fail)
            .map_err(to_store_error)?;
        transaction.commit().await.map_err(&fail).map_err(to_store_error)?;
        tracing::info!(version = migration.version, url, "applied schema migration");
    }
    Ok(())
}
