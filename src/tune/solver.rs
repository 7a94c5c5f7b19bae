//! The fit of one queue's pass times: `vs = t00 + t0*msgs + ts*bytes` by linear least
//! squares, solved through a QR factorisation of the column-scaled design and an SVD of its
//! 3x3 `R` (never the normal equations), with standard errors, 95% confidence intervals,
//! and a refusal naming the parameter the passes cannot determine.
//!
//! Method, for `n` passes, design rows `x_i = (1, msgs_i, bytes_i)` and weights `w_i` (all
//! 1 without `--robust`):
//! - Rows are multiplied by `sqrt(w_i)`, columns divided by their norms `d_j` (so a byte
//!   and a message weigh alike), `A = QR`, `R = U S V'`.
//! - The parameters are determined when `s_min / s_max > RCOND` (1e-8); otherwise the
//!   refusal says which are not and why (same size, constant msgs/bytes, bytes a linear
//!   function of msgs).
//! - `beta = D^-1 V S^-1 U' Q'y`; `(X'WX)^-1 = D^-1 (R'R)^-1 D^-1 = D^-1 V S^-2 V' D^-1`.
//! - Residual variance `s2 = sum w_i r_i^2 / (n - 3)`; standard error `se_j = sqrt(s2 *
//!   (X'WX)^-1_jj)`; 95% interval `beta_j +- t(0.975, n - 3) * se_j` ([`t975`]: a table
//!   for 1..=30 degrees of freedom, a Cornish-Fisher expansion above, within 1e-4).
//! - `R^2 = 1 - sum w r^2 / sum w (y - mean_w y)^2`; RMS residual `sqrt(sum w r^2 / sum w)`.
//! - Robust (`Method::Huber`): iteratively reweighted least squares with Huber weights
//!   `w_i = min(1, k*s / |r_i|)`, `k = 1.345`, `s = MAD(r) / 0.6745` re-estimated each
//!   round, at most 50 rounds, stopping when no fitted value moves more than `1e-6 * s`.
//!   Its intervals are those of the final weighted fit (an approximation: the weights are
//!   treated as known).

use nalgebra::{DMatrix, DVector, Matrix3, Vector3};

use crate::config::QueueTiming;

/// Parameter names, in the order of every `[f64; 3]` here.
pub const PARAMS: [&str; 3] = ["t00", "t0", "ts"];
/// Fewest passes fitted: three parameters plus at least two degrees of freedom for the
/// residual variance (with one, the 95% interval is +-12.7 standard errors).
pub const MIN_PASSES: usize = 5;
/// Smallest singular value, relative to the largest, of the column-scaled design below
/// which the parameters count as undetermined (condition number above 1e8).
pub const RCOND: f64 = 1e-8;
/// Huber's tuning constant, in units of the robust (MAD) scale of the residuals.
pub const HUBER_K: f64 = 1.345;
/// Most reweighting rounds of the robust fit.
pub const MAX_IRLS: usize = 50;

/// One pass: messages, bytes and wall seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub msgs: f64,
    pub bytes: f64,
    pub vs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    LeastSquares,
    /// Huber M-estimate by IRLS: passes far off the fit (a stalled disk, a lock held by
    /// an admin) weigh less.
    Huber,
}

/// How the robust fit went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Robust {
    pub iterations: usize,
    pub converged: bool,
    /// Passes with weight below 1.
    pub downweighted: usize,
    /// The final MAD scale of the residuals, seconds.
    pub scale: f64,
}

/// A fit of one queue (or of all queues pooled).
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub timing: QueueTiming,
    /// Standard errors of t00, t0, ts.
    pub se: [f64; 3],
    /// Half-widths of the 95% confidence intervals of t00, t0, ts.
    pub ci95: [f64; 3],
    pub passes: usize,
    /// Degrees of freedom of the residuals: passes - 3.
    pub dof: usize,
    pub r2: f64,
    /// Root mean square residual, seconds (weighted for a robust fit).
    pub rms: f64,
    /// Condition number of the column-scaled (weighted) design.
    pub condition: f64,
    pub robust: Option<Robust>,
}

impl Fit {
    pub fn params(&self) -> [f64; 3] {
        [self.timing.t00, self.timing.t0, self.timing.ts]
    }
}

