//! The unit inspector: the unit's statistics over the image and the folder, its deconvnet
//! reconstruction, its activation-maximization image and its top images in the folder.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{compact, file_name, fit, pane, title, unless_ready};
use crate::app::{App, Pane};
use crate::data::{Picture, UnitStats};
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
        &app.activations.state,
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
        Constraint::Length(3),
        Constraint::Length(if large {
            inner.height / 2
        } else {
            inner.height.saturating_sub(4)
        }),
        Constraint::Min(1),
    ])
    .areas(inner);

    let folder = match &app.folder_stats.state {
        Remote::Ready(f) => Ok((f.stats, f.images)),
        other => Err(other),
    };
    draw_stats(buf, stats_area, image_stats, folder, app.tick);

    let [left, right] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(pictures_area);
    picture(buf, left, "deconvnet", &app.deconv.state, images, app.tick);
    let maximized = app.maximized.get(&key);
    match maximized {
        Some(p) => picture(
            buf,
            right,
            "maximization",
            &Remote::Ready(p.clone()),
            images,
            app.tick,
        ),
        None if app.maximize.is_for(&key) => picture(
            buf,
            right,
            "maximization",
            &app.maximize.state,
            images,
            app.tick,
        ),
        None => {
            caption(buf, right, "maximization");
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
                    "press a to compute",
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

fn draw_stats(
    buf: &mut Buffer,
    area: Rect,
    image: &UnitStats,
    folder: Result<(UnitStats, usize), &Remote<crate::data::FolderStats>>,
    tick: u64,
) {
    let head = Style::default().fg(Color::DarkGray);
    let row = |name: &str, s: &UnitStats| {
        format!(
            "{name:<7}{:>8}{:>8}{:>7.0}%",
            compact(s.mean, 7),
            compact(s.max, 7),
            s.frac_active * 100.0
        )
    };
    let lines = [
        Line::from(Span::styled(
            format!("{:<7}{:>8}{:>8}{:>8}", "", "mean", "max", "active"),
            head,
        )),
        Line::from(row("image", image)),
    ];
    for (i, line) in lines.into_iter().enumerate() {
        line.render(Rect::new(area.x, area.y + i as u16, area.width, 1), buf);
    }
    let third = Rect::new(area.x, area.y + 2, area.width, 1);
    match folder {
        Ok((s, n)) => Line::from(vec![
            Span::raw(row("folder", &s)),
            Span::styled(format!(" ({n} images)"), head),
        ])
        .render(third, buf),
        Err(remote) => {
            let label = Rect::new(third.x, third.y, 7, 1);
            Line::from("folder").render(label, buf);
            let rest = Rect::new(third.x + 7, third.y, third.width.saturating_sub(7), 1);
            let _ = unless_ready(buf, rest, remote, "folder statistics", "", tick);
        }
    }
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
    let body = if area.height < 3 {
        caption(buf, area, "top:");
        Rect::new(
            area.x + 5,
            area.y,
            area.width.saturating_sub(5),
            area.height,
        )
    } else {
        caption(buf, area, "top images in the folder");
        Rect::new(
            area.x,
            area.y + 1,
            area.width,
            area.height.saturating_sub(1),
        )
    };
    let Some(top) = unless_ready(buf, body, &app.top_images.state, "top images", "", app.tick)
    else {
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
    let [thumbs, names] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(top.len().min(5) as u16),
    ])
    .areas(body);
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
    for (i, t) in top.iter().take(5).enumerate() {
        let line = format!(
            "{}. {:<24} {}",
            i + 1,
            fit(&file_name(&t.image), 24),
            compact(t.score, 7)
        );
        Line::from(line).render(Rect::new(names.x, names.y + i as u16, names.width, 1), buf);
    }
}
