//! The storage conformance suite: one set of checks, generic over [`Store`], that every backend
//! runs in its tests (SQLite, PostgreSQL), so they all keep the same promises.
//!
//! Each check is a public async function that takes a [`StoreFactory`] (it makes a fresh, empty
//! store per call) and panics with a message when the store breaks a promise; store errors are
//! returned. [`run_all`] runs every check. The checks use real alerts from `tests/data`: the 12
//! consecutive ZTF alerts of ZTF21abiuvdk (their light curve must merge the history of all of
//! them), six ZTF 4.01 alerts (one with a solar-system name) and eleven Rubin alerts (one with
//! history and forced photometry, two solar-system sources), decoded with `nightjar-decode`.
//! Hand-moved copies test the cone search across ra = 0/360 and at the poles.
//!
//! A backend's test file runs each check as its own test, so a failure names the check; the
//! [`conformance_tests!`](crate::conformance_tests) macro writes those tests:
//!
//! ```text
//! nightjar_store::conformance_tests!(my_factory());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use nightjar_core::{Alert, Band, Detection, Origin, Survey};
use nightjar_decode::Decoder;

use crate::{
    AlertSelection, DeadLetter, DetectionRow, ForcedPhotometryRow, LightCurve, Night, NightCount, ObjectSummary, Store,
    StoreCounts, StoreError, TimeWindow, UpperLimitRow,
};

/// A store being made by a [`StoreFactory`].
pub type MakeStore = Pin<Box<dyn Future<Output = Result<Box<dyn Store>, StoreError>> + Send>>;

/// Makes a fresh, empty store on each call. Any `Fn() -> impl Future<Output = Result<Box<dyn
/// Store>, StoreError>>` closure is one.
pub trait StoreFactory: Send + Sync {
    /// A new empty store.
    fn make(&self) -> MakeStore;
}

impl<F, Fut> StoreFactory for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Box<dyn Store>, StoreError>> + Send + 'static,
{
    fn make(&self) -> MakeStore {
        Box::pin(self())
    }
}

/// Names of every check, in the order [`run_all`] runs them.
pub const CHECK_NAMES: &[&str] = &[
    "empty_store_reads_nothing",
    "counts_after_one_write",
    "replay_adds_nothing",
    "order_and_batching_do_not_matter",
    "light_curve_is_sorted_and_complete",
    "upper_limits_are_deduplicated",
    "history_detection_becomes_alert",
    "cone_search_finds_objects",
    "cone_search_respects_time_window",
    "cone_search_across_ra_zero",
    "cone_search_at_the_poles",
    "latest_alerts_order_and_limit",
    "alert_lookup_by_source_id",
    "solar_system_alerts_by_name",
    "cutouts_roundtrip",
    "counts_per_night_uses_observing_nights",
    "dead_letters_roundtrip",
    "prune_removes_older_nights",
    "module_outputs_and_classes",
    "text_with_a_nul_character_finds_nothing",
];

/// Defines a backend's conformance tests: one `#[tokio::test]` per check, named for it (so a
/// failure names the check), `every_check_has_a_test`, and `run_all_passes`. `$factory` is an
/// expression making a [`StoreFactory`], evaluated afresh in each test. The caller's crate needs
/// `tokio` with the `macros` and `rt` features.
///
/// ```text
/// nightjar_store::conformance_tests!(my_factory());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@checks $factory;
            empty_store_reads_nothing,
            counts_after_one_write,
            replay_adds_nothing,
            order_and_batching_do_not_matter,
            light_curve_is_sorted_and_complete,
            upper_limits_are_deduplicated,
            history_detection_becomes_alert,
            cone_search_finds_objects,
            cone_search_respects_time_window,
            cone_search_across_ra_zero,
            cone_search_at_the_poles,
            latest_alerts_order_and_limit,
            alert_lookup_by_source_id,
            solar_system_alerts_by_name,
            cutouts_roundtrip,
            counts_per_night_uses_observing_nights,
            dead_letters_roundtrip,
            prune_removes_older_nights,
            module_outputs_and_classes,
            text_with_a_nul_character_finds_nothing,
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() -> Result<(), $crate::StoreError> {
                $crate::conformance::$check(&$factory).await
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            assert_eq!(&[$(stringify!($check)),*], $crate::conformance::CHECK_NAMES);
        }

        /// `run_all` runs the same checks against one factory.
        #[tokio::test]
        async fn run_all_passes() -> Result<(), $crate::StoreError> {
            $crate::conformance::run_all($factory).await
        }
    };
}