/// Why passes do not give a fit.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "too few passes: {passes} (at least {MIN_PASSES} are needed to fit t00, t0 and ts and estimate their error)"
    )]
    TooFewPasses { passes: usize },
    #[error("{} undetermined: {why}", name_list(params))]
    Undetermined {
        params: Vec<&'static str>,
        why: String,
    },
    #[error("the fit overflowed (values too large to compute with)")]
    NotFinite,
}

impl Refusal {
    /// The parameters the refusal is about (all three when there are too few passes).
    pub fn params(&self) -> Vec<&'static str> {
        match self {
            Refusal::Undetermined { params, .. } => params.clone(),
            _ => PARAMS.to_vec(),
        }
    }
}

fn name_list(params: &[&str]) -> String {
    match params {
        [one] => format!("{one} is"),
        [rest @ .., last] => format!("{} and {last} are", rest.join(", ")),
        [] => "nothing is".to_string(),
    }
}

/// Fits `points`; see the module documentation for the method.
pub fn fit(points: &[Point], method: Method) -> Result<Fit, Refusal> {
    if points.len() < MIN_PASSES {
        return Err(Refusal::TooFewPasses {
            passes: points.len(),
        });
    }
    let ones = vec![1.0; points.len()];
    let mut solved = solve(points, &ones).map_err(|null| undetermined(points, &null))?;
    let mut weights = ones;
    let mut robust = None;
    if method == Method::Huber {
        let mut info = Robust {
            iterations: 0,
            converged: false,
            downweighted: 0,
            scale: 0.0,
        };
        let floor = 1e-9 * (1.0 + points.iter().map(|p| p.vs.abs()).fold(0.0, f64::max));
        while info.iterations < MAX_IRLS && !info.converged {
            info.iterations += 1;
            let residuals = residuals(points, &solved.beta);
            info.scale = mad_scale(&residuals).max(floor);
            let cut = HUBER_K * info.scale;
            weights = residuals
                .iter()
                .map(|r| if r.abs() <= cut { 1.0 } else { cut / r.abs() })
                .collect();
            let next = solve(points, &weights).map_err(|null| reweighted_undetermined(&null))?;
            let moved = points
                .iter()
                .map(|p| (predict(&next.beta, p) - predict(&solved.beta, p)).abs())
                .fold(0.0, f64::max);
            info.converged = moved <= 1e-6 * info.scale;
            solved = next;
        }
        info.downweighted = weights.iter().filter(|&&w| w < 1.0).count();
        robust = Some(info);
    }
    finish(points, &weights, solved, robust)
}

/// Quality figures and intervals of a solved (weighted) fit.
fn finish(
    points: &[Point],
    weights: &[f64],
    solved: Solved,
    robust: Option<Robust>,
) -> Result<Fit, Refusal> {
    let n = points.len();
    let dof = n - 3;
    let residuals = residuals(points, &solved.beta);
    let sum_w: f64 = weights.iter().sum();
    let ssr: f64 = residuals.iter().zip(weights).map(|(r, w)| w * r * r).sum();
    let mean = points
        .iter()
        .zip(weights)
        .map(|(p, w)| w * p.vs)
        .sum::<f64>()
        / sum_w;
    let sst: f64 = points
        .iter()
        .zip(weights)
        .map(|(p, w)| w * (p.vs - mean).powi(2))
        .sum();
    // With an intercept, ssr <= sst; constant pass times are explained exactly.
    let r2 = if sst > 0.0 { 1.0 - ssr / sst } else { 1.0 };
    let s2 = ssr / dof as f64;
    let t = t975(dof);
    let se: [f64; 3] = std::array::from_fn(|j| (s2 * solved.cov_unit[(j, j)]).max(0.0).sqrt());
    let fit = Fit {
        timing: QueueTiming {
            t00: solved.beta[0],
            t0: solved.beta[1],
            ts: solved.beta[2],
        },
        se,
        ci95: se.map(|e| t * e),
        passes: n,
        dof,
        r2,
        rms: (ssr / sum_w).sqrt(),
        condition: solved.condition,
        robust,
    };
    let finite = fit
        .params()
        .iter()
        .chain(&fit.se)
        .chain(&fit.ci95)
        .all(|v| v.is_finite())
        && fit.r2.is_finite()
        && fit.rms.is_finite();
    if finite {
        Ok(fit)
    } else {
        Err(Refusal::NotFinite)
    }
}

