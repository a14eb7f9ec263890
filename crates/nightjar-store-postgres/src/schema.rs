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
use tokio_postgres::error::SqlState;

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
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "objects, detections, upper limits, forced photometry, alerts, dead letters, cutouts",
        sql: SCHEMA_V1,
    },
    Migration {
        version: 2,
        description: "science-module outputs and class of each alert",
        sql: SCHEMA_V2,
    },
];

/// Science-module outputs: `modules` is a JSON object of every non-null output by column name;
/// `class` the `class` output, indexed for the latest alerts of a class; `tags` the `tags`
/// output as `,tag1,tag2,`.
const SCHEMA_V2: &str = "
ALTER TABLE alerts ADD COLUMN modules jsonb NOT NULL DEFAULT '{}';
ALTER TABLE alerts ADD COLUMN class text;
ALTER TABLE alerts ADD COLUMN tags text;
CREATE INDEX alerts_class ON alerts (class, mjd) WHERE class IS NOT NULL;
";

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
///
/// The five tables that grow with every night (detections, upper limits, forced photometry,
/// alerts, cutouts) are partitioned by range of `night`, one partition per month created on
/// demand before a batch is written ([`ensure_partitions`]), plus a DEFAULT partition for a
/// night outside any month partition. Their unique keys therefore include `night` (PostgreSQL
/// requires the partition key in every unique index of a partitioned table). `night` is a pure
/// function of the row's `mjd` (and of the alert's `mjd` for cutouts), so a row written again
/// lands in the same partition with the same key and `ON CONFLICT DO NOTHING` stays idempotent.
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
-- One row per (survey, source_id) as long as a source's mjd is the same wherever it is reported
-- (the alert and the history of later alerts): the key includes night, derived from mjd.
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
    PRIMARY KEY (survey, source_id, night),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
) PARTITION BY RANGE (night);
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
    PRIMARY KEY (survey, object_id, mjd, band, night),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
) PARTITION BY RANGE (night);
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
    PRIMARY KEY (survey, object_id, mjd, band, night),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
) PARTITION BY RANGE (night);
CREATE INDEX forced_photometry_night ON forced_photometry (night);

-- Alerts received, keyed by their triggering detection; the detection itself is in `detections`
-- (same survey, source_id and night: the alert's detection is written, or marked as the alert's,
-- before the alert, and is never moved afterwards).
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
    PRIMARY KEY (survey, source_id, night),
    FOREIGN KEY (survey, source_id, night) REFERENCES detections (survey, source_id, night)
) PARTITION BY RANGE (night);
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
-- night is the alert's.
CREATE TABLE cutouts (
    survey TEXT COLLATE "C" NOT NULL,
    source_id BIGINT NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    night INTEGER NOT NULL,
    file_name TEXT,
    data BYTEA NOT NULL,
    PRIMARY KEY (survey, source_id, kind, night)
) PARTITION BY RANGE (night);
CREATE INDEX cutouts_night ON cutouts (night);

-- Rows whose night lies in no month partition (none is created for a night that does not fit
-- the integer range of the bounds); kept apart so that the month partitions stay exact.
CREATE TABLE detections_default PARTITION OF detections DEFAULT;
CREATE TABLE upper_limits_default PARTITION OF upper_limits DEFAULT;
CREATE TABLE forced_photometry_default PARTITION OF forced_photometry DEFAULT;
CREATE TABLE alerts_default PARTITION OF alerts DEFAULT;
CREATE TABLE cutouts_default PARTITION OF cutouts DEFAULT;
"#;

/// The tables partitioned by night, in the order writers take them (so that [`ensure_partitions`]
/// and pruning lock them in the same order).
pub(crate) const PARTITIONED_TABLES: [&str; 5] =
    ["detections", "upper_limits", "forced_photometry", "alerts", "cutouts"];

/// The key of the transaction advisory lock held while creating partitions ("nightprt").
const PARTITION_LOCK_KEY: i64 = 0x6e69_6768_7470_7274;

/// The month partition holding `night` (`YYYYMMDD`): its bounds `[YYYYMM00, YYYYMM00 + 100)`,
/// or `None` for a night that is negative or whose bounds do not fit an `integer` (such a row
/// goes to the DEFAULT partition; nightjar writes neither).
pub(crate) fn month_of(night: i32) -> Option<(i32, i32)> {
    if night < 0 {
        return None;
    }
    let lower = night / 100 * 100;
    Some((lower, lower.checked_add(100)?))
}

/// The name of `table`'s partition starting at `lower` (`detections_p202509`).
pub(crate) fn partition_name(table: &str, lower: i32) -> String {
    format!("{table}_p{:06}", lower / 100)
}

