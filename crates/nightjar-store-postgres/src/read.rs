//! The read path: light curves, cone search (q3c or HEALPix), alerts, cutouts, counts and dead letters.
//!
//! Reads that take several statements (a light curve) run in one read-only REPEATABLE READ
//! transaction, so the parts agree with each other.

use tokio_postgres::{Client, IsolationLevel, Row};

use nightjar_core::{Band, CutoutKind, Survey};
use nightjar_store::rows::{parse_module_values, selection_filters, survey_from_name};
use nightjar_store::sky::{angular_distance_deg, cone_ranges, sort_nearest_first};
use nightjar_store::{
    AlertRow, AlertSelection, ClassCount, CutoutRow, DeadLetter, DetectionRow, ForcedPhotometryRow, LightCurve, Night,
    NightCount, ObjectSummary, StoreCounts, StoreError, TimeWindow, UpperLimitRow,
};

use crate::error::{Failed, failed};
use crate::schema::ConeSearch;

/// Columns of `objects` read into an [`ObjectSummary`], in [`object_from_row`]'s order.
const OBJECT_COLUMNS: &str = "o.survey, o.object_id, o.first_mjd, o.last_mjd, o.n_detections, o.ra, o.dec, o.healpix";

/// Columns of `detections` read into a [`DetectionRow`], in [`detection_from_row`]'s order.
const DETECTION_COLUMNS: &str = "d.survey, d.object_id, d.source_id, d.mjd, d.night, d.band, d.ra, d.dec, d.magnitude, \
     d.magnitude_err, d.flux, d.flux_err, d.is_negative, d.reliability, d.is_alert";

/// Number of columns in [`DETECTION_COLUMNS`].
const N_DETECTION_COLUMNS: usize = 15;

/// A value nightjar cannot read back: a column holding something it never writes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("column {column}: {message}")]
    Value { column: usize, message: String },
}

impl ReadError {
    fn value(column: usize, message: String) -> ReadError {
        ReadError::Value { column, message }
    }
}

/// A read failure while doing `context`, as a [`StoreError`].
pub(crate) enum ReadFailure {
    Postgres(Failed),
    Value { context: String, message: String },
}

impl ReadFailure {
    pub(crate) fn into_store_error(self, url: &str) -> StoreError {
        match self {
            ReadFailure::Postgres(failure) => failure.into_store_error(url),
            ReadFailure::Value { context, message } => StoreError::Backend {
                context: format!("{context} ({url})"),
                reason: message,
            },
        }
    }
}

/// Wraps a read error with what was being done.
fn read_failed(context: &str) -> impl Fn(ReadError) -> ReadFailure + '_ {
    move |error| match error {
        ReadError::Postgres(error) => ReadFailure::Postgres(Failed {
            context: context.to_string(),
            error,
        }),
        ReadError::Value { .. } => ReadFailure::Value {
            context: context.to_string(),
            message: error.to_string(),
        },
    }
}

fn pg_failed(context: &str) -> impl Fn(tokio_postgres::Error) -> ReadFailure + '_ {
    move |error| ReadFailure::Postgres(failed(context)(error))
}

fn survey_at(row: &Row, column: usize) -> Result<Survey, ReadError> {
    let name: &str = row.try_get(column)?;
    survey_from_name(name).ok_or_else(|| ReadError::value(column, format!("unknown survey {name:?}")))
}

/// A band column: NULL or `''` is unknown.
fn band_at(row: &Row, column: usize) -> Result<Option<Band>, ReadError> {
    let name: Option<&str> = row.try_get(column)?;
    match name {
        None | Some("") => Ok(None),
        Some(name) => Band::from_name(name)
            .map(Some)
            .ok_or_else(|| ReadError::value(column, format!("unknown band {name:?}"))),
    }
}

fn count_at(row: &Row, column: usize) -> Result<u64, ReadError> {
    let value: i64 = row.try_get(column)?;
    Ok(u64::try_from(value).unwrap_or(0))
}

fn night_at(row: &Row, column: usize) -> Result<Night, ReadError> {
    let value: i32 = row.try_get(column)?;
    u32::try_from(value)
        .map(Night)
        .map_err(|_| ReadError::value(column, format!("invalid night {value}")))
}

fn object_from_row(row: &Row) -> Result<ObjectSummary, ReadError> {
    Ok(ObjectSummary {
        survey: survey_at(row, 0)?,
        object_id: row.try_get(1)?,
        first_mjd: row.try_get(2)?,
        last_mjd: row.try_get(3)?,
        n_detections: count_at(row, 4)?,
        ra: row.try_get(5)?,
        dec: row.try_get(6)?,
        healpix: u64::try_from(row.try_get::<_, i64>(7)?).unwrap_or(u64::MAX),
    })
}