/// Runs every check against stores made by `make_store`.
pub async fn run_all(make_store: impl StoreFactory) -> Result<(), StoreError> {
    let factory = &make_store;
    empty_store_reads_nothing(factory).await?;
    counts_after_one_write(factory).await?;
    replay_adds_nothing(factory).await?;
    order_and_batching_do_not_matter(factory).await?;
    light_curve_is_sorted_and_complete(factory).await?;
    upper_limits_are_deduplicated(factory).await?;
    history_detection_becomes_alert(factory).await?;
    cone_search_finds_objects(factory).await?;
    cone_search_respects_time_window(factory).await?;
    cone_search_across_ra_zero(factory).await?;
    cone_search_at_the_poles(factory).await?;
    latest_alerts_order_and_limit(factory).await?;
    alert_lookup_by_source_id(factory).await?;
    solar_system_alerts_by_name(factory).await?;
    cutouts_roundtrip(factory).await?;
    counts_per_night_uses_observing_nights(factory).await?;
    dead_letters_roundtrip(factory).await?;
    prune_removes_older_nights(factory).await?;
    module_outputs_and_classes(factory).await?;
    text_with_a_nul_character_finds_nothing(factory).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// The object of the ZTF light-curve fixture.
pub const ZTF_LIGHT_CURVE_OBJECT: &str = "ZTF21abiuvdk";
/// A ZTF alert with a solar-system name (`candidate.ssnamenr`) in the fixtures.
pub const ZTF_SOLAR_SYSTEM: (i64, &str) = (2475433850415015017, "113410");
/// A Rubin alert with a solar-system designation (`MPCORB.mpcDesignation`) in the fixtures.
pub const RUBIN_SOLAR_SYSTEM: (i64, &str) = (169298432757858307, "K12J69D");

/// The repository's `tests/data`.
pub fn test_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// Decodes every `.avro` file of a folder of `tests/data`, files in name order.
///
/// # Panics
/// If a file is missing or does not decode: the fixtures are part of the repository.
pub fn decode_folder(folder: &str) -> Vec<Alert> {
    let dir = test_data_dir().join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("reading the fixture folder {}: {error}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|extension| extension == "avro"))
        .collect();
    files.sort();
    let mut decoder = Decoder::new();
    let mut alerts = Vec::new();
    for file in files {
        let bytes =
            std::fs::read(&file).unwrap_or_else(|error| panic!("reading the fixture {}: {error}", file.display()));
        for alert in decoder.decode(&bytes, &Origin::file(&file)) {
            alerts.push(alert.unwrap_or_else(|error| panic!("decoding the fixture {}: {error}", file.display())));
        }
    }
    assert!(!alerts.is_empty(), "no alerts in the fixture folder {}", dir.display());
    alerts
}

/// The 12 consecutive alerts of ZTF21abiuvdk, oldest first.
pub fn ztf_light_curve_alerts() -> Vec<Alert> {
    let alerts = decode_folder("ztf/alerts/pittgoogle_ZTF21abiuvdk_lightcurve_v3.3");
    assert_eq!(alerts.len(), 12, "the ZTF light-curve fixture has 12 alerts");
    alerts
}

/// Six ZTF 4.01 alerts of one exposure, one with a solar-system name.
pub fn ztf_other_alerts() -> Vec<Alert> {
    decode_folder("ztf/alerts/kowalski_20231012_v4.01")
}

/// Eleven Rubin alerts (schemas 7.1, 7.3 and 9.0).
pub fn rubin_alerts() -> Vec<Alert> {
    let mut alerts = decode_folder("lsst/wire/boom");
    alerts.extend(decode_folder("lsst/alerts/fink_lsstcam_20250906_v9.0"));
    alerts
}

/// Every fixture alert: ZTF light curve, other ZTF, Rubin.
pub fn all_alerts() -> Vec<Alert> {
    let mut alerts = ztf_light_curve_alerts();
    alerts.extend(ztf_other_alerts());
    alerts.extend(rubin_alerts());
    alerts
}

/// A copy of `alert` as another object: new object id, every source id (the alert's and its
/// history's) moved by `source_id_offset`, and each detection placed where `position` says
/// (called with the detection's index: 0 for the alert's own, 1.. for its history).
pub fn relocated(
    alert: &Alert,
    object_id: &str,
    source_id_offset: i64,
    position: impl Fn(usize) -> (f64, f64),
) -> Alert {
    let mut copy = alert.clone();
    copy.object_id = object_id.to_string();
    let place = |detection: &mut Detection, index: usize| {
        detection.source_id += source_id_offset;
        (detection.ra, detection.dec) = position(index);
    };
    place(&mut copy.detection, 0);
    for (index, detection) in copy.history.iter_mut().enumerate() {
        place(detection, index + 1);
    }
    copy
}

// ---------------------------------------------------------------------------------------------
// Expected values, computed from the alerts

type DetectionKey = (Survey, i64);
type ObjectKey = (Survey, String);
/// (survey, object, mjd bits, band name or "")
type MeasurementKey = (Survey, String, u64, &'static str);

fn band_name(band: Option<Band>) -> &'static str {
    band.map_or("", Band::as_str)
}

fn detection_row(alert: &Alert, detection: &Detection, is_alert: bool) -> DetectionRow {
    DetectionRow {
        survey: alert.survey,
        object_id: alert.object_id.clone(),
        source_id: detection.source_id,
        mjd: detection.mjd,
        night: Night::of_mjd(detection.mjd),
        band: detection.band,
        ra: detection.ra,
        dec: detection.dec,
        magnitude: detection.magnitude,
        magnitude_err: detection.magnitude_err,
        flux: detection.flux,
        flux_err: detection.flux_err,
        is_negative: detection.is_negative,
        reliability: detection.reliability,
        is_alert,
    }
}

/// What a store holding `alerts` must contain.
#[derive(Debug, Default)]
struct Expected {
    objects: BTreeSet<ObjectKey>,
    alerts: BTreeSet<DetectionKey>,
    /// Every detection, the alert's own version winning (is_alert).
    detections: BTreeMap<DetectionKey, DetectionRow>,
    upper_limits: BTreeMap<MeasurementKey, UpperLimitRow>,
    forced_photometry: BTreeMap<MeasurementKey, ForcedPhotometryRow>,
    cutouts: BTreeSet<(Survey, i64, &'static str)>,
}

impl Expected {
    fn of(alerts: &[Alert]) -> Expected {
        let mut expected = Expected::default();
        for alert in alerts {
            expected.objects.insert((alert.survey, alert.object_id.clone()));
            expected.alerts.insert((alert.survey, alert.source_id()));
            expected.detections.insert(
                (alert.survey, alert.source_id()),
                detection_row(alert, &alert.detection, true),
            );
            for cutout in &alert.cutouts {
                expected
                    .cutouts
                    .insert((alert.survey, alert.source_id(), cutout.kind.as_str()));
            }
        }
        for alert in alerts {
            for detection in &alert.history {
                expected
                    .detections
                    .entry((alert.survey, detection.source_id))
                    .or_insert_with(|| detection_row(alert, detection, false));
            }
            for limit in &alert.upper_limits {
                let key = (
                    alert.survey,
                    alert.object_id.clone(),
                    limit.mjd.to_bits(),
                    band_name(limit.band),
                );
                expected.upper_limits.entry(key).or_insert_with(|| UpperLimitRow {
                    survey: alert.survey,
                    object_id: alert.object_id.clone(),
                    mjd: limit.mjd,
                    band: limit.band,
                    limiting_magnitude: limit.limiting_magnitude,
                    noise_flux: limit.noise_flux,
                });
            }
            for point in &alert.forced_photometry {
                let key = (
                    alert.survey,
                    alert.object_id.clone(),
                    point.mjd.to_bits(),
                    band_name(point.band),
                );
                expected
                    .forced_photometry
                    .entry(key)
                    .or_insert_with(|| ForcedPhotometryRow {
                        survey: alert.survey,
                        object_id: alert.object_id.clone(),
                        forced_source_id: point.forced_source_id,
                        mjd: point.mjd,
                        band: point.band,
                        flux: point.flux,
                        flux_err: point.flux_err,
                    });
            }
        }
        expected
    }

    fn counts(&self) -> StoreCounts {
        StoreCounts {
            objects: self.objects.len() as u64,
            alerts: self.alerts.len() as u64,
            detections: self.detections.len() as u64,
            upper_limits: self.upper_limits.len() as u64,
            forced_photometry: self.forced_photometry.len() as u64,
            cutouts: self.cutouts.len() as u64,
            dead_letters: 0,
        }
    }

    /// The light curve of one object, in the store's order, without its summary.
    fn light_curve(
        &self,
        survey: Survey,
        object_id: &str,
    ) -> (Vec<DetectionRow>, Vec<UpperLimitRow>, Vec<ForcedPhotometryRow>) {
        let mut detections: Vec<DetectionRow> = self
            .detections
            .values()
            .filter(|row| row.survey == survey && row.object_id == object_id)
            .cloned()
            .collect();
        detections.sort_by(|a, b| a.mjd.total_cmp(&b.mjd).then(a.source_id.cmp(&b.source_id)));
        let mut limits: Vec<UpperLimitRow> = self
            .upper_limits
            .values()
            .filter(|row| row.survey == survey && row.object_id == object_id)
            .cloned()
            .collect();
        limits.sort_by(|a, b| a.mjd.total_cmp(&b.mjd).then(band_name(a.band).cmp(band_name(b.band))));
        let mut forced: Vec<ForcedPhotometryRow> = self
            .forced_photometry
            .values()
            .filter(|row| row.survey == survey && row.object_id == object_id)
            .cloned()
            .collect();
        forced.sort_by(|a, b| a.mjd.total_cmp(&b.mjd).then(band_name(a.band).cmp(band_name(b.band))));
        (detections, limits, forced)
    }
}

/// Mean position of detections as the direction of their summed unit vectors.
fn mean_position(detections: &[DetectionRow]) -> (f64, f64) {
    let mut sum = [0.0_f64; 3];
    for row in detections {
        let (ra, dec) = (row.ra.to_radians(), row.dec.to_radians());
        sum[0] += dec.cos() * ra.cos();
        sum[1] += dec.cos() * ra.sin();
        sum[2] += dec.sin();
    }
    let [x, y, z] = sum;
    (
        y.atan2(x).to_degrees().rem_euclid(360.0),
        z.atan2(x.hypot(y)).to_degrees(),
    )
}

/// Angular distance, degrees.
fn distance_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, dec1, ra2, dec2) = (ra1.to_radians(), dec1.to_radians(), ra2.to_radians(), dec2.to_radians());
    let h = ((dec2 - dec1) / 2.0).sin().powi(2) + dec1.cos() * dec2.cos() * ((ra2 - ra1) / 2.0).sin().powi(2);
    (2.0 * h.sqrt().min(1.0).asin()).to_degrees()
}

/// One arcsecond in degrees.
const ARCSEC: f64 = 1.0 / 3600.0;

/// Checks a stored summary against the detections it was computed from.
fn assert_summary_matches(summary: &ObjectSummary, detections: &[DetectionRow]) {
    let what = format!("summary of {} {}", summary.survey, summary.object_id);
    assert_eq!(summary.n_detections, detections.len() as u64, "{what}: n_detections");
    let first = detections.iter().map(|row| row.mjd).fold(f64::INFINITY, f64::min);
    let last = detections.iter().map(|row| row.mjd).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(
        (summary.first_mjd, summary.last_mjd),
        (first, last),
        "{what}: first and last mjd"
    );
    let (ra, dec) = mean_position(detections);
    let off = distance_deg(summary.ra, summary.dec, ra, dec);
    assert!(
        off < 1e-6 * ARCSEC,
        "{what}: mean position ({}, {}) is {off} deg from ({ra}, {dec})",
        summary.ra,
        summary.dec
    );
}

/// Every object's light curve, by object.
async fn all_light_curves(store: &dyn Store, objects: &BTreeSet<ObjectKey>) -> Result<Vec<LightCurve>, StoreError> {
    let mut curves = Vec::with_capacity(objects.len());
    for (survey, object_id) in objects {
        let curve = store.light_curve(*survey, object_id).await?;
        curves.push(curve.unwrap_or_else(|| panic!("no light curve for {survey} {object_id}")));
    }
    Ok(curves)
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A new store holds nothing and every read says so.
pub async fn empty_store_reads_nothing(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    assert_eq!(
        store.counts().await?,
        StoreCounts::default(),
        "counts of an empty store"
    );
    assert!(store.light_curve(Survey::Ztf, ZTF_LIGHT_CURVE_OBJECT).await?.is_none());
    assert!(store.cone_search(0.8, 16.1, 1.0, TimeWindow::ALL).await?.is_empty());
    assert!(
        store
            .latest_alerts(TimeWindow::ALL, &AlertSelection::All, 10)
            .await?
            .is_empty()
    );
    assert!(store.alert(Survey::Ztf, 1).await?.is_none());
    assert!(store.solar_system_alerts("113410", 10).await?.is_empty());
    assert!(store.cutouts(Survey::Rubin, 1).await?.is_empty());
    assert!(store.counts_per_night().await?.is_empty());
    assert!(store.dead_letters(None, 10).await?.is_empty());
    assert_eq!(store.write_batch(&[]).await?.new_rows(), 0, "an empty batch");
    Ok(())
}

/// One write of every fixture stores exactly the distinct rows, and says so.
pub async fn counts_after_one_write(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    let expected = Expected::of(&alerts);
    let summary = store.write_batch(&alerts).await?;
    let counts = store.counts().await?;
    assert_eq!(counts, expected.counts(), "counts after one write");
    assert_eq!(summary.n_alerts, alerts.len() as u64, "n_alerts");
    assert_eq!(summary.n_duplicate_alerts, 0, "n_duplicate_alerts");
    assert_eq!(summary.new_objects, counts.objects, "new_objects");
    assert_eq!(summary.new_detections, counts.detections, "new_detections");
    assert_eq!(summary.new_upper_limits, counts.upper_limits, "new_upper_limits");
    assert_eq!(
        summary.new_forced_photometry, counts.forced_photometry,
        "new_forced_photometry"
    );
    assert_eq!(summary.new_cutouts, counts.cutouts, "new_cutouts");
    assert!(counts.forced_photometry > 0, "the fixtures have forced photometry");
    Ok(())
}

/// Writing the same batch again adds nothing and changes no summary.
pub async fn replay_adds_nothing(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    let expected = Expected::of(&alerts);
    store.write_batch(&alerts).await?;
    let counts = store.counts().await?;
    let curves = all_light_curves(store.as_ref(), &expected.objects).await?;

    let replay = store.write_batch(&alerts).await?;
    assert_eq!(replay.new_rows(), 0, "a replayed batch adds rows: {replay:?}");
    assert_eq!(replay.n_alerts, alerts.len() as u64);
    assert_eq!(
        replay.n_duplicate_alerts,
        alerts.len() as u64,
        "every replayed alert is a duplicate"
    );
    assert_eq!(store.counts().await?, counts, "counts after a replay");
    let replayed = all_light_curves(store.as_ref(), &expected.objects).await?;
    for (before, after) in curves.iter().zip(&replayed) {
        assert_eq!(before.object, after.object, "summary changed by a replay");
        assert_eq!(before, after, "light curve changed by a replay");
    }

    // A batch holding the same alert twice stores it once.
    let fresh = factory.make().await?;
    let doubled: Vec<Alert> = alerts[..3].iter().chain(&alerts[..3]).cloned().collect();
    let summary = fresh.write_batch(&doubled).await?;
    assert_eq!(summary.n_duplicate_alerts, 3, "duplicates within one batch");
    assert_eq!(fresh.counts().await?, Expected::of(&alerts[..3]).counts());
    Ok(())
}

/// The same alerts in another order and other batches give an identical store.
pub async fn order_and_batching_do_not_matter(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let alerts = all_alerts();
    let expected = Expected::of(&alerts);
    let in_order = factory.make().await?;
    in_order.write_batch(&alerts).await?;

    // Reversed, interleaved, in batches of 1, 2, 3, ... alerts.
    let mut shuffled: Vec<Alert> = alerts.iter().rev().cloned().collect();
    let half = shuffled.len() / 2;
    shuffled.rotate_left(half);
    let reordered = factory.make().await?;
    let mut start = 0;
    let mut size = 1;
    while start < shuffled.len() {
        let end = (start + size).min(shuffled.len());
        reordered.write_batch(&shuffled[start..end]).await?;
        start = end;
        size += 1;
    }

    assert_eq!(in_order.counts().await?, reordered.counts().await?, "counts");
    assert_eq!(in_order.counts_per_night().await?, reordered.counts_per_night().await?);
    let a = all_light_curves(in_order.as_ref(), &expected.objects).await?;
    let b = all_light_curves(reordered.as_ref(), &expected.objects).await?;
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.detections, b.detections, "detections of {}", a.object.object_id);
        assert_eq!(a.upper_limits, b.upper_limits, "upper limits of {}", a.object.object_id);
        assert_eq!(
            a.forced_photometry, b.forced_photometry,
            "forced photometry of {}",
            a.object.object_id
        );
        let (x, y) = (&a.object, &b.object);
        assert_eq!(
            (x.n_detections, x.first_mjd, x.last_mjd),
            (y.n_detections, y.first_mjd, y.last_mjd),
            "summary of {}",
            x.object_id
        );
        let off = distance_deg(x.ra, x.dec, y.ra, y.dec);
        assert!(
            off < 1e-9 * ARCSEC,
            "mean position of {} differs by {off} deg",
            x.object_id
        );
    }
    for alert in &alerts {
        let x = in_order.alert(alert.survey, alert.source_id()).await?;
        let y = reordered.alert(alert.survey, alert.source_id()).await?;
        assert_eq!(x, y, "alert {}", alert.source_id());
    }
    Ok(())
}

