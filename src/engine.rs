//! The inference engine that lives in the Web Worker: chooses the compute device, downloads
//! and loads the models, and analyses one cell at a time.

use crate::protocol::{ComputeDevice, FromWorker, SEGMENTATION_SIDE};
use burn::tensor::Device;
use image::{imageops, ImageFormat, RgbImage};
use serde::Deserialize;
use std::io::Cursor;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wbc_core::{morphometry, preprocess, segmentation};
use wbc_nets::predict::{load_attribute_net, predict_async};
use wbc_nets::{AttributeNet, AttributeNetConfig};
use web_sys::WorkerGlobalScope;

/// Where the shipped attribute model lives, relative to the worker script.
pub const ATTRIBUTE_MODEL: &str = "models/attribute_net";

/// Largest side of the cropped image sent back for display.
const DISPLAY_MAX_SIDE: u32 = 720;

/// The part of a model card the browser needs.
#[derive(Deserialize)]
struct ModelCard {
    config: AttributeNetConfig,
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

/// A loaded, warmed-up attribute network on its device.
pub struct Engine {
    device: Device,
    net: AttributeNet,
    config: AttributeNetConfig,
}

impl Engine {
    /// Choose the device, download and load the model, and run one warm-up inference (the first
    /// run compiles the GPU shaders). Returns the engine and the `Ready` message to show.
    pub async fn start(force_cpu: bool) -> Result<(Engine, FromWorker), String> {
        let t0 = now_ms();
        let (device, kind, fallback_reason) = choose_device(force_cpu).await;
        let t1 = now_ms();
        let card = fetch_bytes(&format!("{ATTRIBUTE_MODEL}.json")).await?;
        let card: ModelCard =
            serde_json::from_slice(&card).map_err(|e| format!("model card: {e}"))?;
        let weights = fetch_bytes(&format!("{ATTRIBUTE_MODEL}.bpk")).await?;
        let model_bytes = weights.len();
        let net = load_attribute_net(&card.config, weights, &device).map_err(|e| e.to_string())?;
        let t2 = now_ms();
        let engine = Engine {
            device,
            net,
            config: card.config,
        };
        let size = engine.config.input_size;
        engine.infer(vec![0.0; 3 * size * size]).await?;
        let t3 = now_ms();
        Ok((
            engine,
            FromWorker::Ready {
                device: kind,
                fallback_reason,
                device_ms: t1 - t0,
                load_ms: t2 - t1,
                warmup_ms: t3 - t2,
                model_bytes,
            },
        ))
    }

    async fn infer(&self, input: Vec<f32>) -> Result<wbc_nets::CellPrediction, String> {
        let size = self.config.input_size;
        let mut out = predict_async(&self.net, &[input], size, &self.device)
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
        let inferred = self.infer(input).await;
        let t2 = now_ms();
        // The classical labeller is tuned at the PBC crop scale: segment a 360×360 copy.
        let seg_input = imageops::resize(
            &square,
            SEGMENTATION_SIDE,
            SEGMENTATION_SIDE,
            imageops::FilterType::Triangle,
        );
        let labels = segmentation::segment(&seg_input);
        let measured = morphometry::measure(&labels);
        let segmentation_ms = now_ms() - t2;
        match inferred {
            Ok(prediction) => (
                FromWorker::Analysed {
                    id,
                    name,
                    width,
                    height,
                    prediction,
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
