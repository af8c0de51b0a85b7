//! The overlay view's `all` grid (the CLI's `explain --method all`): the photo, then every
//! method's overlay in display order, each tile filled in as its method is done (the daemon
//! runs the cheapest first), pending until then, or skipped; once scored (`e`), each method's
//! faithfulness scores in its tile.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};

use convlens_shared::choices::Method;

use super::overlay::draw_scoring;
use super::unit_grid::draw_tiles;
use super::{fit, loading, message, scores_in, scores_stacked, scores_text, unless_ready};
use crate::app::App;
use crate::data::{Evaluation, Faithfulness};
use crate::images::{placeholder, Images};
use crate::layout::tile_for;
use crate::remote::Remote;
use crate::state::{AllMethodsState, MethodTile};

/// Tiles in the grid: the photo, then one per method.
pub const TILES: usize = Method::ALL.len() + 1;

/// Rows above the tiles: what is being computed and its gauge, or how the run ended and how
/// the scores stand.
const HEADER_ROWS: u16 = 2;

/// The title's details: `all methods · 7 of 20 done · class 285 Egyptian cat` (a skipped
/// method counts as done: its tile says it was skipped).
pub fn details(all: &AllMethodsState) -> String {
    let mut text = format!(
        "all methods · {} of {} done",
        all.finished(),
        Method::ALL.len()
    );
    if let Some(e) = all.done().next() {
        let label = e.label.as_deref().unwrap_or("");
        text.push_str(format!(" · class {} {label}", e.class).trim_end());
    }
    text
}

/// Whether every tile fits in `area` without scrolling, in a frame of `screen`.
pub fn fits(area: Rect, screen: Rect) -> bool {
    let [_, grid] = split(area);
    let tile = tile_for(grid, TILES, screen);
    let cols = usize::from(grid.width / tile.pitch_x());
    let rows = usize::from(grid.height / tile.pitch_y());
    cols * rows >= TILES
}

/// The header rows and the tiles' area.
fn split(area: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Length(HEADER_ROWS), Constraint::Min(0)]).areas(area)
}

/// Draws the grid into `area` (the overlay pane's picture area) in a frame of `screen`.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut Images, screen: Rect) {
    let all = &app.overlay.all;
    if all.photo.is_none() && all.finished() == 0 && !all.is_loading() {
        // Not asked, failed before anything came, or not offered: said as for any answer.
        unless_ready(buf, area, &all.fetch.state, "all methods", "", app.tick);
        return;
    }
    let [header, grid] = split(area);
    match &all.fetch.state {
        Remote::Loading(progress) => loading(buf, header, "all methods", progress, app.tick),
        Remote::Failed(e) => message(
            buf,
            header,
            &format!("all methods: {e}"),
            Style::default().fg(Color::Red),
        ),
        _ => message(
            buf,
            header,
            &summary(all),
            Style::default().fg(Color::DarkGray),
        ),
    }
    // The second header row, free once the explanations are not on their way: the scores.
    let evaluation = app.overlay.scores().ready().copied();
    if !all.is_loading() && header.height >= 2 {
        let row = Rect::new(header.x, header.y + 1, header.width, 1);
        match evaluation.and_then(best) {
            Some(text) => message(buf, row, &text, Style::default().fg(Color::Gray)),
            None => draw_scoring(buf, row, app, "all methods"),
        }
    }
    let (not_done, short) = if all.is_loading() {
        ("pending", "…")
    } else {
        ("not done", "–")
    };
    let tile = tile_for(grid, TILES, screen);
    let width = usize::from(tile.width);
    draw_tiles(buf, grid, tile, TILES, None, |buf, i, rect| {
        // Tile 0 is the photo, tile 1 + m method m's.
        let Some(m) = i.checked_sub(1) else {
            match &all.photo {
                Some(photo) => images.draw(buf, rect, photo),
                None => placeholder(buf, rect, word(not_done, short, rect)),
            }
            return fit("photo", width);
        };
        let name = Method::ALL.get(m).map_or("", |method| method.name());
        match all.tiles.get(m).unwrap_or(&MethodTile::Pending) {
            MethodTile::Done(e) => {
                let scores = evaluation.and_then(|ev| ev.of(name));
                let Some(f) = scores else {
                    images.draw(buf, rect, &e.overlay);
                    return caption(name, e.flat, width);
                };
                // The scores beside the name when both fit the label, else on the tile's last
                // rows (the picture above them), as short as they go.
                let whole = format!("{name} {}", scores_text(f));
                if whole.chars().count() <= width && !e.flat {
                    images.draw(buf, rect, &e.overlay);
                    return whole;
                }
                let rows = score_rows(f, rect);
                let picture = Rect {
                    height: rect.height - rows.len() as u16,
                    ..rect
                };
                images.draw(buf, picture, &e.overlay);
                for (i, text) in rows.iter().enumerate() {
                    let y = picture.y + picture.height + i as u16;
                    let row = Rect::new(rect.x, y, rect.width, 1);
                    buf.set_stringn(
                        row.x,
                        row.y,
                        format!("{text:^width$}"),
                        width,
                        Style::default().fg(Color::White),
                    );
                }
                caption(name, e.flat, width)
            }
            MethodTile::Pending => {
                placeholder(buf, rect, word(not_done, short, rect));
                fit(name, width)
            }
            MethodTile::Skipped(why) => {
                if rect.width >= 12 && rect.height >= 2 {
                    message(
                        buf,
                        rect,
                        &format!("skipped: {why}"),
                        Style::default().fg(Color::DarkGray),
                    );
                } else {
                    placeholder(buf, rect, word("skipped", "skip", rect));
                }
                fit(name, width)
            }
        }
    });
}