/// The light curve holds every detection of every alert and its history, once, oldest first,
/// with the alerts' own detections marked; its summary is computed from them.
pub async fn light_curve_is_sorted_and_complete(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    let expected = Expected::of(&alerts);
    store.write_batch(&alerts).await?;

    for (survey, object_id) in &expected.objects {
        let curve = store
            .light_curve(*survey, object_id)
            .await?
            .unwrap_or_else(|| panic!("no light curve for {survey} {object_id}"));
        let (detections, limits, forced) = expected.light_curve(*survey, object_id);
        assert_eq!(curve.detections, detections, "detections of {survey} {object_id}");
        assert_eq!(curve.upper_limits, limits, "upper limits of {survey} {object_id}");
        assert_eq!(
            curve.forced_photometry, forced,
            "forced photometry of {survey} {object_id}"
        );
        assert_eq!(
            (curve.object.survey, curve.object.object_id.as_str()),
            (*survey, object_id.as_str())
        );
        assert_summary_matches(&curve.object, &curve.detections);
    }

    // The ZTF object: 12 alerts whose histories add up to every candid.
    let curve = store
        .light_curve(Survey::Ztf, ZTF_LIGHT_CURVE_OBJECT)
        .await?
        .unwrap_or_else(|| panic!("no light curve for {ZTF_LIGHT_CURVE_OBJECT}"));
    let light_curve_alerts = ztf_light_curve_alerts();
    let mut candids: BTreeSet<i64> = light_curve_alerts.iter().map(Alert::source_id).collect();
    candids.extend(
        light_curve_alerts
            .iter()
            .flat_map(|alert| alert.history.iter().map(|d| d.source_id)),
    );
    let stored: BTreeSet<i64> = curve.detections.iter().map(|row| row.source_id).collect();
    assert_eq!(stored, candids, "candids of {ZTF_LIGHT_CURVE_OBJECT}");
    assert!(
        curve.detections.windows(2).all(|pair| pair[0].mjd <= pair[1].mjd),
        "detections sorted by time"
    );
    let alert_ids: BTreeSet<i64> = curve
        .detections
        .iter()
        .filter(|row| row.is_alert)
        .map(|row| row.source_id)
        .collect();
    let expected_ids: BTreeSet<i64> = light_curve_alerts.iter().map(Alert::source_id).collect();
    assert_eq!(
        alert_ids, expected_ids,
        "is_alert marks exactly the alerts' own detections"
    );
    assert!(
        store
            .light_curve(Survey::Rubin, ZTF_LIGHT_CURVE_OBJECT)
            .await?
            .is_none(),
        "objects are per survey"
    );
    Ok(())
}

