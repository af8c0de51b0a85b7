//! Line charts of curves over [0, 1] × [0, 1], one panel per kind (deletion, insertion), one
//! coloured line per series with a legend: `convlens evaluate -o`. Drawn with the pictures'
//! own discs and bitmap font (a plotting crate would bring fonts and a backend for two panels of
//! polylines).

use image::{Rgb, RgbImage};

use super::text::draw_text;
use crate::represent::map_render::{fill_disc, PALETTE};

/// One line: its legend label and its values, evenly spaced over x ∈ [0, 1].
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// The values (y ∈ [0, 1]).
    pub values: Vec<f32>,
}

/// One chart: a title and its lines.
pub struct Panel {
    /// The title above the chart.
    pub title: String,
    /// The lines, coloured in order.
    pub series: Vec<Series>,
}

/// The plot area of a panel, in pixels.
const PLOT_W: u32 = 360;
const PLOT_H: u32 = 240;
/// Room around it: left for y labels, top for the title, bottom for x labels and the legend.
const LEFT: u32 = 44;
const TOP: u32 = 28;
const RIGHT: u32 = 16;
const BOTTOM: u32 = 36;
const LEGEND_LINE: u32 = 14;

/// The panels side by side, the legend (shared: series are coloured by position) below.
pub fn render_curves(panels: &[Panel]) -> RgbImage {
    let labels: Vec<&str> = panels
        .first()
        .map(|p| p.series.iter().map(|s| s.label.as_str()).collect())
        .unwrap_or_default();
    let panel_w = LEFT + PLOT_W + RIGHT;
    let legend_h = LEGEND_LINE * labels.len() as u32 + 8;
    let width = panel_w * panels.len().max(1) as u32;
    let height = TOP + PLOT_H + BOTTOM + legend_h;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    for (k, panel) in panels.iter().enumerate() {
        let x0 = k as u32 * panel_w + LEFT;
        draw_text(&mut img, i64::from(x0), 8, &panel.title, [0, 0, 0], 1);
        frame(&mut img, x0, TOP);
        for tick in 0..=4 {
            let v = tick as f32 / 4.0;
            let label = format!("{v:.2}");
            let y = TOP + PLOT_H - (v * PLOT_H as f32) as u32;
            draw_text(
                &mut img,
                i64::from(x0) - 40,
                i64::from(y) - 4,
                &label,
                [60, 60, 60],
                1,
            );
            let x = x0 + (v * PLOT_W as f32) as u32;
            draw_text(
                &mut img,
                i64::from(x) - 16,
                i64::from(TOP + PLOT_H + 6),
                &label,
                [60, 60, 60],
                1,
            );
        }
        for (i, series) in panel.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let n = series.values.len();
            let point = |j: usize| {
                let x = if n > 1 {
                    j as f32 / (n - 1) as f32
                } else {
                    0.0
                };
                let y = series.values[j].clamp(0.0, 1.0);
                (
                    x0 as f32 + x * PLOT_W as f32,
                    (TOP + PLOT_H) as f32 - y * PLOT_H as f32,
                )
            };
            for j in 1..n {
                let ((ax, ay), (bx, by)) = (point(j - 1), point(j));
                let steps = (bx - ax).abs().max((by - ay).abs()).ceil().max(1.0) as usize;
                for t in 0..=steps {
                    let f = t as f32 / steps as f32;
                    fill_disc(&mut img, ax + f * (bx - ax), ay + f * (by - ay), 1.2, color);
                }
            }
        }
    }
    let mut y = TOP + PLOT_H + BOTTOM;
    for (i, label) in labels.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        for x in LEFT..LEFT + 20 {
            for dy in 0..3 {
                img.put_pixel(x, y + 3 + dy, Rgb(color));
            }
        }
        draw_text(
            &mut img,
            i64::from(LEFT + 26),
            i64::from(y),
            label,
            [0, 0, 0],
            1,
        );
        y += LEGEND_LINE;
    }
    img
}

/// The plot area's axes (left and bottom) and a light box.
fn frame(img: &mut RgbImage, x0: u32, y0: u32) {
    for x in x0..=x0 + PLOT_W {
        img.put_pixel(x, y0, Rgb([220, 220, 220]));
        img.put_pixel(x, y0 + PLOT_H, Rgb([0, 0, 0]));
    }
    for y in y0..=y0 + PLOT_H {
        img.put_pixel(x0, y, Rgb([0, 0, 0]));
        img.put_pixel(x0 + PLOT_W, y, Rgb([220, 220, 220]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_drawn_in_their_colours_inside_the_plot() {
        let panels = vec![Panel {
            title: "deletion".into(),
            series: vec![Series {
                label: "gradcam".into(),
                values: vec![1.0, 0.5, 0.0],
            }],
        }];
        let img = render_curves(&panels);
        assert_eq!(img.width(), LEFT + PLOT_W + RIGHT);
        // The line starts at the top-left of the plot area and ends at its bottom-right.
        assert_eq!(img.get_pixel(LEFT + 1, TOP + 1).0, PALETTE[0]);
        assert_eq!(
            img.get_pixel(LEFT + PLOT_W - 1, TOP + PLOT_H - 1).0,
            PALETTE[0]
        );
        // Its middle passes the centre.
        assert_eq!(
            img.get_pixel(LEFT + PLOT_W / 2, TOP + PLOT_H / 2).0,
            PALETTE[0]
        );
    }
}