fn detection_from_row(row: &Row, first: usize) -> Result<DetectionRow, ReadError> {
    Ok(DetectionRow {
        survey: survey_at(row, first)?,
        object_id: row.try_get(first + 1)?,
        source_id: row.try_get(first + 2)?,
        mjd: row.try_get(first + 3)?,
        night: night_at(row, first + 4)?,
        band: band_at(row, first + 5)?,
        ra: row.try_get(first + 6)?,
        dec: row.try_get(first + 7)?,
        magnitude: row.try_get(first + 8)?,
        magnitude_err: row.try_get(first + 9)?,
        flux: row.try_get(first + 10)?,
        flux_err: row.try_get(first + 11)?,
        is_negative: row.try_get(first + 12)?,
        reliability: row.try_get(first + 13)?,
        is_alert: row.try_get(first + 14)?,
    })
}

/// Reads an alert row: `DETECTION_COLUMNS`, then schema version, solar-system name, raw JSON,
/// module outputs (JSON text) and class.
fn alert_from_row(row: &Row) -> Result<AlertRow, ReadError> {
    let raw: &str = row.try_get(N_DETECTION_COLUMNS + 2)?;
    let raw_detection = serde_json::from_str(raw)
        .map_err(|error| ReadError::value(N_DETECTION_COLUMNS + 2, format!("invalid raw detection JSON: {error}")))?;
    let modules: &str = row.try_get(N_DETECTION_COLUMNS + 3)?;
    let modules = parse_module_values(modules)
        .map_err(|error| ReadError::value(N_DETECTION_COLUMNS + 3, format!("invalid module outputs JSON: {error}")))?;
    Ok(AlertRow {
        detection: detection_from_row(row, 0)?,
        schema_version: row.try_get(N_DETECTION_COLUMNS)?,
        solar_system_name: row.try_get(N_DETECTION_COLUMNS + 1)?,
        raw_detection,
        modules,
        class: row.try_get(N_DETECTION_COLUMNS + 4)?,
    })
}

/// `SELECT` of alert rows: the triggering detection joined to the alert.
fn alert_select(condition: &str) -> String {
    format!(
        "SELECT {DETECTION_COLUMNS}, a.schema_version, a.solar_system_name, a.raw_detection, a.modules::text,
             a.class
         FROM alerts a JOIN detections d ON d.survey = a.survey AND d.source_id = a.source_id
         WHERE {condition}"
    )
}

/// A `LIMIT` value: PostgreSQL takes a bigint.
fn limit_value(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Runs a query and converts its rows.
async fn collect<T>(
    client: &impl tokio_postgres::GenericClient,
    context: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    map: impl FnMut(&Row) -> Result<T, ReadError>,
) -> Result<Vec<T>, ReadFailure> {
    let rows = client.query(sql, params).await.map_err(pg_failed(context))?;
    rows.iter()
        .map(map)
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_failed(context))
}

pub(crate) async fn light_curve(
    client: &mut Client,
    survey: Survey,
    object_id: &str,
) -> Result<Option<LightCurve>, ReadFailure> {
    let context = format!("reading the light curve of {survey} {object_id}");
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg_failed(&context))?;
    let mut objects = collect(
        &transaction,
        &context,
        &format!("SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.survey = $1 AND o.object_id = $2"),
        &[&survey.as_str(), &object_id],
        object_from_row,
    )
    .await?;
    let Some(object) = objects.pop() else {
        return Ok(None);
    };
    let detections = collect(
        &transaction,
        &context,
        &format!(
            "SELECT {DETECTION_COLUMNS} FROM detections d
             WHERE d.survey = $1 AND d.object_id = $2 ORDER BY d.mjd, d.source_id"
        ),
        &[&survey.as_str(), &object_id],
        |row| detection_from_row(row, 0),
    )
    .await?;
    let upper_limits = collect(
        &transaction,
        &context,
        "SELECT mjd, band, limiting_magnitude, noise_flux FROM upper_limits WHERE survey = $1 AND object_id = $2
         ORDER BY mjd, band",
        &[&survey.as_str(), &object_id],
        |row| {
            Ok(UpperLimitRow {
                survey,
                object_id: object_id.to_string(),
                mjd: row.try_get(0)?,
                band: band_at(row, 1)?,
                limiting_magnitude: row.try_get(2)?,
                noise_flux: row.try_get(3)?,
            })
        },
    )
    .await?;
    let forced_photometry = collect(
        &transaction,
        &context,
        "SELECT forced_source_id, mjd, band, flux, flux_err FROM forced_photometry
         WHERE survey = $1 AND object_id = $2 ORDER BY mjd, band",
        &[&survey.as_str(), &object_id],
        |row| {
            Ok(ForcedPhotometryRow {
                survey,
                object_id: object_id.to_string(),
                forced_source_id: row.try_get(0)?,
                mjd: row.try_get(1)?,
                band: band_at(row, 2)?,
                flux: row.try_get(3)?,
                flux_err: row.try_get(4)?,
            })
        },
    )
    .await?;
    transaction.commit().await.map_err(pg_failed(&context))?;
    Ok(Some(LightCurve {
        object,
        detections,
        upper_limits,
        forced_photometry,
    }))
}

