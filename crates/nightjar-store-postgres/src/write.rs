//! The write path: batches of alerts in one transaction, dead letters, and pruning.
//!
//! A batch is flattened into rows, sorted by key and deduplicated, then sent as one
//! `INSERT ... SELECT FROM UNNEST(arrays) ON CONFLICT DO NOTHING` per table (one round trip per
//! table, not per row); `RETURNING` and the affected-row counts say which rows were new. Every
//! writer inserts in key order and takes the same tables in the same order, so concurrent
//! workers with overlapping batches wait for each other instead of deadlocking. Object summaries
//! are then recomputed from the stored detections under a row lock on the objects (taken in key
//! order), never incremented, so a replayed batch, the same alerts in another order or batching,
//! or two workers writing the same object at once, leave the same store.

use std::collections::BTreeSet;

use tokio_postgres::{Client, Transaction};

use nightjar_core::{Alert, Band, Survey};
use nightjar_store::rows::{
    DetectionInsert, SummaryAccumulator, SummaryValues, alert_class, alert_tags_key, band_key, batch_detections,
    module_values_json, solar_system_name, survey_from_name,
};
use nightjar_store::sky::healpix_of;
use nightjar_store::{DeadLetter, Night, PruneSummary, WriteSummary};

use crate::error::{Failed, failed};
use crate::schema::{PARTITIONED_TABLES, month_of, partition_name};