/// A solved weighted least squares problem.
#[derive(Debug, Clone)]
struct Solved {
    beta: [f64; 3],
    /// `(X'WX)^-1`, to be multiplied by the residual variance.
    cov_unit: Matrix3<f64>,
    condition: f64,
}

/// Solves the weighted problem, or gives the null directions (in parameter order, of the
/// column-scaled design) that make it undetermined.
fn solve(points: &[Point], weights: &[f64]) -> Result<Solved, Vec<[f64; 3]>> {
    let n = points.len();
    let root: Vec<f64> = weights.iter().map(|w| w.sqrt()).collect();
    let mut a = DMatrix::from_fn(n, 3, |i, j| {
        root[i]
            * match j {
                0 => 1.0,
                1 => points[i].msgs,
                _ => points[i].bytes,
            }
    });
    let mut y = DVector::from_fn(n, |i, _| root[i] * points[i].vs);
    let mut norms = [0.0; 3];
    for (j, norm) in norms.iter_mut().enumerate() {
        *norm = a.column(j).norm();
        if *norm == 0.0 || !norm.is_finite() {
            let mut null = [0.0; 3];
            null[j] = 1.0;
            return Err(vec![null]);
        }
        a.column_mut(j).scale_mut(1.0 / *norm);
    }
    let qr = a.qr();
    qr.q_tr_mul(&mut y);
    let r: Matrix3<f64> = qr.r().fixed_view::<3, 3>(0, 0).into_owned();
    let qty = Vector3::new(y[0], y[1], y[2]);
    let svd = r.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
        return Err(vec![[1.0, 1.0, 1.0]]);
    };
    let sigma = svd.singular_values;
    let largest = sigma.max();
    let small: Vec<usize> = (0..3)
        .filter(|&i| sigma[i].is_nan() || sigma[i] <= RCOND * largest)
        .collect();
    if !small.is_empty() {
        return Err(small
            .iter()
            .map(|&i| std::array::from_fn(|j| v_t[(i, j)]))
            .collect());
    }
    let mut beta_scaled = Vector3::zeros();
    let mut cov_scaled = Matrix3::zeros();
    for i in 0..3 {
        let v = v_t.row(i).transpose();
        beta_scaled += v * (u.column(i).dot(&qty) / sigma[i]);
        cov_scaled += v * v.transpose() / (sigma[i] * sigma[i]);
    }
    Ok(Solved {
        beta: std::array::from_fn(|j| beta_scaled[j] / norms[j]),
        cov_unit: Matrix3::from_fn(|j, k| cov_scaled[(j, k)] / (norms[j] * norms[k])),
        condition: largest / sigma.min(),
    })
}

fn predict(beta: &[f64; 3], p: &Point) -> f64 {
    beta[0] + beta[1] * p.msgs + beta[2] * p.bytes
}

fn residuals(points: &[Point], beta: &[f64; 3]) -> Vec<f64> {
    points.iter().map(|p| p.vs - predict(beta, p)).collect()
}

