//! The summary page's charts as inline SVG written by hand, like the simulator's
//! (`tune::chart`): a bar chart and a scatter plot on linear axes with round ticks.
//! Every bar is one `<rect class="bar">` and every point one `<circle class="point">`,
//! each with a `<title>` tooltip, so tests can count them against the data.

use std::fmt::Write;

pub const WIDTH: f64 = 560.0;
pub const HEIGHT: f64 = 320.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 52.0;

/// One bar: its label under the axis (may be empty), value, fill and tooltip.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub colour: &'static str,
    pub tip: String,
}

/// One point of a scatter plot with its tooltip.
#[derive(Debug, Clone)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub tip: String,
}

/// A tick step of 1, 2 or 5 times a power of ten giving about five ticks up to `max`.
fn tick_step(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    if max >= 1.0 { step.max(1.0) } else { step }
}

/// The top of the axis: `max` rounded up to a whole tick.
fn axis_top(max: f64) -> (f64, f64) {
    let step = tick_step(max);
    let top = (max / step).ceil().max(1.0) * step;
    (top, step)
}

/// `1.5k`, `12M`: short tick labels.
pub fn short_number(value: f64) -> String {
    let (scaled, unit) = match value.abs() {
        v if v >= 1e9 => (value / 1e9, "G"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    // Small ticks (pass times of milliseconds) keep two significant digits, so
    // neighbouring ticks never print alike.
    let decimals = match scaled.abs() {
        v if v > 0.0 && v < 1.0 => ((-v.log10()).ceil() as usize + 1).clamp(2, 9),
        _ => 2,
    };
    let text = format!("{scaled:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn open_svg(s: &mut String, title: &str, class: &str) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="{class}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
}

/// Horizontal grid lines and labels of a linear y axis up to `top`.
fn y_axis(s: &mut String, top: f64, step: f64, label: &str) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let py = TOP + plot_h - tick / top * plot_h;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            short_number(tick)
        );
        tick += step;
    }
    let _ = writeln!(
        s,
        r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(label)
    );
}

fn frame(s: &mut String) {
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#333"/>"##,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
}

fn empty_note(s: &mut String) {
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#777">no data in this period</text>"##,
        WIDTH / 2.0,
        HEIGHT / 2.0
    );
}

/// A bar chart, bars left to right; labels are thinned so they do not overlap.
pub fn bars(title: &str, y_label: &str, bars: &[Bar], class: &str) -> String {
    let mut s = String::new();
    open_svg(&mut s, title, class);
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max);
    let (top, step) = axis_top(max);
    y_axis(&mut s, top, step, y_label);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    if bars.is_empty() {
        empty_note(&mut s);
    }
    let slot = plot_w / bars.len().max(1) as f64;
    let width = (slot * 0.8).max(1.0);
    let label_every = (bars.len() as f64 * 42.0 / plot_w).ceil().max(1.0) as usize;
    for (i, bar) in bars.iter().enumerate() {
        let height = bar.value.max(0.0) / top * plot_h;
        let x = LEFT + slot * i as f64 + (slot - width) / 2.0;
        let _ = writeln!(
            s,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{width:.1}" height="{height:.1}" fill="{}"><title>{}</title></rect>"#,
            TOP + plot_h - height,
            bar.colour,
            escape(&bar.tip)
        );
        if i % label_every == 0 && !bar.label.is_empty() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + width / 2.0,
                TOP + plot_h + 16.0,
                escape(&bar.label)
            );
        }
    }
    frame(&mut s);
    s.push_str("</svg>\n");
    s
}

/// A scatter plot of `points` in one colour, both axes from zero.
pub fn scatter(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[Point],
    colour: &str,
    class: &str,
) -> String {
    let mut s = String::new();
    open_svg(&mut s, title, class);
    let (y_top, y_step) = axis_top(points.iter().map(|p| p.y).fold(0.0, f64::max));
    y_axis(&mut s, y_top, y_step, y_label);
    let (x_top, x_step) = axis_top(points.iter().map(|p| p.x).fold(0.0, f64::max));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut tick = 0.0;
    while tick <= x_top + x_step / 2.0 {
        let px = LEFT + tick / x_top * plot_w;
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0,
            short_number(tick)
        );
        tick += x_step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0,
        escape(x_label)
    );
    if points.is_empty() {
        empty_note(&mut s);
    }
    for p in points {
        let _ = writeln!(
            s,
            r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"><title>{}</title></circle>"#,
            LEFT + p.x.max(0.0) / x_top * plot_w,
            TOP + plot_h - p.y.max(0.0) / y_top * plot_h,
            escape(&p.tip)
        );
    }
    frame(&mut s);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(axis_top(7.0), (8.0, 2.0));
        assert_eq!(axis_top(0.0), (1.0, 1.0));
        assert_eq!(axis_top(100_000.0), (100_000.0, 20_000.0));
        assert_eq!(axis_top(120_000.0), (150_000.0, 50_000.0));
        let (top, step) = axis_top(0.034);
        assert!((step - 0.01).abs() < 1e-12 && (top - 0.04).abs() < 1e-12);
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(2_000_000.0), "2M");
        assert_eq!(short_number(0.25), "0.25");
        let ticks: Vec<String> = [0.0, 0.0025, 0.005, 0.0075, 0.01, 0.015]
            .map(short_number)
            .to_vec();
        assert_eq!(ticks, ["0", "0.0025", "0.005", "0.0075", "0.01", "0.015"]);
    }

    #[test]
    fn one_element_per_datum() {
        let data: Vec<Bar> = (0..30)
            .map(|i| Bar {
                label: format!("{i:02}:00"),
                value: f64::from(i),
                colour: "#1f77b4",
                tip: format!("<{i}>"),
            })
            .collect();
        let svg = bars("per hour", "messages", &data, "hourly");
        assert_eq!(svg.matches(r#"class="bar""#).count(), 30);
        assert!(svg.contains("&lt;29&gt;") && !svg.contains("NaN"));
        let points: Vec<Point> = (1..=7)
            .map(|i| Point {
                x: f64::from(i) * 1000.0,
                y: f64::from(i) * 0.01,
                tip: String::new(),
            })
            .collect();
        let svg = scatter("t", "bytes", "s", &points, "#ff7f0e", "passes");
        assert_eq!(svg.matches(r#"class="point""#).count(), 7);
        assert!(scatter("t", "x", "y", &[], "#000", "c").contains("no data"));
    }
}
