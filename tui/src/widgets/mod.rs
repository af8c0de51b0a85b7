//! The panes, one file each, and what they share: the pane frame, the spinner, and how a piece
//! of remote data that is not there yet is shown.

pub mod all_grid;
pub mod filters_view;
pub mod header;
pub mod help;
pub mod image_strip;
pub mod inspector;
pub mod layer_tree;
pub mod map_view;
pub mod overlay;
pub mod status_line;
pub mod timeline_view;
pub mod unit_grid;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, LineGauge, Paragraph, Widget, Wrap};

use crate::data::Faithfulness;
use crate::remote::{Progress, Remote};

/// The accent of the focused pane and of cursors.
pub const ACCENT: Color = Color::Cyan;

/// The spinner's frames.
const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// The spinner frame at `tick`.
pub fn spinner(tick: u64) -> &'static str {
    SPINNER[(tick % SPINNER.len() as u64) as usize]
}

/// A pane's frame with its title, drawn; returns the inside.
pub fn pane(buf: &mut Buffer, area: Rect, title: Line<'_>, focused: bool) -> Rect {
    let color = if focused { ACCENT } else { Color::DarkGray };
    let block = Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(Style::default().fg(color))
        .title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// A title: bold name, then grey details.
pub fn title<'a>(name: &'a str, details: String) -> Line<'a> {
    let mut spans = vec![Span::styled(
        format!(" {name} "),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if !details.is_empty() {
        spans.push(Span::styled(
            format!("{details} "),
            Style::default().fg(Color::Gray),
        ));
    }
    Line::from(spans)
}

/// Draws `remote` when it is not ready (spinner and gauge, error, not offered) and returns
/// the data when it is. `what` names the data; `idle` is shown before anything was asked.
pub fn unless_ready<'r, T>(
    buf: &mut Buffer,
    area: Rect,
    remote: &'r Remote<T>,
    what: &str,
    idle: &str,
    tick: u64,
) -> Option<&'r T> {
    match remote {
        Remote::Ready(t) => return Some(t),
        Remote::Idle => message(buf, area, idle, Style::default().fg(Color::DarkGray)),
        Remote::Loading(progress) => loading(buf, area, what, progress, tick),
        Remote::Failed(e) => message(
            buf,
            area,
            &format!("{what}: {e}"),
            Style::default().fg(Color::Red),
        ),
        Remote::Unavailable(method) => message(
            buf,
            area,
            &format!("{what}: not available from this daemon (it has no `{method}` method)"),
            Style::default().fg(Color::Yellow),
        ),
    }
    None
}

/// A spinner with what is being computed, and a gauge when the daemon reports a percentage.
pub fn loading(buf: &mut Buffer, area: Rect, what: &str, progress: &Progress, tick: u64) {
    let text = match &progress.message {
        Some(m) => format!("{} {what}: {m}", spinner(tick)),
        None => format!("{} {what}…", spinner(tick)),
    };
    message(buf, area, &text, Style::default().fg(Color::Gray));
    if let Some(pct) = progress.percentage {
        if area.height >= 2 {
            let gauge_area = Rect::new(area.x, area.y + 1, area.width.min(40), 1);
            LineGauge::default()
                .ratio(f64::from(pct.min(100)) / 100.0)
                .filled_style(Style::default().fg(ACCENT))
                .render(gauge_area, buf);
        }
    }
}

/// What is being computed on one line (`area`'s first row): a spinner and what, then a gauge
/// filling the rest of the line when the daemon reports a percentage.
pub fn loading_line(buf: &mut Buffer, area: Rect, what: &str, progress: &Progress, tick: u64) {
    let row = Rect::new(area.x, area.y, area.width.min(80), area.height.min(1));
    // The daemon's message where it fits with some gauge, else only what.
    let room = usize::from(row.width).saturating_sub(6);
    let pct = progress.percentage.map(|p| p.min(100));
    let with = |message: Option<&str>| {
        let mut text = format!("{} {what}", spinner(tick));
        if let Some(m) = message {
            text.push_str(&format!(": {m}"));
        }
        match pct {
            Some(p) => text.push_str(&format!(" {p}%")),
            None => text.push('…'),
        }
        text
    };
    let text = match progress.message.as_deref().map(|m| with(Some(m))) {
        Some(text) if text.chars().count() <= room => text,
        _ => with(None),
    };
    match pct {
        Some(pct) => LineGauge::default()
            .label(Span::styled(text, Style::default().fg(Color::Gray)))
            .ratio(f64::from(pct.min(100)) / 100.0)
            .filled_style(Style::default().fg(ACCENT))
            .render(row, buf),
        None => message(buf, row, &text, Style::default().fg(Color::Gray)),
    }
}

/// A method's faithfulness scores as the overlay names them: `del 0.21 ins 0.72 road 0.05
/// rand 0.28` (a metric not scored left out).
pub fn scores_text(f: &Faithfulness) -> String {
    let parts: Vec<String> = metrics(f)
        .map(|(name, _, v)| format!("{name} {v:.2}"))
        .collect();
    parts.join(" ")
}

