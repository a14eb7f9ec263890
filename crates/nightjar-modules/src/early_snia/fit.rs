//! The sigmoid fit of actsnfink (`fit_sigmoid`): its initial guess, then SciPy's
//! `least_squares` with its defaults (method `trf` without bounds, `tr_solver = "exact"`,
//! 2-point finite-difference Jacobian, `x_scale = 1`, `ftol = xtol = gtol = 1e-8`,
//! `max_nfev = 100 n`), followed step by step so that the fitted parameters are SciPy's.
//!
//! The residuals are `|flux - c / (1 + exp(-a (t - b)))|`, as actsnfink writes them.

use nalgebra::{DMatrix, DVector};

const N: usize = 3;
const FTOL: f64 = 1e-8;
const XTOL: f64 = 1e-8;
const GTOL: f64 = 1e-8;

/// The sigmoid `c / (1 + exp(-a (t - b)))`.
pub fn sigmoid(t: f64, a: f64, b: f64, c: f64) -> f64 {
    c / (1.0 + (-a * (t - b)).exp())
}

fn residuals(x: &[f64; N], t: &[f64], flux: &[f64]) -> DVector<f64> {
    DVector::from_iterator(
        t.len(),
        t.iter()
            .zip(flux)
            .map(|(&t, &flux)| (flux - sigmoid(t, x[0], x[1], x[2])).abs()),
    )
}

/// SciPy's 2-point Jacobian: relative step sqrt(eps) * max(1, |x|), signed like x (0 counts
/// as positive).
fn jacobian(x: &[f64; N], f0: &DVector<f64>, t: &[f64], flux: &[f64]) -> DMatrix<f64> {
    let relative = f64::EPSILON.sqrt();
    let mut jacobian = DMatrix::zeros(t.len(), N);
    for j in 0..N {
        let sign = if x[j] >= 0.0 { 1.0 } else { -1.0 };
        let h = relative * sign * x[j].abs().max(1.0);
        let mut shifted = *x;
        shifted[j] = x[j] + h;
        let dx = shifted[j] - x[j];
        let f1 = residuals(&shifted, t, flux);
        for i in 0..t.len() {
            jacobian[(i, j)] = (f1[i] - f0[i]) / dx;
        }
    }
    jacobian
}

/// actsnfink's initial guess and fit; `None` when the residuals at the guess are not finite
/// (SciPy raises there).
pub fn fit_sigmoid(time: &[f64], flux: &[f64]) -> Option<[f64; 3]> {
    if time.is_empty() || time.len() != flux.len() {
        return None;
    }
    // numpy's argmax / argmin: the first extreme.
    let argmax = (0..flux.len()).fold(0, |best, i| if flux[i] > flux[best] { i } else { best });
    let argmin = (0..flux.len()).fold(0, |best, i| if flux[i] < flux[best] { i } else { best });
    let t0 = time[argmax] - time[0];
    let slope = if t0 > 0.0 {
        let dt = time[argmax] - time[argmin];
        (argmax as f64 - argmin as f64) / dt
    } else {
        1.0
    };
    let f0 = flux[0];
    let a_guess = slope;
    let c_guess = flux[argmax];
    let b_guess = if f0 != 0.0 && c_guess / f0 != 1.0 {
        (c_guess / f0 - 1.0).ln() / a_guess
    } else {
        1.0
    };
    least_squares([a_guess, b_guess, c_guess], time, flux).map(|(x, _)| x)
}

