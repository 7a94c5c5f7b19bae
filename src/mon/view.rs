//! One `mon` screen drawn from a [`LiveSnapshot`]: a header (time, messages per minute,
//! messages queued), one row per queue (name, messages, bytes, one `X` per message), then
//! the last verdicts in the rows left. Pure drawing, so it is tested on a test backend.

use chrono::{Local, TimeZone};
use ratatui::Frame;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::report::live::{LiveSnapshot, Verdict};

/// Width of the message-count column.
const MSGS_WIDTH: usize = 6;
/// Width of the bytes column (`1023B`, `9.9K`, `999M`).
const BYTES_WIDTH: usize = 5;

/// What one frame shows.
#[derive(Debug, Clone, Copy)]
pub struct Screen<'a> {
    pub snapshot: &'a LiveSnapshot,
    /// Why the latest snapshot failed; the numbers shown are then the previous ones.
    pub problem: Option<&'a str>,
}

/// Draws the whole screen; rows that do not fit are left out, verdicts first.
pub fn render(frame: &mut Frame, screen: &Screen) {
    let area = frame.area();
    let lines = screen_lines(screen, usize::from(area.width), usize::from(area.height));
    frame.render_widget(Paragraph::new(lines), area);
}

fn screen_lines(screen: &Screen, width: usize, height: usize) -> Vec<Line<'static>> {
    let snapshot = screen.snapshot;
    let name_width = snapshot
        .queues
        .iter()
        .map(|q| q.queue.len())
        .max()
        .unwrap_or(0)
        .max("queue".len());
    let mut lines = vec![header(screen), column_titles(name_width)];
    for queue in &snapshot.queues {
        lines.push(queue_row(
            &queue.queue,
            queue.messages,
            queue.bytes,
            name_width,
            width,
        ));
    }
    lines.push(Line::styled(
        format!("{:-<width$}", "-- last verdicts "),
        Style::new().add_modifier(Modifier::DIM),
    ));
    if snapshot.last_verdicts.is_empty() {
        lines.push(Line::raw("(none in the work logs yet)"));
    }
    lines.extend(snapshot.last_verdicts.iter().map(verdict_line));
    lines.truncate(height);
    lines
}

fn header(screen: &Screen) -> Line<'static> {
    let snapshot = screen.snapshot;
    let bytes: u64 = snapshot.queues.iter().map(|q| q.bytes).sum();
    let mut spans = vec![
        Span::styled(" SIE mon ", Style::new().add_modifier(Modifier::REVERSED)),
        Span::raw(format!(
            " {}  {} msgs/min  {} queued ({})",
            clock(snapshot.taken),
            snapshot.per_minute,
            snapshot.total_messages(),
            human_bytes(bytes)
        )),
    ];
    match screen.problem {
        Some(problem) => spans.push(Span::styled(
            format!("  {problem}"),
            Style::new().fg(Color::Red),
        )),
        None => spans.push(Span::styled(
            "  q quits",
            Style::new().add_modifier(Modifier::DIM),
        )),
    }
    Line::from(spans)
}

fn column_titles(name_width: usize) -> Line<'static> {
    Line::styled(
        format!(
            "{:<name_width$} {:>MSGS_WIDTH$} {:>BYTES_WIDTH$} one mark per message",
            "queue", "msgs", "bytes"
        ),
        Style::new().add_modifier(Modifier::DIM),
    )
}