/// The scores in at most `width` characters: `del 0.21 ins 0.72 road 0.05`, else
/// `d.21 i.72 r.05`, else none.
pub fn scores_in(f: &Faithfulness, width: usize) -> Option<String> {
    let whole = scores_text(f);
    if whole.chars().count() <= width {
        return Some(whole);
    }
    let parts: Vec<String> = metrics(f)
        .map(|(_, short, v)| format!("{short}{}", short_area(v)))
        .collect();
    let brief = parts.join(" ");
    (brief.chars().count() <= width).then_some(brief)
}

/// The scores one metric a line, each in at most `width` characters (`del 0.21`, else
/// `d.21`); none when one does not fit.
pub fn scores_stacked(f: &Faithfulness, width: usize) -> Option<Vec<String>> {
    metrics(f)
        .map(|(name, short, v)| {
            [
                format!("{name} {v:.2}"),
                format!("{short}{}", short_area(v)),
            ]
            .into_iter()
            .find(|t| t.chars().count() <= width)
        })
        .collect()
}

/// The metrics scored: long name, short name, value.
fn metrics(f: &Faithfulness) -> impl Iterator<Item = (&'static str, &'static str, f32)> {
    [
        ("del", "d", f.deletion),
        ("ins", "i", f.insertion),
        ("road", "r", f.road),
        ("rand", "s", f.randomization),
    ]
    .into_iter()
    .filter_map(|(name, short, v)| v.map(|v| (name, short, v)))
}

/// A score in few characters: `0.21` → `.21`, `-0.03` → `-.03`.
fn short_area(v: f32) -> String {
    let s = format!("{v:.2}");
    if let Some(rest) = s.strip_prefix("-0") {
        return format!("-{rest}");
    }
    match s.strip_prefix('0') {
        Some(rest) => rest.to_string(),
        None => s,
    }
}

/// Wrapped text at the top of `area`.
pub fn message(buf: &mut Buffer, area: Rect, text: &str, style: Style) {
    Paragraph::new(text.to_string())
        .style(style)
        .wrap(Wrap { trim: true })
        .render(area, buf);
}

/// A number in at most `width` characters (`3.21`, `12.3`, `-0.05`, `1.2e4`).
pub fn compact(v: f32, width: usize) -> String {
    let a = v.abs();
    let s = if a >= 99_999.5 {
        format!("{v:.0e}")
    } else if a >= 999.5 {
        format!("{v:.0}")
    } else if a >= 9.995 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.chars().count() > width {
        format!("{v:.0}")
    } else {
        s
    }
}

/// A parameter count in a few characters (`864`, `12.3k`, `2.96M`).
pub fn count(n: usize) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// The file name of `path` (the whole path when it has none).
pub fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `s` cut to `width` characters with an ellipsis.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fit_their_width() {
        assert_eq!(compact(3.214, 6), "3.21");
        assert_eq!(compact(12.34, 6), "12.3");
        assert_eq!(compact(-0.05, 6), "-0.05");
        assert_eq!(compact(1234.0, 6), "1234");
        assert_eq!(count(864), "864");
        assert_eq!(count(2_957_920), "2.96M");
        assert_eq!(fit("abcdef", 4), "abc…");
    }

    #[test]
    fn scores_shorten_to_fit() {
        let f = Faithfulness {
            deletion: Some(0.2149),
            insertion: Some(0.72),
            road: None,
            randomization: None,
        };
        assert_eq!(scores_text(&f), "del 0.21 ins 0.72");
        assert_eq!(scores_in(&f, 17).as_deref(), Some("del 0.21 ins 0.72"));
        assert_eq!(scores_in(&f, 14).as_deref(), Some("d.21 i.72"));
        assert_eq!(scores_in(&f, 8), None);
        let one = Faithfulness {
            deletion: None,
            insertion: Some(1.0),
            road: None,
            randomization: None,
        };
        assert_eq!(scores_text(&one), "ins 1.00");
        assert_eq!(scores_in(&one, 6).as_deref(), Some("i1.00"));
        assert_eq!(
            scores_stacked(&f, 6),
            Some(vec!["d.21".to_string(), "i.72".to_string()])
        );
        assert_eq!(
            scores_stacked(&f, 8),
            Some(vec!["del 0.21".to_string(), "ins 0.72".to_string()])
        );
        assert_eq!(scores_stacked(&f, 3), None);
        // ROAD can be negative: its short form keeps the sign.
        let all = Faithfulness {
            road: Some(-0.031),
            ..f
        };
        assert_eq!(scores_text(&all), "del 0.21 ins 0.72 road -0.03");
        assert_eq!(scores_in(&all, 16).as_deref(), Some("d.21 i.72 r-.03"));
        // One method's scores also carry the randomization check.
        let checked = Faithfulness {
            randomization: Some(0.284),
            ..all
        };
        assert_eq!(
            scores_text(&checked),
            "del 0.21 ins 0.72 road -0.03 rand 0.28"
        );
        assert_eq!(
            scores_in(&checked, 20).as_deref(),
            Some("d.21 i.72 r-.03 s.28")
        );
    }
}
