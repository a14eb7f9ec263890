//! The SQL schema as numbered migrations, applied at open, and the columns that science modules
//! add at run time ([`ensure_columns`]).
//!
//! A migration is never edited once released: a change is a new step at the end of
//! [`MIGRATIONS`]. `schema_migrations` records the steps applied; a store whose newest step is
//! beyond this code's is refused ([`StoreError::TooNew`]), since an older nightjar would not know
//! how to keep it consistent.

use rusqlite::{Connection, OptionalExtension, params};

use nightjar_store::StoreError;

use crate::error::map_sqlite;

/// One schema step.
#[derive(Debug)]
pub(crate) struct Migration {
    /// Version reached after this step; steps are numbered 1, 2, ...
    pub version: i64,
    /// What the step does, kept in `schema_migrations`.
    pub description: &'static str,
    /// The SQL, run in one transaction. The cutouts file is attached as schema `cutouts`.
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
ALTER TABLE alerts ADD COLUMN modules TEXT NOT NULL DEFAULT '{}';
ALTER TABLE alerts ADD COLUMN class TEXT;
ALTER TABLE alerts ADD COLUMN tags TEXT;
CREATE INDEX alerts_class ON alerts (class, mjd) WHERE class IS NOT NULL;
";

/// The newest schema version this code knows.
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |migration| migration.version)
}

/// The first schema. Conventions: `survey` is the lowercase survey name (`ztf`, `rubin`); times
/// are MJD; `night` is the observing night as the integer `YYYYMMDD` (see `nightjar_store::Night`);
/// positions are degrees (ICRS); `healpix` is the NESTED index at `nightjar_store::HEALPIX_ORDER`;
/// fluxes are nJy; booleans are 0/1. `band` is the one-letter band; in the tables where the band
/// is part of the key (`upper_limits`, `forced_photometry`) an unknown band is `''`, elsewhere NULL.
const SCHEMA_V1: &str = r#"
-- One row per object: a summary recomputed from its stored detections on every write and prune.
CREATE TABLE objects (
    survey TEXT NOT NULL,
    object_id TEXT NOT NULL,
    first_mjd REAL NOT NULL,
    last_mjd REAL NOT NULL,
    n_detections INTEGER NOT NULL,
    ra REAL NOT NULL,
    dec REAL NOT NULL,
    healpix INTEGER NOT NULL,
    PRIMARY KEY (survey, object_id)
) WITHOUT ROWID;
CREATE INDEX objects_healpix ON objects (healpix);

-- Every detection: the alerts' own (is_alert = 1) and those seen only in an alert's history.
CREATE TABLE detections (
    survey TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    mjd REAL NOT NULL,
    night INTEGER NOT NULL,
    band TEXT,
    ra REAL NOT NULL,
    dec REAL NOT NULL,
    magnitude REAL,
    magnitude_err REAL,
    flux REAL,
    flux_err REAL,
    is_negative INTEGER NOT NULL,
    reliability REAL,
    is_alert INTEGER NOT NULL,
    healpix INTEGER NOT NULL,
    PRIMARY KEY (survey, source_id),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
) WITHOUT ROWID;
CREATE INDEX detections_object ON detections (survey, object_id, mjd);
CREATE INDEX detections_mjd ON detections (mjd);
CREATE INDEX detections_night ON detections (night);

-- Non-detections, one per object, time and band.
CREATE TABLE upper_limits (
    survey TEXT NOT NULL,
    object_id TEXT NOT NULL,
    mjd REAL NOT NULL,
    band TEXT NOT NULL,
    night INTEGER NOT NULL,
    limiting_magnitude REAL,
    noise_flux REAL,
    PRIMARY KEY (survey, object_id, mjd, band),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
) WITHOUT ROWID;
CREATE INDEX upper_limits_night ON upper_limits (night);

-- Forced photometry at the object's position, one per object, time and band.
CREATE TABLE forced_photometry (
    survey TEXT NOT NULL,
    object_id TEXT NOT NULL,
    mjd REAL NOT NULL,
    band TEXT NOT NULL,
    night INTEGER NOT NULL,
    forced_source_id INTEGER,
    flux REAL,
    flux_err REAL,
    PRIMARY KEY (survey, object_id, mjd, band),
    FOREIGN KEY (survey, object_id) REFERENCES objects (survey, object_id)
) WITHOUT ROWID;
CREATE INDEX forced_photometry_night ON forced_photometry (night);

-- Alerts received, keyed by their triggering detection; the detection itself is in `detections`.
-- raw_detection: the survey's record of that detection (ZTF candidate, Rubin diaSource) as JSON.
CREATE TABLE alerts (
    survey TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    mjd REAL NOT NULL,
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
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    bytes BLOB NOT NULL,
    received_unix INTEGER NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (reason, id);
-- One letter per message and reason: a re-run over the same bad input replaces, not adds.
CREATE UNIQUE INDEX dead_letters_origin ON dead_letters (origin, reason);

-- In cutouts.sqlite: the image stamps exactly as received (ZTF gzip FITS, Rubin FITS).
CREATE TABLE cutouts.cutouts (
    survey TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    night INTEGER NOT NULL,
    file_name TEXT,
    data BLOB NOT NULL,
    PRIMARY KEY (survey, source_id, kind)
);
CREATE INDEX cutouts.cutouts_night ON cutouts (night);
"#;

/// Creates `schema_migrations` if needed and returns the newest version applied (0 for a new store).
pub(crate) fn current_version(connection: &Connection, path: &str) -> Result<i64, StoreError> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                description TEXT NOT NULL,
                applied_unix INTEGER NOT NULL
            )",
        )
        .map_err(|error| map_sqlite(error, path, "creating schema_migrations"))?;
    read_version(connection, path)
}