/// Upper limits repeated in consecutive alerts are stored once per (object, time, band).
pub async fn upper_limits_are_deduplicated(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = ztf_light_curve_alerts();
    store.write_batch(&alerts).await?;
    let carried: usize = alerts.iter().map(|alert| alert.upper_limits.len()).sum();
    let distinct: BTreeSet<(u64, &str)> = alerts
        .iter()
        .flat_map(|alert| {
            alert
                .upper_limits
                .iter()
                .map(|limit| (limit.mjd.to_bits(), band_name(limit.band)))
        })
        .collect();
    assert!(
        carried > distinct.len(),
        "the fixture repeats upper limits ({carried} carried)"
    );
    let curve = store
        .light_curve(Survey::Ztf, ZTF_LIGHT_CURVE_OBJECT)
        .await?
        .unwrap_or_else(|| panic!("no light curve for {ZTF_LIGHT_CURVE_OBJECT}"));
    assert_eq!(curve.upper_limits.len(), distinct.len(), "one row per (mjd, band)");
    assert_eq!(store.counts().await?.upper_limits, distinct.len() as u64);
    Ok(())
}

/// A detection first seen in a later alert's history is marked as an alert once its own alert
/// arrives, without adding a row or changing the summary.
pub async fn history_detection_becomes_alert(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = ztf_light_curve_alerts();
    let (earlier, newest) = alerts.split_at(alerts.len() - 1);
    store.write_batch(newest).await?;
    let before = store
        .light_curve(Survey::Ztf, ZTF_LIGHT_CURVE_OBJECT)
        .await?
        .unwrap_or_else(|| panic!("no light curve for {ZTF_LIGHT_CURVE_OBJECT}"));
    assert_eq!(before.detections.iter().filter(|row| row.is_alert).count(), 1);
    // The newest alert's history holds every earlier alert's detection.
    let known: BTreeSet<i64> = before.detections.iter().map(|row| row.source_id).collect();
    let earlier_ids: Vec<i64> = earlier
        .iter()
        .map(Alert::source_id)
        .filter(|id| known.contains(id))
        .collect();
    assert!(
        !earlier_ids.is_empty(),
        "the newest alert carries earlier alerts' detections"
    );

    let summary = store.write_batch(earlier).await?;
    assert_eq!(
        summary.n_duplicate_alerts, 0,
        "alerts seen only in history are new alerts"
    );
    let after = store
        .light_curve(Survey::Ztf, ZTF_LIGHT_CURVE_OBJECT)
        .await?
        .unwrap_or_else(|| panic!("no light curve for {ZTF_LIGHT_CURVE_OBJECT}"));
    for alert in earlier.iter().filter(|alert| known.contains(&alert.source_id())) {
        // The alert's own record replaces the history's (ZTF rounds prv_candidates, gives rb not drb).
        let id = alert.source_id();
        let row = after.detections.iter().find(|row| row.source_id == id);
        assert_eq!(
            row,
            Some(&detection_row(alert, &alert.detection, true)),
            "detection {id} after its alert"
        );
        let stored = store.alert(Survey::Ztf, id).await?;
        assert!(
            stored.is_some_and(|stored| stored.detection.is_alert),
            "alert {id} is stored"
        );
    }
    assert_summary_matches(&after.object, &after.detections);
    let new_ids = earlier
        .iter()
        .filter(|alert| !known.contains(&alert.source_id()))
        .count();
    assert!(summary.new_detections >= new_ids as u64);
    Ok(())
}

