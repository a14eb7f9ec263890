//! The read path: light curves, HEALPix cone search, alerts, cutouts, counts and dead letters.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use nightjar_core::{Band, CutoutKind, Survey};
use nightjar_store::rows::{parse_module_values, selection_filters, survey_from_name};
use nightjar_store::sky::{angular_distance_deg, cone_ranges, sort_nearest_first};
use nightjar_store::{
    AlertRow, AlertSelection, ClassCount, CutoutRow, DeadLetter, DetectionRow, ForcedPhotometryRow, LightCurve, Night,
    NightCount, ObjectSummary, StoreCounts, StoreError, TimeWindow, UpperLimitRow,
};

use crate::error::map_sqlite;

/// Columns of `objects` read into an [`ObjectSummary`], in [`object_from_row`]'s order.
const OBJECT_COLUMNS: &str = "o.survey, o.object_id, o.first_mjd, o.last_mjd, o.n_detections, o.ra, o.dec, o.healpix";

/// Columns of `detections` read into a [`DetectionRow`], in [`detection_from_row`]'s order.
const DETECTION_COLUMNS: &str = "d.survey, d.object_id, d.source_id, d.mjd, d.night, d.band, d.ra, d.dec, d.magnitude, \
     d.magnitude_err, d.flux, d.flux_err, d.is_negative, d.reliability, d.is_alert";

/// Number of columns in [`DETECTION_COLUMNS`].
const N_DETECTION_COLUMNS: usize = 15;

/// A conversion error for a column value nightjar does not know.
fn conversion_error(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, Type::Text, format!("unknown {what} {value:?}").into())
}

/// Parses a stored survey name.
pub(crate) fn parse_survey(name: &str) -> rusqlite::Result<Survey> {
    survey_from_name(name).ok_or_else(|| conversion_error(0, "survey", name))
}

fn survey_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Survey> {
    let name: String = row.get(column)?;
    parse_survey(&name).map_err(|_| conversion_error(column, "survey", &name))
}

/// A band column: NULL or `''` is unknown.
fn band_at(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<Band>> {
    let name: Option<String> = row.get(column)?;
    match name.as_deref() {
        None | Some("") => Ok(None),
        Some(name) => Band::from_name(name)
            .map(Some)
            .ok_or_else(|| conversion_error(column, "band", name)),
    }
}

fn count_at(row: &Row<'_>, column: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(column)?;
    Ok(u64::try_from(value).unwrap_or(0))
}

fn object_from_row(row: &Row<'_>) -> rusqlite::Result<ObjectSummary> {
    Ok(ObjectSummary {
        survey: survey_at(row, 0)?,
        object_id: row.get(1)?,
        first_mjd: row.get(2)?,
        last_mjd: row.get(3)?,
        n_detections: count_at(row, 4)?,
        ra: row.get(5)?,
        dec: row.get(6)?,
        healpix: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(u64::MAX),
    })
}

fn detection_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<DetectionRow> {
    Ok(DetectionRow {
        survey: survey_at(row, first)?,
        object_id: row.get(first + 1)?,
        source_id: row.get(first + 2)?,
        mjd: row.get(first + 3)?,
        night: Night(row.get(first + 4)?),
        band: band_at(row, first + 5)?,
        ra: row.get(first + 6)?,
        dec: row.get(first + 7)?,
        magnitude: row.get(first + 8)?,
        magnitude_err: row.get(first + 9)?,
        flux: row.get(first + 10)?,
        flux_err: row.get(first + 11)?,
        is_negative: row.get(first + 12)?,
        reliability: row.get(first + 13)?,
        is_alert: row.get(first + 14)?,
    })
}

/// Reads an alert row: `DETECTION_COLUMNS`, then schema version, solar-system name, raw JSON,
/// module outputs (JSON) and class.
fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<AlertRow> {
    let raw: String = row.get(N_DETECTION_COLUMNS + 2)?;
    let raw_detection = serde_json::from_str(&raw).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(N_DETECTION_COLUMNS + 2, Type::Text, error.into())
    })?;
    let modules: String = row.get(N_DETECTION_COLUMNS + 3)?;
    let modules = parse_module_values(&modules).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(N_DETECTION_COLUMNS + 3, Type::Text, error.into())
    })?;
    Ok(AlertRow {
        detection: detection_from_row(row, 0)?,
        schema_version: row.get(N_DETECTION_COLUMNS)?,
        solar_system_name: row.get(N_DETECTION_COLUMNS + 1)?,
        raw_detection,
        modules,
        class: row.get(N_DETECTION_COLUMNS + 4)?,
    })
}

/// `SELECT` of alert rows: the triggering detection joined to the alert.
fn alert_select(condition: &str) -> String {
    format!(
        "SELECT {DETECTION_COLUMNS}, a.schema_version, a.solar_system_name, a.raw_detection, a.modules, a.class
         FROM alerts a JOIN detections d ON d.survey = a.survey AND d.source_id = a.source_id
         WHERE {condition}"
    )
}

