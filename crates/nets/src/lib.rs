//! Burn networks shared by the browser and the CLI: the attribute network and its loading
//! from burnpack bytes. Backend-free: the caller picks the `Device` (flex, WebGPU, autodiff).
#![forbid(unsafe_code)]

pub mod attribute_net;
pub mod predict;

pub use attribute_net::{AttributeNet, AttributeNetConfig, HEAD_WIDTH};
pub use predict::{CellPrediction, LoadError};
