//! The inference engine that lives in the Web Worker: chooses the compute device, downloads
//! and loads the models, and analyses one cell at a time.

use crate::protocol::{ComputeDevice, FromWorker, SEGMENTATION_SIDE};
use burn::tensor::Device;
use image::{imageops, ImageFormat, RgbImage};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Cursor;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wbc_core::ATTRIBUTES;
use wbc_core::{morphometry, preprocess, segmentation};
use wbc_nets::predict::{
    batch_tensor, load_attribute_net, load_seg_net, predict_with_features_async, segment_async,
};
use wbc_nets::seg_net::resize_logits;
use wbc_nets::{AttributeNet, AttributeNetConfig, SegNet, SegNetConfig, HEAD_WIDTH};
use web_sys::WorkerGlobalScope;

/// Where the shipped attribute model lives, relative to the worker script.
pub const ATTRIBUTE_MODEL: &str = "models/attribute_net";

/// Where the segmentation network lives; without it the classical labeller draws the overlay.
pub const SEG_MODEL: &str = "models/seg_net";

/// Inputs kept for on-demand explanations (the most recent cells).
const KEPT_INPUTS: usize = 64;

/// Largest side of the cropped image sent back for display.
const DISPLAY_MAX_SIDE: u32 = 720;

/// The part of a model card the browser needs.
#[derive(Deserialize)]
struct ModelCard<C> {
    config: C,
}

async fn fetch_card<C: serde::de::DeserializeOwned>(stem: &str) -> Result<C, String> {
    let card = fetch_bytes(&format!("{stem}.json")).await?;
    let card: ModelCard<C> =
        serde_json::from_slice(&card).map_err(|e| format!("{stem}.json: {e}"))?;
    Ok(card.config)
}

/// What draws the segmentation overlay.
enum Segmenter {
    /// The network and its input side (it may differ from the attribute network's).
    Network { net: SegNet, size: usize },
    /// The classical labeller, with the reason the network is not used.
    Classical(String),
}

fn scope() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Milliseconds since the worker started.
pub fn now_ms() -> f64 {
    scope().performance().map_or(0.0, |p| p.now())
}

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Ask the browser for a WebGPU adapter ourselves first: when there is none we fall back to
/// the CPU without touching Burn's wgpu runtime (which can only be initialised once).
async fn webgpu_adapter_available() -> Result<(), String> {
    let navigator = scope().navigator();
    let gpu = js_sys::Reflect::get(&navigator, &"gpu".into()).map_err(js_error)?;
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU".into());
    }
    let request = js_sys::Reflect::get(&gpu, &"requestAdapter".into()).map_err(js_error)?;
    let request: js_sys::Function = request
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is missing".to_string())?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    let adapter = JsFuture::from(promise).await.map_err(js_error)?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU is present but no adapter is available".into());
    }
    Ok(())
}