/// A `LIMIT` value: SQLite takes an i64.
fn limit_value(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Runs a query and collects its rows.
fn collect<T>(
    connection: &Connection,
    path: &str,
    context: &str,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let fail = |error| map_sqlite(error, path, context);
    let mut statement = connection.prepare_cached(sql).map_err(fail)?;
    let rows = statement.query_map(params, map).map_err(fail)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(fail)
}

pub(crate) fn light_curve(
    connection: &Connection,
    path: &str,
    survey: Survey,
    object_id: &str,
) -> Result<Option<LightCurve>, StoreError> {
    let context = format!("reading the light curve of {survey} {object_id}");
    let fail = |error| map_sqlite(error, path, &context);
    // One read transaction, so the parts agree with each other.
    let transaction = connection.unchecked_transaction().map_err(fail)?;
    let object = transaction
        .prepare_cached(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects o WHERE o.survey = ?1 AND o.object_id = ?2"
        ))
        .and_then(|mut statement| {
            statement
                .query_row(params![survey.as_str(), object_id], object_from_row)
                .optional()
        })
        .map_err(fail)?;
    let Some(object) = object else {
        return Ok(None);
    };
    let detections = collect(
        &transaction,
        path,
        &context,
        &format!(
            "SELECT {DETECTION_COLUMNS} FROM detections d INDEXED BY detections_object
             WHERE d.survey = ?1 AND d.object_id = ?2 ORDER BY d.mjd, d.source_id"
        ),
        params![survey.as_str(), object_id],
        |row| detection_from_row(row, 0),
    )?;
    let upper_limits = collect(
        &transaction,
        path,
        &context,
        "SELECT mjd, band, limiting_magnitude, noise_flux FROM upper_limits WHERE survey = ?1 AND object_id = ?2
         ORDER BY mjd, band",
        params![survey.as_str(), object_id],
        |row| {
            Ok(UpperLimitRow {
                survey,
                object_id: object_id.to_string(),
                mjd: row.get(0)?,
                band: band_at(row, 1)?,
                limiting_magnitude: row.get(2)?,
                noise_flux: row.get(3)?,
            })
        },
    )?;
    let forced_photometry = collect(
        &transaction,
        path,
        &context,
        "SELECT forced_source_id, mjd, band, flux, flux_err FROM forced_photometry
         WHERE survey = ?1 AND object_id = ?2 ORDER BY mjd, band",
        params![survey.as_str(), object_id],
        |row| {
            Ok(ForcedPhotometryRow {
                survey,
                object_id: object_id.to_string(),
                forced_source_id: row.get(0)?,
                mjd: row.get(1)?,
                band: band_at(row, 2)?,
                flux: row.get(3)?,
                flux_err: row.get(4)?,
            })
        },
    )?;
    transaction.finish().map_err(fail)?;
    Ok(Some(LightCurve {
        object,
        detections,
        upper_limits,
        forced_photometry,
    }))
}

pub(crate) fn cone_search(
    connection: &Connection,
    path: &str,
    ra: f64,
    dec: f64,
    radius_deg: f64,
    window: TimeWindow,
) -> Result<Vec<(ObjectSummary, f64)>, StoreError> {
    let context = "searching a cone";
    let fail = |error| map_sqlite(error, path, context);
    let transaction = connection.unchecked_transaction().map_err(fail)?;
    let mut statement = transaction
        .prepare_cached(&format!(
            "SELECT {OBJECT_COLUMNS} FROM objects o
             WHERE o.healpix >= ?1 AND o.healpix < ?2
               AND EXISTS (SELECT 1 FROM detections d WHERE d.survey = o.survey AND d.object_id = o.object_id
                           AND d.mjd >= ?3 AND d.mjd < ?4)"
        ))
        .map_err(fail)?;
    let mut found = Vec::new();
    for (start, end) in cone_ranges(ra, dec, radius_deg) {
        let rows = statement
            .query_map(params![start, end, window.start_mjd, window.end_mjd], object_from_row)
            .map_err(fail)?;
        for object in rows {
            let object = object.map_err(fail)?;
            let distance = angular_distance_deg(ra, dec, object.ra, object.dec);
            if distance <= radius_deg {
                found.push((object, distance));
            }
        }
    }
    drop(statement);
    transaction.finish().map_err(fail)?;
    sort_nearest_first(&mut found);
    Ok(found)
}

pub(crate) fn latest_alerts(
    connection: &Connection,
    path: &str,
    window: TimeWindow,
    selection: &AlertSelection,
    limit: usize,
) -> Result<Vec<AlertRow>, StoreError> {
    let (class, tag) = selection_filters(selection);
    collect(
        connection,
        path,
        "reading the latest alerts",
        &format!(
            "{} ORDER BY a.mjd DESC, a.survey, a.source_id DESC LIMIT ?3",
            alert_select(
                "a.mjd >= ?1 AND a.mjd < ?2 AND (?4 IS NULL OR a.class = ?4)
                 AND (?5 IS NULL OR instr(a.tags, ?5) > 0)"
            )
        ),
        params![window.start_mjd, window.end_mjd, limit_value(limit), class, tag],
        alert_from_row,
    )
}

