//! The unit inspector: the unit's statistics over the image and the folder, its deconvnet
//! reconstruction, its activation-maximization image and its top images in the folder.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{compact, file_name, fit, pane, title, unless_ready};
use crate::app::{App, Pane};
use crate::data::{LayerOverFolder, Picture, UnitOverFolder, UnitStats};
use crate::images::{placeholder, Images};
use crate::layout::is_large;
use crate::remote::Remote;
use crate::request::Feature;

/// Draws the inspector pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images, screen: Rect) {
    let key = app.unit_key();
    let details = key.as_ref().map_or(String::new(), |(layer, unit, _)| {
        format!("unit {unit} · {layer}")
    });
    let inner = pane(
        buf,
        area,
        title("Inspector", details),
        app.focus == Pane::Inspector,
    );
    let Some(key) = key else {
        super::message(
            buf,
            inner,
            "no unit yet",
            Style::default().fg(Color::DarkGray),
        );
        return;
    };
    let Some(acts) = unless_ready(
        buf,
        inner,
        &app.units.activations.state,
        "activations",
        "",
        app.tick,
    ) else {
        return;
    };
    let Some(image_stats) = acts.stats.get(key.1) else {
        return;
    };
    let large = is_large(screen);
    let [stats_area, pictures_area, top_area] = Layout::vertical([
        Constraint::Length(if large { 4 } else { 3 }),
        Constraint::Length(if large {
            inner.height / 2
        } else {
            inner.height.saturating_sub(4)
        }),
        Constraint::Min(1),
    ])
    .areas(inner);

    draw_stats(buf, stats_area, image_stats, app);

    let [left, right] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(pictures_area);
    picture(
        buf,
        left,
        "deconvnet",
        &app.inspector.deconv.state,
        images,
        app.tick,
    );
    let preset = app.inspector.maximize_preset_name();
    let maximize_key = (key.clone(), app.inspector.maximize_preset);
    let maximize_title = format!("{preset} maximization");
    match app.inspector.maximized.get(&maximize_key) {
        Some(p) => picture(
            buf,
            right,
            &maximize_title,
            &Remote::Ready(p.clone()),
            images,
            app.tick,
        ),
        None if app.inspector.maximize.is_for(&maximize_key) => picture(
            buf,
            right,
            &maximize_title,
            &app.inspector.maximize.state,
            images,
            app.tick,
        ),
        None => {
            caption(buf, right, &maximize_title);
            let body = Rect::new(
                right.x,
                right.y + 1,
                right.width,
                right.height.saturating_sub(1),
            );
            match app.offers(Feature::Maximize) {
                Ok(()) => super::message(
                    buf,
                    body,
                    "press a to compute, A for another preset",
                    Style::default().fg(Color::DarkGray),
                ),
                Err(method) => super::message(
                    buf,
                    body,
                    &format!("not available from this daemon (it has no `{method}` method)"),
                    Style::default().fg(Color::Yellow),
                ),
            }
        }
    }
    draw_top(buf, top_area, app, images, large);
}

fn draw_stats(buf: &mut Buffer, area: Rect, image: &UnitStats, app: &App) {
    let head = Style::default().fg(Color::DarkGray);
    let row = |name: &str, s: &UnitStats| {
        format!(
            "{name:<7}{:>8}{:>8}{:>7.0}%",
            compact(s.mean, 7),
            compact(s.max, 7),
            s.frac_active * 100.0
        )
    };
    let line = |i: u16| Rect::new(area.x, area.y + i, area.width, 1);
    Line::from(Span::styled(
        format!("{:<7}{:>8}{:>8}{:>8}", "", "mean", "max", "active"),
        head,
    ))
    .render(line(0), buf);
    Line::from(vec![
        Span::raw(row("image", image)),
        Span::styled(" of positions", head),
    ])
    .render(line(1), buf);
    let third = line(2);
    let (Some(unit), Some(layer)) = (
        app.unit_over_folder(),
        app.inspector.folder_top.state.ready(),
    ) else {
        Line::from("folder").render(Rect::new(third.x, third.y, 7, 1), buf);
        let rest = Rect::new(third.x + 7, third.y, third.width.saturating_sub(7), 1);
        let _ = unless_ready(
            buf,
            rest,
            &app.inspector.folder_top.state,
            "folder pass",
            "",
            app.tick,
        );
        return;
    };
    folder_row(unit, layer.images, row("folder", &unit.stats)).render(third, buf);
    if area.height >= 4 {
        layer_summary(layer).render(line(3), buf);
    }
}

