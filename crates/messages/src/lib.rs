//! The messages between the page (UI thread) and the inference worker, and how they travel.
//!
//! Each message is a JS array `[json, bytes…]`: the JSON carries the typed message; large
//! payloads (the uploaded file, the crop as PNG, the label map, an activation map) follow as
//! `Uint8Array`s whose buffers are *transferred*, not copied, between the threads.
//!
//! This crate knows nothing of Burn, so the page can depend on it and stay small.
#![forbid(unsafe_code)]

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wbc_core::confidence::Familiarity;
use wbc_core::cross_check::Rule;
use wbc_core::front_end::{FrontEndSettings, ScaleEstimate};
use wbc_core::measured_type::MeasuredTypeAnswer;
use wbc_core::morphometry::Morphometry;
use wbc_core::CellPrediction;

/// Side of the square label and activation maps sent with each cell: the PBC crop size, at
/// which the labeller and the morphometry were designed.
pub const SEGMENTATION_SIDE: u32 = wbc_core::PBC_SIDE;

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

/// Page → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// Decode, crop and analyse the attached file bytes.
    Analyse {
        /// Identifies the answer (a cell analysed again keeps its id).
        id: u32,
        /// File name, for messages.
        name: String,
        /// Whether the front end normalises the stain (the page's toggle); `None` before the
        /// page knows the calibration card's default (a cell restored or dropped before the
        /// worker was ready): the worker then follows the card, like every other step.
        stain: Option<bool>,
    },
    /// A class-activation map of an analysed cell for one attribute value. The cell's file
    /// bytes come attached when the page still has them: a worker that does not hold the
    /// cell's network input (it analysed more than its last cells since, or another worker
    /// analysed the cell: the CPU worker before WebGPU took over, or before a restart) makes
    /// the input again from the file.
    Explain {
        /// The cell (as in `Analyse`).
        id: u32,
        /// Attribute index ([`wbc_core::ATTRIBUTES`] order).
        attribute: usize,
        /// Value index within the attribute.
        value: usize,
        /// The stain setting the cell was analysed with (as in `Analyse`).
        #[serde(default)]
        stain: Option<bool>,
    },
    /// "Show me": the cell's square edited so one attribute takes another value
    /// (`wbc_core::edit`, guided by its label map), and analysed again by the whole pipeline.
    /// The cell's file bytes come attached (the worker makes the square and map again).
    Edit {
        /// The cell (as in `Analyse`).
        id: u32,
        edit: wbc_core::edit::Edit,
        /// The stain setting the cell was analysed with (as in `Analyse`).
        #[serde(default)]
        stain: Option<bool>,
    },
    /// Benchmarks only (`bench/peer/peer.js`): one forward pass of each network alone on a
    /// fixed input of `batch` cells, output read back, timed in the worker.
    TimeNetworks { batch: usize },
}

/// What the worker said about itself when it became ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineReport {
    pub device: ComputeDevice,
    /// Why WebGPU was not used, when it was not.
    pub fallback_reason: Option<String>,
    /// Device initialisation time (ms).
    pub device_ms: f64,
    /// Model download + load time (ms).
    pub load_ms: f64,
    /// First (warm-up) inference time (ms), includes shader compilation on WebGPU.
    pub warmup_ms: f64,
    /// Bytes of attribute-network weights downloaded.
    pub model_bytes: usize,
    /// What draws the segmentation: the network, or the classical labeller and why.
    pub segmenter: String,
    /// Bytes of segmentation-network weights downloaded (0 without it).
    pub seg_model_bytes: usize,
    /// Measurement-vs-attribute rules with the thresholds from the segmentation card.
    pub rules: Vec<Rule>,
    /// The front end's default steps; `None` without a calibration card (then there is no
    /// front end and no familiarity check).
    pub front_end: Option<FrontEndSettings>,
    /// Both networks once on one cell, warm, readback included (ms): measured by the WebGPU
    /// worker when it is ready, for the page to compare with the CPU worker's before it
    /// hands over (`None` from the CPU worker, which is timed on request).
    #[serde(default)]
    pub networks_ms: Option<f64>,
    /// Which networks these are (their weights' SHA-256): a profile fitted on other ones is
    /// refused.
    #[serde(default)]
    pub networks: Option<wbc_core::adapt::Networks>,
}

/// What the front end did to one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontEndSummary {
    pub settings: FrontEndSettings,
    /// The estimated magnification and the ruler it came from.
    pub scale: ScaleEstimate,
    /// How strongly the colours were corrected (0 = not at all).
    pub look_strength: f32,
}

/// One analysed cell (the crop as PNG and the label map travel beside it as bytes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    pub id: u32,
    pub name: String,
    /// Original image size.
    pub width: u32,
    pub height: u32,
    pub prediction: CellPrediction,
    /// Pooled encoder features, L2-normalised (the counterfactual tie-breaker).
    pub features: Vec<f32>,
    /// Measurements from the segmentation.
    pub morphometry: Morphometry,
    /// Crop + resize time (ms), including decoding the file.
    pub preprocess_ms: f64,
    /// Attribute network forward pass and readback (ms).
    pub inference_ms: f64,
    /// Segmentation + morphometry (ms).
    pub segmentation_ms: f64,
    /// What the front end did; `None` without a calibration card.
    pub front_end: Option<FrontEndSummary>,
    /// The familiarity check; `None` without a calibration card.
    pub familiarity: Option<Familiarity>,
    /// The network's and the measured type's opinions on the type (`prediction.cell_type`
    /// is their joining); `None` without the measured-type card or a measurable cell.
    #[serde(default)]
    pub measured_type: Option<MeasuredTypeAnswer>,
    /// Whether a fourth attachment holds the square as the networks saw it (recoloured);
    /// the first three are the crop (PNG), the label map and a thumbnail (PNG).
    pub normalised_image: bool,
}

