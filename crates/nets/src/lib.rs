//! Burn networks shared by the browser and the CLI: the attribute network, the segmentation network and their loading
//! from burnpack bytes. Backend-free: the caller picks the `Device` (flex, WebGPU, autodiff).
#![forbid(unsafe_code)]

pub mod attribute_net;
pub mod predict;
pub mod seg_net;
pub mod structure_net;

pub use attribute_net::{AttributeNet, AttributeNetConfig, HEAD_WIDTH};
pub use predict::{CellPrediction, LoadError};
pub use seg_net::{SegNet, SegNetConfig};
pub use structure_net::{Aggregation, Passes, StructureAwareNet, StructureNetConfig};
