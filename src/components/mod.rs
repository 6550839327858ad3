//! One file per panel of the page. Each takes the rooms of [`crate::state`] it needs.
pub mod adapt;
pub mod app;
pub mod cell_panel;
pub mod dataset;
pub mod drop_zone;
pub mod explain;
pub mod glossary;
pub mod header;
pub mod overlay;
pub mod present;
pub mod quiz;
pub mod session;
pub mod show_me;
pub mod table;

/// Runs `f` once the browser has painted what is on the page now: in a task after the next
/// frame, so DOM that `f` adds is styled and laid out in a frame of its own. Large views are
/// built in such steps so no main-thread task keeps a click waiting past 200 ms.
pub fn after_next_paint(f: impl FnOnce() + 'static) {
    leptos::prelude::request_animation_frame(move || {
        leptos::prelude::set_timeout(f, std::time::Duration::ZERO)
    });
}
