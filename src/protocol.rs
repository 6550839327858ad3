//! Messages between the UI thread and the inference worker. Each message is a JS array
//! `[json, bytes]`: the JSON carries the typed message, `bytes` an optional `Uint8Array`
//! (the uploaded file; the cropped cell as PNG and its label map) so large payloads skip JSON.

use serde::{Deserialize, Serialize};
use wbc_core::morphometry::Morphometry;
use wbc_nets::CellPrediction;

/// Which compute device runs the networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComputeDevice {
    /// Burn's wgpu backend on the browser's WebGPU.
    WebGpu,
    /// Burn's flex backend compiled to wasm (CPU).
    Cpu,
}

impl ComputeDevice {
    /// The label the page shows (and tests read).
    pub fn label(self) -> &'static str {
        match self {
            ComputeDevice::WebGpu => "WebGPU",
            ComputeDevice::Cpu => "CPU",
        }
    }
}

/// Side of the square label map sent with each cell (the PBC crop size the labeller expects).
pub const SEGMENTATION_SIDE: u32 = 360;

/// UI → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Decode, crop and analyse the attached file bytes.
    Analyse {
        /// Identifies the answer.
        id: u32,
        /// File name, for messages.
        name: String,
    },
    /// A class-activation map of an analysed cell for one attribute value.
    Explain {
        /// The cell (as in `Analyse`).
        id: u32,
        /// Attribute index ([`wbc_core::ATTRIBUTES`] order).
        attribute: usize,
        /// Value index within the attribute.
        value: usize,
    },
}

/// Worker → UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// The device is chosen and the model loaded and warmed up.
    Ready {
        device: ComputeDevice,
        /// Why WebGPU was not used, when it was not.
        fallback_reason: Option<String>,
        /// Device initialisation time (ms).
        device_ms: f64,
        /// Model download + load time (ms).
        load_ms: f64,
        /// First (warm-up) inference time (ms), includes shader compilation on WebGPU.
        warmup_ms: f64,
        /// Bytes of model weights downloaded.
        model_bytes: usize,
        /// What draws the segmentation: the network, or the classical labeller and why.
        segmenter: String,
        /// Bytes of segmentation-network weights downloaded (0 without it).
        seg_model_bytes: usize,
    },
    /// A cell was analysed; the cropped image follows as PNG bytes, then the label map
    /// (`SEGMENTATION_SIDE`² bytes, one label per pixel).
    Analysed {
        id: u32,
        name: String,
        /// Original image size.
        width: u32,
        height: u32,
        prediction: CellPrediction,
        /// Pooled encoder features, L2-normalised (the counterfactual tie-breaker).
        features: Vec<f32>,
        /// Measurements from the segmentation.
        morphometry: Morphometry,
        /// Decode + crop + resize time (ms).
        preprocess_ms: f64,
        /// Network forward pass and readback (ms).
        inference_ms: f64,
        /// Segmentation + morphometry (ms).
        segmentation_ms: f64,
    },
    /// A class-activation map; `side`² bytes follow (0 = no evidence, 255 = the strongest).
    Explained {
        id: u32,
        attribute: usize,
        value: usize,
        side: u32,
        /// Time to compute it (ms).
        ms: f64,
    },
    /// An explanation could not be made (the page keeps everything else).
    ExplainFailed { id: u32, reason: String },
    /// This input was refused; the session goes on.
    Refused {
        id: u32,
        name: String,
        reason: String,
    },
    /// The worker cannot analyse anything (e.g. the model failed to load).
    Fatal { message: String },
}