/// An object key as stored.
type ObjectKey = (&'static str, String);

/// Creates the night partitions a batch needs (`nights`, from [`batch_nights`]), then stores it.
pub(crate) async fn write_batch_into_partitions(
    client: &mut Client,
    alerts: &[Alert],
    raw_detections: &[String],
    nights: &[i32],
) -> Result<WriteSummary, Failed> {
    crate::schema::ensure_partitions(client, nights).await?;
    write_batch(client, alerts, raw_detections).await
}

/// Stores a batch in one transaction; on error nothing is stored. `raw_detections[i]` is the raw
/// detection JSON of `alerts[i]`.
async fn write_batch(client: &mut Client, alerts: &[Alert], raw_detections: &[String]) -> Result<WriteSummary, Failed> {
    let mut summary = WriteSummary {
        n_alerts: alerts.len() as u64,
        ..WriteSummary::default()
    };
    let transaction = client.transaction().await.map_err(failed("starting a batch"))?;

    // Objects first (the other rows refer to them), with a provisional summary.
    let mut objects: Vec<&Alert> = alerts.iter().collect();
    objects.sort_by(|a, b| (a.survey.as_str(), a.object_id.as_str()).cmp(&(b.survey.as_str(), b.object_id.as_str())));
    objects.dedup_by(|a, b| a.survey == b.survey && a.object_id == b.object_id);
    let rows = transaction
        .query(
            "INSERT INTO objects (survey, object_id, first_mjd, last_mjd, n_detections, ra, dec, healpix)
             SELECT survey, object_id, mjd, mjd, 0, ra, dec, healpix
             FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::bigint[])
                 AS t(survey, object_id, mjd, ra, dec, healpix)
             ON CONFLICT DO NOTHING
             RETURNING survey, object_id",
            &[
                &objects.iter().map(|alert| alert.survey.as_str()).collect::<Vec<_>>(),
                &objects.iter().map(|alert| alert.object_id.as_str()).collect::<Vec<_>>(),
                &objects.iter().map(|alert| alert.detection.mjd).collect::<Vec<_>>(),
                &objects.iter().map(|alert| alert.detection.ra).collect::<Vec<_>>(),
                &objects.iter().map(|alert| alert.detection.dec).collect::<Vec<_>>(),
                &objects
                    .iter()
                    .map(|alert| healpix_of(alert.detection.ra, alert.detection.dec))
                    .collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(failed("inserting objects"))?;
    summary.new_objects = rows.len() as u64;
    let mut changed_objects: BTreeSet<ObjectKey> = BTreeSet::new();
    for row in &rows {
        changed_objects.insert(object_key(row).map_err(failed("inserting objects"))?);
    }

    // Detections: the alerts' own and their history, one row per source id.
    let mut detections = batch_detections(alerts);
    // Alert detections sort first among equal keys, so dedup keeps them.
    detections.sort_by(|a, b| {
        (a.survey.as_str(), a.detection.source_id, !a.is_alert).cmp(&(
            b.survey.as_str(),
            b.detection.source_id,
            !b.is_alert,
        ))
    });
    detections.dedup_by(|a, b| a.survey == b.survey && a.detection.source_id == b.detection.source_id);
    let inserted = insert_detections(&transaction, &detections).await?;
    summary.new_detections = inserted.len() as u64;
    let inserted_ids: BTreeSet<(&str, i64)> = inserted.iter().map(|(survey, _, id)| (*survey, *id)).collect();
    changed_objects.extend(inserted.into_iter().map(|(survey, object_id, _)| (survey, object_id)));
    // An alert's own record of its detection replaces what another alert's history said about
    // it (ZTF rounds prv_candidates and gives `rb`, not `drb`): the store then holds the same
    // values whatever order the alerts came in.
    let seen_before: Vec<&DetectionInsert<'_>> = detections
        .iter()
        .filter(|row| row.is_alert && !inserted_ids.contains(&(row.survey.as_str(), row.detection.source_id)))
        .collect();
    if !seen_before.is_empty() {
        // Seen before only in another alert's history; its position may have moved.
        changed_objects.extend(mark_alerts(&transaction, &seen_before).await?);
    }

    summary.new_upper_limits = insert_upper_limits(&transaction, alerts).await?;
    summary.new_forced_photometry = insert_forced_photometry(&transaction, alerts).await?;
    let new_alerts = insert_alerts(&transaction, alerts, raw_detections).await?;
    summary.n_duplicate_alerts = summary.n_alerts - new_alerts.min(summary.n_alerts);
    summary.new_cutouts = insert_cutouts(&transaction, alerts).await?;

    // Summaries of the objects whose detections changed, from what is stored.
    recompute_summaries(&transaction, &changed_objects).await?;

    transaction.commit().await.map_err(failed("committing a batch"))?;
    Ok(summary)
}

/// The detection columns of one batch, as arrays for `UNNEST`.
struct DetectionArrays<'a> {
    survey: Vec<&'static str>,
    source_id: Vec<i64>,
    object_id: Vec<&'a str>,
    mjd: Vec<f64>,
    night: Vec<i32>,
    band: Vec<Option<&'static str>>,
    ra: Vec<f64>,
    dec: Vec<f64>,
    magnitude: Vec<Option<f64>>,
    magnitude_err: Vec<Option<f64>>,
    flux: Vec<Option<f64>>,
    flux_err: Vec<Option<f64>>,
    is_negative: Vec<bool>,
    reliability: Vec<Option<f64>>,
    is_alert: Vec<bool>,
    healpix: Vec<i64>,
}

impl<'a> DetectionArrays<'a> {
    /// The arrays as query parameters, in the column order of `DETECTION_UNNEST`.
    fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 16] {
        [
            &self.survey,
            &self.source_id,
            &self.object_id,
            &self.mjd,
            &self.night,
            &self.band,
            &self.ra,
            &self.dec,
            &self.magnitude,
            &self.magnitude_err,
            &self.flux,
            &self.flux_err,
            &self.is_negative,
            &self.reliability,
            &self.is_alert,
            &self.healpix,
        ]
    }

    fn of<'b>(rows: impl Iterator<Item = &'b DetectionInsert<'a>>) -> DetectionArrays<'a>
    where
        'a: 'b,
    {
        let mut arrays = DetectionArrays {
            survey: Vec::new(),
            source_id: Vec::new(),
            object_id: Vec::new(),
            mjd: Vec::new(),
            night: Vec::new(),
            band: Vec::new(),
            ra: Vec::new(),
            dec: Vec::new(),
            magnitude: Vec::new(),
            magnitude_err: Vec::new(),
            flux: Vec::new(),
            flux_err: Vec::new(),
            is_negative: Vec::new(),
            reliability: Vec::new(),
            is_alert: Vec::new(),
            healpix: Vec::new(),
        };
        for row in rows {
            let detection = row.detection;
            arrays.survey.push(row.survey.as_str());
            arrays.source_id.push(detection.source_id);
            arrays.object_id.push(row.object_id);
            arrays.mjd.push(detection.mjd);
            arrays.night.push(night_value(detection.mjd));
            arrays.band.push(detection.band.map(Band::as_str));
            arrays.ra.push(detection.ra);
            arrays.dec.push(detection.dec);
            arrays.magnitude.push(detection.magnitude);
            arrays.magnitude_err.push(detection.magnitude_err);
            arrays.flux.push(detection.flux);
            arrays.flux_err.push(detection.flux_err);
            arrays.is_negative.push(detection.is_negative);
            arrays.reliability.push(detection.reliability);
            arrays.is_alert.push(row.is_alert);
            arrays.healpix.push(healpix_of(detection.ra, detection.dec));
        }
        arrays
    }
}

