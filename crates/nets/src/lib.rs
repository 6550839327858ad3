//! Burn networks shared by the browser and the CLI: the attribute network, the segmentation
//! network, their loading from burnpack bytes and model cards, and the cell pipeline
//! ([`Analyzer`]) that runs both on one cell. Backend-free: the caller picks the `Device` (flex, WebGPU, autodiff).
#![forbid(unsafe_code)]

pub mod analyzer;
pub mod attribute_net;
pub mod card;
pub mod layers;
pub mod predict;
pub mod seg_net;
pub mod structure_net;

pub use analyzer::{block_on, Analyzer, CellAnalysis, LayerTime, Segmenter, StageTimes};
pub use attribute_net::{AttributeNet, AttributeNetConfig, BlockKind, HEAD_WIDTH};
pub use card::ModelCard;
pub use predict::{CellPrediction, LoadError};
pub use seg_net::{SegNet, SegNetConfig};
pub use structure_net::{Aggregation, Passes, StructureAwareNet, StructureNetConfig};
