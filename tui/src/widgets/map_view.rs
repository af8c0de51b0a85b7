//! The map view: the folder's t-SNE map as a braille scatter coloured by predicted class; the
//! cursor picks the nearest image, named with its class (and drawn where there is room).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points};
use ratatui::widgets::Widget;

use super::{file_name, fit, pane, title, unless_ready};
use crate::app::{App, Pane};
use crate::data::{FolderMap, MapClass, MapPoint};
use crate::images::{placeholder, Images};
use crate::remote::Remote;

/// Classes drawn in a colour of their own, the most frequent first; the rest are grey.
const PALETTE: [colorous::Color; 10] = colorous::TABLEAU10;

/// The colour of the class ranked `rank` by frequency.
pub fn class_colour(rank: Option<usize>) -> Color {
    match rank.and_then(|r| PALETTE.get(r)) {
        Some(c) => Color::Rgb(c.r, c.g, c.b),
        None => Color::DarkGray,
    }
}

/// The side panel (photo, legend) needs this much room inside the pane; below it the nearest
/// image and the legend go on two lines under the plot.
fn has_side_panel(inner: Rect) -> bool {
    inner.width >= 80 && inner.height >= 16
}

/// Draws the map pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images) {
    let details = match app.map.folder_map.state.ready() {
        Some(m) if m.skipped > 0 => format!(
            "t-SNE of {} images · {} · {} unreadable",
            m.points.len(),
            m.layer,
            m.skipped
        ),
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
    let Some(map) = unless_ready(
        buf,
        inner,
        &app.map.folder_map.state,
        "t-SNE map",
        "",
        app.tick,
    ) else {
        return;
    };
    if map.points.is_empty() {
        placeholder(buf, inner, "no readable images in the folder");
        return;
    }
    let classes = map.classes();
    let nearest = app.map.nearest().and_then(|i| map.points.get(i));
    if has_side_panel(inner) {
        let side_width = 34.min(inner.width / 3);
        let [plot, side] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(side_width)]).areas(inner);
        draw_plot(buf, plot, app, map, &classes);
        let side = Rect::new(
            side.x + 1,
            side.y,
            side.width.saturating_sub(1),
            side.height,
        );
        draw_side(buf, side, app, images, nearest, &classes);
    } else {
        let [plot, info] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(2)]).areas(inner);
        draw_plot(buf, plot, app, map, &classes);
        if let Some(point) = nearest {
            nearest_line(point, &classes, true).render(line(info, 0), buf);
        }
        legend_line(&classes, usize::from(info.width)).render(line(info, 1), buf);
    }
}

/// Row `i` of `area`.
fn line(area: Rect, i: u16) -> Rect {
    Rect::new(
        area.x,
        area.y + i,
        area.width,
        1.min(area.height.saturating_sub(i)),
    )
}

/// The frequency rank of `class` among `classes`.
fn rank_of(classes: &[MapClass], class: usize) -> Option<usize> {
    classes.iter().position(|c| c.class == class)
}

fn draw_plot(buf: &mut Buffer, plot: Rect, app: &App, map: &FolderMap, classes: &[MapClass]) {
    let (bx, by) = map.bounds();
    let cursor = (
        bx[0] + app.map.cursor.0 * (bx[1] - bx[0]),
        by[0] + app.map.cursor.1 * (by[1] - by[0]),
    );
    // One braille dot, in the map's units: each point is drawn as 2×2 dots to be seen, the
    // nearest one as a ring around it.
    let dot = (
        (bx[1] - bx[0]) / f64::from(plot.width.max(1) * 2),
        (by[1] - by[0]) / f64::from(plot.height.max(1) * 4),
    );
    let blob = |(x, y): (f64, f64), offsets: &[(f64, f64)]| -> Vec<(f64, f64)> {
        offsets
            .iter()
            .map(|(sx, sy)| (x + sx * dot.0, y + sy * dot.1))
            .collect()
    };
    const SQUARE: [(f64, f64); 4] = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)];
    const RING: [(f64, f64); 12] = [
        (-1.0, -1.0),
        (0.0, -1.0),
        (1.0, -1.0),
        (2.0, -1.0),
        (-1.0, 2.0),
        (0.0, 2.0),
        (1.0, 2.0),
        (2.0, 2.0),
        (-1.0, 0.0),
        (-1.0, 1.0),
        (2.0, 0.0),
        (2.0, 1.0),
    ];
    // One set of points per colour: the palette's classes, then every other class in grey.
    let mut groups: Vec<(Color, Vec<(f64, f64)>)> = (0..=PALETTE.len())
        .map(|r| (class_colour(Some(r)), Vec::new()))
        .collect();
    for p in &map.points {
        let rank = rank_of(classes, p.class).map_or(PALETTE.len(), |r| r.min(PALETTE.len()));
        groups[rank].1.extend(blob((p.x, p.y), &SQUARE));
    }
    let near: Vec<(f64, f64)> = app
        .map
        .nearest()
        .and_then(|i| map.points.get(i))
        .map(|p| blob((p.x, p.y), &RING))
        .unwrap_or_default();
    let (dx, dy) = ((bx[1] - bx[0]) * 0.03, (by[1] - by[0]) * 0.05);
    Canvas::default()
        .marker(Marker::Braille)
        .x_bounds(bx)
        .y_bounds(by)
        .paint(|ctx| {
            for (color, coords) in groups.iter().rev() {
                ctx.draw(&Points {
                    coords,
                    color: *color,
                });
            }
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
                color: Color::White,
            });
        })
        .render(plot, buf);
}

