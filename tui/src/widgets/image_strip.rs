//! The image strip: the watched folder's files, the current one drawn with its top-5 classes.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{file_name, fit, pane, title, unless_ready, ACCENT};
use crate::app::{App, Pane};
use crate::images::{placeholder, Images};
use crate::layout::{is_large, scroll_for};
use crate::remote::Remote;

/// Draws the strip.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images, screen: Rect) {
    let list = app.image_list();
    let details = if list.is_empty() {
        app.folder.display().to_string()
    } else {
        format!(
            "{}/{} · {}",
            app.strip.current + 1,
            list.len(),
            app.folder.display()
        )
    };
    let inner = pane(
        buf,
        area,
        title("Images", fit(&details, 30)),
        app.focus == Pane::Images,
    );
    let Some(list) = unless_ready(buf, inner, &app.strip.images.state, "images", "", app.tick)
    else {
        return;
    };
    let Some(current) = list.get(app.strip.current) else {
        placeholder(buf, inner, "no images in the folder yet");
        return;
    };
    let large = is_large(screen);
    let (photo_area, text_area, list_area) = if large {
        let [photo, top, names] = Layout::vertical([
            Constraint::Length(inner.height / 2),
            Constraint::Length(6),
            Constraint::Min(0),
        ])
        .areas(inner);
        (photo, top, Some(names))
    } else {
        let [name, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        let [photo, top] =
            Layout::horizontal([Constraint::Length(12), Constraint::Min(0)]).areas(rest);
        let arrows = format!("◂ {} ▸", file_name(current));
        Line::from(Span::styled(
            fit(&arrows, usize::from(name.width)),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .render(name, buf);
        (
            photo,
            Rect::new(top.x + 1, top.y, top.width.saturating_sub(1), top.height),
            None,
        )
    };
    match app.photos.get(current) {
        Some(Remote::Ready(picture)) => images.draw(buf, photo_area, picture),
        Some(Remote::Failed(e)) => {
            placeholder(buf, photo_area, &fit(e, usize::from(photo_area.width)))
        }
        _ => placeholder(buf, photo_area, "…"),
    }
    draw_top5(buf, text_area, app);
    if let Some(names) = list_area {
        draw_names(buf, names, app, list);
    }
}

fn draw_top5(buf: &mut Buffer, area: Rect, app: &App) {
    let Some(p) = unless_ready(
        buf,
        area,
        &app.strip.prediction.state,
        "top-5",
        "",
        app.tick,
    ) else {
        return;
    };
    let width = usize::from(area.width);
    for (i, c) in p.top.iter().enumerate().take(usize::from(area.height)) {
        let pct = format!("{:>3.0}% ", c.prob * 100.0);
        let style = if i == 0 {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        Line::from(vec![
            Span::styled(pct, Style::default().fg(Color::Green)),
            Span::styled(fit(&c.label, width.saturating_sub(5)), style),
        ])
        .render(Rect::new(area.x, area.y + i as u16, area.width, 1), buf);
    }
}

fn draw_names(buf: &mut Buffer, area: Rect, app: &App, list: &[std::path::PathBuf]) {
    let height = usize::from(area.height);
    let first = scroll_for(app.strip.current, height, list.len());
    for (row, path) in list.iter().enumerate().skip(first).take(height) {
        let selected = row == app.strip.current;
        let style = if selected {
            Style::default().fg(ACCENT).add_modifier(Modifier::BOLD)
        } else {
            Style::default().fg(Color::Gray)
        };
        let marker = if selected { "▶ " } else { "  " };
        let text = format!("{marker}{}", file_name(path));
        Line::from(Span::styled(fit(&text, usize::from(area.width)), style)).render(
            Rect::new(area.x, area.y + (row - first) as u16, area.width, 1),
            buf,
        );
    }
}