/// SciPy's `trf_no_bounds` with the defaults above; the solution and the number of function
/// evaluations (SciPy's `nfev`).
fn least_squares(x0: [f64; N], t: &[f64], flux: &[f64]) -> Option<([f64; N], usize)> {
    let m = t.len();
    let mut x = x0;
    let mut f = residuals(&x, t, flux);
    if !f.iter().all(|value| value.is_finite()) {
        return None;
    }
    let mut nfev = 1;
    let mut jac = jacobian(&x, &f, t, flux);
    let mut cost = 0.5 * f.dot(&f);
    let mut g = jac.transpose() * &f;
    let mut delta = norm(&x0);
    if delta == 0.0 {
        delta = 1.0;
    }
    let max_nfev = 100 * N;
    let mut alpha = 0.0;
    let mut termination = false;
    loop {
        let g_norm = g.iter().fold(0.0f64, |max, value| max.max(value.abs()));
        if g_norm < GTOL {
            termination = true;
        }
        if termination || nfev == max_nfev {
            break;
        }
        let svd = Svd::new(&jac);
        let uf = svd.u.transpose() * &f;
        let mut actual_reduction = -1.0;
        let mut x_new = x;
        let mut f_new = f.clone();
        let mut cost_new = cost;
        while actual_reduction <= 0.0 && nfev < max_nfev {
            let (step, new_alpha) = solve_lsq_trust_region(m, &uf, &svd.s, &svd.v, delta, alpha);
            alpha = new_alpha;
            let js = &jac * &step;
            let predicted_reduction = -(0.5 * js.dot(&js) + step.dot(&g));
            x_new = [x[0] + step[0], x[1] + step[1], x[2] + step[2]];
            f_new = residuals(&x_new, t, flux);
            nfev += 1;
            let step_norm = step.norm();
            if !f_new.iter().all(|value| value.is_finite()) {
                delta = 0.25 * step_norm;
                continue;
            }
            cost_new = 0.5 * f_new.dot(&f_new);
            actual_reduction = cost - cost_new;
            let (delta_new, ratio) = update_tr_radius(
                delta,
                actual_reduction,
                predicted_reduction,
                step_norm,
                step_norm > 0.95 * delta,
            );
            if check_termination(actual_reduction, cost, step_norm, norm(&x), ratio) {
                termination = true;
                break;
            }
            alpha *= delta / delta_new;
            delta = delta_new;
        }
        if actual_reduction > 0.0 {
            x = x_new;
            f = f_new;
            cost = cost_new;
            jac = jacobian(&x, &f, t, flux);
            g = jac.transpose() * &f;
        }
    }
    Some((x, nfev))
}

fn norm(x: &[f64; N]) -> f64 {
    x.iter().map(|value| value * value).sum::<f64>().sqrt()
}

/// A thin SVD with singular values in descending order, as LAPACK returns them.
struct Svd {
    u: DMatrix<f64>,
    s: DVector<f64>,
    v: DMatrix<f64>,
}

impl Svd {
    fn new(matrix: &DMatrix<f64>) -> Svd {
        let svd = matrix.clone().svd(true, true);
        let k = svd.singular_values.len();
        let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
            // svd(true, true) always computes both; keep a consistent zero result otherwise.
            return Svd {
                u: DMatrix::zeros(matrix.nrows(), k),
                s: DVector::zeros(k),
                v: DMatrix::zeros(matrix.ncols(), k),
            };
        };
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
        let s = DVector::from_iterator(k, order.iter().map(|&i| svd.singular_values[i]));
        let u = DMatrix::from_fn(u.nrows(), k, |row, col| u[(row, order[col])]);
        let v = DMatrix::from_fn(v_t.ncols(), k, |row, col| v_t[(order[col], row)]);
        Svd { u, s, v }
    }
}