/// The newest version in `schema_migrations`, without creating it (read-only connections).
pub(crate) fn read_version(connection: &Connection, path: &str) -> Result<i64, StoreError> {
    connection
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()
        .map(|version| version.flatten().unwrap_or(0))
        .map_err(|error| map_sqlite(error, path, "reading schema_migrations"))
}

/// Applies the missing steps, each in its own transaction; refuses a store newer than the code.
pub(crate) fn migrate(connection: &mut Connection, path: &str) -> Result<(), StoreError> {
    let found = current_version(connection, path)?;
    let supported = latest_version();
    if found > supported {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            supported,
        });
    }
    for migration in MIGRATIONS.iter().filter(|migration| migration.version > found) {
        let context = || {
            format!(
                "applying schema migration {} ({})",
                migration.version, migration.description
            )
        };
        let transaction = connection
            .transaction()
            .map_err(|error| map_sqlite(error, path, &context()))?;
        transaction
            .execute_batch(migration.sql)
            .map_err(|error| map_sqlite(error, path, &context()))?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, description, applied_unix) VALUES (?1, ?2, ?3)",
                params![migration.version, migration.description, crate::unix_now()],
            )
            .map_err(|error| map_sqlite(error, path, &context()))?;
        transaction
            .commit()
            .map_err(|error| map_sqlite(error, path, &context()))?;
        tracing::info!(version = migration.version, path, "applied schema migration");
    }
    Ok(())
}

/// Column types a module may declare: SQLite's storage classes.
const COLUMN_TYPES: [&str; 5] = ["INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC"];

/// Longest identifier accepted for a table or column.
const MAX_IDENTIFIER_LEN: usize = 64;

/// Checks that a name is a plain identifier: ASCII letter or `_` first, then letters, digits, `_`.
pub(crate) fn validate_identifier(what: &str, name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok || !rest_ok || name.len() > MAX_IDENTIFIER_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "invalid {what} name {name:?}: use ASCII letters, digits and '_' (not first), at most {MAX_IDENTIFIER_LEN} characters"
        )));
    }
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(StoreError::InvalidArgument(format!(
            "invalid {what} name {name:?}: names starting with 'sqlite_' are reserved by SQLite"
        )));
    }
    Ok(())
}

/// Adds the columns that are missing from `table`; returns the names added. Columns that exist
/// with the same type are left alone; one that exists with another type is an error.
pub(crate) fn ensure_columns(
    connection: &mut Connection,
    path: &str,
    table: &str,
    columns: &[(&str, &str)],
) -> Result<Vec<String>, StoreError> {
    validate_identifier("table", table)?;
    let table_exists: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'table' AND name = ?1)",
            [table],
            |row| row.get(0),
        )
        .map_err(|error| map_sqlite(error, path, "looking up a table"))?;
    if !table_exists || table == "schema_migrations" {
        let known = table_names(connection, path)?;
        return Err(StoreError::InvalidArgument(format!(
            "unknown table {table:?}: columns can be added to {}",
            known.join(", ")
        )));
    }
    let mut wanted = Vec::with_capacity(columns.len());
    for (name, sql_type) in columns {
        validate_identifier("column", name)?;
        let sql_type = sql_type.trim().to_ascii_uppercase();
        if !COLUMN_TYPES.contains(&sql_type.as_str()) {
            return Err(StoreError::InvalidArgument(format!(
                "invalid type {sql_type:?} for column {name:?} of {table}: use one of {}",
                COLUMN_TYPES.join(", ")
            )));
        }
        wanted.push((name.to_string(), sql_type));
    }

    let transaction = connection
        .transaction()
        .map_err(|error| map_sqlite(error, path, "adding columns"))?;
    let existing = existing_columns(&transaction, path, table)?;
    let mut added = Vec::new();
    for (name, sql_type) in wanted {
        let lower = name.to_ascii_lowercase();
        if let Some((_, existing_type)) = existing.iter().find(|(column, _)| column.to_ascii_lowercase() == lower) {
            if !existing_type.eq_ignore_ascii_case(&sql_type) {
                return Err(StoreError::InvalidArgument(format!(
                    "column {name:?} of {table} exists with type {existing_type}, not {sql_type}"
                )));
            }
            continue;
        }
        if added.iter().any(|column: &String| column.to_ascii_lowercase() == lower) {
            continue;
        }
        // Identifiers are validated above, so quoting them is enough.
        let sql = format!("ALTER TABLE main.\"{table}\" ADD COLUMN \"{name}\" {sql_type}");
        transaction
            .execute_batch(&sql)
            .map_err(|error| map_sqlite(error, path, &format!("adding column {name} to {table}")))?;
        added.push(name);
    }
    transaction
        .commit()
        .map_err(|error| map_sqlite(error, path, "adding columns"))?;
    if !added.is_empty() {
        tracing::info!(table, columns = ?added, "added module output columns");
    }
    Ok(added)
}

/// Name and declared type of every column of a table.
fn existing_columns(connection: &Connection, path: &str, table: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = connection
        .prepare("SELECT name, type FROM pragma_table_info(?1, 'main')")
        .map_err(|error| map_sqlite(error, path, "reading table columns"))?;
    let rows = statement
        .query_map([table], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
        .map_err(|error| map_sqlite(error, path, "reading table columns"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|error| map_sqlite(error, path, "reading table columns"))
}

/// The tables of the main database, for error messages.
fn table_names(connection: &Connection, path: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = connection
        .prepare(
            "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             AND name <> 'schema_migrations' ORDER BY name",
        )
        .map_err(|error| map_sqlite(error, path, "listing tables"))?;
    let rows = statement
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(|error| map_sqlite(error, path, "listing tables"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(|error| map_sqlite(error, path, "listing tables"))
}