/// The rows a tile of `rect` gives its scores, leaving the picture a row at least: one
/// (`del 0.21 ins 0.72 road 0.05` or `d.21 i.72 r.05`), else one a metric (`d.21`, `i.72`,
/// `r.05`); where even that does not fit, the same without ROAD; else none.
fn score_rows(f: &Faithfulness, rect: Rect) -> Vec<String> {
    let width = usize::from(rect.width);
    let without_road = Faithfulness { road: None, ..*f };
    [*f, without_road]
        .iter()
        .map(|f| match scores_in(f, width) {
            Some(line) => vec![line],
            None => scores_stacked(f, width).unwrap_or_default(),
        })
        .find(|rows| !rows.is_empty() && rows.len() < usize::from(rect.height))
        .unwrap_or_default()
}

/// The most faithful methods by each metric (lowest deletion, highest insertion and ROAD):
/// `best del gradcam 0.12 · ins scorecam 0.81 · road gradcam 0.14` (none before any is scored).
fn best(evaluation: &Evaluation) -> Option<String> {
    let pick = |value: fn(&Faithfulness) -> Option<f32>, lowest: bool| {
        evaluation
            .methods
            .iter()
            .filter_map(|(name, f)| value(f).map(|v| (name.as_str(), v)))
            .reduce(|a, b| {
                let better = if lowest { b.1 < a.1 } else { b.1 > a.1 };
                if better {
                    b
                } else {
                    a
                }
            })
    };
    let mut parts = Vec::new();
    if let Some((name, v)) = pick(|f| f.deletion, true) {
        parts.push(format!("best del {name} {v:.2}"));
    }
    if let Some((name, v)) = pick(|f| f.insertion, false) {
        parts.push(format!("ins {name} {v:.2}"));
    }
    if let Some((name, v)) = pick(|f| f.road, false) {
        parts.push(format!("road {name} {v:.2}"));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// A done tile's caption in `width` characters: the method's name, then `(flat)` when its map
/// is flat (the name cut short to keep it, where there is room for both).
fn caption(name: &str, flat: bool, width: usize) -> String {
    const FLAT: &str = " (flat)";
    if !flat {
        return fit(name, width);
    }
    let whole = format!("{name}{FLAT}");
    if whole.chars().count() <= width || width < FLAT.len() + 3 {
        fit(&whole, width)
    } else {
        format!("{}{FLAT}", fit(name, width - FLAT.len()))
    }
}

/// `text` when it fits `area`'s width, else `short`.
fn word<'a>(text: &'a str, short: &'a str, area: Rect) -> &'a str {
    if text.chars().count() <= usize::from(area.width) {
        text
    } else {
        short
    }
}

/// How a finished run went: how many methods were done and skipped, and the layer of the
/// CAMs.
fn summary(all: &AllMethodsState) -> String {
    let skipped = all.skipped();
    let mut parts = vec![if skipped == 0 {
        "every method done".to_string()
    } else {
        format!(
            "{} methods done, {skipped} skipped",
            all.finished() - skipped
        )
    }];
    if let Some(layer) = all.done().find_map(|e| e.layer.as_deref()) {
        parts.push(format!("CAMs at {layer}"));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_tile_keeps_its_mark_when_cut() {
        assert_eq!(caption("gradcam", false, 14), "gradcam");
        assert_eq!(caption("eigencam", true, 16), "eigencam (flat)");
        assert_eq!(caption("eigencam", true, 14), "eigenc… (flat)");
        assert_eq!(caption("eigencam", true, 6), "eigen…");
    }
}
