//! Positions on the sky, backend-neutral: the HEALPix index of a position, the cells covering a
//! cone, angular distances and the checks on cone-search arguments that every store shares.

use crate::{HEALPIX_ORDER, ObjectSummary, StoreError};

/// Checks cone-search arguments before any work.
pub fn validate_cone(ra: f64, dec: f64, radius_deg: f64) -> Result<(), StoreError> {
    if !ra.is_finite() {
        return Err(StoreError::InvalidArgument(format!(
            "invalid ra {ra}: give a right ascension in degrees"
        )));
    }
    if !(-90.0..=90.0).contains(&dec) {
        return Err(StoreError::InvalidArgument(format!(
            "invalid dec {dec}: give a declination in degrees, from -90 to 90"
        )));
    }
    if !(radius_deg > 0.0 && radius_deg <= 180.0) {
        return Err(StoreError::InvalidArgument(format!(
            "invalid radius {radius_deg}: give a radius in degrees, more than 0 and at most 180"
        )));
    }
    Ok(())
}

/// NESTED HEALPix index at [`HEALPIX_ORDER`]; -1 for a position that is not on the sky.
pub fn healpix_of(ra: f64, dec: f64) -> i64 {
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

/// Ranges of NESTED cells at [`HEALPIX_ORDER`] that together cover the cone, from a coverage
/// computed at a coarser order (a few cells around the cone), so the query stays a handful of
/// index range scans whatever the radius.
pub fn cone_ranges(ra: f64, dec: f64, radius_deg: f64) -> Vec<(i64, i64)> {
    let radius = radius_deg.to_radians();
    let depth = if cdshealpix::has_best_starting_depth(radius) {
        (cdshealpix::best_starting_depth(radius) + 2).min(HEALPIX_ORDER)
    } else {
        2
    };
    let coverage = cdshealpix::nested::cone_coverage_approx(depth, ra.to_radians(), dec.to_radians(), radius);
    let shift = 2 * u32::from(HEALPIX_ORDER - depth);
    coverage
        .to_ranges()
        .iter()
        .filter_map(|range| {
            let start = i64::try_from(range.start << shift).ok()?;
            let end = i64::try_from(range.end << shift).ok()?;
            Some((start, end))
        })
        .collect()
}

/// Angular distance between two positions, degrees (haversine: accurate at small separations).
pub fn angular_distance_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (ra1, dec1, ra2, dec2) = (ra1.to_radians(), dec1.to_radians(), ra2.to_radians(), dec2.to_radians());
    let half_dec = ((dec2 - dec1) / 2.0).sin();
    let half_ra = ((ra2 - ra1) / 2.0).sin();
    let h = half_dec * half_dec + dec1.cos() * dec2.cos() * half_ra * half_ra;
    (2.0 * h.sqrt().min(1.0).asin()).to_degrees()
}

/// Sorts cone-search results nearest first; equal distances by (survey, object id), so the order
/// does not depend on the backend.
pub fn sort_nearest_first(found: &mut [(ObjectSummary, f64)]) {
    found.sort_by(|(a, a_distance), (b, b_distance)| {
        a_distance
            .total_cmp(b_distance)
            .then_with(|| (a.survey, &a.object_id).cmp(&(b.survey, &b.object_id)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_right_across_ra_zero_and_at_the_pole() {
        assert!((angular_distance_deg(359.5, 0.0, 0.5, 0.0) - 1.0).abs() < 1e-9);
        assert!((angular_distance_deg(0.0, 89.5, 180.0, 89.5) - 1.0).abs() < 1e-9);
        assert!(angular_distance_deg(10.0, 20.0, 10.0, 20.0).abs() < 1e-12);
    }

    #[test]
    fn cone_ranges_contain_the_centre_cell() {
        for (ra, dec, radius) in [
            (0.0, 0.0, 1.0 / 3600.0),
            (359.9999, -30.0, 0.5),
            (12.0, 89.999, 2.0),
            (200.0, -90.0, 60.0),
        ] {
            let cell = healpix_of(ra, dec);
            let ranges = cone_ranges(ra, dec, radius);
            assert!(
                ranges.iter().any(|(start, end)| (*start..*end).contains(&cell)),
                "cell {cell} of ({ra}, {dec}) not in {ranges:?}"
            );
            assert!(ranges.len() < 200, "{} ranges for radius {radius}", ranges.len());
        }
    }

    #[test]
    fn invalid_positions_have_no_healpix_cell() {
        assert_eq!(healpix_of(f64::NAN, 0.0), -1);
        assert_eq!(healpix_of(10.0, 91.0), -1);
        assert!(healpix_of(360.0, 90.0) >= 0);
        assert!(healpix_of(-10.0, -90.0) >= 0);
    }
}
