//! One file per panel of the page.
pub mod cell_panel;
pub mod drop_zone;
pub mod explain;
pub mod header;
pub mod overlay;