/// A cone finds an object at its position (2 arcsec) and not 1 degree away; larger cones
/// give every object within them, nearest first, with their distances.
pub async fn cone_search_finds_objects(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    let expected = Expected::of(&alerts);
    store.write_batch(&alerts).await?;
    let curves = all_light_curves(store.as_ref(), &expected.objects).await?;

    for curve in &curves {
        let object = &curve.object;
        let found = store
            .cone_search(object.ra, object.dec, 2.0 * ARCSEC, TimeWindow::ALL)
            .await?;
        let hit = found
            .iter()
            .find(|(hit, _)| hit.survey == object.survey && hit.object_id == object.object_id);
        let Some((hit, distance)) = hit else {
            panic!(
                "{} {} not found at its own position: {found:?}",
                object.survey, object.object_id
            );
        };
        assert_eq!(hit, object, "cone search returns the stored summary");
        assert!(*distance < 1e-6 * ARCSEC, "distance to itself {distance}");
        for (_, distance) in &found {
            assert!(*distance <= 2.0 * ARCSEC, "a result outside the cone at {distance} deg");
        }
        let away_dec = if object.dec > 80.0 {
            object.dec - 1.0
        } else {
            object.dec + 1.0
        };
        let far = store
            .cone_search(object.ra, away_dec, 2.0 * ARCSEC, TimeWindow::ALL)
            .await?;
        assert!(
            far.iter().all(|(hit, _)| hit.object_id != object.object_id),
            "{} found 1 degree away",
            object.object_id
        );
    }

    // A 3-degree cone around the Rubin field: every object within it, nearest first.
    let (ra, dec, radius) = (9.8, -44.7, 3.0);
    let found = store.cone_search(ra, dec, radius, TimeWindow::ALL).await?;
    let mut within: Vec<(String, f64)> = curves
        .iter()
        .map(|curve| {
            (
                curve.object.object_id.clone(),
                distance_deg(ra, dec, curve.object.ra, curve.object.dec),
            )
        })
        .filter(|(_, distance)| *distance <= radius)
        .collect();
    within.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert!(within.len() >= 5, "the Rubin fixtures share a field");
    let found_ids: Vec<&str> = found.iter().map(|(object, _)| object.object_id.as_str()).collect();
    let within_ids: Vec<&str> = within.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(found_ids, within_ids, "objects in a 3-degree cone, nearest first");
    for ((_, distance), (_, expected_distance)) in found.iter().zip(&within) {
        assert!(
            (distance - expected_distance).abs() < 1e-6 * ARCSEC,
            "distance {distance} vs {expected_distance}"
        );
    }

    // A cone 1 degree from an object, with a radius just over 1 degree, reaches it.
    let object = &curves[0].object;
    let near = store
        .cone_search(object.ra, object.dec + 1.0, 1.0 + ARCSEC, TimeWindow::ALL)
        .await?;
    assert!(
        near.iter().any(|(hit, _)| hit.object_id == object.object_id),
        "1 degree away with radius 1 degree"
    );

    assert!(matches!(
        store.cone_search(0.0, 91.0, 1.0, TimeWindow::ALL).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.cone_search(0.0, 0.0, -1.0, TimeWindow::ALL).await,
        Err(StoreError::InvalidArgument(_))
    ));
    Ok(())
}

/// A cone with a time window finds only objects detected in it (start inclusive, end exclusive).
pub async fn cone_search_respects_time_window(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    store.write_batch(&ztf_light_curve_alerts()).await?;
    let curve = store
        .light_curve(Survey::Ztf, ZTF_LIGHT_CURVE_OBJECT)
        .await?
        .unwrap_or_else(|| panic!("no light curve for {ZTF_LIGHT_CURVE_OBJECT}"));
    let (ra, dec) = (curve.object.ra, curve.object.dec);
    let search = |start_mjd, end_mjd| {
        let store = &store;
        async move {
            let found = store
                .cone_search(ra, dec, 2.0 * ARCSEC, TimeWindow { start_mjd, end_mjd })
                .await?;
            Ok::<bool, StoreError>(
                found
                    .iter()
                    .any(|(object, _)| object.object_id == ZTF_LIGHT_CURVE_OBJECT),
            )
        }
    };
    let first = curve.object.first_mjd;
    let last = curve.object.last_mjd;
    let middle = curve.detections[curve.detections.len() / 2].mjd;
    assert!(
        !search(first - 30.0, first - 1.0).await?,
        "a window before the first detection"
    );
    assert!(!search(first - 30.0, first).await?, "the end of a window is exclusive");
    assert!(
        search(first - 30.0, first + 1e-6).await?,
        "a window holding the first detection"
    );
    assert!(
        search(middle, middle + 1e-6).await?,
        "a window holding one middle detection"
    );
    assert!(search(last, last + 1.0).await?, "the start of a window is inclusive");
    assert!(
        !search(last + 1e-6, last + 30.0).await?,
        "a window after the last detection"
    );
    Ok(())
}

/// Objects whose detections straddle ra = 0/360 get a mean position next to 0 and are found
/// from cones centred on either side.
pub async fn cone_search_across_ra_zero(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = ztf_light_curve_alerts();
    let newest = &alerts[alerts.len() - 1];
    let dec = 16.0;
    // Detections alternate 0.5 arcsec either side of ra = 0.
    let straddling = relocated(newest, "ZTF_wrap_zero", 7, |index| {
        if index % 2 == 0 {
            (360.0 - 0.5 * ARCSEC, dec)
        } else {
            (0.5 * ARCSEC, dec)
        }
    });
    // One object just below 360, one just above 0.
    let below = relocated(newest, "ZTF_below_360", 17, |_| (360.0 - 1.0 * ARCSEC, -5.0));
    let above = relocated(newest, "ZTF_above_0", 27, |_| (1.0 * ARCSEC, -5.0));
    store.write_batch(&[straddling, below, above]).await?;

    let curve = store
        .light_curve(Survey::Ztf, "ZTF_wrap_zero")
        .await?
        .unwrap_or_else(|| panic!("no light curve for ZTF_wrap_zero"));
    assert!(
        distance_deg(curve.object.ra, curve.object.dec, 0.0, dec) < 0.5 * ARCSEC,
        "mean of positions straddling ra 0 is ({}, {})",
        curve.object.ra,
        curve.object.dec
    );
    assert!(
        (0.0..360.0).contains(&curve.object.ra),
        "ra in [0, 360): {}",
        curve.object.ra
    );
    for centre in [0.0, 360.0 - 0.1 * ARCSEC, 0.1 * ARCSEC, 360.0] {
        let found = store.cone_search(centre, dec, 2.0 * ARCSEC, TimeWindow::ALL).await?;
        assert!(
            found.iter().any(|(object, _)| object.object_id == "ZTF_wrap_zero"),
            "not found from ra {centre}"
        );
    }
    let found = store.cone_search(0.0, -5.0, 3.0 * ARCSEC, TimeWindow::ALL).await?;
    let ids: BTreeSet<&str> = found.iter().map(|(object, _)| object.object_id.as_str()).collect();
    assert_eq!(
        ids,
        BTreeSet::from(["ZTF_above_0", "ZTF_below_360"]),
        "both sides of ra 0"
    );
    let one_arcsec_of_ra = distance_deg(0.0, -5.0, ARCSEC, -5.0);
    for (_, distance) in &found {
        assert!(
            (distance - one_arcsec_of_ra).abs() < 1e-6 * ARCSEC,
            "distance across ra 0: {distance}"
        );
    }
    assert!(
        store
            .cone_search(180.0, dec, 2.0 * ARCSEC, TimeWindow::ALL)
            .await?
            .is_empty()
    );
    Ok(())
}