/// WebGPU when the browser offers an adapter, otherwise Burn's flex backend on the CPU.
pub async fn choose_device(force_cpu: bool) -> (Device, ComputeDevice, Option<String>) {
    if force_cpu {
        return (
            Device::flex(),
            ComputeDevice::Cpu,
            Some("CPU requested in the page address".into()),
        );
    }
    match webgpu_adapter_available().await {
        Err(reason) => (Device::flex(), ComputeDevice::Cpu, Some(reason)),
        Ok(()) => match Device::wgpu_options().init_async().await {
            Ok(device) => (device, ComputeDevice::WebGpu, None),
            Err(e) => (
                Device::flex(),
                ComputeDevice::Cpu,
                Some(format!("WebGPU initialisation failed: {e}")),
            ),
        },
    }
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let response = JsFuture::from(scope().fetch_with_str(url))
        .await
        .map_err(js_error)?;
    let response: web_sys::Response = response.dyn_into().map_err(js_error)?;
    if !response.ok() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The loaded, warmed-up networks on their device.
pub struct Engine {
    device: Device,
    net: AttributeNet,
    config: AttributeNetConfig,
    segmenter: Segmenter,
    /// Network inputs of recent cells by id, for explanations on demand.
    inputs: RefCell<BTreeMap<u32, Vec<f32>>>,
}

impl Engine {
    /// Choose the device, download and load the model, and run one warm-up inference (the first
    /// run compiles the GPU shaders). Returns the engine and the `Ready` message to show.
    pub async fn start(force_cpu: bool) -> Result<(Engine, FromWorker), String> {
        let t0 = now_ms();
        let (device, kind, fallback_reason) = choose_device(force_cpu).await;
        let t1 = now_ms();
        let config: AttributeNetConfig = fetch_card(ATTRIBUTE_MODEL).await?;
        let weights = fetch_bytes(&format!("{ATTRIBUTE_MODEL}.bpk")).await?;
        let model_bytes = weights.len();
        let net = load_attribute_net(&config, weights, &device)
            .map_err(|e| format!("{ATTRIBUTE_MODEL}.bpk: {e}"))?;
        // The segmentation network is optional: without it the overlay still comes, from the
        // classical labeller, and the page says why.
        let (segmenter, seg_model_bytes) = match load_segmenter(&device).await {
            Ok((net, size, bytes)) => (Segmenter::Network { net, size }, bytes),
            Err(reason) => (Segmenter::Classical(reason), 0),
        };
        let t2 = now_ms();
        let engine = Engine {
            device,
            net,
            config,
            segmenter,
            inputs: RefCell::new(BTreeMap::new()),
        };
        let size = engine.config.input_size;
        engine.infer(vec![0.0; 3 * size * size]).await?;
        if let Segmenter::Network { net, size } = &engine.segmenter {
            segment_async(
                net,
                &[vec![0.0; 3 * size * size]],
                *size,
                SEGMENTATION_SIDE as usize,
                &engine.device,
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        let t3 = now_ms();
        let segmenter = engine.describe_segmenter();
        Ok((
            engine,
            FromWorker::Ready {
                device: kind,
                fallback_reason,
                device_ms: t1 - t0,
                load_ms: t2 - t1,
                warmup_ms: t3 - t2,
                model_bytes,
                segmenter,
                seg_model_bytes,
            },
        ))
    }

    fn describe_segmenter(&self) -> String {
        match &self.segmenter {
            Segmenter::Network { .. } => "segmentation network".into(),
            Segmenter::Classical(reason) => {
                format!("classical stain-based labeller (the segmentation network is not in use: {reason})")
            }
        }
    }

    /// A class-activation map for `value` of `attribute` on an analysed cell: evidence for this
    /// value against the attribute's other values (its logit minus their mean), as
    /// `SEGMENTATION_SIDE`² bytes scaled to the strongest evidence.
    pub async fn explain(
        &self,
        id: u32,
        attribute: usize,
        value: usize,
    ) -> Result<Vec<u8>, String> {
        let input = self
            .inputs
            .borrow()
            .get(&id)
            .cloned()
            .ok_or("this cell is no longer held by the worker; load it again")?;
        let a = ATTRIBUTES.get(attribute).ok_or("no such attribute")?;
        if value >= a.values.len() {
            return Err("no such value".into());
        }
        let offset = wbc_core::cbm::attribute_offset(attribute);
        let n = a.values.len() as f32;
        let mut direction = vec![0.0f32; HEAD_WIDTH];
        for v in 0..a.values.len() {
            direction[offset + v] = if v == value { 1.0 - 1.0 / n } else { -1.0 / n };
        }
        let size = self.config.input_size;
        let side = SEGMENTATION_SIDE as usize;
        let cam = self
            .net
            .class_activation(batch_tensor(&[input], size, &self.device), &direction);
        let cam = resize_logits(cam.unsqueeze_dim(1), side);
        let values: Vec<f32> = cam
            .into_data_async()
            .await
            .map_err(|e| format!("{e:?}"))?
            .convert::<f32>()
            .try_into_vec()
            .map_err(|e| format!("{e:?}"))?;
        let max = values.iter().copied().fold(0.0f32, f32::max);
        Ok(values
            .iter()
            .map(|&v| {
                if max > 0.0 {
                    (v.max(0.0) / max * 255.0).round() as u8
                } else {
                    0
                }
            })
            .collect())
    }

    async fn infer(&self, input: Vec<f32>) -> Result<(wbc_nets::CellPrediction, Vec<f32>), String> {
        let size = self.config.input_size;
        let mut out = predict_with_features_async(&self.net, &[input], size, &self.device)
            .await
            .map_err(|e| e.to_string())?;
        out.pop()
            .ok_or_else(|| "the network returned nothing".to_string())
    }

    /// Analyse one uploaded file. Returns the message and its byte attachments (the cropped
    /// cell as PNG, the label map).
    pub async fn analyse(&self, id: u32, name: String, bytes: &[u8]) -> (FromWorker, Vec<Vec<u8>>) {
        let t0 = now_ms();
        let image = match preprocess::decode(bytes) {
            Ok(img) => img,
            Err(e) => {
                return (
                    FromWorker::Refused {
                        id,
                        name,
                        reason: e.to_string(),
                    },
                    vec![],
                );
            }
        };
        let (width, height) = image.dimensions();
        let size = self.config.input_size;
        let square = preprocess::center_square(&image);
        let input = preprocess::normalize(&preprocess::cell_pixels(&square, size), size);
        let png = display_png(&square).unwrap_or_default();
        let t1 = now_ms();
        let inferred = self.infer(input.clone()).await;
        let t2 = now_ms();
        let labels = match self.segment(&square, &input).await {
            Ok(l) => l,
            Err(reason) => return (FromWorker::Refused { id, name, reason }, vec![]),
        };
        let measured = morphometry::measure(&labels);
        let segmentation_ms = now_ms() - t2;
        if inferred.is_ok() {
            let mut kept = self.inputs.borrow_mut();
            kept.insert(id, input);
            while kept.len() > KEPT_INPUTS {
                kept.pop_first();
            }
        }
        match inferred {
            Ok((prediction, features)) => (
                FromWorker::Analysed {
                    id,
                    name,
                    width,
                    height,
                    prediction,
                    features,
                    morphometry: measured,
                    preprocess_ms: t1 - t0,
                    inference_ms: t2 - t1,
                    segmentation_ms,
                },
                vec![png, labels.into_raw()],
            ),
            Err(reason) => (FromWorker::Refused { id, name, reason }, vec![]),
        }
    }
}

impl Engine {
    /// The label map at `SEGMENTATION_SIDE`².
    async fn segment(&self, square: &RgbImage, input: &[f32]) -> Result<image::GrayImage, String> {
        let side = SEGMENTATION_SIDE;
        match &self.segmenter {
            Segmenter::Network { net, size } => {
                // One decoded cell feeds both networks; resized again only where their input
                // sizes differ.
                let seg_input = if *size == self.config.input_size {
                    input.to_vec()
                } else {
                    preprocess::normalize(&preprocess::cell_pixels(square, *size), *size)
                };
                let mut maps = segment_async(net, &[seg_input], *size, side as usize, &self.device)
                    .await
                    .map_err(|e| e.to_string())?;
                let map = maps
                    .pop()
                    .ok_or("the segmentation network returned nothing")?;
                image::GrayImage::from_raw(side, side, map)
                    .ok_or_else(|| "the segmentation network returned a wrong size".to_string())
            }
            Segmenter::Classical(_) => {
                // The classical labeller is tuned at the PBC crop scale: a 360×360 copy.
                let seg_input =
                    imageops::resize(square, side, side, imageops::FilterType::Triangle);
                Ok(segmentation::segment(&seg_input))
            }
        }
    }
}

/// Download and load the segmentation network: the network, its input side, its bytes.
async fn load_segmenter(device: &Device) -> Result<(SegNet, usize, usize), String> {
    let config: SegNetConfig = fetch_card(SEG_MODEL).await?;
    let weights = fetch_bytes(&format!("{SEG_MODEL}.bpk")).await?;
    let bytes = weights.len();
    Ok((
        load_seg_net(&config, weights, device).map_err(|e| e.to_string())?,
        config.input_size,
        bytes,
    ))
}

/// The square crop as PNG, shrunk when very large so the page does not hold huge images.
fn display_png(square: &RgbImage) -> Option<Vec<u8>> {
    let shown = if square.width() > DISPLAY_MAX_SIDE {
        imageops::resize(
            square,
            DISPLAY_MAX_SIDE,
            DISPLAY_MAX_SIDE,
            imageops::FilterType::Triangle,
        )
    } else {
        square.clone()
    };
    let mut out = Cursor::new(Vec::new());
    shown.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
}
