//! Draws the whole screen from the app's state.

use ratatui::Frame;

use crate::app::{App, View};
use crate::images::Images;
use crate::layout::areas;
use crate::widgets::{
    filters_view, header, help, image_strip, inspector, layer_tree, map_view, overlay, status_line,
    timeline_view, unit_grid,
};

/// Draws one frame.
pub fn draw(frame: &mut Frame, app: &App, images: &mut Images) {
    let screen = frame.area();
    let a = areas(screen, app.view, app.inspector.open);
    let graphics = images.protocol_name();
    let buf = frame.buffer_mut();
    header::draw(buf, a.header, app, graphics);
    layer_tree::draw(buf, a.layers, app);
    image_strip::draw(buf, a.images, app, images, screen);
    match app.view {
        View::Units => {
            unit_grid::draw(buf, a.main, app, screen);
            if let Some(area) = a.inspector {
                inspector::draw(buf, area, app, images, screen);
            }
        }
        View::Overlay => overlay::draw(buf, a.main, app, images, screen),
        View::Filters => filters_view::draw(buf, a.main, app, screen),
        View::Map => map_view::draw(buf, a.main, app, images),
        View::Timeline => timeline_view::draw(buf, a.main, app),
    }
    status_line::draw(buf, a.status, app);
    if app.help {
        help::draw(buf, screen);
    }
}