/// Median absolute deviation from the median, scaled to estimate a normal sigma.
fn mad_scale(values: &[f64]) -> f64 {
    let med = median(values.to_vec());
    median(values.iter().map(|v| (v - med).abs()).collect()) / 0.6745
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Says which parameters `points` cannot determine, and why, in the admin's terms.
fn undetermined(points: &[Point], null: &[[f64; 3]]) -> Refusal {
    let n = points.len();
    let first = points[0];
    let same_msgs = points.iter().all(|p| p.msgs == first.msgs);
    let same_bytes = points.iter().all(|p| p.bytes == first.bytes);
    let (params, why) = if same_msgs && same_bytes {
        let mean = points.iter().map(|p| p.vs).sum::<f64>() / n as f64;
        (
            PARAMS.to_vec(),
            format!(
                "all {n} passes had the same size ({} messages, {} bytes), so only their sum \
                 t00 + {}*t0 + {}*ts = {mean:.3} s is known",
                first.msgs, first.bytes, first.msgs, first.bytes
            ),
        )
    } else if same_msgs {
        (
            vec!["t0"],
            format!(
                "every pass had {} message(s), so t0 cannot be told apart from t00 (only \
                 t00 + {}*t0 is known); passes of other sizes are needed",
                first.msgs, first.msgs
            ),
        )
    } else if same_bytes {
        (
            vec!["ts"],
            format!(
                "every pass had {} bytes, so ts cannot be told apart from t00",
                first.bytes
            ),
        )
    } else if let Some(other) = points.iter().find(|p| p.msgs != first.msgs) {
        let per_msg = (other.bytes - first.bytes) / (other.msgs - first.msgs);
        let fixed = first.bytes - per_msg * first.msgs;
        let why = if fixed.abs() < 0.5 {
            format!(
                "bytes = {per_msg:.0}*msgs in every pass (every message had the same size, \
                 {per_msg:.0} bytes), so ts cannot be told apart from t0"
            )
        } else {
            format!(
                "bytes = {fixed:.0} + {per_msg:.0}*msgs in every pass, so ts cannot be told \
                 apart from t00 and t0"
            )
        };
        (vec!["ts"], why)
    } else {
        return reweighted_undetermined(null);
    };
    Refusal::Undetermined { params, why }
}

/// The fallback explanation, from the null directions of the design.
fn reweighted_undetermined(null: &[[f64; 3]]) -> Refusal {
    let params: Vec<&'static str> = (0..3)
        .filter(|&j| null.iter().any(|v| v[j].abs() >= 0.1))
        .map(|j| PARAMS[j])
        .collect();
    Refusal::Undetermined {
        params,
        why: format!(
            "the passes that carry weight leave them collinear (scaled design condition \
             number above {:.0e})",
            1.0 / RCOND
        ),
    }
}

/// Two-sided 95% quantile of Student's t with `dof` degrees of freedom: exact to 4
/// decimals from a table up to 30, then the Cornish-Fisher expansion in `1/dof` (error
/// below 1e-4 from 30 on).
pub fn t975(dof: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
        2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739,
        2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ];
    match dof {
        0 => f64::INFINITY,
        1..=30 => TABLE[dof - 1],
        _ => {
            let z: f64 = 1.959_963_985;
            let v = dof as f64;
            let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(rows: &[(f64, f64, f64)]) -> Vec<Point> {
        rows.iter()
            .map(|&(msgs, bytes, vs)| Point { msgs, bytes, vs })
            .collect()
    }

    /// Exact data from t00 = 0.2, t0 = 0.01, ts = 3e-8 on sizes that vary independently.
    fn exact() -> Vec<Point> {
        let sizes = [
            (1.0, 5e3),
            (3.0, 2e6),
            (10.0, 4e4),
            (25.0, 9e6),
            (7.0, 7e5),
            (40.0, 1e5),
            (2.0, 3e7),
        ];
        let rows: Vec<_> = sizes
            .iter()
            .map(|&(m, b)| (m, b, 0.2 + 0.01 * m + 3e-8 * b))
            .collect();
        points(&rows)
    }

    #[test]
    fn exact_data_are_recovered_to_rounding() {
        let fit = fit(&exact(), Method::LeastSquares).unwrap();
        let [t00, t0, ts] = fit.params();
        assert!((t00 - 0.2).abs() < 1e-10, "{t00}");
        assert!((t0 - 0.01).abs() < 1e-12, "{t0}");
        assert!((ts - 3e-8).abs() < 1e-18, "{ts}");
        assert!(fit.r2 > 1.0 - 1e-12 && fit.rms < 1e-10);
        assert_eq!((fit.passes, fit.dof), (7, 4));
    }

    #[test]
    fn intervals_follow_the_residual_spread() {
        // Hand-checkable: ts has no effect, msgs 1..=6 with residuals +-0.1 alternately.
        let rows: Vec<_> = (1..=6)
            .map(|m| {
                let m = f64::from(m);
                let bytes = [100.0, 900.0, 300.0, 700.0, 200.0, 800.0][m as usize - 1];
                (m, bytes, 1.0 + 0.5 * m)
            })
            .collect();
        let fit = fit(&points(&rows), Method::LeastSquares).unwrap();
        assert!(fit.se.iter().all(|&e| e < 1e-9), "{:?}", fit.se);
        let mut noisy = rows.clone();
        for (i, row) in noisy.iter_mut().enumerate() {
            row.2 += if i % 2 == 0 { 0.1 } else { -0.1 };
        }
        let fit = super::fit(&points(&noisy), Method::LeastSquares).unwrap();
        assert!(
            fit.ci95
                .iter()
                .zip(fit.se)
                .all(|(c, e)| (c - 3.1824 * e).abs() < 1e-12)
        );
        assert!(fit.rms > 0.01 && fit.rms < 0.1, "{}", fit.rms);
        assert!(fit.r2 < 1.0 && fit.r2 > 0.9, "{}", fit.r2);
    }

    #[test]
    fn refusals_name_the_undetermined_parameter() {
        let few = &exact()[..4];
        assert_eq!(
            fit(few, Method::LeastSquares),
            Err(Refusal::TooFewPasses { passes: 4 })
        );
        let same = points(&[(3.0, 9000.0, 1.0); 8]);
        let err = fit(&same, Method::LeastSquares).unwrap_err();
        assert_eq!(err.params(), ["t00", "t0", "ts"]);
        assert!(err.to_string().contains("same size"), "{err}");
        let one_msg: Vec<_> = (1..=8).map(|i| (1.0, 1000.0 * f64::from(i), 1.0)).collect();
        let err = fit(&points(&one_msg), Method::LeastSquares).unwrap_err();
        assert_eq!(err.params(), ["t0"]);
        assert!(
            err.to_string()
                .starts_with("t0 is undetermined: every pass had 1 message")
        );
        let same_bytes: Vec<_> = (1..=8).map(|i| (f64::from(i), 5000.0, 1.0)).collect();
        let err = fit(&points(&same_bytes), Method::Huber).unwrap_err();
        assert_eq!(err.params(), ["ts"]);
        let same_msg_size: Vec<_> = (1..=8)
            .map(|i| (f64::from(i), 2675.0 * f64::from(i), 0.1 * f64::from(i)))
            .collect();
        let err = fit(&points(&same_msg_size), Method::LeastSquares).unwrap_err();
        assert_eq!(err.params(), ["ts"]);
        assert!(err.to_string().contains("bytes = 2675*msgs"), "{err}");
        let affine: Vec<_> = (1..=8)
            .map(|i| (f64::from(i), 500.0 + 2000.0 * f64::from(i), 1.0))
            .collect();
        let err = fit(&points(&affine), Method::LeastSquares).unwrap_err();
        assert!(err.to_string().contains("bytes = 500 + 2000*msgs"), "{err}");
    }

    #[test]
    fn huber_down_weights_an_outlier_that_pulls_least_squares() {
        let mut data = exact();
        for (i, p) in data.iter_mut().enumerate() {
            p.vs += 0.001 * [1.0, -1.0, 0.5, -0.5, 0.2, -0.2, 0.0][i];
        }
        let mut more = data.clone();
        for p in &data {
            more.push(Point {
                msgs: p.msgs + 1.0,
                bytes: p.bytes * 1.5,
                vs: p.vs + 0.01 + 1.5e-8 * p.bytes,
            });
        }
        more[3].vs += 30.0;
        let plain = fit(&more, Method::LeastSquares).unwrap();
        let robust = fit(&more, Method::Huber).unwrap();
        assert!((plain.timing.t0 - 0.01).abs() > 0.05, "{:?}", plain.timing);
        assert!(
            (robust.timing.t00 - 0.2).abs() < 0.01,
            "{:?}",
            robust.timing
        );
        assert!(
            (robust.timing.t0 - 0.01).abs() < 0.001,
            "{:?}",
            robust.timing
        );
        let info = robust.robust.unwrap();
        assert!(info.converged && info.downweighted >= 1, "{info:?}");
    }

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(1), 12.7062);
        assert!((t975(31) - 2.0395).abs() < 1e-4, "{}", t975(31));
        assert!((t975(60) - 2.0003).abs() < 1e-4, "{}", t975(60));
        assert!((t975(120) - 1.9799).abs() < 1e-4, "{}", t975(120));
        assert!((t975(100_000) - 1.96).abs() < 1e-3);
        assert!(t975(0).is_infinite());
    }
}