/// Creates the month partitions of every partitioned table for `nights` that do not exist yet,
/// in a transaction of its own, before the batch that needs them. Creating a partition locks
/// its parent table, so it is done once per month, not per batch: a first query finds the missing
/// ones. Workers creating the same partition at once are kept apart by an advisory lock (and
/// `IF NOT EXISTS`). A month whose rows already sit in the DEFAULT partition (written while the
/// partition was missing, e.g. just after a prune dropped it) cannot be created; its rows then
/// stay in DEFAULT, which is logged.
pub(crate) async fn ensure_partitions(client: &mut Client, nights: &[i32]) -> Result<(), Failed> {
    let mut lowers: Vec<i32> = nights
        .iter()
        .filter_map(|night| month_of(*night))
        .map(|(lower, _)| lower)
        .collect();
    lowers.sort_unstable();
    lowers.dedup();
    if lowers.is_empty() {
        return Ok(());
    }
    let context = "creating night partitions";
    let names: Vec<String> = lowers.iter().map(|lower| partition_name("cutouts", *lower)).collect();
    // cutouts is the last table a partition is created for, so its partition existing means
    // the month's partitions all exist.
    let rows = client
        .query(
            "SELECT lower FROM UNNEST($1::int4[], $2::text[]) AS t(lower, name) WHERE to_regclass(name) IS NULL",
            &[&lowers, &names],
        )
        .await
        .map_err(failed(context))?;
    let missing: Vec<i32> = rows
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(failed(context))?;
    if missing.is_empty() {
        return Ok(());
    }
    let transaction = client.transaction().await.map_err(failed(context))?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK_KEY])
        .await
        .map_err(failed(context))?;
    for lower in missing {
        let upper = lower + 100;
        for table in PARTITIONED_TABLES {
            let name = partition_name(table, lower);
            transaction
                .batch_execute("SAVEPOINT partition")
                .await
                .map_err(failed(context))?;
            let created = transaction
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} FOR VALUES FROM ({lower}) TO ({upper})"
                ))
                .await;
            match created {
                Ok(()) => {
                    transaction
                        .batch_execute("RELEASE SAVEPOINT partition")
                        .await
                        .map_err(failed(context))?;
                }
                Err(error) if error.code() == Some(&SqlState::CHECK_VIOLATION) => {
                    tracing::warn!(partition = name, %error,
                        "rows of this month are in the default partition; the month partition is not created");
                    transaction
                        .batch_execute("ROLLBACK TO SAVEPOINT partition")
                        .await
                        .map_err(failed(context))?;
                }
                Err(error) => return Err(failed(context)(error)),
            }
        }
        tracing::debug!(lower, upper, "created night partitions");
    }
    transaction.commit().await.map_err(failed(context))
}

/// What `cone_search` uses: q3c's index when the extension could be installed, else HEALPix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConeSearch {
    Q3c,
    Healpix,
}

impl ConeSearch {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ConeSearch::Q3c => "q3c",
            ConeSearch::Healpix => "healpix",
        }
    }
}

/// Installs q3c and its index on objects when the server has the extension and the user may
/// create it; otherwise (or with `use_q3c` false) cone search keeps the HEALPix index. Run at
/// every connect after the migrations, under the migration lock; idempotent. Not a numbered
/// migration: whether q3c is there depends on the server, not on the schema version (the q3c
/// index is maintained by PostgreSQL for every writer, whatever path each one reads with).
async fn setup_cone_search(client: &mut Client, url: &str, use_q3c: bool) -> Result<ConeSearch, StoreError> {
    if !use_q3c {
        return Ok(ConeSearch::Healpix);
    }
    let to_store_error = |failure: Failed| failure.into_store_error(url);
    let context = "setting up q3c cone search";
    let transaction = client
        .transaction()
        .await
        .map_err(failed(context))
        .map_err(to_store_error)?;
    transaction
        .batch_execute("SAVEPOINT q3c")
        .await
        .map_err(failed(context))
        .map_err(to_store_error)?;
    let installed = transaction
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS q3c;
             CREATE INDEX IF NOT EXISTS objects_q3c ON objects (q3c_ang2ipix(ra, dec));",
        )
        .await;
    let method = match installed {
        Ok(()) => ConeSearch::Q3c,
        Err(error) => {
            tracing::info!(url, %error, "q3c is not available; cone search uses the HEALPix index");
            transaction
                .batch_execute("ROLLBACK TO SAVEPOINT q3c")
                .await
                .map_err(failed(context))
                .map_err(to_store_error)?;
            ConeSearch::Healpix
        }
    };
    transaction
        .commit()
        .await
        .map_err(failed(context))
        .map_err(to_store_error)?;
    Ok(method)
}

/// Applies the missing steps on `client` (a connection of its own), each in its own
/// transaction, holding the migration advisory lock throughout; refuses a database newer than
/// the code. Then sets up q3c where possible and `use_q3c` asks for it, and returns the cone
/// search to use. The lock is released at the end, and in any case when the connection closes.
pub(crate) async fn migrate(client: &mut Client, url: &str, use_q3c: bool) -> Result<ConeSearch, StoreError> {
    let to_store_error = |failure: Failed| failure.into_store_error(url);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(failed("taking the schema migration lock"))
        .map_err(to_store_error)?;
    let result = match apply_missing(client, url).await {
        Ok(()) => setup_cone_search(client, url, use_q3c).await,
        Err(error) => Err(error),
    };
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(failed("releasing the schema migration lock"))
        .map_err(to_store_error);
    let method = result?;
    unlocked.map(|_| method)
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
