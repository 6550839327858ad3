//! `wbc_lab`: the library under the `wbc` command line. The commands (`src/commands`) parse
//! their arguments and call these modules, one job each:
//! - [`data`]: the PBC splits and their WBCAtt labels, pixel and label-map caches, image files;
//! - [`training`]: augmentation, losses, the one epoch loop and the resumable run folder;
//! - [`cards`]: the shipped model files and their cards (attribute, segmentation, CBM,
//!   calibration), and the provenance a card records;
//! - [`scoring`]: the paper's scores (attribute macro-F1, cell type, segmentation IoU);
//! - [`rng`]: the seeded generator behind shuffles, augmentation and sampling;
//! - [`shifts`]: synthetic shifts of PBC val cells (rescaled, recoloured, blurred, JPEG) on
//!   which choices meant for other microscopes are made.
#![forbid(unsafe_code)]

pub mod cards;
pub mod data;
pub mod rng;
pub mod scoring;
pub mod shifts;
pub mod training;
