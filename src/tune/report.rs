//! What `solve` prints: a table per queue (estimate and 95% interval of each parameter,
//! passes, R^2, RMS residual), one JSON object per queue and line, and the lines to paste
//! into the run settings. Numbers keep 4 significant digits; no NaN is ever printed.

use std::io::{self, Write};

use serde_json::{Value, json};

use super::samples::{PassSet, Sample};
use super::solver::{Fit, Method, PARAMS, Point, Refusal, fit};
use crate::config::QueueTiming;

/// The outcome for one queue (or `all`, the pooled fit).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFit {
    pub queue: String,
    pub passes: usize,
    pub outcome: Result<Fit, Refusal>,
}

const UNITS: [&str; 3] = ["s", "s/msg", "s/B"];

/// Fits every queue of `set`, then all of them pooled as `all`.
pub fn fit_queues(set: &PassSet, method: Method) -> Vec<QueueFit> {
    let fit_of = |queue: &str, passes: &[Sample]| {
        let points: Vec<Point> = passes
            .iter()
            .map(|p| Point {
                msgs: p.msgs as f64,
                bytes: p.bytes as f64,
                vs: p.vs,
            })
            .collect();
        QueueFit {
            queue: queue.to_string(),
            passes: points.len(),
            outcome: fit(&points, method),
        }
    };
    let mut fits: Vec<QueueFit> = set.iter().map(|(q, p)| fit_of(q, p)).collect();
    fits.push(fit_of("all", &set.all()));
    fits
}

/// `x` with 4 significant digits, as a TOML float (`0.05`, `0.005012`, `2.003e-8`).
pub fn format_value(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0.0".to_string();
    }
    let exponent = x.abs().log10().floor() as i32;
    if (-3..6).contains(&exponent) {
        let decimals = (3 - exponent).max(0) as usize;
        let text = format!("{x:.decimals$}");
        if !text.contains('.') {
            return format!("{text}.0");
        }
        // Trailing zeros say nothing; keep one digit after the point for TOML.
        let trimmed = text.trim_end_matches('0');
        match trimmed.strip_suffix('.') {
            Some(whole) => format!("{whole}.0"),
            None => trimmed.to_string(),
        }
    } else {
        let text = format!("{x:.3e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exp}")
    }
}

/// The values `--write` stores: the estimates, with negative ones (noise around a cost
/// too small to measure) as 0.
pub fn settings_timing(fit: &Fit) -> QueueTiming {
    QueueTiming {
        t00: fit.timing.t00.max(0.0),
        t0: fit.timing.t0.max(0.0),
        ts: fit.timing.ts.max(0.0),
    }
}

/// The table, then the settings lines of every fitted queue.
pub fn write_text(fits: &[QueueFit], out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<8} {:>7} {:>8} {:>9}  {:<5} {:<17} 95% confidence interval",
        "queue", "passes", "R^2", "RMS s", "param", "estimate"
    )?;
    for result in fits {
        match &result.outcome {
            Ok(fit) => {
                for (j, name) in PARAMS.iter().enumerate() {
                    let lead = if j == 0 {
                        format!(
                            "{:<8} {:>7} {:>8.4} {:>9}",
                            result.queue,
                            result.passes,
                            fit.r2,
                            format_value(fit.rms)
                        )
                    } else {
                        " ".repeat(8 + 1 + 7 + 1 + 8 + 1 + 9)
                    };
                    let (value, half) = (fit.params()[j], fit.ci95[j]);
                    writeln!(
                        out,
                        "{lead}  {name:<5} {:<17} [{}, {}]",
                        format!("{} {}", format_value(value), UNITS[j]),
                        format_value(value - half),
                        format_value(value + half)
                    )?;
                }
                if let Some(robust) = &fit.robust {
                    writeln!(
                        out,
                        "{:8} robust: {} of {} passes down-weighted (Huber, scale {} s), {} round{}{}",
                        "",
                        robust.downweighted,
                        fit.passes,
                        format_value(robust.scale),
                        robust.iterations,
                        if robust.iterations == 1 { "" } else { "s" },
                        if robust.converged {
                            ""
                        } else {
                            ", not converged"
                        }
                    )?;
                }
            }
            Err(refusal) => writeln!(
                out,
                "{:<8} {:>7}  refused: {refusal}",
                result.queue, result.passes
            )?,
        }
    }
    let lines = settings_lines(fits);
    if !lines.is_empty() {
        writeln!(
            out,
            "\n# For the run settings (`solve --write` puts them there):"
        )?;
        write!(out, "{lines}")?;
    }
    Ok(())
}