/// `in       12  1.5K XXXXXXXXXXXX`. When the row cannot hold one `X` per message it
/// shows as many as fit and ends with `+N`, the messages not drawn, so the Xs plus N
/// always equal the count.
fn queue_row(
    queue: &str,
    messages: usize,
    bytes: u64,
    name_width: usize,
    width: usize,
) -> Line<'static> {
    let label = format!(
        "{queue:<name_width$} {messages:>MSGS_WIDTH$} {:>BYTES_WIDTH$} ",
        human_bytes(bytes)
    );
    let room = width.saturating_sub(label.len());
    let (shown, more) = marks(messages, room);
    let mut spans = vec![
        Span::raw(label),
        Span::styled("X".repeat(shown), Style::new().fg(queue_color(queue))),
    ];
    if let Some(more) = more {
        spans.push(Span::styled(
            more,
            Style::new().add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// How many Xs fit in `room` cells for `messages`, and the `+N` marker when not all do.
/// The marker's width is reserved for the largest N possible, so it always fits.
fn marks(messages: usize, room: usize) -> (usize, Option<String>) {
    if messages <= room {
        return (messages, None);
    }
    let reserved = format!(" +{messages}").len();
    let shown = room.saturating_sub(reserved);
    (shown, Some(format!(" +{}", messages - shown)))
}

fn queue_color(queue: &str) -> Color {
    match queue {
        "out" | "good" => Color::Green,
        "virus" | "error" => Color::Red,
        "ext" | "spam" => Color::Yellow,
        "delete" | "release" => Color::Magenta,
        _ => Color::Cyan,
    }
}

fn verdict_line(verdict: &Verdict) -> Line<'static> {
    let color = match verdict.verdict.as_str() {
        "clean" => Color::Green,
        "ext" | "spam" => Color::Yellow,
        _ => Color::Red,
    };
    let detail = match (verdict.name.is_empty(), verdict.why.is_empty()) {
        (false, false) => format!("{}: {}", verdict.name, verdict.why),
        (false, true) => verdict.name.clone(),
        _ => verdict.why.clone(),
    };
    Line::from(vec![
        Span::raw(format!("{} {:<6} ", clock(verdict.at), verdict.queue)),
        Span::styled(format!("{:<11}", verdict.verdict), Style::new().fg(color)),
        Span::raw(format!(" {} {detail}", verdict.id)),
    ])
}

/// Local `HH:MM:SS` of an epoch time.
fn clock(epoch: f64) -> String {
    match Local.timestamp_millis_opt((epoch * 1000.0) as i64).single() {
        Some(when) => when.format("%H:%M:%S").to_string(),
        None => "--:--:--".to_string(),
    }
}

/// Bytes in at most five characters, in binary units like `ls -h`: `512B`, `1.5K`,
/// `15K`, `1.2M`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 9.95 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{:.0}{}", value.min(1023.0), UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::live::QueueLoad;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn snapshot(loads: &[(&str, usize, u64)], verdicts: usize) -> LiveSnapshot {
        LiveSnapshot {
            taken: 1_795_303_433.0,
            queues: loads
                .iter()
                .map(|(queue, messages, bytes)| QueueLoad {
                    queue: queue.to_string(),
                    messages: *messages,
                    bytes: *bytes,
                })
                .collect(),
            per_minute: 42,
            last_verdicts: (0..verdicts)
                .map(|n| Verdict {
                    id: format!("6ALNNrgA{n:06}"),
                    queue: "feed1".into(),
                    verdict: "virus".into(),
                    name: "Eicar-Test-Signature".into(),
                    why: "part 1 (eicar.com)".into(),
                    at: 1_795_303_400.0,
                })
                .collect(),
        }
    }

    fn draw(screen: &Screen, width: u16, height: u16) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| render(frame, screen)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    const QUEUES: [&str; 13] = [
        "in", "feed1", "feed2", "feed3", "feed4", "feed5", "out", "virus", "ext", "spam", "error",
        "delete", "release",
    ];

    #[test]
    fn fits_80x24_with_one_x_per_message() {
        let loads: Vec<(&str, usize, u64)> = QUEUES
            .iter()
            .enumerate()
            .map(|(n, q)| (*q, n, 1500 * n as u64))
            .collect();
        let snap = snapshot(&loads, 30);
        let rows = draw(
            &Screen {
                snapshot: &snap,
                problem: None,
            },
            80,
            24,
        );
        assert!(
            rows[0].contains("42 msgs/min") && rows[0].contains("78 queued"),
            "{}",
            rows[0]
        );
        for (n, queue) in QUEUES.iter().enumerate() {
            let row = &rows[n + 2];
            let fields: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(fields[0], *queue, "{row}");
            assert_eq!(fields[1], n.to_string(), "{row}");
            assert_eq!(row.matches('X').count(), n, "{row}");
        }
        assert_eq!(rows[9].split_whitespace().nth(2), Some("10K"));
        assert!(rows[15].starts_with("-- last verdicts ---"));
        // The verdicts take the rows left: 24 - header - titles - 13 queues - 1.
        let verdict_rows: Vec<&String> = rows[16..].iter().collect();
        assert_eq!(verdict_rows.len(), 8);
        assert!(verdict_rows.iter().all(|r| r.contains("virus")));
        assert!(rows[16].contains("6ALNNrgA000000 Eicar-Test-Signature: part 1"));
    }

    #[test]
    fn a_full_row_ends_with_the_messages_not_drawn() {
        let snap = snapshot(
            &[("in", 500, 1 << 20), ("feed1", 59, 0), ("release", 0, 0)],
            0,
        );
        let rows = draw(
            &Screen {
                snapshot: &snap,
                problem: None,
            },
            80,
            24,
        );
        let row = rows[2].trim_end();
        let shown = row.matches('X').count();
        let more: usize = row.rsplit_once(" +").unwrap().1.parse().unwrap();
        assert_eq!(shown + more, 500, "{row}");
        assert!(row.len() <= 80 && shown > 50, "{row}");
        assert!(row.contains(" 1.0M "), "{row}");
        // 59 is exactly the room left on an 80-column row: no marker needed.
        assert_eq!(rows[3].matches('X').count(), 59, "{}", rows[3]);
        assert!(!rows[3].contains('+'));
    }

    #[test]
    fn a_failed_snapshot_is_named_in_the_header() {
        let snap = snapshot(&[("in", 1, 10)], 0);
        let screen = Screen {
            snapshot: &snap,
            problem: Some("queues/in: Permission denied"),
        };
        let rows = draw(&screen, 80, 24);
        assert!(
            rows[0].contains("queues/in: Permission denied"),
            "{}",
            rows[0]
        );
        assert!(rows[4].starts_with("(none in the work logs yet)"));
    }

    #[test]
    fn marks_and_bytes_stay_within_their_columns() {
        assert_eq!(marks(3, 10), (3, None));
        assert_eq!(marks(11, 10), (6, Some(" +5".to_string())));
        assert_eq!(marks(5, 0), (0, Some(" +5".to_string())));
        for (bytes, shown) in [
            (0, "0B"),
            (1023, "1023B"),
            (1024, "1.0K"),
            (1536, "1.5K"),
            (10_189, "10K"),
            (1_048_575, "1023K"),
            (5 << 30, "5.0G"),
        ] {
            assert_eq!(human_bytes(bytes), shown);
            assert!(shown.len() <= BYTES_WIDTH);
        }
    }
}