/// Objects at the poles are found by cones around the pole whatever their ra.
pub async fn cone_search_at_the_poles(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = ztf_light_curve_alerts();
    let newest = &alerts[alerts.len() - 1];
    // Detections spread around each pole, 1 arcsec from it, at ra 0, 90, 180, 270, ...
    let around = |pole: f64| move |index: usize| ((index as f64 * 90.0) % 360.0, pole - pole.signum() * ARCSEC);
    let north = relocated(newest, "ZTF_north_pole", 7, around(90.0));
    let south = relocated(newest, "ZTF_south_pole", 17, around(-90.0));
    // One object off the pole, at ra 123.
    let near_north = relocated(newest, "ZTF_near_north", 27, |_| (123.0, 89.999));
    store.write_batch(&[north, south, near_north]).await?;

    for (pole, object_id) in [(90.0, "ZTF_north_pole"), (-90.0, "ZTF_south_pole")] {
        for ra in [0.0, 45.0, 123.0, 359.9] {
            let found = store.cone_search(ra, pole, 2.0 * ARCSEC, TimeWindow::ALL).await?;
            let ids: Vec<&str> = found.iter().map(|(object, _)| object.object_id.as_str()).collect();
            assert_eq!(ids, vec![object_id], "cone at ({ra}, {pole})");
        }
    }
    // (303, 89.999) is 3.6 arcsec from the pole and 7.2 arcsec from (123, 89.999), across it.
    let found = store.cone_search(303.0, 89.999, 7.0 * ARCSEC, TimeWindow::ALL).await?;
    let ids: Vec<&str> = found.iter().map(|(object, _)| object.object_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["ZTF_north_pole"],
        "cone near the pole from ra 303, radius 7 arcsec"
    );
    let found = store.cone_search(303.0, 89.999, 7.5 * ARCSEC, TimeWindow::ALL).await?;
    let ids: Vec<&str> = found.iter().map(|(object, _)| object.object_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["ZTF_north_pole", "ZTF_near_north"],
        "radius 7.5 arcsec reaches across the pole"
    );
    let found = store.cone_search(0.0, 90.0, 0.5, TimeWindow::ALL).await?;
    let ids: Vec<&str> = found.iter().map(|(object, _)| object.object_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["ZTF_north_pole", "ZTF_near_north"],
        "a half-degree cap, nearest first"
    );
    Ok(())
}

/// The latest alerts are newest first, limited, and within the window.
pub async fn latest_alerts_order_and_limit(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    store.write_batch(&alerts).await?;
    let mut by_time: Vec<&Alert> = alerts.iter().collect();
    by_time.sort_by(|a, b| b.detection.mjd.total_cmp(&a.detection.mjd));

    let latest = store.latest_alerts(TimeWindow::ALL, &AlertSelection::All, 5).await?;
    assert_eq!(latest.len(), 5, "limit");
    assert!(
        latest
            .windows(2)
            .all(|pair| pair[0].detection.mjd >= pair[1].detection.mjd),
        "newest first"
    );
    assert_eq!(
        latest[0].detection.mjd, by_time[0].detection.mjd,
        "the newest alert first"
    );
    assert_eq!(latest[4].detection.mjd, by_time[4].detection.mjd);

    let all = store.latest_alerts(TimeWindow::ALL, &AlertSelection::All, 1000).await?;
    assert_eq!(all.len(), alerts.len(), "every alert");
    assert!(all.iter().all(|row| row.detection.is_alert));

    let light_curve = ztf_light_curve_alerts();
    let window = TimeWindow {
        start_mjd: light_curve[2].detection.mjd,
        end_mjd: light_curve[8].detection.mjd,
    };
    let in_window = store.latest_alerts(window, &AlertSelection::All, 100).await?;
    let ids: Vec<i64> = in_window.iter().map(|row| row.detection.source_id).collect();
    let expected: Vec<i64> = light_curve[2..8].iter().rev().map(Alert::source_id).collect();
    assert_eq!(ids, expected, "alerts in [start, end), newest first");
    assert!(
        store
            .latest_alerts(TimeWindow::ALL, &AlertSelection::All, 0)
            .await?
            .is_empty(),
        "limit 0"
    );
    Ok(())
}

/// An alert is found by its source id with its detection, schema version, solar-system name
/// and raw detection record.
pub async fn alert_lookup_by_source_id(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    store.write_batch(&alerts).await?;
    for alert in &alerts {
        let row = store
            .alert(alert.survey, alert.source_id())
            .await?
            .unwrap_or_else(|| panic!("alert {} {} not found", alert.survey, alert.source_id()));
        assert_eq!(
            row.detection,
            detection_row(alert, &alert.detection, true),
            "detection of {}",
            alert.source_id()
        );
        assert_eq!(row.schema_version, alert.schema_version);
        let record = match alert.survey {
            Survey::Ztf => "candidate",
            Survey::Rubin => "diaSource",
        };
        assert_eq!(
            row.raw_detection,
            alert.raw.to_json()[record],
            "raw {record} of {}",
            alert.source_id()
        );
        let expected_name = match alert.source_id() {
            id if id == ZTF_SOLAR_SYSTEM.0 => Some(ZTF_SOLAR_SYSTEM.1),
            id if id == RUBIN_SOLAR_SYSTEM.0 => Some(RUBIN_SOLAR_SYSTEM.1),
            _ => None,
        };
        if expected_name.is_some() || alert.survey == Survey::Ztf {
            assert_eq!(
                row.solar_system_name.as_deref(),
                expected_name,
                "solar-system name of {}",
                alert.source_id()
            );
        }
    }
    let other = match alerts[0].survey {
        Survey::Ztf => Survey::Rubin,
        Survey::Rubin => Survey::Ztf,
    };
    assert!(
        store.alert(other, alerts[0].source_id()).await?.is_none(),
        "source ids are per survey"
    );
    assert!(store.alert(Survey::Ztf, 42).await?.is_none(), "unknown source id");
    // A history detection is not an alert.
    let history_id = ztf_light_curve_alerts()[0].history.first().map(|d| d.source_id);
    if let Some(id) = history_id.filter(|id| !alerts.iter().any(|alert| alert.source_id() == *id)) {
        assert!(
            store.alert(Survey::Ztf, id).await?.is_none(),
            "history detection {id} is not an alert"
        );
    }
    Ok(())
}

/// Alerts of a solar-system object are found by the name the survey gave it.
pub async fn solar_system_alerts_by_name(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    store.write_batch(&all_alerts()).await?;
    for (source_id, name) in [ZTF_SOLAR_SYSTEM, RUBIN_SOLAR_SYSTEM] {
        let found = store.solar_system_alerts(name, 10).await?;
        let ids: Vec<i64> = found.iter().map(|row| row.detection.source_id).collect();
        assert_eq!(ids, vec![source_id], "alerts of {name}");
        assert_eq!(found[0].solar_system_name.as_deref(), Some(name));
    }
    assert!(store.solar_system_alerts("no such object", 10).await?.is_empty());
    assert!(
        store.solar_system_alerts("null", 10).await?.is_empty(),
        "ZTF's 'null' is no name"
    );
    assert!(
        store.solar_system_alerts(ZTF_SOLAR_SYSTEM.1, 0).await?.is_empty(),
        "limit 0"
    );
    Ok(())
}

