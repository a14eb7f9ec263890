//! Per-copy randomness and geometry: a counter-based hash (so copy `i` needs no copies before
//! it), uniform sky positions, and the rotation that moves a whole alert to a new position.

use crate::layout::Point;

/// SplitMix64 finaliser: a bijective 64-bit mix with good avalanche.
pub(crate) fn mix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// A deterministic 64-bit value for (seed, copy index, purpose).
pub(crate) fn hash3(seed: u64, index: u64, purpose: u64) -> u64 {
    mix64(mix64(mix64(seed) ^ index) ^ purpose)
}

/// A uniform float in [0, 1) from 64 random bits.
pub(crate) fn unit_float(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A position drawn uniformly over the sphere.
pub(crate) fn uniform_sky_position(ra_bits: u64, dec_bits: u64) -> Point {
    let ra = 360.0 * unit_float(ra_bits);
    let dec = (2.0 * unit_float(dec_bits) - 1.0).clamp(-1.0, 1.0).asin().to_degrees();
    Point { ra, dec }
}

/// Unit vector of a position in degrees.
pub(crate) fn unit_vector(point: Point) -> [f64; 3] {
    let (sin_ra, cos_ra) = point.ra.to_radians().sin_cos();
    let (sin_dec, cos_dec) = point.dec.to_radians().sin_cos();
    [cos_dec * cos_ra, cos_dec * sin_ra, sin_dec]
}

/// A rotation of the sphere that takes `from` to `to` and keeps north pointing north there:
/// `Rz(ra_to) * Ry(dec_to - dec_from) * Rz(-ra_from)`. Angular distances and position angles
/// between points are preserved, so a moved alert keeps the geometry of its history.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotation {
    matrix: [[f64; 3]; 3],
}

impl Rotation {
    pub(crate) fn taking(from: Point, to: Point) -> Rotation {
        let about_z = |angle_deg: f64| {
            let (sin, cos) = angle_deg.to_radians().sin_cos();
            [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]]
        };
        // Raises the declination of points on the ra = 0 meridian by `angle_deg`.
        let about_y = |angle_deg: f64| {
            let (sin, cos) = angle_deg.to_radians().sin_cos();
            [[cos, 0.0, -sin], [0.0, 1.0, 0.0], [sin, 0.0, cos]]
        };
        let matrix = multiply(about_z(to.ra), multiply(about_y(to.dec - from.dec), about_z(-from.ra)));
        Rotation { matrix }
    }

    /// The rotated position, with ra in [0, 360) and dec in [-90, 90].
    pub(crate) fn apply(&self, vector: [f64; 3]) -> Point {
        let [row_x, row_y, row_z] = self.matrix;
        let dot = |row: [f64; 3]| row[0] * vector[0] + row[1] * vector[1] + row[2] * vector[2];
        let (x, y, z) = (dot(row_x), dot(row_y), dot(row_z));
        let mut ra = y.atan2(x).to_degrees();
        if ra < 0.0 {
            ra += 360.0;
        }
        if ra >= 360.0 {
            ra = 0.0;
        }
        let dec = z.clamp(-1.0, 1.0).asin().to_degrees();
        Point { ra, dec }
    }
}

fn multiply(left: [[f64; 3]; 3], right: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut product = [[0.0; 3]; 3];
    for (row, product_row) in product.iter_mut().enumerate() {
        for (column, cell) in product_row.iter_mut().enumerate() {
            *cell = (0..3).map(|inner| left[row][inner] * right[inner][column]).sum();
        }
    }
    product
}

/// Number of distinct seven-letter suffixes of a ZTF object name.
const LETTER_SUFFIXES: u64 = 26u64.pow(7);

/// Number of distinct ZTF-style object names: 2 digits times 7 lowercase letters.
pub(crate) const ZTF_NAME_SPACE: u64 = 100 * LETTER_SUFFIXES;

/// The `number`-th ZTF-style object name ("ZTF" + 2 digits + 7 lowercase letters), for
/// `number` below [`ZTF_NAME_SPACE`] (larger numbers wrap).
pub(crate) fn ztf_object_name(number: u64) -> String {
    let number = number % ZTF_NAME_SPACE;
    let digits = number / LETTER_SUFFIXES;
    let mut letters = number % LETTER_SUFFIXES;
    let mut suffix = [b'a'; 7];
    for letter in suffix.iter_mut().rev() {
        *letter = b'a' + (letters % 26) as u8;
        letters /= 26;
    }
    let mut name = String::with_capacity(12);
    name.push_str("ZTF");
    name.push(char::from(b'0' + (digits / 10) as u8));
    name.push(char::from(b'0' + (digits % 10) as u8));
    name.extend(suffix.iter().map(|byte| char::from(*byte)));
    name
}

/// Angular distance between two positions in degrees (haversine, exact for small angles).
pub fn angular_distance_deg(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let (dec1, dec2) = (dec1.to_radians(), dec2.to_radians());
    let half_dra = ((ra2 - ra1).to_radians() / 2.0).sin();
    let half_ddec = ((dec2 - dec1) / 2.0).sin();
    let a = half_ddec * half_ddec + dec1.cos() * dec2.cos() * half_dra * half_dra;
    (2.0 * a.sqrt().min(1.0).asin()).to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_have_the_ztf_shape_and_differ() {
        assert_eq!(ztf_object_name(0), "ZTF00aaaaaaa");
        assert_eq!(ztf_object_name(1), "ZTF00aaaaaab");
        assert_eq!(ztf_object_name(26), "ZTF00aaaaaba");
        assert_eq!(ztf_object_name(LETTER_SUFFIXES), "ZTF01aaaaaaa");
        assert_eq!(ztf_object_name(ZTF_NAME_SPACE - 1), "ZTF99zzzzzzz");
        let names: std::collections::HashSet<String> = (0..10_000).map(|n| ztf_object_name(n * 7919)).collect();
        assert_eq!(names.len(), 10_000);
    }

    #[test]
    fn rotation_moves_the_center_to_the_target_and_keeps_distances() {
        let cases = [
            (Point { ra: 10.0, dec: 20.0 }, Point { ra: 300.0, dec: -89.9 }),
            (Point { ra: 359.9, dec: 89.5 }, Point { ra: 0.1, dec: 0.0 }),
            (Point { ra: 150.1, dec: 2.2 }, Point { ra: 150.1, dec: 2.2 }),
        ];
        for (from, to) in cases {
            let rotation = Rotation::taking(from, to);
            let moved = rotation.apply(unit_vector(from));
            assert!(
                angular_distance_deg(moved.ra, moved.dec, to.ra, to.dec) < 1e-10,
                "{moved:?} vs {to:?}"
            );
            let neighbour = Point {
                ra: (from.ra + 0.001) % 360.0,
                dec: from.dec - 0.0005,
            };
            let moved_neighbour = rotation.apply(unit_vector(neighbour));
            let before = angular_distance_deg(from.ra, from.dec, neighbour.ra, neighbour.dec);
            let after = angular_distance_deg(moved.ra, moved.dec, moved_neighbour.ra, moved_neighbour.dec);
            assert!((before - after).abs() < 1e-11, "{before} vs {after}");
            assert!((0.0..360.0).contains(&moved_neighbour.ra));
            assert!((-90.0..=90.0).contains(&moved_neighbour.dec));
        }
    }

    #[test]
    fn uniform_positions_stay_in_range() {
        for index in 0..10_000 {
            let point = uniform_sky_position(hash3(1, index, 1), hash3(1, index, 2));
            assert!((0.0..360.0).contains(&point.ra));
            assert!((-90.0..=90.0).contains(&point.dec));
        }
    }
}