/// Worker → page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// The device is chosen and the models loaded and warmed up.
    Ready(EngineReport),
    /// A cell was analysed; the cropped image follows as PNG bytes, then the label map
    /// (`SEGMENTATION_SIDE`² bytes, one label per pixel), a thumbnail (PNG), then, when the
    /// colours were corrected, the image the networks saw as PNG.
    Analysed(CellReport),
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
    /// The worker panicked (its wasm is about to trap and is unusable): the cell it was
    /// analysing, when it was analysing one, and the panic message. The page restarts it.
    Crashed { id: Option<u32>, message: String },
    /// The WebGPU device was lost (driver reset, GPU removed, or destroyed by a test). Posted
    /// by the worker's loader script (`public/worker_loader.js`), which watches the device;
    /// the page goes on with a worker on the CPU.
    DeviceLost { reason: String },
    /// A cell edited and analysed again ("show me"): the edited square as PNG and its label
    /// map follow. `ms`: the whole request in the worker.
    Edited {
        id: u32,
        edit: wbc_core::edit::Edit,
        report: CellReport,
        ms: f64,
    },
    /// An edit could not be made (the page keeps everything else).
    EditFailed { id: u32, reason: String },
    /// The answer to `TimeNetworks` (ms, readback included).
    NetworkTimes {
        attribute_ms: f64,
        segmentation_ms: f64,
    },
}

/// A message ready to post: the data array, and the buffers to transfer with it.
pub struct Encoded {
    pub data: js_sys::Array,
    pub transfer: js_sys::Array,
}

/// Encode a message and its byte attachments. Each attachment's buffer goes in the transfer
/// list, so posting moves it to the other thread instead of copying it.
pub fn encode<M: Serialize>(message: &M, attachments: Vec<js_sys::Uint8Array>) -> Encoded {
    let json = serde_json::to_string(message).unwrap_or_else(|e| {
        format!("{{\"Fatal\":{{\"message\":\"message encoding failed: {e}\"}}}}")
    });
    let data = js_sys::Array::of1(&JsValue::from_str(&json));
    let transfer = js_sys::Array::new();
    for bytes in attachments {
        transfer.push(&bytes.buffer());
        data.push(&bytes);
    }
    Encoded { data, transfer }
}

/// Copy Rust bytes into a JS array (whose buffer can then be transferred).
pub fn js_bytes(bytes: &[u8]) -> js_sys::Uint8Array {
    js_sys::Uint8Array::from(bytes)
}

/// Decode a posted message: the typed message and its byte attachments in order.
pub fn decode<M: DeserializeOwned>(data: &JsValue) -> Result<(M, Vec<js_sys::Uint8Array>), String> {
    let parts: &js_sys::Array = data
        .dyn_ref()
        .ok_or_else(|| "a message that is not an array".to_string())?;
    let json = parts
        .get(0)
        .as_string()
        .ok_or_else(|| "a message without its JSON part".to_string())?;
    let message = serde_json::from_str(&json).map_err(|e| format!("unreadable message: {e}"))?;
    let attachments = (1..parts.length())
        .filter_map(|i| parts.get(i).dyn_into::<js_sys::Uint8Array>().ok())
        .collect();
    Ok((message, attachments))
}

/// Whether the address's query string (`location.search`, with or without its `?`) holds the
/// switch `name` (`?cpu`, `?webgpu`, `?cpu=1`). The page, the worker and the tests read the
/// switches through this one function.
/// Parameters are read as `URLSearchParams.has` reads them: names split on `&`, cut at `=`.
pub fn query_has(search: &str, name: &str) -> bool {
    let query = search.split('#').next().unwrap_or("");
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or(""))
        .any(|key| key.replace('+', " ") == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A switch is a parameter's name, not any text in the address: a fault switch's value
    /// holding "cpu" does not force the CPU.
    #[test]
    fn query_switches_are_parameter_names() {
        assert!(query_has("?cpu", "cpu"));
        assert!(query_has("?cpu=1&x=2", "cpu"));
        assert!(query_has("x=2&webgpu", "webgpu"));
        assert!(query_has("?panic-on=a.png&cpu", "cpu"));
        assert!(!query_has("?panic-on=cpu1.png", "cpu"));
        assert!(!query_has("?webgpu", "cpu"));
        assert!(!query_has("?cpus=2", "cpu"));
        assert!(!query_has("", "cpu"));
        assert!(!query_has("?x=1#cpu", "cpu"));
    }

    #[test]
    fn messages_round_trip_through_json() {
        let message = FromWorker::Refused {
            id: 7,
            name: "cell.jpg".into(),
            reason: "not an image".into(),
        };
        let json = serde_json::to_string(&message).unwrap();
        match serde_json::from_str::<FromWorker>(&json).unwrap() {
            FromWorker::Refused { id, name, .. } => {
                assert_eq!((id, name.as_str()), (7, "cell.jpg"))
            }
            other => panic!("decoded as {other:?}"),
        }
        // The shape `public/worker_loader.js` posts by hand.
        assert!(matches!(
            serde_json::from_str::<FromWorker>(r#"{"DeviceLost":{"reason":"destroyed"}}"#),
            Ok(FromWorker::DeviceLost { .. })
        ));
        let request: ToWorker =
            serde_json::from_str(r#"{"Explain":{"id":3,"attribute":2,"value":1}}"#).unwrap();
        assert!(matches!(
            request,
            ToWorker::Explain {
                id: 3,
                attribute: 2,
                value: 1,
                stain: None
            }
        ));
    }
}