/// Cutouts come back byte for byte, three per alert; ZTF's are gzip.
pub async fn cutouts_roundtrip(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    store.write_batch(&alerts).await?;
    for alert in &alerts {
        let stored = store.cutouts(alert.survey, alert.source_id()).await?;
        assert_eq!(stored.len(), alert.cutouts.len(), "cutouts of {}", alert.source_id());
        assert_eq!(stored.len(), 3, "three cutouts per alert");
        for cutout in &alert.cutouts {
            let row = stored
                .iter()
                .find(|row| row.kind == cutout.kind)
                .unwrap_or_else(|| panic!("no {} cutout for {}", cutout.kind.as_str(), alert.source_id()));
            assert_eq!((row.survey, row.source_id), (alert.survey, alert.source_id()));
            assert_eq!(row.file_name, cutout.file_name);
            assert!(
                row.data == cutout.data[..],
                "{} cutout of {} differs",
                cutout.kind.as_str(),
                alert.source_id()
            );
            match alert.survey {
                Survey::Ztf => assert!(row.data.starts_with(&[0x1f, 0x8b]), "ZTF cutouts are gzip"),
                Survey::Rubin => assert!(row.data.starts_with(b"SIMPLE"), "Rubin cutouts are FITS"),
            }
        }
    }
    assert!(store.cutouts(Survey::Ztf, 42).await?.is_empty());
    Ok(())
}

/// Alerts and objects are counted per observing night ([`Night::of_mjd`]) and survey.
pub async fn counts_per_night_uses_observing_nights(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    store.write_batch(&alerts).await?;
    // Per (night, survey): alert ids and object ids.
    type Group<'a> = (BTreeSet<i64>, BTreeSet<&'a str>);
    let mut groups: BTreeMap<(Night, &str), Group<'_>> = BTreeMap::new();
    for alert in &alerts {
        let group = groups
            .entry((Night::of_mjd(alert.detection.mjd), alert.survey.as_str()))
            .or_default();
        group.0.insert(alert.source_id());
        group.1.insert(alert.object_id.as_str());
    }
    let expected: Vec<NightCount> = groups
        .into_iter()
        .map(|((night, survey), (alert_ids, objects))| NightCount {
            night,
            survey: if survey == "ztf" { Survey::Ztf } else { Survey::Rubin },
            n_alerts: alert_ids.len() as u64,
            n_objects: objects.len() as u64,
        })
        .collect();
    assert_eq!(
        store.counts_per_night().await?,
        expected,
        "oldest night first, then survey name"
    );
    Ok(())
}

/// Dead letters are stored with their bytes, listed oldest first, filtered by reason, deleted.
pub async fn dead_letters_roundtrip(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let letter = |reason: &str, bytes: &[u8], received_unix| DeadLetter {
        id: None,
        origin: format!("topic ztf_20240715_programid1 partition 0 offset {received_unix}"),
        reason: reason.to_string(),
        message: format!("{reason}: bad message"),
        bytes: bytes.to_vec(),
        received_unix,
    };
    let letters = vec![
        letter("truncated", b"Obj\x01", 1_720_000_000),
        letter("unknown_schema_id", &[0, 0, 0, 4, 77, 1, 2, 3], 1_720_000_001),
        letter("truncated", &[], 1_720_000_002),
    ];
    let ids = store.write_dead_letters(&letters).await?;
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids increase: {ids:?}");
    let listed = store.dead_letters(None, 10).await?;
    let expected: Vec<DeadLetter> = letters
        .iter()
        .zip(&ids)
        .map(|(letter, id)| DeadLetter {
            id: Some(*id),
            ..letter.clone()
        })
        .collect();
    assert_eq!(listed, expected, "dead letters oldest first, bytes kept");
    assert_eq!(store.counts().await?.dead_letters, 3);

    let truncated = store.dead_letters(Some("truncated"), 10).await?;
    assert_eq!(
        truncated,
        vec![expected[0].clone(), expected[2].clone()],
        "filtered by reason"
    );
    assert_eq!(store.dead_letters(None, 2).await?.len(), 2, "limit");
    assert!(store.dead_letters(Some("no such reason"), 10).await?.is_empty());

    assert_eq!(store.delete_dead_letters(&[ids[0]]).await?, 1);
    assert_eq!(store.delete_dead_letters(&[ids[0]]).await?, 0, "deleting twice");
    assert_eq!(store.dead_letters(None, 10).await?, expected[1..].to_vec());
    assert_eq!(store.delete_dead_letters(&ids).await?, 2);
    assert!(store.dead_letters(None, 10).await?.is_empty());
    let more = store.write_dead_letters(&letters[..1]).await?;
    assert!(more[0] > ids[2], "ids are not reused");
    Ok(())
}

/// Pruning removes every row of the older nights, objects left without detections, and
/// recomputes the other objects' summaries; what it reports matches what went.
pub async fn prune_removes_older_nights(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    let alerts = all_alerts();
    let expected = Expected::of(&alerts);
    store.write_batch(&alerts).await?;
    let before_counts = store.counts().await?;

    // Half the ZTF light curve is older than `before`; one Rubin alert (2016) is too.
    let light_curve = ztf_light_curve_alerts();
    let before = Night::of_mjd(light_curve[6].detection.mjd);
    assert!(Night::of_mjd(light_curve[5].detection.mjd) < before);
    let summary = store.prune(before).await?;

    let kept: Vec<&Alert> = alerts
        .iter()
        .filter(|alert| Night::of_mjd(alert.detection.mjd) >= before)
        .collect();
    let kept_detections: Vec<&DetectionRow> = expected.detections.values().filter(|row| row.night >= before).collect();
    let kept_objects: BTreeSet<ObjectKey> = kept_detections
        .iter()
        .map(|row| (row.survey, row.object_id.clone()))
        .collect();
    let counts = store.counts().await?;
    let expected_counts = StoreCounts {
        objects: kept_objects.len() as u64,
        alerts: kept.len() as u64,
        detections: kept_detections.len() as u64,
        upper_limits: expected
            .upper_limits
            .values()
            .filter(|row| Night::of_mjd(row.mjd) >= before)
            .count() as u64,
        forced_photometry: expected
            .forced_photometry
            .values()
            .filter(|row| Night::of_mjd(row.mjd) >= before)
            .count() as u64,
        cutouts: kept.iter().map(|alert| alert.cutouts.len() as u64).sum(),
        dead_letters: 0,
    };
    assert_eq!(counts, expected_counts, "counts after pruning nights before {before}");
    assert!(
        counts.objects < before_counts.objects,
        "an object went (the 2016 Rubin alert)"
    );
    assert_eq!(summary.alerts, before_counts.alerts - counts.alerts, "pruned alerts");
    assert_eq!(
        summary.detections,
        before_counts.detections - counts.detections,
        "pruned detections"
    );
    assert_eq!(
        summary.upper_limits,
        before_counts.upper_limits - counts.upper_limits,
        "pruned limits"
    );
    assert_eq!(
        summary.forced_photometry,
        before_counts.forced_photometry - counts.forced_photometry,
        "pruned forced photometry"
    );
    assert_eq!(
        summary.cutouts,
        before_counts.cutouts - counts.cutouts,
        "pruned cutouts"
    );
    assert_eq!(
        summary.objects,
        before_counts.objects - counts.objects,
        "pruned objects"
    );

    for (survey, object_id) in &expected.objects {
        let curve = store.light_curve(*survey, object_id).await?;
        if !kept_objects.contains(&(*survey, object_id.clone())) {
            assert!(curve.is_none(), "{survey} {object_id} has no detection left");
            continue;
        }
        let Some(curve) = curve else {
            panic!("{survey} {object_id} was pruned but has detections left");
        };
        assert!(curve.detections.iter().all(|row| row.night >= before));
        assert!(curve.upper_limits.iter().all(|row| Night::of_mjd(row.mjd) >= before));
        assert_summary_matches(&curve.object, &curve.detections);
    }
    for alert in &alerts {
        let gone = Night::of_mjd(alert.detection.mjd) < before;
        assert_eq!(
            store.alert(alert.survey, alert.source_id()).await?.is_none(),
            gone,
            "alert {}",
            alert.source_id()
        );
        assert_eq!(store.cutouts(alert.survey, alert.source_id()).await?.is_empty(), gone);
    }
    assert!(
        store
            .counts_per_night()
            .await?
            .iter()
            .all(|count| count.night >= before)
    );

    let again = store.prune(before).await?;
    assert_eq!(again, crate::PruneSummary::default(), "pruning twice");
    Ok(())
}