/// The unit over the folder: its numbers, over how many images, and whether it is dead.
fn folder_row(unit: &UnitOverFolder, images: usize, numbers: String) -> Line<'static> {
    let head = Style::default().fg(Color::DarkGray);
    if unit.dead {
        Line::from(vec![
            Span::raw(numbers),
            Span::styled(format!(" of {images} · "), head),
            Span::styled(
                "dead",
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
        ])
    } else {
        Line::from(vec![
            Span::raw(numbers),
            Span::styled(format!(" of {images} images"), head),
        ])
    }
}

/// The layer's dead units and the files the pass could not read.
fn layer_summary(layer: &LayerOverFolder) -> Line<'static> {
    let mut text = format!(
        "layer: {} of {} units dead on the folder",
        layer.dead(),
        layer.units.len()
    );
    if layer.skipped > 0 {
        text.push_str(&format!(" · {} unreadable files", layer.skipped));
    }
    Line::from(Span::styled(text, Style::default().fg(Color::DarkGray)))
}

fn caption(buf: &mut Buffer, area: Rect, text: &str) {
    Line::from(Span::styled(
        fit(text, usize::from(area.width)),
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD),
    ))
    .render(Rect::new(area.x, area.y, area.width, 1), buf);
}

fn picture(
    buf: &mut Buffer,
    area: Rect,
    name: &str,
    remote: &Remote<Picture>,
    images: &mut Images,
    tick: u64,
) {
    caption(buf, area, name);
    let body = Rect::new(
        area.x,
        area.y + 1,
        area.width.saturating_sub(1),
        area.height.saturating_sub(1),
    );
    if let Some(p) = unless_ready(buf, body, remote, name, "", tick) {
        images.draw(buf, body, p);
    }
}

fn draw_top(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images, large: bool) {
    let small = area.height < 3;
    let body = if small {
        caption(buf, area, "top:");
        Rect::new(
            area.x + 5,
            area.y,
            area.width.saturating_sub(5),
            area.height,
        )
    } else {
        caption(buf, area, "top images in the folder (max over positions)");
        Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(1),
        )
    };
    if unless_ready(
        buf,
        body,
        &app.inspector.folder_top.state,
        "folder pass",
        "",
        app.tick,
    )
    .is_none()
    {
        return;
    }
    let Some(top) = app.unit_over_folder().map(|u| &u.top) else {
        return;
    };
    if top.is_empty() {
        placeholder(buf, body, "no images");
        return;
    }
    if !large || body.height < 8 {
        let text: Vec<String> = top
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{}. {} {}", i + 1, file_name(&t.image), compact(t.score, 7)))
            .collect();
        super::message(buf, body, &text.join("  "), Style::default());
        return;
    }
    // The best image cropped to the unit's receptive field beside the ranking, the top three
    // whole photos under them.
    let ranked = top.len().min(5) as u16;
    let crop_height = (body.height / 2).max(ranked + 1);
    let [upper, thumbs] =
        Layout::vertical([Constraint::Length(crop_height), Constraint::Min(0)]).areas(body);
    let [crop, names] =
        Layout::horizontal([Constraint::Ratio(2, 5), Constraint::Ratio(3, 5)]).areas(upper);
    let crop_key = app.unit_key().map(|k| (k, app.image_list().len()));
    let idle = Remote::Idle;
    let crop_state = match &crop_key {
        Some(k) if app.inspector.top_crop.is_for(k) => &app.inspector.top_crop.state,
        _ => &idle,
    };
    picture(buf, crop, "#1, cropped", crop_state, images, app.tick);
    let name_width = usize::from(names.width.saturating_sub(12));
    for (i, t) in top.iter().take(5).enumerate() {
        let line = format!(
            "{}. {:<name_width$} {:>7}",
            i + 1,
            fit(&file_name(&t.image), name_width),
            compact(t.score, 7)
        );
        let style = if i == 0 {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        Line::from(Span::styled(line, style)).render(
            Rect::new(
                names.x + 1,
                names.y + 1 + i as u16,
                names.width.saturating_sub(1),
                1,
            ),
            buf,
        );
    }
    if thumbs.height < 3 {
        return;
    }
    let shown = top.iter().take(3).collect::<Vec<_>>();
    let cells = Layout::horizontal(vec![Constraint::Ratio(1, shown.len() as u32); shown.len()])
        .split(thumbs);
    for (t, cell) in shown.iter().zip(cells.iter()) {
        let cell = Rect::new(cell.x, cell.y, cell.width.saturating_sub(1), cell.height);
        match app.photos.get(&t.image) {
            Some(Remote::Ready(p)) => images.draw(buf, cell, p),
            _ => placeholder(buf, cell, "…"),
        }
    }
}