pub(crate) fn classes(connection: &Connection, path: &str) -> Result<Vec<ClassCount>, StoreError> {
    collect(
        connection,
        path,
        "reading the classes",
        "SELECT class, COUNT(*) FROM alerts WHERE class IS NOT NULL GROUP BY class ORDER BY COUNT(*) DESC, class",
        [],
        |row| {
            Ok(ClassCount {
                class: row.get(0)?,
                alerts: row.get::<_, i64>(1)?.try_into().unwrap_or(0),
            })
        },
    )
}

pub(crate) fn alert(
    connection: &Connection,
    path: &str,
    survey: Survey,
    source_id: i64,
) -> Result<Option<AlertRow>, StoreError> {
    let mut rows = collect(
        connection,
        path,
        &format!("reading the {survey} alert {source_id}"),
        &alert_select("a.survey = ?1 AND a.source_id = ?2"),
        params![survey.as_str(), source_id],
        alert_from_row,
    )?;
    Ok(rows.pop())
}

pub(crate) fn solar_system_alerts(
    connection: &Connection,
    path: &str,
    name: &str,
    limit: usize,
) -> Result<Vec<AlertRow>, StoreError> {
    collect(
        connection,
        path,
        &format!("reading the alerts of solar-system object {name:?}"),
        &format!(
            "{} ORDER BY a.mjd DESC, a.survey, a.source_id DESC LIMIT ?2",
            alert_select("a.solar_system_name = ?1")
        ),
        params![name, limit_value(limit)],
        alert_from_row,
    )
}

pub(crate) fn cutouts(
    connection: &Connection,
    path: &str,
    survey: Survey,
    source_id: i64,
) -> Result<Vec<CutoutRow>, StoreError> {
    let mut rows = collect(
        connection,
        path,
        &format!("reading the cutouts of {survey} alert {source_id}"),
        "SELECT kind, file_name, data FROM cutouts.cutouts WHERE survey = ?1 AND source_id = ?2",
        params![survey.as_str(), source_id],
        |row| {
            let kind_name: String = row.get(0)?;
            let kind = CutoutKind::ALL
                .into_iter()
                .find(|kind| kind.as_str() == kind_name)
                .ok_or_else(|| conversion_error(0, "cutout kind", &kind_name))?;
            Ok(CutoutRow {
                survey,
                source_id,
                kind,
                file_name: row.get(1)?,
                data: row.get(2)?,
            })
        },
    )?;
    // Science, template, difference: the order surveys list them.
    rows.sort_by_key(|row| CutoutKind::ALL.iter().position(|kind| *kind == row.kind));
    Ok(rows)
}

pub(crate) fn counts_per_night(connection: &Connection, path: &str) -> Result<Vec<NightCount>, StoreError> {
    collect(
        connection,
        path,
        "counting alerts per night",
        "SELECT night, survey, COUNT(*), COUNT(DISTINCT object_id) FROM alerts GROUP BY night, survey
         ORDER BY night, survey",
        [],
        |row| {
            Ok(NightCount {
                night: Night(row.get(0)?),
                survey: survey_at(row, 1)?,
                n_alerts: count_at(row, 2)?,
                n_objects: count_at(row, 3)?,
            })
        },
    )
}

pub(crate) fn dead_letters(
    connection: &Connection,
    path: &str,
    reason: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    // Two statements, so that a reason uses the (reason, id) index.
    let sql = match reason {
        Some(_) => {
            "SELECT id, origin, reason, message, bytes, received_unix FROM dead_letters
             WHERE reason = ?1 ORDER BY id LIMIT ?2"
        }
        None => {
            "SELECT id, origin, reason, message, bytes, received_unix FROM dead_letters
             WHERE ?1 IS NULL ORDER BY id LIMIT ?2"
        }
    };
    collect(
        connection,
        path,
        "reading dead letters",
        sql,
        params![reason, limit_value(limit)],
        |row| {
            Ok(DeadLetter {
                id: Some(row.get(0)?),
                origin: row.get(1)?,
                reason: row.get(2)?,
                message: row.get(3)?,
                bytes: row.get(4)?,
                received_unix: row.get(5)?,
            })
        },
    )
}

pub(crate) fn counts(connection: &Connection, path: &str) -> Result<StoreCounts, StoreError> {
    let fail = |error| map_sqlite(error, path, "counting rows");
    connection
        .query_row(
            "SELECT (SELECT COUNT(*) FROM objects), (SELECT COUNT(*) FROM alerts), (SELECT COUNT(*) FROM detections),
                    (SELECT COUNT(*) FROM upper_limits), (SELECT COUNT(*) FROM forced_photometry),
                    (SELECT COUNT(*) FROM cutouts.cutouts), (SELECT COUNT(*) FROM dead_letters)",
            [],
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
        .map_err(fail)
}