/// Science-module outputs are stored with the alert and read back as they were; the `class`
/// output selects the latest alerts of a class and is counted by `classes`.
pub async fn module_outputs_and_classes(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    use nightjar_core::Value;
    let store = factory.make().await?;
    let mut alerts = all_alerts();
    let classes = ["SN candidate", "Solar System MPC", "SN candidate"];
    for (index, alert) in alerts.iter_mut().enumerate() {
        let mut values = nightjar_core::ModuleValues::new();
        values.push("real_bogus".into(), Value::Float(0.25 + index as f64 / 1000.0));
        values.push("is_good_quality".into(), Value::Bool(index % 2 == 0));
        values.push("roid".into(), Value::Int(index as i64 % 4));
        values.push("lc_features_g.amplitude".into(), Value::Float(1.5));
        // "a_b" and "axb": a tag is matched exactly, `_` is no wildcard.
        match index % 3 {
            0 => values.push(crate::rows::TAGS_COLUMN.into(), Value::Text("a_b, sn".to_string())),
            1 => values.push(crate::rows::TAGS_COLUMN.into(), Value::Text("axb".to_string())),
            _ => {}
        }
        if let Some(class) = classes.get(index % 5) {
            values.push(crate::rows::CLASS_COLUMN.into(), Value::Text((*class).to_string()));
        }
        alert.module_values = values;
    }
    store.write_batch(&alerts).await?;
    for alert in &alerts {
        let row = store
            .alert(alert.survey, alert.source_id())
            .await?
            .unwrap_or_else(|| panic!("alert {} {} not found", alert.survey, alert.source_id()));
        assert_eq!(
            row.modules,
            alert.module_values.to_json(),
            "module outputs of {}",
            alert.source_id()
        );
        assert_eq!(
            row.class.as_deref(),
            crate::rows::alert_class(alert),
            "class of {}",
            alert.source_id()
        );
    }

    let expected_sn: Vec<i64> = {
        let mut sn: Vec<&Alert> = alerts
            .iter()
            .filter(|alert| crate::rows::alert_class(alert) == Some("SN candidate"))
            .collect();
        sn.sort_by(|a, b| b.detection.mjd.total_cmp(&a.detection.mjd));
        sn.iter().map(|alert| alert.source_id()).collect()
    };
    assert!(!expected_sn.is_empty());
    let latest = store
        .latest_alerts(TimeWindow::ALL, &AlertSelection::Class("SN candidate".into()), 1000)
        .await?;
    let mut ids: Vec<i64> = latest.iter().map(|row| row.detection.source_id).collect();
    let mut expected_sorted = expected_sn.clone();
    ids.sort_unstable();
    expected_sorted.sort_unstable();
    assert_eq!(ids, expected_sorted, "the alerts of one class");
    assert!(latest.iter().all(|row| row.class.as_deref() == Some("SN candidate")));
    assert!(
        latest
            .windows(2)
            .all(|pair| pair[0].detection.mjd >= pair[1].detection.mjd),
        "newest first"
    );
    assert!(
        store
            .latest_alerts(TimeWindow::ALL, &AlertSelection::Class("Kilonova".into()), 10)
            .await?
            .is_empty(),
        "unknown class"
    );

    let tagged = |tag: &str| {
        let mut ids: Vec<i64> = alerts
            .iter()
            .filter(|alert| {
                alert
                    .module_values
                    .get(crate::rows::TAGS_COLUMN)
                    .and_then(Value::as_str)
                    .is_some_and(|tags| tags.split(',').any(|one| one.trim() == tag))
            })
            .map(Alert::source_id)
            .collect();
        ids.sort_unstable();
        ids
    };
    for tag in ["a_b", "sn", "axb", "a", "b"] {
        let rows = store
            .latest_alerts(TimeWindow::ALL, &AlertSelection::Tag(tag.into()), 1000)
            .await?;
        let mut ids: Vec<i64> = rows.iter().map(|row| row.detection.source_id).collect();
        ids.sort_unstable();
        assert_eq!(ids, tagged(tag), "alerts tagged {tag:?}");
    }
    assert!(!tagged("a_b").is_empty() && !tagged("axb").is_empty());

    let counts = store.classes().await?;
    let count_of = |class: &str| {
        counts
            .iter()
            .find(|count| count.class == class)
            .map(|count| count.alerts)
    };
    assert_eq!(count_of("SN candidate"), Some(expected_sn.len() as u64));
    let mpc = alerts
        .iter()
        .filter(|alert| crate::rows::alert_class(alert) == Some("Solar System MPC"))
        .count() as u64;
    assert_eq!(count_of("Solar System MPC"), Some(mpc));
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts[0].alerts >= counts[1].alerts, "most common first");
    Ok(())
}

/// Text holding a NUL character (which no stored id, name, class, tag or reason holds, and
/// PostgreSQL's text cannot) finds nothing, as any other unknown text: an API client sending one
/// got a server error from the PostgreSQL store.
pub async fn text_with_a_nul_character_finds_nothing(factory: &dyn StoreFactory) -> Result<(), StoreError> {
    let store = factory.make().await?;
    store.write_batch(&all_alerts()).await?;
    for survey in [Survey::Ztf, Survey::Rubin] {
        assert!(store.light_curve(survey, "ZTF21abiuvdk\0").await?.is_none());
        assert!(store.light_curve(survey, "\0").await?.is_none());
    }
    assert!(store.solar_system_alerts("113410\0", 10).await?.is_empty());
    let window = TimeWindow::ALL;
    for selection in [
        AlertSelection::Class("Unknown\0".to_string()),
        AlertSelection::Tag("\u{d7}\u{1a}\0".to_string()),
    ] {
        assert!(store.latest_alerts(window, &selection, 10).await?.is_empty());
    }
    assert!(store.dead_letters(Some("\0"), 10).await?.is_empty());
    Ok(())
}