/// Candidates from q3c's index (`q3c_radial_query`) or from the HEALPix ranges covering the cone
/// (one query, the ranges as arrays), then the exact distance, so both paths answer alike.
pub(crate) async fn cone_search(
    client: &Client,
    method: ConeSearch,
    ra: f64,
    dec: f64,
    radius_deg: f64,
    window: TimeWindow,
) -> Result<Vec<(ObjectSummary, f64)>, ReadFailure> {
    let in_window = "EXISTS (SELECT 1 FROM detections d WHERE d.survey = o.survey AND d.object_id = o.object_id
                             AND d.mjd >= $1 AND d.mjd < $2)";
    let objects = match method {
        ConeSearch::Q3c => {
            collect(
                client,
                "searching a cone with q3c",
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects o
                     WHERE q3c_radial_query(o.ra, o.dec, $3::float8, $4::float8, $5::float8) AND {in_window}"
                ),
                &[&window.start_mjd, &window.end_mjd, &ra, &dec, &radius_deg],
                object_from_row,
            )
            .await?
        }
        ConeSearch::Healpix => {
            let ranges = cone_ranges(ra, dec, radius_deg);
            let starts: Vec<i64> = ranges.iter().map(|(start, _)| *start).collect();
            let ends: Vec<i64> = ranges.iter().map(|(_, end)| *end).collect();
            collect(
                client,
                "searching a cone",
                &format!(
                    "SELECT {OBJECT_COLUMNS} FROM objects o
                     JOIN UNNEST($3::bigint[], $4::bigint[]) AS r(start_cell, end_cell)
                         ON o.healpix >= r.start_cell AND o.healpix < r.end_cell
                     WHERE {in_window}"
                ),
                &[&window.start_mjd, &window.end_mjd, &starts, &ends],
                object_from_row,
            )
            .await?
        }
    };
    let mut found: Vec<(ObjectSummary, f64)> = objects
        .into_iter()
        .filter_map(|object| {
            let distance = angular_distance_deg(ra, dec, object.ra, object.dec);
            (distance <= radius_deg).then_some((object, distance))
        })
        .collect();
    sort_nearest_first(&mut found);
    Ok(found)
}

pub(crate) async fn latest_alerts(
    client: &Client,
    window: TimeWindow,
    selection: &AlertSelection,
    limit: usize,
) -> Result<Vec<AlertRow>, ReadFailure> {
    let (class, tag) = selection_filters(selection);
    collect(
        client,
        "reading the latest alerts",
        &format!(
            "{} ORDER BY a.mjd DESC, a.survey, a.source_id DESC LIMIT $3",
            alert_select(
                "a.mjd >= $1 AND a.mjd < $2 AND ($4::text IS NULL OR a.class = $4)
                 AND ($5::text IS NULL OR strpos(a.tags, $5) > 0)"
            )
        ),
        &[&window.start_mjd, &window.end_mjd, &limit_value(limit), &class, &tag],
        alert_from_row,
    )
    .await
}

pub(crate) async fn classes(client: &Client) -> Result<Vec<ClassCount>, ReadFailure> {
    collect(
        client,
        "reading the classes",
        "SELECT class, COUNT(*) FROM alerts WHERE class IS NOT NULL GROUP BY class ORDER BY COUNT(*) DESC, class",
        &[],
        |row| {
            let alerts: i64 = row.try_get(1)?;
            Ok(ClassCount {
                class: row.try_get(0)?,
                alerts: alerts.try_into().unwrap_or(0),
            })
        },
    )
    .await
}

