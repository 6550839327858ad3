//! Pixel labels for stained white-cell images: the six WBCAtt+ label ids, their names and
//! overlay colours, and the classical "bootstrap labeller" that turns an RGB cell image into a
//! label map without any learned model, so that the project can make pixel masks for PBC
//! images (the real WBCAtt+ masks are not available) and draw overlays.
//!
//! - `labels`: the label ids, names and colours;
//! - `labeller`: the classical stain-based labeller ([`segment`]) and its notion of the
//!   central cell's nucleus and shape, which `tidy` reuses;
//! - `tidy`: [`tidy_cell`], the labeller's shape of the central cell given to another source's
//!   label map (the segmentation network), with the convex-hull geometry it needs;
//! - `render`: drawing a label map ([`overlay`] over the image, [`colorize`] on its own);
//! - `scoring`: [`cellavision_iou`], agreement with a hand-drawn cellavision100 mask.

mod labeller;
mod labels;
mod render;
mod scoring;
mod tidy;

pub use labeller::segment;
pub use labels::{
    is_white_cell, CYTOPLASM, LABEL_NAMES, NUCLEUS, NUM_LABELS, OTHER, PALETTE, PLATELET, RED_CELL,
    SHOW_CELL_LABELS, VACUOLE,
};
pub use render::{colorize, overlay, SegmentationError};
pub use scoring::cellavision_iou;
pub use tidy::{tidy_cell, tidy_cell_with, TidyParams};