/// `UNNEST` of the sixteen detection arrays, as `t` with the table's column names.
const DETECTION_UNNEST: &str = "UNNEST($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::int4[], $6::text[],
         $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::float8[], $12::float8[], $13::bool[],
         $14::float8[], $15::bool[], $16::bigint[])
     AS t(survey, source_id, object_id, mjd, night, band, ra, dec, magnitude, magnitude_err, flux, flux_err,
          is_negative, reliability, is_alert, healpix)";

/// Inserts the detections not stored yet; returns (survey, object, source id) of those added.
async fn insert_detections(
    transaction: &Transaction<'_>,
    detections: &[DetectionInsert<'_>],
) -> Result<Vec<(&'static str, String, i64)>, Failed> {
    let a = DetectionArrays::of(detections.iter());
    let rows = transaction
        .query(
            &format!(
                "INSERT INTO detections (survey, source_id, object_id, mjd, night, band, ra, dec, magnitude,
                     magnitude_err, flux, flux_err, is_negative, reliability, is_alert, healpix)
                 SELECT * FROM {DETECTION_UNNEST}
                 ON CONFLICT DO NOTHING
                 RETURNING survey, object_id, source_id"
            ),
            &a.params(),
        )
        .await
        .map_err(failed("inserting detections"))?;
    rows.iter()
        .map(|row| {
            let (survey, object_id) = object_key(row)?;
            Ok((survey, object_id, row.try_get(2)?))
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(failed("inserting detections"))
}

/// Replaces stored history copies by the alerts' own detections; returns the objects changed.
async fn mark_alerts(
    transaction: &Transaction<'_>,
    detections: &[&DetectionInsert<'_>],
) -> Result<Vec<ObjectKey>, Failed> {
    let a = DetectionArrays::of(detections.iter().copied());
    // The rows are locked in key order first, as every writer does.
    let rows = transaction
        .query(
            &format!(
                "WITH target AS (
                     SELECT d.survey, d.source_id FROM detections d
                     WHERE (d.survey, d.source_id) IN (SELECT survey, source_id FROM {DETECTION_UNNEST})
                       AND NOT d.is_alert
                     ORDER BY d.survey, d.source_id
                     FOR UPDATE
                 )
                 UPDATE detections d SET object_id = t.object_id, mjd = t.mjd, night = t.night, band = t.band,
                     ra = t.ra, dec = t.dec, magnitude = t.magnitude, magnitude_err = t.magnitude_err,
                     flux = t.flux, flux_err = t.flux_err, is_negative = t.is_negative,
                     reliability = t.reliability, is_alert = t.is_alert, healpix = t.healpix
                 FROM {DETECTION_UNNEST}, target
                 WHERE d.survey = target.survey AND d.source_id = target.source_id
                   AND t.survey = d.survey AND t.source_id = d.source_id AND NOT d.is_alert
                 RETURNING d.survey, d.object_id"
            ),
            &a.params(),
        )
        .await
        .map_err(failed("updating alert detections"))?;
    rows.iter()
        .map(object_key)
        .collect::<Result<_, _>>()
        .map_err(failed("updating alert detections"))
}

/// A key of measurements: (survey, object, mjd bits, band).
fn measurement_key(alert: &Alert, mjd: f64, band: Option<Band>) -> (&'static str, &str, u64, &'static str) {
    (
        alert.survey.as_str(),
        alert.object_id.as_str(),
        mjd.to_bits(),
        band_key(band),
    )
}

/// Upper limits, keyed by (object, time, band); returns how many were added.
async fn insert_upper_limits(transaction: &Transaction<'_>, alerts: &[Alert]) -> Result<u64, Failed> {
    let mut limits: Vec<_> = alerts
        .iter()
        .flat_map(|alert| alert.upper_limits.iter().map(move |limit| (alert, limit)))
        .collect();
    if limits.is_empty() {
        return Ok(0);
    }
    limits.sort_by(|(a, a_limit), (b, b_limit)| {
        measurement_key(a, a_limit.mjd, a_limit.band).cmp(&measurement_key(b, b_limit.mjd, b_limit.band))
    });
    limits.dedup_by(|(a, a_limit), (b, b_limit)| {
        measurement_key(a, a_limit.mjd, a_limit.band) == measurement_key(b, b_limit.mjd, b_limit.band)
    });
    transaction
        .execute(
            "INSERT INTO upper_limits (survey, object_id, mjd, band, night, limiting_magnitude, noise_flux)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::text[], $5::int4[], $6::float8[],
                 $7::float8[])
             ON CONFLICT DO NOTHING",
            &[
                &limits
                    .iter()
                    .map(|(alert, _)| alert.survey.as_str())
                    .collect::<Vec<_>>(),
                &limits
                    .iter()
                    .map(|(alert, _)| alert.object_id.as_str())
                    .collect::<Vec<_>>(),
                &limits.iter().map(|(_, limit)| limit.mjd).collect::<Vec<_>>(),
                &limits.iter().map(|(_, limit)| band_key(limit.band)).collect::<Vec<_>>(),
                &limits
                    .iter()
                    .map(|(_, limit)| night_value(limit.mjd))
                    .collect::<Vec<_>>(),
                &limits
                    .iter()
                    .map(|(_, limit)| limit.limiting_magnitude)
                    .collect::<Vec<_>>(),
                &limits.iter().map(|(_, limit)| limit.noise_flux).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(failed("inserting upper limits"))
}

/// Forced photometry, keyed by (object, time, band); returns how many were added.
async fn insert_forced_photometry(transaction: &Transaction<'_>, alerts: &[Alert]) -> Result<u64, Failed> {
    let mut forced: Vec<_> = alerts
        .iter()
        .flat_map(|alert| alert.forced_photometry.iter().map(move |point| (alert, point)))
        .collect();
    if forced.is_empty() {
        return Ok(0);
    }
    forced.sort_by(|(a, a_point), (b, b_point)| {
        measurement_key(a, a_point.mjd, a_point.band).cmp(&measurement_key(b, b_point.mjd, b_point.band))
    });
    forced.dedup_by(|(a, a_point), (b, b_point)| {
        measurement_key(a, a_point.mjd, a_point.band) == measurement_key(b, b_point.mjd, b_point.band)
    });
    transaction
        .execute(
            "INSERT INTO forced_photometry (survey, object_id, mjd, band, night, forced_source_id, flux, flux_err)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::text[], $5::int4[], $6::bigint[],
                 $7::float8[], $8::float8[])
             ON CONFLICT DO NOTHING",
            &[
                &forced
                    .iter()
                    .map(|(alert, _)| alert.survey.as_str())
                    .collect::<Vec<_>>(),
                &forced
                    .iter()
                    .map(|(alert, _)| alert.object_id.as_str())
                    .collect::<Vec<_>>(),
                &forced.iter().map(|(_, point)| point.mjd).collect::<Vec<_>>(),
                &forced.iter().map(|(_, point)| band_key(point.band)).collect::<Vec<_>>(),
                &forced
                    .iter()
                    .map(|(_, point)| night_value(point.mjd))
                    .collect::<Vec<_>>(),
                &forced
                    .iter()
                    .map(|(_, point)| point.forced_source_id)
                    .collect::<Vec<_>>(),
                &forced.iter().map(|(_, point)| point.flux).collect::<Vec<_>>(),
                &forced.iter().map(|(_, point)| point.flux_err).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(failed("inserting forced photometry"))
}

/// Alerts, keyed by their triggering detection; returns how many were added.
async fn insert_alerts(
    transaction: &Transaction<'_>,
    alerts: &[Alert],
    raw_detections: &[String],
) -> Result<u64, Failed> {
    let mut order: Vec<usize> = (0..alerts.len()).collect();
    order.sort_by_key(|&index| (alerts[index].survey.as_str(), alerts[index].detection.source_id, index));
    order.dedup_by_key(|index| (alerts[*index].survey, alerts[*index].detection.source_id));
    let alert = |index: &usize| &alerts[*index];
    transaction
        .execute(
            "INSERT INTO alerts (survey, source_id, object_id, mjd, night, schema_version, solar_system_name,
                 raw_detection, modules, class, tags)
             SELECT survey, source_id, object_id, mjd, night, schema_version, solar_system_name, raw_detection,
                 modules::jsonb, class, tags
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::float8[], $5::int4[], $6::text[],
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
                 AS batch (survey, source_id, object_id, mjd, night, schema_version, solar_system_name,
                     raw_detection, modules, class, tags)
             ON CONFLICT DO NOTHING",
            &[
                &order.iter().map(|i| alert(i).survey.as_str()).collect::<Vec<_>>(),
                &order.iter().map(|i| alert(i).detection.source_id).collect::<Vec<_>>(),
                &order.iter().map(|i| alert(i).object_id.as_str()).collect::<Vec<_>>(),
                &order.iter().map(|i| alert(i).detection.mjd).collect::<Vec<_>>(),
                &order
                    .iter()
                    .map(|i| night_value(alert(i).detection.mjd))
                    .collect::<Vec<_>>(),
                &order
                    .iter()
                    .map(|i| alert(i).schema_version.as_str())
                    .collect::<Vec<_>>(),
                &order.iter().map(|i| solar_system_name(alert(i))).collect::<Vec<_>>(),
                &order.iter().map(|i| raw_detections[*i].as_str()).collect::<Vec<_>>(),
                &order.iter().map(|i| module_values_json(alert(i))).collect::<Vec<_>>(),
                &order.iter().map(|i| alert_class(alert(i))).collect::<Vec<_>>(),
                &order.iter().map(|i| alert_tags_key(alert(i))).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(failed("inserting alerts"))
}

/// Cutouts, keyed by (alert, kind); returns how many were added.
async fn insert_cutouts(transaction: &Transaction<'_>, alerts: &[Alert]) -> Result<u64, Failed> {
    let mut cutouts: Vec<_> = alerts
        .iter()
        .flat_map(|alert| alert.cutouts.iter().map(move |cutout| (alert, cutout)))
        .collect();
    if cutouts.is_empty() {
        return Ok(0);
    }
    let key = |(alert, cutout): &(&Alert, &nightjar_core::Cutout)| {
        (alert.survey.as_str(), alert.detection.source_id, cutout.kind.as_str())
    };
    cutouts.sort_by(|a, b| key(a).cmp(&key(b)));
    cutouts.dedup_by(|a, b| key(a) == key(b));
    transaction
        .execute(
            "INSERT INTO cutouts (survey, source_id, kind, night, file_name, data)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::int4[], $5::text[], $6::bytea[])
             ON CONFLICT DO NOTHING",
            &[
                &cutouts
                    .iter()
                    .map(|(alert, _)| alert.survey.as_str())
                    .collect::<Vec<_>>(),
                &cutouts
                    .iter()
                    .map(|(alert, _)| alert.detection.source_id)
                    .collect::<Vec<_>>(),
                &cutouts
                    .iter()
                    .map(|(_, cutout)| cutout.kind.as_str())
                    .collect::<Vec<_>>(),
                &cutouts
                    .iter()
                    .map(|(alert, _)| night_value(alert.detection.mjd))
                    .collect::<Vec<_>>(),
                &cutouts
                    .iter()
                    .map(|(_, cutout)| cutout.file_name.as_deref())
                    .collect::<Vec<_>>(),
                &cutouts.iter().map(|(_, cutout)| &cutout.data[..]).collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(failed("inserting cutouts"))
}

/// Reads (survey, object id) from the first two columns of a row.
fn object_key(row: &tokio_postgres::Row) -> Result<ObjectKey, tokio_postgres::Error> {
    let survey: &str = row.try_get(0)?;
    Ok((survey_name(survey), row.try_get(1)?))
}

/// The static name of a stored survey (the keys are only ever written from [`Survey::as_str`]).
fn survey_name(name: &str) -> &'static str {
    survey_from_name(name).map_or("unknown", Survey::as_str)
}

/// Reads (mjd, ra, dec) from columns 3 to 5 of a row.
fn time_and_position(row: &tokio_postgres::Row) -> Result<(f64, f64, f64), tokio_postgres::Error> {
    Ok((row.try_get(3)?, row.try_get(4)?, row.try_get(5)?))
}

/// Recomputes the summaries of `objects` from their stored detections, after locking their rows
/// in key order (so that a concurrent writer's detections, committed while this one waited, are
/// seen: the last writer of an object computes its summary from every detection).
async fn recompute_summaries(transaction: &Transaction<'_>, objects: &BTreeSet<ObjectKey>) -> Result<(), Failed> {
    if objects.is_empty() {
        return Ok(());
    }
    let surveys: Vec<&str> = objects.iter().map(|(survey, _)| *survey).collect();
    let object_ids: Vec<&str> = objects.iter().map(|(_, object_id)| object_id.as_str()).collect();
    let context = "recomputing object summaries";
    transaction
        .execute(
            "SELECT 1 FROM objects
             WHERE (survey, object_id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))
             ORDER BY survey, object_id
             FOR UPDATE",
            &[&surveys, &object_ids],
        )
        .await
        .map_err(failed(context))?;
    let rows = transaction
        .query(
            "SELECT d.survey, d.object_id, d.source_id, d.mjd, d.ra, d.dec
             FROM detections d JOIN UNNEST($1::text[], $2::text[]) AS t(survey, object_id)
                 ON d.survey = t.survey AND d.object_id = t.object_id
             ORDER BY d.survey, d.object_id, d.source_id",
            &[&surveys, &object_ids],
        )
        .await
        .map_err(failed(context))?;

    // Rows arrive grouped by object and in source-id order, so the floating-point sums do not
    // depend on the order the detections arrived in.
    let mut updates: Vec<(ObjectKey, SummaryValues)> = Vec::new();
    let mut current: Option<(ObjectKey, SummaryAccumulator)> = None;
    for row in &rows {
        let key = object_key(row).map_err(failed(context))?;
        let (mjd, ra, dec) = time_and_position(row).map_err(failed(context))?;
        match &mut current {
            Some((current_key, accumulator)) if *current_key == key => accumulator.add(mjd, ra, dec),
            _ => {
                if let Some((done_key, accumulator)) = current.take()
                    && let Some(values) = accumulator.finish()
                {
                    updates.push((done_key, values));
                }
                let mut accumulator = SummaryAccumulator::default();
                accumulator.add(mjd, ra, dec);
                current = Some((key, accumulator));
            }
        }
    }
    if let Some((done_key, accumulator)) = current
        && let Some(values) = accumulator.finish()
    {
        updates.push((done_key, values));
    }
    if updates.is_empty() {
        return Ok(());
    }
    transaction
        .execute(
            "UPDATE objects o SET first_mjd = u.first_mjd, last_mjd = u.last_mjd, n_detections = u.n_detections,
                 ra = u.ra, dec = u.dec, healpix = u.healpix
             FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::bigint[], $6::float8[],
                 $7::float8[], $8::bigint[])
                 AS u(survey, object_id, first_mjd, last_mjd, n_detections, ra, dec, healpix)
             WHERE o.survey = u.survey AND o.object_id = u.object_id",
            &[
                &updates.iter().map(|((survey, _), _)| *survey).collect::<Vec<_>>(),
                &updates
                    .iter()
                    .map(|((_, object_id), _)| object_id.as_str())
                    .collect::<Vec<_>>(),
                &updates.iter().map(|(_, values)| values.first_mjd).collect::<Vec<_>>(),
                &updates.iter().map(|(_, values)| values.last_mjd).collect::<Vec<_>>(),
                &updates
                    .iter()
                    .map(|(_, values)| values.n_detections)
                    .collect::<Vec<_>>(),
                &updates.iter().map(|(_, values)| values.ra).collect::<Vec<_>>(),
                &updates.iter().map(|(_, values)| values.dec).collect::<Vec<_>>(),
                &updates
                    .iter()
                    .map(|(_, values)| healpix_of(values.ra, values.dec))
                    .collect::<Vec<_>>(),
            ],
        )
        .await
        .map_err(failed(context))?;
    Ok(())
}

/// Stores dead letters in one transaction; returns their ids. One statement per letter: two
/// letters of one call may share (origin, reason), and the later one replaces the earlier.
pub(crate) async fn write_dead_letters(client: &mut Client, letters: &[DeadLetter]) -> Result<Vec<i64>, Failed> {
    let context = "storing dead letters";
    let transaction = client.transaction().await.map_err(failed(context))?;
    let insert = transaction
        .prepare(
            "INSERT INTO dead_letters (origin, reason, message, bytes, received_unix)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (origin, reason) DO UPDATE SET
                 message = EXCLUDED.message, bytes = EXCLUDED.bytes, received_unix = EXCLUDED.received_unix
             RETURNING id",
        )
        .await
        .map_err(failed(context))?;
    let mut ids = Vec::with_capacity(letters.len());
    for letter in letters {
        let row = transaction
            .query_one(
                &insert,
                &[
                    &letter.origin,
                    &letter.reason,
                    &letter.message,
                    &letter.bytes,
                    &letter.received_unix,
                ],
            )
            .await
            .map_err(failed(context))?;
        ids.push(row.try_get(0).map_err(failed(context))?);
    }
    transaction.commit().await.map_err(failed(context))?;
    Ok(ids)
}

/// Removes dead letters by id; returns how many existed.
pub(crate) async fn delete_dead_letters(client: &mut Client, ids: &[i64]) -> Result<u64, Failed> {
    client
        .execute("DELETE FROM dead_letters WHERE id = ANY($1::bigint[])", &[&ids])
        .await
        .map_err(failed("deleting dead letters"))
}

/// Removes everything of nights before `before`, in one transaction; objects left without
/// detections go, the others' summaries are recomputed.
///
/// Month partitions that lie entirely before `before` are dropped whole; rows before it in the
/// straddling month and in the DEFAULT partition are deleted.
pub(crate) async fn prune(client: &mut Client, before: Night) -> Result<PruneSummary, Failed> {
    let context = "pruning";
    let transaction = client.transaction().await.map_err(failed(context))?;
    let night = i32::try_from(before.0).unwrap_or(i32::MAX);
    // Whole month partitions before the night are dropped (after counting their rows); the
    // straddling month and the DEFAULT partition lose their rows before the night. Tables are
    // locked in the writers' order before any partition is dropped, so that a concurrent
    // writer waits instead of deadlocking.
    let old_partitions = transaction
        .query(
            "SELECT parent.relname::text, child.relname::text
             FROM pg_inherits i
             JOIN pg_class parent ON parent.oid = i.inhparent
             JOIN pg_class child ON child.oid = i.inhrelid
             WHERE parent.relname = ANY($1::text[])
               AND parent.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
             ORDER BY parent.relname, child.relname",
            &[&PARTITIONED_TABLES.to_vec()],
        )
        .await
        .map_err(failed("listing night partitions"))?;
    let mut droppable: Vec<(String, String)> = Vec::new();
    for row in &old_partitions {
        let (table, partition): (String, String) = (
            row.try_get(0).map_err(failed("listing night partitions"))?,
            row.try_get(1).map_err(failed("listing night partitions"))?,
        );
        let whole_month_before = partition_lower(&table, &partition)
            .and_then(month_of)
            .is_some_and(|(lower, upper)| partition_name(&table, lower) == partition && upper <= night);
        if whole_month_before {
            droppable.push((table, partition));
        }
    }
    if !droppable.is_empty() {
        transaction
            .batch_execute(&format!(
                "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
                PARTITIONED_TABLES.join(", ")
            ))
            .await
            .map_err(failed("locking the partitioned tables"))?;
    }
    let rows = transaction
        .query(
            "SELECT DISTINCT survey, object_id FROM detections WHERE night < $1 ORDER BY survey, object_id",
            &[&night],
        )
        .await
        .map_err(failed("finding the objects to prune"))?;
    let touched: BTreeSet<ObjectKey> = rows
        .iter()
        .map(object_key)
        .collect::<Result<_, _>>()
        .map_err(failed("finding the objects to prune"))?;
    let mut summary = PruneSummary::default();
    // Referencing tables first: alerts refer to detections.
    for table in ["cutouts", "alerts", "detections", "upper_limits", "forced_photometry"] {
        let count = match table {
            "cutouts" => &mut summary.cutouts,
            "alerts" => &mut summary.alerts,
            "detections" => &mut summary.detections,
            "upper_limits" => &mut summary.upper_limits,
            _ => &mut summary.forced_photometry,
        };
        for (_, partition) in droppable.iter().filter(|(parent, _)| parent == table) {
            let row = transaction
                .query_one(&format!("SELECT COUNT(*) FROM {partition}"), &[])
                .await
                .map_err(failed(context))?;
            let rows: i64 = row.try_get(0).map_err(failed(context))?;
            *count += u64::try_from(rows).unwrap_or(0);
            // Detached first: a detections partition is referenced by the alerts' foreign key,
            // which DROP alone refuses; DETACH checks that no alert refers to it (the alerts of
            // those nights went just before) and removes the reference.
            transaction
                .batch_execute(&format!(
                    "ALTER TABLE {table} DETACH PARTITION {partition}; DROP TABLE {partition}"
                ))
                .await
                .map_err(failed("dropping a night partition"))?;
            tracing::debug!(partition, rows, "dropped a night partition");
        }
        *count += transaction
            .execute(&format!("DELETE FROM {table} WHERE night < $1"), &[&night])
            .await
            .map_err(failed(context))?;
    }
    if !touched.is_empty() {
        let surveys: Vec<&str> = touched.iter().map(|(survey, _)| *survey).collect();
        let object_ids: Vec<&str> = touched.iter().map(|(_, object_id)| object_id.as_str()).collect();
        // Objects left without a detection; rows of later nights without a detection cannot
        // normally exist, but are removed so the object can go.
        let empty = "SELECT t.survey, t.object_id FROM UNNEST($1::text[], $2::text[]) AS t(survey, object_id)
             WHERE NOT EXISTS (SELECT 1 FROM detections d WHERE d.survey = t.survey AND d.object_id = t.object_id)";
        for (table, count) in [
            ("upper_limits", &mut summary.upper_limits),
            ("forced_photometry", &mut summary.forced_photometry),
            ("objects", &mut summary.objects),
        ] {
            *count += transaction
                .execute(
                    &format!("DELETE FROM {table} WHERE (survey, object_id) IN ({empty})"),
                    &[&surveys, &object_ids],
                )
                .await
                .map_err(failed(context))?;
        }
        recompute_summaries(&transaction, &touched).await?;
    }
    transaction.commit().await.map_err(failed("committing a prune"))?;
    tracing::info!(before = %before, ?summary, "pruned the store");
    Ok(summary)
}

/// Every night a row of `alerts` will be stored under (computed as the inserts compute it), for
/// creating the partitions first.
pub(crate) fn batch_nights(alerts: &[Alert]) -> Vec<i32> {
    let mut nights: Vec<i32> = batch_detections(alerts)
        .iter()
        .map(|row| night_value(row.detection.mjd))
        .chain(alerts.iter().map(|alert| night_value(alert.detection.mjd)))
        .chain(
            alerts
                .iter()
                .flat_map(|alert| alert.upper_limits.iter().map(|limit| night_value(limit.mjd))),
        )
        .chain(
            alerts
                .iter()
                .flat_map(|alert| alert.forced_photometry.iter().map(|point| night_value(point.mjd))),
        )
        .collect();
    nights.sort_unstable();
    nights.dedup();
    nights
}

/// The lower bound of a month partition from its name (`detections_p202509` -> 20250900).
fn partition_lower(table: &str, partition: &str) -> Option<i32> {
    let digits = partition.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i32>().ok()?.checked_mul(100)
}

/// The observing night of a time as stored (`YYYYMMDD` fits an `integer`).
pub(crate) fn night_value(mjd: f64) -> i32 {
    i32::try_from(Night::of_mjd(mjd).0).unwrap_or(i32::MAX)
}
