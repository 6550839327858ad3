//! One file per panel of the page. Components read and act on [`crate::state::AppState`].
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
pub mod table;
