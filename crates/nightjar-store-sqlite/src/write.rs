//! The write path: batches of alerts in one transaction, dead letters, and pruning.
//!
//! A batch is flattened into rows, sorted by key (so the B-trees are walked in order) and
//! deduplicated, then inserted with `ON CONFLICT DO NOTHING`; `changes()` says which rows were
//! new. Object summaries are then recomputed from the stored detections, never incremented, so a
//! replayed batch, or the same alerts in another order or batching, leaves the same store.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use nightjar_core::raw::{FieldValue, RawBytes};
use nightjar_core::{Alert, Band, Detection, Survey};
use nightjar_store::{DeadLetter, HEALPIX_ORDER, Night, PruneSummary, StoreError, WriteSummary};

use crate::error::map_sqlite;

/// The writer connection and what it caches between batches.
pub(crate) struct Writer {
    pub(crate) connection: Connection,
    /// Per raw record type: the field paths of the triggering detection's record.
    raw_detection_paths: HashMap<TypeId, Arc<[String]>>,
}

/// A detection to insert, borrowed from the batch.
struct DetectionInsert<'a> {
    survey: Survey,
    object_id: &'a str,
    detection: &'a Detection,
    is_alert: bool,
}

/// Converts a SQLite error of the write path.
fn failed<'a>(path: &'a str, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |error| map_sqlite(error, path, context)
}

impl Writer {
    pub(crate) fn new(connection: Connection) -> Writer {
        Writer {
            connection,
            raw_detection_paths: HashMap::new(),
        }
    }

    /// Stores a batch in one transaction over both database files; on error nothing is stored.
    pub(crate) fn write_batch(&mut self, path: &str, alerts: &[Alert]) -> Result<WriteSummary, StoreError> {
        let mut summary = WriteSummary {
            n_alerts: alerts.len() as u64,
            ..WriteSummary::default()
        };
        let raw_detections: Vec<String> = alerts.iter().map(|alert| self.raw_detection_json(alert)).collect();

        // IMMEDIATE: take the write lock now, not at the first write (no upgrade deadlocks).
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(path, "starting a batch"))?;