/// `[run.queue.<q>]` blocks for every fitted queue (not the pooled `all`).
pub fn settings_lines(fits: &[QueueFit]) -> String {
    let mut text = String::new();
    for result in fits.iter().filter(|r| r.queue != "all") {
        let Ok(fit) = &result.outcome else { continue };
        let stored = settings_timing(fit);
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("[run.queue.{}]\n", result.queue));
        for (name, (fitted, kept)) in PARAMS.iter().zip(
            fit.params()
                .into_iter()
                .zip([stored.t00, stored.t0, stored.ts]),
        ) {
            text.push_str(&format!("{name} = {}", format_value(kept)));
            if fitted < 0.0 {
                text.push_str(&format!("  # fitted {}", format_value(fitted)));
            }
            text.push('\n');
        }
    }
    text
}

/// One JSON object per queue and line, `all` last.
pub fn write_json(fits: &[QueueFit], out: &mut impl Write) -> io::Result<()> {
    for result in fits {
        serde_json::to_writer(&mut *out, &to_json(result))?;
        writeln!(out)?;
    }
    Ok(())
}

fn to_json(result: &QueueFit) -> Value {
    match &result.outcome {
        Ok(fit) => {
            let mut value = json!({
                "queue": result.queue,
                "passes": result.passes,
                "t00": fit.timing.t00,
                "t0": fit.timing.t0,
                "ts": fit.timing.ts,
                "r2": fit.r2,
                "rms": fit.rms,
                "dof": fit.dof,
                "condition": fit.condition,
            });
            for (j, name) in PARAMS.iter().enumerate() {
                let (v, half) = (fit.params()[j], fit.ci95[j]);
                value["se"][name] = json!(fit.se[j]);
                value["ci95"][name] = json!([v - half, v + half]);
            }
            value["robust"] = match &fit.robust {
                Some(r) => json!({
                    "iterations": r.iterations,
                    "converged": r.converged,
                    "downweighted": r.downweighted,
                    "scale": r.scale,
                }),
                None => Value::Null,
            };
            value
        }
        Err(refusal) => json!({
            "queue": result.queue,
            "passes": result.passes,
            "refused": refusal.to_string(),
            "undetermined": refusal.params(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_four_significant_digits_as_toml_floats() {
        assert_eq!(format_value(0.05), "0.05");
        assert_eq!(format_value(0.0050123), "0.005012");
        assert_eq!(format_value(2.0031e-8), "2.003e-8");
        assert_eq!(format_value(2.0e-8), "2e-8");
        assert_eq!(format_value(1234.56), "1235.0");
        assert_eq!(format_value(-0.0123456), "-0.01235");
        assert_eq!(format_value(f64::NAN), "0.0");
        for x in [0.05, 0.0050123, 2.0031e-8, 1234.56, 3.5e7] {
            let text = format!("x = {}", format_value(x));
            let back: toml::Table = toml::from_str(&text).unwrap();
            assert!(back["x"].as_float().is_some(), "{text}");
        }
    }

    #[test]
    fn text_and_json_show_fits_and_refusals_without_nan() {
        let points: Vec<Point> = (1..=8)
            .map(|i| {
                let m = f64::from(i);
                let b = [3e3, 9e5, 2e4, 4e6, 1e5, 7e5, 5e3, 2e6][i as usize - 1];
                Point {
                    msgs: m,
                    bytes: b,
                    vs: 0.01 + 0.004 * m + 2e-8 * b + 0.001 * f64::from(i % 3),
                }
            })
            .collect();
        let fits = vec![
            QueueFit {
                queue: "feed1".into(),
                passes: 8,
                outcome: fit(&points, Method::Huber),
            },
            QueueFit {
                queue: "feed2".into(),
                passes: 2,
                outcome: fit(&points[..2], Method::LeastSquares),
            },
        ];
        let mut out = Vec::new();
        write_text(&fits, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("feed1"), "{text}");
        assert!(
            text.contains("feed2          2  refused: too few passes"),
            "{text}"
        );
        assert!(text.contains("[run.queue.feed1]\nt00 = "), "{text}");
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
        let mut out = Vec::new();
        write_json(&fits, &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines[0]["t0"].as_f64().unwrap() > 0.0);
        assert_eq!(lines[0]["ci95"]["ts"].as_array().unwrap().len(), 2);
        assert_eq!(lines[1]["undetermined"], json!(["t00", "t0", "ts"]));
        assert!(lines[1].get("t0").is_none());
    }
}
