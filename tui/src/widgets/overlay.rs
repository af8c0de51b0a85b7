//! The overlay view: the current image under the chosen explanation method for the chosen
//! class (or under every method, `all`, as a grid; a segmentation model's classes beside it),
//! with the methods and the top-5 classes to cycle through, and the explanation's faithfulness
//! scores once asked for (`e`): beside the method's name in the title, a gauge under the
//! picture while they are computed.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{
    all_grid, fit, loading_line, message, pane, scores_in, scores_text, title, unless_ready, ACCENT,
};
use convlens_shared::choices::MethodSelection;

use crate::app::{App, Pane};
use crate::images::Images;
use crate::layout::scroll_for;
use crate::remote::Remote;

/// Draws the overlay pane in a frame of `screen`.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images, screen: Rect) {
    let all = app.overlay.is_all();
    let details = if all {
        let done = all_grid::details(&app.overlay.all);
        match scores_note(app) {
            Some(note) => format!("{done} · {note}"),
            None => done,
        }
    } else {
        // The room the title has for the scores: the pane less its corners, the title's name
        // and the method's name with the brackets around the scores.
        let room = (area.width as usize)
            .saturating_sub(2 + " Overlay ".len() + app.method_name().chars().count() + 4);
        details(app, room)
    };
    let inner = pane(
        buf,
        area,
        title("Overlay", details),
        app.focus == Pane::Main,
    );
    let side_width = 24.min(inner.width / 2);
    let [mut picture, side] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(side_width)]).areas(inner);
    // The `all` grid takes the whole pane when it would not fit beside the lists.
    let lists = !all || all_grid::fits(picture, screen);
    if !lists {
        picture = inner;
    }
    if app.current_image().is_none() {
        super::message(
            buf,
            picture,
            "no image",
            Style::default().fg(Color::DarkGray),
        );
    } else if all {
        all_grid::draw(buf, picture, app, images, screen);
    } else {
        // A line under the picture while the scores are computed (or why they are not).
        let scoring = !matches!(app.overlay.scores(), Remote::Idle | Remote::Ready(_));
        let [picture, line] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(u16::from(scoring))])
                .areas(picture);
        draw_scoring(buf, line, app, app.method_name());
        if let Some(e) = unless_ready(
            buf,
            picture,
            &app.overlay.explanation.state,
            app.method_name(),
            "",
            app.tick,
        ) {
            match &e.segmentation {
                // A segmentation model: its classes on the left, the explanation on the right.
                Some(segmentation) => {
                    let [left, right] = Layout::horizontal([Constraint::Fill(1); 2])
                        .spacing(1)
                        .areas(picture);
                    images.draw(buf, left, segmentation);
                    images.draw(buf, right, &e.overlay);
                }
                None => images.draw(buf, picture, &e.overlay),
            }
        }
    }
    if !lists {
        return;
    }
    let top5 = app
        .strip
        .prediction
        .state
        .ready()
        .map_or(0, |p| p.top.len().min(5)) as u16;
    let [methods, classes] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(top5 + 2)]).areas(side);
    draw_methods(buf, methods, app);
    draw_classes(buf, classes, app);
}

/// The title's details for one method: the method with its scores when asked for, the layer a
/// CAM was computed at, then the class (the layer before the class so that a narrow pane still
/// shows it).
fn details(app: &App, room: usize) -> String {
    let scores = match scores_note_in(app, room) {
        Some(note) => format!(" ({note})"),
        None => String::new(),
    };
    match app.overlay.explanation.state.ready() {
        Some(e) => {
            let layer = e
                .layer
                .as_deref()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let flat = if e.flat { " · flat map" } else { "" };
            format!(
                "{}{scores}{layer}{flat} · class {} {}",
                app.method_name(),
                e.class,
                e.label.as_deref().unwrap_or("")
            )
        }
        None => format!("{}{scores}", app.method_name()),
    }
}

