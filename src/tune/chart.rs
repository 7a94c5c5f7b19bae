//! The simulator's chart: latency against message size, one colour per feed policy, p99
//! as a solid line and p50 dashed, over size bins of a quarter decade; both axes are
//! logarithmic. Plain SVG written by hand (no plotting crate).

use std::fmt::Write;

use super::simulate::{Done, Outcome, percentile, policy_name};
use crate::report::rotate::chart::escape;

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 60.0;
const BINS_PER_DECADE: f64 = 4.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
/// Latencies below this (seconds) are drawn at it, so the log axis has a floor.
const FLOOR: f64 = 1e-3;

/// (geometric middle of the bin in bytes, p50, p99, messages) per non-empty bin.
fn bins(done: &[Done], first_decade: f64) -> Vec<(f64, f64, f64, usize)> {
    let mut by_bin: Vec<Vec<f64>> = Vec::new();
    for d in done {
        let at = ((d.bytes.max(1) as f64).log10() - first_decade) * BINS_PER_DECADE;
        let bin = at.floor().max(0.0) as usize;
        if by_bin.len() <= bin {
            by_bin.resize(bin + 1, Vec::new());
        }
        by_bin[bin].push(d.latency().max(FLOOR));
    }
    by_bin
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(bin, mut v)| {
            v.sort_by(f64::total_cmp);
            let middle = 10f64.powf(first_decade + (bin as f64 + 0.5) / BINS_PER_DECADE);
            (middle, percentile(&v, 0.5), percentile(&v, 0.99), v.len())
        })
        .collect()
}

fn size_label(bytes: f64) -> String {
    match bytes {
        b if b >= 1e9 => format!("{} GB", b / 1e9),
        b if b >= 1e6 => format!("{} MB", b / 1e6),
        b if b >= 1e3 => format!("{} KB", b / 1e3),
        b => format!("{b} B"),
    }
}

/// The chart of `outcomes` as an SVG document; `title` goes on top.
pub fn svg(outcomes: &[Outcome], title: &str) -> String {
    let all = outcomes.iter().flat_map(|o| o.done.iter());
    let (mut small, mut big, mut fast, mut slow) = (f64::MAX, 1.0f64, f64::MAX, FLOOR);
    for d in all {
        small = small.min(d.bytes.max(1) as f64);
        big = big.max(d.bytes.max(1) as f64);
        fast = fast.min(d.latency().max(FLOOR));
        slow = slow.max(d.latency().max(FLOOR));
    }
    if small > big {
        (small, fast) = (1.0, FLOOR);
    }
    let (x0, x1) = (
        small.log10().floor(),
        big.log10().ceil().max(small.log10().floor() + 1.0),
    );
    let (y0, y1) = (
        fast.log10().floor(),
        slow.log10().ceil().max(fast.log10().floor() + 1.0),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |bytes: f64| LEFT + (bytes.log10() - x0) / (x1 - x0) * plot_w;
    let y = |secs: f64| TOP + plot_h - (secs.max(FLOOR).log10() - y0) / (y1 - y0) * plot_h;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    // The title is "what; settings": one line each, so it fits the width.
    for (i, line) in title.splitn(2, "; ").enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="{}">{}</text>"#,
            WIDTH / 2.0,
            18 + 16 * i,
            if i == 0 { 14 } else { 11 },
            escape(line)
        );
    }
    for decade in (x0 as i32)..=(x1 as i32) {
        let px = x(10f64.powi(decade));
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            size_label(10f64.powi(decade))
        );
    }
    for decade in (y0 as i32)..=(y1 as i32) {
        let py = y(10f64.powi(decade));
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{} s</text>"##,
            LEFT + plot_w,
            LEFT - 8.0,
            py + 4.0,
            10f64.powi(decade)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">message size (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">latency, arrival to scanned (log scale)</text>"#,
        TOP + plot_h / 2.0
    );
    for (i, outcome) in outcomes.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points = bins(&outcome.done, x0);
        for (dash, pick) in [("", 2usize), (r#" stroke-dasharray="6 4""#, 1)] {
            let line: Vec<String> = points
                .iter()
                .map(|p| {
                    let v = if pick == 2 { p.2 } else { p.1 };
                    format!("{:.1},{:.1}", x(p.0), y(v))
                })
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                line.join(" ")
            );
        }
        for p in &points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}: {} msgs around {}, p50 {:.3} s, p99 {:.3} s</title></circle>"#,
                x(p.0),
                y(p.2),
                policy_name(outcome.policy),
                p.3,
                size_label(p.0.round()),
                p.1,
                p.2
            );
        }
        let ly = TOP + 18.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{} (p99 solid, p50 dashed)</text>"#,
            LEFT + 12.0,
            LEFT + 40.0,
            LEFT + 46.0,
            ly + 4.0,
            policy_name(outcome.policy)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FeedPolicy;

    #[test]
    fn the_chart_is_svg_with_a_line_per_policy_and_percentile() {
        let done = |bytes, latency| Done {
            bytes,
            arrived: 0.0,
            done: latency,
            queue: 0,
        };
        let outcomes = [
            Outcome {
                policy: FeedPolicy::Bytes,
                done: vec![done(2000, 1.5), done(30_000, 2.0), done(3_000_000, 9.0)],
                refused: 0,
                passes: 3,
            },
            Outcome {
                policy: FeedPolicy::Eta,
                done: vec![done(2000, 0.5), done(30_000, 0.0), done(3_000_000, 8.0)],
                refused: 0,
                passes: 3,
            },
        ];
        let text = svg(&outcomes, "a <test>");
        assert!(text.starts_with("<svg ") && text.ends_with("</svg>\n"));
        assert_eq!(text.matches("<polyline").count(), 4);
        assert_eq!(text.matches("<circle").count(), 6);
        assert!(text.contains("a &lt;test&gt;") && text.contains("1 MB"));
        assert!(!text.contains("NaN") && !text.contains("inf"));
    }
}