pub(crate) async fn alert(client: &Client, survey: Survey, source_id: i64) -> Result<Option<AlertRow>, ReadFailure> {
    let mut rows = collect(
        client,
        &format!("reading the {survey} alert {source_id}"),
        &alert_select("a.survey = $1 AND a.source_id = $2"),
        &[&survey.as_str(), &source_id],
        alert_from_row,
    )
    .await?;
    Ok(rows.pop())
}

pub(crate) async fn solar_system_alerts(
    client: &Client,
    name: &str,
    limit: usize,
) -> Result<Vec<AlertRow>, ReadFailure> {
    collect(
        client,
        &format!("reading the alerts of solar-system object {name:?}"),
        &format!(
            "{} ORDER BY a.mjd DESC, a.survey, a.source_id DESC LIMIT $2",
            alert_select("a.solar_system_name = $1")
        ),
        &[&name, &limit_value(limit)],
        alert_from_row,
    )
    .await
}

pub(crate) async fn cutouts(client: &Client, survey: Survey, source_id: i64) -> Result<Vec<CutoutRow>, ReadFailure> {
    let mut rows = collect(
        client,
        &format!("reading the cutouts of {survey} alert {source_id}"),
        "SELECT kind, file_name, data FROM cutouts WHERE survey = $1 AND source_id = $2",
        &[&survey.as_str(), &source_id],
        |row| {
            let kind_name: &str = row.try_get(0)?;
            let kind = CutoutKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == kind_name)
                .ok_or_else(|| ReadError::value(0, format!("unknown cutout kind {kind_name:?}")))?;
            Ok(CutoutRow {
                survey,
                source_id,
                kind,
                file_name: row.try_get(1)?,
                data: row.try_get(2)?,
            })
        },
    )
    .await?;
    // Science, template, difference: the order surveys list them.
    rows.sort_by_key(|row| CutoutKind::ALL.iter().position(|kind| *kind == row.kind));
    Ok(rows)
}

pub(crate) async fn counts_per_night(client: &Client) -> Result<Vec<NightCount>, ReadFailure> {
    collect(
        client,
        "counting alerts per night",
        "SELECT night, survey, COUNT(*), COUNT(DISTINCT object_id) FROM alerts GROUP BY night, survey
         ORDER BY night, survey",
        &[],
        |row| {
            Ok(NightCount {
                night: night_at(row, 0)?,
                survey: survey_at(row, 1)?,
                n_alerts: count_at(row, 2)?,
                n_objects: count_at(row, 3)?,
            })
        },
    )
    .await
}

pub(crate) async fn dead_letters(
    client: &Client,
    reason: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, ReadFailure> {
    // Two statements, so that a reason uses the (reason, id) index.
    let select = "SELECT id, origin, reason, message, bytes, received_unix FROM dead_letters";
    let map = |row: &Row| {
        Ok(DeadLetter {
            id: Some(row.try_get(0)?),
            origin: row.try_get(1)?,
            reason: row.try_get(2)?,
            message: row.try_get(3)?,
            bytes: row.try_get(4)?,
            received_unix: row.try_get(5)?,
        })
    };
    let context = "reading dead letters";
    match reason {
        Some(reason) => {
            collect(
                client,
                context,
                &format!("{select} WHERE reason = $1 ORDER BY id LIMIT $2"),
                &[&reason, &limit_value(limit)],
                map,
            )
            .await
        }
        None => {
            collect(
                client,
                context,
                &format!("{select} ORDER BY id LIMIT $1"),
                &[&limit_value(limit)],
                map,
            )
            .await
        }
    }
}

pub(crate) async fn counts(client: &Client) -> Result<StoreCounts, ReadFailure> {
    let mut rows = collect(
        client,
        "counting rows",
        "SELECT (SELECT COUNT(*) FROM objects), (SELECT COUNT(*) FROM alerts), (SELECT COUNT(*) FROM detections),
                (SELECT COUNT(*) FROM upper_limits), (SELECT COUNT(*) FROM forced_photometry),
                (SELECT COUNT(*) FROM cutouts), (SELECT COUNT(*) FROM dead_letters)",
        &[],
        |row| {
            Ok(StoreCounts {
                objects: count_at(row, 0)?,
                alerts: count_at(row, 1)?,
                detections: count_at(row, 2)?,
                upper_limits: count_at(row, 3)?,
                forced_photometry: count_at(row, 4)?,
                cutouts: count_at(row, 5)?,
                dead_letters: count_at(row, 6)?,
            })
        },
    )
    .await?;
    Ok(rows.pop().unwrap_or_default())
}
