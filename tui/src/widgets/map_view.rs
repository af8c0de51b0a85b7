//! The map view: the folder's t-SNE map as a braille scatter; the cursor picks the nearest
//! image, shown beside it.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points};
use ratatui::widgets::Widget;

use super::{file_name, fit, pane, title, unless_ready};
use crate::app::{App, Pane};
use crate::images::{placeholder, Images};
use crate::remote::Remote;

/// Draws the map pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images) {
    let details = match app.map.state.ready() {
        Some(m) => format!("t-SNE of {} images · {}", m.points.len(), m.layer),
        None => "t-SNE of the folder".into(),
    };
    let inner = pane(buf, area, title("Map", details), app.focus == Pane::Main);
    if app.image_list().is_empty() {
        super::message(
            buf,
            inner,
            "no images to map",
            Style::default().fg(Color::DarkGray),
        );
        return;
    }
    let Some(map) = unless_ready(buf, inner, &app.map.state, "t-SNE map", "", app.tick) else {
        return;
    };
    let side_width = 24.min(inner.width / 3);
    let [plot, side] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(side_width)]).areas(inner);
    let (bx, by) = map.bounds();
    let cursor = (
        bx[0] + app.map_cursor.0 * (bx[1] - bx[0]),
        by[0] + app.map_cursor.1 * (by[1] - by[0]),
    );
    let nearest = app.map_nearest();
    let coords: Vec<(f64, f64)> = map.points.iter().map(|p| (p.x, p.y)).collect();
    let near: Vec<(f64, f64)> = nearest.map(|i| coords[i]).into_iter().collect();
    let (dx, dy) = ((bx[1] - bx[0]) * 0.03, (by[1] - by[0]) * 0.05);
    Canvas::default()
        .marker(Marker::Braille)
        .x_bounds(bx)
        .y_bounds(by)
        .paint(|ctx| {
            ctx.draw(&Points {
                coords: &coords,
                color: Color::Gray,
            });
            ctx.layer();
            for (x1, y1, x2, y2) in [
                (cursor.0 - dx, cursor.1, cursor.0 + dx, cursor.1),
                (cursor.0, cursor.1 - dy, cursor.0, cursor.1 + dy),
            ] {
                ctx.draw(&CanvasLine {
                    x1,
                    y1,
                    x2,
                    y2,
                    color: Color::Yellow,
                });
            }
            ctx.layer();
            ctx.draw(&Points {
                coords: &near,
                color: Color::Red,
            });
        })
        .render(plot, buf);

    let Some(point) = nearest.and_then(|i| map.points.get(i)) else {
        return;
    };
    let name = Rect::new(side.x + 1, side.y, side.width.saturating_sub(1), 1);
    Line::from(Span::styled(
        fit(&file_name(&point.image), usize::from(name.width)),
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    ))
    .render(name, buf);
    let photo = Rect::new(
        side.x + 1,
        side.y + 1,
        side.width.saturating_sub(1),
        side.height.saturating_sub(2).min(side.width / 2 + 1),
    );
    match app.photos.get(&point.image) {
        Some(Remote::Ready(p)) => images.draw(buf, photo, p),
        _ => placeholder(buf, photo, "…"),
    }
    let hint = Rect::new(
        side.x + 1,
        photo.y + photo.height,
        side.width.saturating_sub(1),
        1,
    );
    Line::from(Span::styled(
        "Enter: make current",
        Style::default().fg(Color::DarkGray),
    ))
    .render(hint, buf);
}