/// SciPy's `solve_lsq_trust_region` (More's method on the SVD), `rtol = 0.01`, 10 iterations.
fn solve_lsq_trust_region(
    m: usize,
    uf: &DVector<f64>,
    s: &DVector<f64>,
    v: &DMatrix<f64>,
    delta: f64,
    initial_alpha: f64,
) -> (DVector<f64>, f64) {
    let suf = s.component_mul(uf);
    let phi_and_derivative = |alpha: f64| {
        let denom = s.map(|value| value * value + alpha);
        let p = suf.component_div(&denom);
        let p_norm = p.norm();
        let phi = p_norm - delta;
        let phi_prime = -suf
            .iter()
            .zip(denom.iter())
            .map(|(suf, denom)| suf * suf / (denom * denom * denom))
            .sum::<f64>()
            / p_norm;
        (phi, phi_prime)
    };
    let k = s.len();
    let full_rank = m >= N && k > 0 && s[k - 1] > f64::EPSILON * m as f64 * s[0];
    if full_rank {
        let p = -(v * uf.component_div(s));
        if p.norm() <= delta {
            return (p, 0.0);
        }
    }
    let mut alpha_upper = suf.norm() / delta;
    let mut alpha_lower = if full_rank {
        let (phi, phi_prime) = phi_and_derivative(0.0);
        -phi / phi_prime
    } else {
        0.0
    };
    let mut alpha = if !full_rank && initial_alpha == 0.0 {
        (0.001 * alpha_upper).max((alpha_lower * alpha_upper).sqrt())
    } else {
        initial_alpha
    };
    for _ in 0..10 {
        if alpha < alpha_lower || alpha > alpha_upper {
            alpha = (0.001 * alpha_upper).max((alpha_lower * alpha_upper).sqrt());
        }
        let (phi, phi_prime) = phi_and_derivative(alpha);
        if phi < 0.0 {
            alpha_upper = alpha;
        }
        let ratio = phi / phi_prime;
        alpha_lower = alpha_lower.max(alpha - ratio);
        alpha -= (phi + delta) * ratio / delta;
        if phi.abs() < 0.01 * delta {
            break;
        }
    }
    let denom = s.map(|value| value * value + alpha);
    let mut p = -(v * suf.component_div(&denom));
    let p_norm = p.norm();
    p *= delta / p_norm;
    (p, alpha)
}

/// SciPy's `update_tr_radius`.
fn update_tr_radius(delta: f64, actual: f64, predicted: f64, step_norm: f64, bound_hit: bool) -> (f64, f64) {
    let ratio = if predicted > 0.0 {
        actual / predicted
    } else if predicted == actual && actual == 0.0 {
        1.0
    } else {
        0.0
    };
    let delta = if ratio < 0.25 {
        0.25 * step_norm
    } else if ratio > 0.75 && bound_hit {
        delta * 2.0
    } else {
        delta
    };
    (delta, ratio)
}

/// SciPy's `check_termination`: whether `ftol` or `xtol` is met.
fn check_termination(d_cost: f64, cost: f64, step_norm: f64, x_norm: f64, ratio: f64) -> bool {
    let ftol_satisfied = d_cost < FTOL * cost && ratio > 0.25;
    let xtol_satisfied = step_norm < XTOL * (XTOL + x_norm);
    ftol_satisfied || xtol_satisfied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_sigmoid() {
        let t: Vec<f64> = (0..8).map(f64::from).collect();
        let flux: Vec<f64> = t.iter().map(|&t| sigmoid(t, 0.7, 3.0, 1000.0)).collect();
        let [a, b, c] = fit_sigmoid(&t, &flux).expect("fit");
        assert!((a - 0.7).abs() < 1e-4, "a = {a}");
        assert!((b - 3.0).abs() < 1e-3, "b = {b}");
        assert!((c - 1000.0).abs() < 1e-1, "c = {c}");
    }

    #[test]
    fn follows_scipy_along_a_degenerate_valley() {
        // The g band of ZTF19abaqdsg (candid 2752190655615010053): four rising days, the
        // sigmoid far from its plateau. SciPy 1.15.3 crawls the valley for 85 evaluations and
        // stops on ftol at a = 0.179606757, b = 23.2700070, c = 136684.366.
        let t = [0.0, 2.0, 4.0, 6.0];
        let flux = [
            1859.0036519085525,
            3317.1136042575954,
            3917.7769193844842,
            5932.675301717777,
        ];
        let slope = 3.0 / 6.0;
        let x0 = [slope, (flux[3] / flux[0] - 1.0f64).ln() / slope, flux[3]];
        let (x, nfev) = least_squares(x0, &t, &flux).expect("fit");
        eprintln!("x = {x:?}, nfev = {nfev}");
        assert!((x[0] - 0.179606757).abs() < 1e-5, "{x:?}");
        assert!((x[2] - 136684.366).abs() / 136684.366 < 1e-3, "{x:?}");
        assert!(nfev.abs_diff(85) <= 5, "nfev {nfev}");
    }

    #[test]
    fn non_finite_start_gives_none() {
        assert_eq!(fit_sigmoid(&[0.0, 1.0], &[f64::NAN, 1.0]), None);
        assert_eq!(fit_sigmoid(&[], &[]), None);
    }
}
