//! The write path: batches of alerts in one transaction, dead letters, and pruning.
//!
//! A batch is flattened into rows, sorted by key (so the B-trees are walked in order) and
//! deduplicated, then inserted with `ON CONFLICT DO NOTHING`; `changes()` says which rows were
//! new. Object summaries are then recomputed from the stored detections, never incremented, so a
//! replayed batch, or the same alerts in another order or batching, leaves the same store.

use std::collections::BTreeSet;

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use nightjar_core::{Alert, Band, Survey};
use nightjar_store::rows::{
    RawPathCache, SummaryAccumulator, SummaryValues, alert_class, alert_tags_key, band_key, batch_detections,
    module_values_json, solar_system_name,
};
use nightjar_store::sky::healpix_of;
use nightjar_store::{DeadLetter, Night, PruneSummary, StoreError, WriteSummary};

use crate::error::map_sqlite;

/// The writer connection and what it caches between batches.
pub(crate) struct Writer {
    pub(crate) connection: Connection,
    /// Per raw record type: the field paths of the triggering detection's record.
    raw_paths: RawPathCache,
}

/// Converts a SQLite error of the write path.
fn failed<'a>(path: &'a str, context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |error| map_sqlite(error, path, context)
}

impl Writer {
    pub(crate) fn new(connection: Connection) -> Writer {
        Writer {
            connection,
            raw_paths: RawPathCache::default(),
        }
    }

    /// Stores a batch in one transaction over both database files; on error nothing is stored.
    pub(crate) fn write_batch(&mut self, path: &str, alerts: &[Alert]) -> Result<WriteSummary, StoreError> {
        let mut summary = WriteSummary {
            n_alerts: alerts.len() as u64,
            ..WriteSummary::default()
        };
        let raw_detections: Vec<String> = alerts
            .iter()
            .map(|alert| self.raw_paths.raw_detection_json(alert))
            .collect();

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
        let mut detections = batch_detections(alerts);
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
                         raw_detection, modules, class, tags)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
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
                        module_values_json(alert),
                        alert_class(alert),
                        alert_tags_key(alert),
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
        Ok(summary)
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
    let Some(SummaryValues {
        first_mjd,
        last_mjd,
        n_detections,
        ra,
        dec,
    }) = summary.finish()
    else {
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
