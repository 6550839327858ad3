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
        /// Measurements from the segmentation.
        morphometry: Morphometry,
        /// Decode + crop + resize time (ms).
        preprocess_ms: f64,
        /// Network forward pass and readback (ms).
        inference_ms: f64,
        /// Segmentation + morphometry (ms).
        segmentation_ms: f64,
    },
    /// This input was refused; the session goes on.
    Refused {
        id: u32,
        name: String,
        reason: String,
    },
    /// The worker cannot analyse anything (e.g. the model failed to load).
    Fatal { message: String },
}
