//! Conversions between AB magnitudes and fluxes in nanojansky, and between time scales.
//!
//! AB magnitudes: `m = -2.5 log10(f / 3631 Jy)`; with f in nJy this is `m = 31.4 - 2.5 log10(f)`,
//! using the conventional 31.4 (the exact `2.5 log10(3631e9)` is 31.40002) as Rubin does.

/// `2.5 log10(3631e9)`: the AB magnitude of 1 nJy.
pub const AB_ZERO_POINT_NJY: f64 = 31.4;

/// Offset between Julian Date and Modified Julian Date.
pub const MJD_OFFSET: f64 = 2_400_000.5;

/// Flux (nJy) of an AB magnitude.
pub fn mag_to_flux(mag: f64) -> f64 {
    10f64.powf(-0.4 * (mag - AB_ZERO_POINT_NJY))
}

/// AB magnitude of |flux| (nJy); `None` for a zero or non-finite flux.
pub fn flux_to_mag(flux: f64) -> Option<f64> {
    let flux = flux.abs();
    (flux > 0.0 && flux.is_finite()).then(|| AB_ZERO_POINT_NJY - 2.5 * flux.log10())
}

/// Flux error (nJy) from a magnitude error, to first order.
pub fn mag_err_to_flux_err(flux: f64, mag_err: f64) -> f64 {
    flux.abs() * mag_err * std::f64::consts::LN_10 / 2.5
}

/// Magnitude error from a flux error (nJy), to first order; `None` for a zero flux.
pub fn flux_err_to_mag_err(flux: f64, flux_err: f64) -> Option<f64> {
    let flux = flux.abs();
    (flux > 0.0).then(|| 2.5 / std::f64::consts::LN_10 * flux_err / flux)
}

/// Modified Julian Date of a Julian Date.
pub fn jd_to_mjd(jd: f64) -> f64 {
    jd - MJD_OFFSET
}

/// Julian Date of a Modified Julian Date.
pub fn mjd_to_jd(mjd: f64) -> f64 {
    mjd + MJD_OFFSET
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_and_flux_round_trip() {
        for mag in [14.0, 18.5, 20.25, 24.0] {
            let flux = mag_to_flux(mag);
            assert!((flux_to_mag(flux).unwrap() - mag).abs() < 1e-12);
        }
        // 3631 Jy is magnitude 0, to the 31.4 convention's precision.
        assert!((flux_to_mag(3631e9).unwrap()).abs() < 1e-4);
        assert_eq!(flux_to_mag(0.0), None);
        assert_eq!(flux_to_mag(f64::NAN), None);
    }

    #[test]
    fn errors_propagate_both_ways() {
        let flux = mag_to_flux(19.0);
        let flux_err = mag_err_to_flux_err(flux, 0.1);
        assert!((flux_err_to_mag_err(flux, flux_err).unwrap() - 0.1).abs() < 1e-12);
    }

    #[test]
    fn julian_dates() {
        assert_eq!(jd_to_mjd(2_459_000.5), 59_000.0);
        assert_eq!(mjd_to_jd(59_000.0), 2_459_000.5);
    }
}