/// How the scores of the explanation shown stand, in a few words for a title: `del 0.21 ins
/// 0.72 road 0.05` for one method, `scoring 40%` meanwhile, none when not asked for. With `all`, done
/// scores are in the tiles, not here.
pub fn scores_note(app: &App) -> Option<String> {
    scores_note_in(app, usize::MAX)
}

/// [`scores_note`] in at most `room` characters where it can be shortened (`d.21 i.72 r.05
/// s.28`); as it is where it cannot.
fn scores_note_in(app: &App, room: usize) -> Option<String> {
    match app.overlay.scores() {
        Remote::Idle => None,
        Remote::Ready(e) => e
            .of(app.method_name())
            .map(|f| scores_in(f, room).unwrap_or_else(|| scores_text(f))),
        Remote::Loading(p) => Some(match p.percentage {
            Some(pct) => format!("scoring {pct}%"),
            None => "scoring…".to_string(),
        }),
        Remote::Failed(_) => Some("scoring failed".to_string()),
        Remote::Unavailable(_) => Some("no scores".to_string()),
    }
}

/// The line under the picture (`all`'s second header row) while the scores of `what` are
/// computed: a spinner and a gauge; why they failed, or that the daemon cannot score.
pub fn draw_scoring(buf: &mut Buffer, area: Rect, app: &App, what: &str) {
    if area.height == 0 {
        return;
    }
    match app.overlay.scores() {
        Remote::Loading(progress) => {
            loading_line(buf, area, &format!("scoring {what}"), &progress, app.tick)
        }
        Remote::Failed(e) => message(
            buf,
            area,
            &format!("scores: {e}"),
            Style::default().fg(Color::Red),
        ),
        Remote::Unavailable(method) => message(
            buf,
            area,
            &format!("scores: not available from this daemon (it has no `{method}` method)"),
            Style::default().fg(Color::Yellow),
        ),
        Remote::Idle | Remote::Ready(_) => {}
    }
}

fn heading(buf: &mut Buffer, area: Rect, text: &str) {
    Line::from(Span::styled(
        text,
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
    ))
    .render(
        Rect::new(area.x + 1, area.y, area.width.saturating_sub(1), 1),
        buf,
    );
}

fn chosen(selected: bool) -> Style {
    if selected {
        Style::default().fg(Color::Black).bg(ACCENT)
    } else {
        Style::default().fg(Color::Gray)
    }
}

fn draw_methods(buf: &mut Buffer, area: Rect, app: &App) {
    heading(buf, area, "method  m M");
    let height = usize::from(area.height.saturating_sub(1));
    // Every method, then `all`.
    let names = MethodSelection::names();
    let first = scroll_for(app.overlay.method, height, names.len());
    for (row, name) in names.iter().enumerate().skip(first).take(height) {
        let text = fit(name, usize::from(area.width.saturating_sub(2)));
        let y = area.y + 1 + (row - first) as u16;
        Line::from(Span::styled(
            format!(" {text}"),
            chosen(row == app.overlay.method),
        ))
        .render(
            Rect::new(area.x + 1, y, area.width.saturating_sub(1), 1),
            buf,
        );
    }
}

fn draw_classes(buf: &mut Buffer, area: Rect, app: &App) {
    heading(buf, area, "class  c C");
    let Some(p) = app.strip.prediction.state.ready() else {
        return;
    };
    for (i, c) in p.top.iter().take(5).enumerate() {
        let text = format!("{:>3.0}% {}", c.prob * 100.0, c.label);
        let text = fit(&text, usize::from(area.width.saturating_sub(2)));
        let y = area.y + 1 + i as u16;
        Line::from(Span::styled(
            format!(" {text}"),
            chosen(i == app.overlay.class_rank),
        ))
        .render(
            Rect::new(area.x + 1, y, area.width.saturating_sub(1), 1),
            buf,
        );
    }
}