/// `▶ coffee.jpg · espresso 87%`, in the class's colour.
fn nearest_line(point: &MapPoint, classes: &[MapClass], hint: bool) -> Line<'static> {
    let colour = class_colour(rank_of(classes, point.class));
    let mut spans = vec![
        Span::styled("▶ ", Style::default().fg(Color::White)),
        Span::styled(
            file_name(&point.image),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" · {} {:.0}%", point.label, point.prob * 100.0),
            Style::default().fg(colour),
        ),
    ];
    if hint {
        spans.push(Span::styled(
            " · Enter: current",
            Style::default().fg(Color::DarkGray),
        ));
    }
    Line::from(spans)
}

/// `● tabby 2  ● espresso 1 …` as many as fit in `width`.
fn legend_line(classes: &[MapClass], width: usize) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0;
    for (rank, c) in classes.iter().enumerate() {
        let text = format!("{} {}  ", c.label, c.count);
        let need = 2 + text.chars().count();
        if used + need > width {
            if used < width {
                spans.push(Span::styled("…", Style::default().fg(Color::DarkGray)));
            }
            break;
        }
        used += need;
        spans.push(Span::styled(
            "● ",
            Style::default().fg(class_colour(Some(rank))),
        ));
        spans.push(Span::styled(text, Style::default().fg(Color::Gray)));
    }
    Line::from(spans)
}

fn draw_side(
    buf: &mut Buffer,
    side: Rect,
    app: &App,
    images: &mut Images,
    nearest: Option<&MapPoint>,
    classes: &[MapClass],
) {
    let width = usize::from(side.width);
    let mut y = 0;
    if let Some(point) = nearest {
        let colour = class_colour(rank_of(classes, point.class));
        Line::from(Span::styled(
            fit(&format!("▶ {}", file_name(&point.image)), width),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .render(line(side, 0), buf);
        Line::from(Span::styled(
            fit(
                &format!("{} {:.0}%", point.label, point.prob * 100.0),
                width,
            ),
            Style::default().fg(colour),
        ))
        .render(line(side, 1), buf);
        let photo_height = (side.width / 2 + 1).min(side.height.saturating_sub(8));
        let photo = Rect::new(side.x, side.y + 2, side.width, photo_height);
        match app.photos.get(&point.image) {
            Some(Remote::Ready(p)) => images.draw(buf, photo, p),
            _ => placeholder(buf, photo, "…"),
        }
        y = 3 + photo_height;
    }
    let hint_row = side.height.saturating_sub(1);
    if y < hint_row {
        Line::from(Span::styled(
            "predicted classes",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ))
        .render(line(side, y), buf);
        y += 1;
    }
    let room = usize::from(hint_row.saturating_sub(y));
    let shown = if classes.len() > room {
        room.saturating_sub(1)
    } else {
        room
    };
    for (rank, c) in classes.iter().enumerate() {
        if rank >= shown {
            let rest: usize = classes[rank..].iter().map(|c| c.count).sum();
            let text = format!("  {} more classes ({rest} images)", classes.len() - rank);
            Line::from(Span::styled(
                fit(&text, width),
                Style::default().fg(Color::DarkGray),
            ))
            .render(line(side, y), buf);
            break;
        }
        Line::from(vec![
            Span::styled("● ", Style::default().fg(class_colour(Some(rank)))),
            Span::raw(fit(&c.label, width.saturating_sub(7))),
            Span::styled(format!(" {}", c.count), Style::default().fg(Color::Gray)),
        ])
        .render(line(side, y), buf);
        y += 1;
    }
    Line::from(Span::styled(
        fit("Enter: make it current", width),
        Style::default().fg(Color::DarkGray),
    ))
    .render(line(side, hint_row), buf);
}