        // Objects first (the other rows refer to them), with a provisional summary.
        let mut objects: Vec<(&Alert, usize)> =
            alerts.iter().enumerate().map(|(index, alert)| (alert, index)).collect();
        objects.sort_by(|(a, a_index), (b, b_index)| {
            (a.survey, a.object_id.as_str(), a_index).cmp(&(b.survey, b.object_id.as_str(), b_index))
        });
        objects.dedup_by(|(a, _), (b, _)| a.survey == b.survey && a.object_id == b.object_id);
        let mut new_objects = BTreeSet::new();
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO objects (survey, object_id, first_mjd, last_mjd, n_detections, ra, dec, healpix)
                     VALUES (?1, ?2, ?3, ?3, 0, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )
                .map_err(failed(path, "preparing the object insert"))?;
            for (alert, _) in &objects {
                let detection = &alert.detection;
                let inserted = insert
                    .execute(params![
                        alert.survey.as_str(),
                        alert.object_id,
                        detection.mjd,
                        detection.ra,
                        detection.dec,
                        healpix_of(detection.ra, detection.dec),
                    ])
                    .map_err(failed(path, "inserting objects"))?;
                if inserted > 0 {
                    new_objects.insert((alert.survey, alert.object_id.as_str()));
                }
            }
        }
        summary.new_objects = new_objects.len() as u64;

        // Detections: the alerts' own and their history, one row per source id.
        let mut detections: Vec<DetectionInsert<'_>> = Vec::new();
        for alert in alerts {
            let of = |detection, is_alert| DetectionInsert {
                survey: alert.survey,
                object_id: &alert.object_id,
                detection,
                is_alert,
            };
            detections.push(of(&alert.detection, true));
            detections.extend(alert.history.iter().map(|detection| of(detection, false)));
        }
        // Alert detections sort first among equal keys, so dedup keeps them.
        detections.sort_by(|a, b| {
            (a.survey, a.detection.source_id, !a.is_alert).cmp(&(b.survey, b.detection.source_id, !b.is_alert))
        });
        detections.dedup_by(|a, b| a.survey == b.survey && a.detection.source_id == b.detection.source_id);
        let mut changed_objects: BTreeSet<(Survey, &str)> = new_objects;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO detections (survey, source_id, object_id, mjd, night, band, ra, dec, magnitude,
                         magnitude_err, flux, flux_err, is_negative, reliability, is_alert, healpix)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(failed(path, "preparing the detection insert"))?;
            // An alert's own record of its detection replaces what another alert's history said
            // about it (ZTF rounds prv_candidates and gives `rb`, not `drb`): the store then holds
            // the same values whatever order the alerts came in.
            let mut mark_alert = transaction
                .prepare_cached(
                    "UPDATE detections SET object_id = ?3, mjd = ?4, night = ?5, band = ?6, ra = ?7, dec = ?8,
                         magnitude = ?9, magnitude_err = ?10, flux = ?11, flux_err = ?12, is_negative = ?13,
                         reliability = ?14, is_alert = ?15, healpix = ?16
                     WHERE survey = ?1 AND source_id = ?2 AND is_alert = 0",
                )
                .map_err(failed(path, "preparing the detection update"))?;
            for row in &detections {
                let detection = row.detection;
                let values = params![
                    row.survey.as_str(),
                    detection.source_id,
                    row.object_id,
                    detection.mjd,
                    Night::of_mjd(detection.mjd).0,
                    detection.band.map(Band::as_str),
                    detection.ra,
                    detection.dec,
                    detection.magnitude,
                    detection.magnitude_err,
                    detection.flux,
                    detection.flux_err,
                    detection.is_negative,
                    detection.reliability,
                    row.is_alert,
                    healpix_of(detection.ra, detection.dec),
                ];
                if insert.execute(values).map_err(failed(path, "inserting detections"))? > 0 {
                    summary.new_detections += 1;
                    changed_objects.insert((row.survey, row.object_id));
                } else if row.is_alert
                    && mark_alert
                        .execute(values)
                        .map_err(failed(path, "updating alert detections"))?
                        > 0
                {
                    // Seen before only in another alert's history; its position may have moved.
                    changed_objects.insert((row.survey, row.object_id));
                }
            }
        }

        // Upper limits, keyed by (object, time, band).
        let mut limits: Vec<_> = alerts
            .iter()
            .flat_map(|alert| alert.upper_limits.iter().map(move |limit| (alert, limit)))
            .collect();
        limits.sort_by(|(a, a_limit), (b, b_limit)| {
            (
                a.survey,
                a.object_id.as_str(),
                a_limit.mjd.to_bits(),
                band_key(a_limit.band),
            )
                .cmp(&(
                    b.survey,
                    b.object_id.as_str(),
                    b_limit.mjd.to_bits(),
                    band_key(b_limit.band),
                ))
        });
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO upper_limits (survey, object_id, mjd, band, night, limiting_magnitude, noise_flux)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                )
                .map_err(failed(path, "preparing the upper-limit insert"))?;
            for (alert, limit) in &limits {
                summary.new_upper_limits += insert
                    .execute(params![
                        alert.survey.as_str(),
                        alert.object_id,
                        limit.mjd,
                        band_key(limit.band),
                        Night::of_mjd(limit.mjd).0,
                        limit.limiting_magnitude,
                        limit.noise_flux,
                    ])
                    .map_err(failed(path, "inserting upper limits"))?
                    as u64;
            }
        }

        // Forced photometry, keyed by (object, time, band).
        let mut forced: Vec<_> = alerts
            .iter()
            .flat_map(|alert| alert.forced_photometry.iter().map(move |point| (alert, point)))
            .collect();
        forced.sort_by(|(a, a_point), (b, b_point)| {
            (
                a.survey,
                a.object_id.as_str(),
                a_point.mjd.to_bits(),
                band_key(a_point.band),
            )
                .cmp(&(
                    b.survey,
                    b.object_id.as_str(),
                    b_point.mjd.to_bits(),
                    band_key(b_point.band),
                ))
        });
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO forced_photometry (survey, object_id, mjd, band, night, forced_source_id, flux, flux_err)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                )
                .map_err(failed(path, "preparing the forced-photometry insert"))?;
            for (alert, point) in &forced {
                summary.new_forced_photometry += insert
                    .execute(params![
                        alert.survey.as_str(),
                        alert.object_id,
                        point.mjd,
                        band_key(point.band),
                        Night::of_mjd(point.mjd).0,
                        point.forced_source_id,
                        point.flux,
                        point.flux_err,
                    ])
                    .map_err(failed(path, "inserting forced photometry"))?
                    as u64;
            }
        }

        // Alerts, keyed by their triggering detection.
        let mut alert_order: Vec<usize> = (0..alerts.len()).collect();
        alert_order.sort_by_key(|&index| (alerts[index].survey, alerts[index].detection.source_id, index));
        let mut new_alerts = 0_u64;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO alerts (survey, source_id, object_id, mjd, night, schema_version, solar_system_name,
                         raw_detection)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                )
                .map_err(failed(path, "preparing the alert insert"))?;
            for &index in &alert_order {
                let alert = &alerts[index];
                new_alerts += insert
                    .execute(params![
                        alert.survey.as_str(),
                        alert.detection.source_id,
                        alert.object_id,
                        alert.detection.mjd,
                        Night::of_mjd(alert.detection.mjd).0,
                        alert.schema_version,
                        solar_system_name(alert),
                        raw_detections[index],
                    ])
                    .map_err(failed(path, "inserting alerts"))? as u64;
            }
        }
        summary.n_duplicate_alerts = summary.n_alerts - new_alerts;

        // Cutouts, in the cutouts file.
        let mut cutouts: Vec<_> = alerts
            .iter()
            .flat_map(|alert| alert.cutouts.iter().map(move |cutout| (alert, cutout)))
            .collect();
        cutouts.sort_by(|(a, a_cutout), (b, b_cutout)| {
            (a.survey, a.detection.source_id, a_cutout.kind.as_str()).cmp(&(
                b.survey,
                b.detection.source_id,
                b_cutout.kind.as_str(),
            ))
        });
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO cutouts.cutouts (survey, source_id, kind, night, file_name, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )
                .map_err(failed(path, "preparing the cutout insert"))?;
            for (alert, cutout) in &cutouts {
                summary.new_cutouts += insert
                    .execute(params![
                        alert.survey.as_str(),
                        alert.detection.source_id,
                        cutout.kind.as_str(),
                        Night::of_mjd(alert.detection.mjd).0,
                        cutout.file_name,
                        &cutout.data[..],
                    ])
                    .map_err(failed(path, "inserting cutouts"))? as u64;
            }
        }

        // Summaries of the objects whose detections changed, from what is stored.
        for (survey, object_id) in &changed_objects {
            recompute_summary(&transaction, path, *survey, object_id)?;
        }

        transaction.commit().map_err(failed(path, "committing a batch"))?;
        tracing::debug!(
            n_alerts = summary.n_alerts,
            n_duplicate_alerts = summary.n_duplicate_alerts,
            new_objects = summary.new_objects,
            new_detections = summary.new_detections,
            new_cutouts = summary.new_cutouts,
            "stored a batch"
        );
        Ok(summary)
    }

    /// The triggering detection's raw record as JSON text (ZTF `candidate`, Rubin `diaSource`),
    /// the same value as `alert.raw.to_json()[...]` without serialising the whole alert.
    fn raw_detection_json(&mut self, alert: &Alert) -> String {
        let prefix = match alert.survey {
            Survey::Ztf => "candidate.",
            Survey::Rubin => "diaSource.",
        };
        let raw = &alert.raw;
        let paths = self
            .raw_detection_paths
            .entry(raw.as_any().type_id())
            .or_insert_with(|| {
                raw.field_paths()
                    .into_iter()
                    .filter(|field| field.starts_with(prefix))
                    .collect()
            });
        let mut record = serde_json::Map::with_capacity(paths.len());
        for field in paths.iter() {
            let Some(value) = raw.get(field) else { continue };
            let json = match value {
                FieldValue::Null => serde_json::Value::Null,
                FieldValue::Bool(value) => serde_json::Value::Bool(value),
                FieldValue::Int(value) => serde_json::Value::from(value),
                FieldValue::Float(value) if value.is_nan() => serde_json::Value::from("NaN"),
                FieldValue::Float(value) if value == f64::INFINITY => serde_json::Value::from("Infinity"),
                FieldValue::Float(value) if value == f64::NEG_INFINITY => serde_json::Value::from("-Infinity"),
                FieldValue::Float(value) => serde_json::Value::from(value),
                FieldValue::Str(value) => serde_json::Value::from(value),
                FieldValue::Bytes(bytes) => RawBytes(Arc::from(bytes)).summary_json(),
                FieldValue::Nested => continue,
            };
            insert_dotted(&mut record, &field[prefix.len()..], json);
        }
        serde_json::Value::Object(record).to_string()
    }

    /// Stores dead letters in one transaction; returns their ids.
    pub(crate) fn write_dead_letters(&mut self, path: &str, letters: &[DeadLetter]) -> Result<Vec<i64>, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(path, "starting to store dead letters"))?;
        let mut ids = Vec::with_capacity(letters.len());
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO dead_letters (origin, reason, message, bytes, received_unix)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (origin, reason) DO UPDATE SET
                         message = excluded.message, bytes = excluded.bytes, received_unix = excluded.received_unix
                     RETURNING id",
                )
                .map_err(failed(path, "preparing the dead-letter insert"))?;
            for letter in letters {
                let id: i64 = insert
                    .query_row(
                        params![
                            letter.origin,
                            letter.reason,
                            letter.message,
                            letter.bytes,
                            letter.received_unix
                        ],
                        |row| row.get(0),
                    )
                    .map_err(failed(path, "storing dead letters"))?;
                ids.push(id);
            }
        }
        transaction.commit().map_err(failed(path, "storing dead letters"))?;
        Ok(ids)
    }

    /// Removes dead letters by id; returns how many existed.
    pub(crate) fn delete_dead_letters(&mut self, path: &str, ids: &[i64]) -> Result<u64, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(path, "starting to delete dead letters"))?;
        let mut deleted = 0_u64;
        {
            let mut delete = transaction
                .prepare_cached("DELETE FROM dead_letters WHERE id = ?1")
                .map_err(failed(path, "preparing the dead-letter delete"))?;
            for id in ids {
                deleted += delete.execute([id]).map_err(failed(path, "deleting dead letters"))? as u64;
            }
        }
        transaction.commit().map_err(failed(path, "deleting dead letters"))?;
        Ok(deleted)
    }

    /// Removes everything of nights before `before`, in one transaction; objects left without
    /// detections go, the others' summaries are recomputed.
    pub(crate) fn prune(&mut self, path: &str, before: Night) -> Result<PruneSummary, StoreError> {
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed(path, "starting to prune"))?;
        let night = before.0;
        // INDEXED BY: only the pruned nights are read, not every detection.
        let touched: BTreeSet<(String, String)> = {
            let mut select = transaction
                .prepare("SELECT survey, object_id FROM detections INDEXED BY detections_night WHERE night < ?1")
                .map_err(failed(path, "finding the objects to prune"))?;
            let rows = select
                .query_map([night], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(failed(path, "finding the objects to prune"))?;
            rows.collect::<Result<_, _>>()
                .map_err(failed(path, "finding the objects to prune"))?
        };
        let delete = |sql: &str| -> Result<u64, StoreError> {
            transaction
                .execute(sql, [night])
                .map(|deleted| deleted as u64)
                .map_err(failed(path, "pruning"))
        };
        let mut summary = PruneSummary {
            cutouts: delete("DELETE FROM cutouts.cutouts WHERE night < ?1")?,
            alerts: delete("DELETE FROM alerts WHERE night < ?1")?,
            detections: delete("DELETE FROM detections WHERE night < ?1")?,
            upper_limits: delete("DELETE FROM upper_limits WHERE night < ?1")?,
            forced_photometry: delete("DELETE FROM forced_photometry WHERE night < ?1")?,
            objects: 0,
        };
        for (survey, object_id) in &touched {
            let survey = crate::read::parse_survey(survey).map_err(failed(path, "pruning"))?;
            let remaining: i64 = transaction
                .query_row(
                    "SELECT COUNT(*) FROM detections WHERE survey = ?1 AND object_id = ?2",
                    params![survey.as_str(), object_id],
                    |row| row.get(0),
                )
                .map_err(failed(path, "pruning"))?;
            if remaining > 0 {
                recompute_summary(&transaction, path, survey, object_id)?;
                continue;
            }
            // Rows of later nights without a detection cannot normally exist; remove them so the
            // object can go.
            for (sql, count) in [
                (
                    "DELETE FROM upper_limits WHERE survey = ?1 AND object_id = ?2",
                    &mut summary.upper_limits,
                ),
                (
                    "DELETE FROM forced_photometry WHERE survey = ?1 AND object_id = ?2",
                    &mut summary.forced_photometry,
                ),
                (
                    "DELETE FROM objects WHERE survey = ?1 AND object_id = ?2",
                    &mut summary.objects,
                ),
            ] {
                *count += transaction
                    .execute(sql, params![survey.as_str(), object_id])
                    .map_err(failed(path, "pruning"))? as u64;
            }
        }
        transaction.commit().map_err(failed(path, "committing a prune"))?;
        tracing::info!(before = %before, ?summary, "pruned the store");
        Ok(summary)
    }
}

/// Recomputes an object's summary from its stored detections (in source-id order, so the floating
/// point sums do not depend on the order the detections arrived in).
fn recompute_summary(
    transaction: &Transaction<'_>,
    path: &str,
    survey: Survey,
    object_id: &str,
) -> Result<(), StoreError> {
    // INDEXED BY: without statistics SQLite may prefer walking the primary key (every
    // detection of the survey) to avoid the sort; sorting the few rows here is cheaper.
    let mut select = transaction
        .prepare_cached(
            "SELECT source_id, mjd, ra, dec FROM detections INDEXED BY detections_object
             WHERE survey = ?1 AND object_id = ?2",
        )
        .map_err(failed(path, "preparing the summary query"))?;
    let mut detections: Vec<(i64, f64, f64, f64)> = select
        .query_map(params![survey.as_str(), object_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .and_then(|rows| rows.collect())
        .map_err(failed(path, "reading detections for a summary"))?;
    detections.sort_by_key(|(source_id, ..)| *source_id);
    let mut summary = SummaryAccumulator::default();
    for (_, mjd, ra, dec) in detections {
        summary.add(mjd, ra, dec);
    }
    let Some((first_mjd, last_mjd, n_detections, ra, dec)) = summary.finish() else {
        return Ok(());
    };
    let mut update = transaction
        .prepare_cached(
            "UPDATE objects SET first_mjd = ?3, last_mjd = ?4, n_detections = ?5, ra = ?6, dec = ?7, healpix = ?8
             WHERE survey = ?1 AND object_id = ?2",
        )
        .map_err(failed(path, "preparing the summary update"))?;
    update
        .execute(params![
            survey.as_str(),
            object_id,
            first_mjd,
            last_mjd,
            n_detections,
            ra,
            dec,
            healpix_of(ra, dec)
        ])
        .map_err(failed(path, "updating object summaries"))?;
    Ok(())
}

/// Time range, count and mean position of an object's detections.
#[derive(Default)]
struct SummaryAccumulator {
    first_mjd: f64,
    last_mjd: f64,
    n_detections: i64,
    /// Sum of the unit vectors of the valid positions.
    sum: [f64; 3],
    /// The first valid position, for a degenerate mean.
    first_position: Option<(f64, f64)>,
}

impl SummaryAccumulator {
    fn add(&mut self, mjd: f64, ra: f64, dec: f64) {
        if self.n_detections == 0 {
            self.first_mjd = mjd;
            self.last_mjd = mjd;
        } else {
            self.first_mjd = self.first_mjd.min(mjd);
            self.last_mjd = self.last_mjd.max(mjd);
        }
        self.n_detections += 1;
        if ra.is_finite() && dec.is_finite() && (-90.0..=90.0).contains(&dec) {
            self.first_position.get_or_insert((ra, dec));
            let (ra, dec) = (ra.to_radians(), dec.to_radians());
            self.sum[0] += dec.cos() * ra.cos();
            self.sum[1] += dec.cos() * ra.sin();
            self.sum[2] += dec.sin();
        }
    }

    /// (first_mjd, last_mjd, n_detections, ra, dec), or `None` without detections. The mean
    /// position is the direction of the summed unit vectors, so it is right across ra = 0/360
    /// and near the poles; without a valid position it is NaN.
    fn finish(self) -> Option<(f64, f64, i64, f64, f64)> {
        if self.n_detections == 0 {
            return None;
        }
        let [x, y, z] = self.sum;
        let (ra, dec) = match self.first_position {
            None => (f64::NAN, f64::NAN),
            Some(first) if x.hypot(y).hypot(z) < 1e-12 => first,
            // A single position is kept exactly as measured.
            Some(first) if self.n_detections == 1 => first,
            Some(_) => {
                let ra = y.atan2(x).to_degrees().rem_euclid(360.0);
                let dec = z.atan2(x.hypot(y)).to_degrees();
                // rem_euclid can round up to 360.0 itself.
                (if ra >= 360.0 { 0.0 } else { ra }, dec)
            }
        };
        Some((self.first_mjd, self.last_mjd, self.n_detections, ra, dec))
    }
}

/// NESTED HEALPix index at [`HEALPIX_ORDER`]; -1 for a position that is not on the sky.
pub(crate) fn healpix_of(ra: f64, dec: f64) -> i64 {
    if !ra.is_finite() || !dec.is_finite() || !(-90.0..=90.0).contains(&dec) {
        return -1;
    }
    let layer = cdshealpix::nested::get(HEALPIX_ORDER);
    layer
        .hash_checked(ra.to_radians(), dec.to_radians())
        .ok()
        .and_then(|cell| i64::try_from(cell).ok())
        .unwrap_or(-1)
}

/// The band as stored in key columns: its letter, `''` when unknown.
pub(crate) fn band_key(band: Option<Band>) -> &'static str {
    band.map_or("", Band::as_str)
}

/// The solar-system object the survey associated with the alert: ZTF `candidate.ssnamenr`; Rubin
/// the designation from `ssSource`, `mpc_orbits` or `MPCORB`. Empty and `"null"` mean none.
fn solar_system_name(alert: &Alert) -> Option<String> {
    let paths: &[&str] = match alert.survey {
        Survey::Ztf => &["candidate.ssnamenr"],
        Survey::Rubin => &[
            "ssSource.designation",
            "mpc_orbits.designation",
            "MPCORB.mpcDesignation",
        ],
    };
    paths.iter().find_map(|path| match alert.raw.get(path) {
        Some(FieldValue::Str(name)) => {
            let name = name.trim();
            (!name.is_empty() && !name.eq_ignore_ascii_case("null")).then(|| name.to_string())
        }
        _ => None,
    })
}

/// Inserts `value` at a dotted path (`a.b` makes `{"a": {"b": value}}`).
fn insert_dotted(record: &mut serde_json::Map<String, serde_json::Value>, path: &str, value: serde_json::Value) {
    match path.split_once('.') {
        None => {
            record.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = record
                .entry(head.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if !entry.is_object() {
                *entry = serde_json::Value::Object(serde_json::Map::new());
            }
            if let serde_json::Value::Object(nested) = entry {
                insert_dotted(nested, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_position_wraps_around_ra_zero() {
        let mut summary = SummaryAccumulator::default();
        summary.add(1.0, 359.9, 10.0);
        summary.add(2.0, 0.1, 10.0);
        let (first, last, n, ra, dec) = summary.finish().unwrap_or_default();
        assert_eq!((first, last, n), (1.0, 2.0, 2));
        assert!(!(1e-9..=360.0 - 1e-9).contains(&ra), "ra {ra}");
        assert!((dec - 10.0).abs() < 1e-3, "dec {dec}");
    }

    #[test]
    fn invalid_positions_have_no_healpix_cell() {
        assert_eq!(healpix_of(f64::NAN, 0.0), -1);
        assert_eq!(healpix_of(10.0, 91.0), -1);
        assert!(healpix_of(360.0, 90.0) >= 0);
        assert!(healpix_of(-10.0, -90.0) >= 0);
    }

    #[test]
    fn dotted_paths_nest() {
        let mut record = serde_json::Map::new();
        insert_dotted(&mut record, "a", serde_json::json!(1));
        insert_dotted(&mut record, "b.c", serde_json::json!(2));
        assert_eq!(
            serde_json::Value::Object(record),
            serde_json::json!({"a": 1, "b": {"c": 2}})
        );
    }
}
