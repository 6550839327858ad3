//! The worker's side of the cell pipeline: chooses the compute device, downloads the models
//! and their cards, builds the [`Analyzer`] and answers one cell at a time.

use burn::tensor::Device;
use image::{imageops, ImageFormat, RgbImage};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Cursor;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wbc_core::confidence::Calibration;
use wbc_core::measured_type::MeasuredTypeCard;
use wbc_core::preprocess;
use wbc_messages::{
    CellReport, ComputeDevice, EngineReport, FromWorker, FrontEndSummary, SEGMENTATION_SIDE,
};
use wbc_nets::{Analyzer, AttributeNetConfig, ModelCard, SegNetConfig, Segmenter};
use web_sys::WorkerGlobalScope;

/// Where the shipped attribute model lives, relative to the worker script.
const ATTRIBUTE_MODEL: &str = "models/attribute_net";

/// Where the segmentation network lives; without it the classical labeller draws the overlay.
const SEG_MODEL: &str = "models/seg_net";

/// The calibration card (`.json`) and feature distribution (`.bin`): the front end's
/// reference and the familiarity check. Optional: without it cells go in as plain crops.
const CALIBRATION: &str = "models/calibration";

/// The measured type's card: cell type from the segmentation's measurements, joined with the
/// network's. Optional: without it the type is the network's alone.
const MEASURED_TYPE: &str = "models/measured_type.json";

/// Inputs kept for on-demand explanations (the most recent cells).
const KEPT_INPUTS: usize = 64;

/// Largest side of the cropped image sent back for display.
const DISPLAY_MAX_SIDE: u32 = 720;
/// The page keeps only this small picture of a cell it is not showing (a table of 1,000
/// cells stays small); the full crop and the label map come again when the cell is opened.
const THUMBNAIL_SIDE: u32 = 64;

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
#[cfg(feature = "webgpu")]
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
#[cfg(feature = "webgpu")]
async fn choose_device(force_cpu: bool) -> (Device, ComputeDevice, Option<String>) {
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

/// The CPU-only build (`worker_cpu`): Burn's flex backend, always.
#[cfg(not(feature = "webgpu"))]
async fn choose_device(_force_cpu: bool) -> (Device, ComputeDevice, Option<String>) {
    (
        Device::flex(),
        ComputeDevice::Cpu,
        Some("CPU requested in the page address".into()),
    )
}

/// A file the worker has asked for: the request goes out when this is made, the body is
/// read when it is awaited. The worker asks for all its model files at once, so on a slow
/// network their round trips overlap instead of queueing one after another.
struct Download {
    url: String,
    response: JsFuture,
}

impl Download {
    fn start(url: String) -> Self {
        let response = JsFuture::from(scope().fetch_with_str(&url));
        Self { url, response }
    }

    async fn bytes(self) -> Result<Vec<u8>, String> {
        let response = self.response.await.map_err(js_error)?;
        let response: web_sys::Response = response.dyn_into().map_err(js_error)?;
        if !response.ok() {
            return Err(format!("{}: HTTP {}", self.url, response.status()));
        }
        let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
            .await
            .map_err(js_error)?;
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }
}

/// A model's card and weights, both asked for.
struct ModelDownload {
    stem: &'static str,
    card: Download,
    weights: Download,
}

impl ModelDownload {
    fn start(stem: &'static str) -> Self {
        Self {
            stem,
            card: Download::start(format!("{stem}.json")),
            weights: Download::start(format!("{stem}.bpk")),
        }
    }

    async fn read<C: serde::de::DeserializeOwned>(self) -> Result<(ModelCard<C>, Vec<u8>), String> {
        let card = self.card.bytes().await?;
        let card = ModelCard::from_slice(&card).map_err(|e| format!("{}.json: {e}", self.stem))?;
        Ok((card, self.weights.bytes().await?))
    }
}

/// Every file the pipeline loads, asked for at once.
struct Downloads {
    attribute: ModelDownload,
    segmentation: ModelDownload,
    calibration: (Download, Download),
    measured_type: Download,
}

impl Downloads {
    fn start() -> Self {
        Self {
            attribute: ModelDownload::start(ATTRIBUTE_MODEL),
            segmentation: ModelDownload::start(SEG_MODEL),
            calibration: (
                Download::start(format!("{CALIBRATION}.json")),
                Download::start(format!("{CALIBRATION}.bin")),
            ),
            measured_type: Download::start(MEASURED_TYPE.into()),
        }
    }
}

/// The segmentation network when it loads, the classical labeller (and why) when not; its
/// card's metrics (the measurement thresholds) and the bytes downloaded.
async fn load_segmenter(
    download: ModelDownload,
    device: &Device,
) -> (Segmenter, Option<serde_json::Value>, usize, String) {
    let loaded = async {
        let (card, weights) = download.read::<SegNetConfig>().await?;
        let bytes = weights.len();
        let sha = card.weights_sha256.clone().unwrap_or_default();
        let segmenter = Segmenter::network(&card, weights, device).map_err(|e| e.to_string())?;
        Ok::<_, String>((segmenter, card.metrics, bytes, sha))
    };
    match loaded.await {
        Ok((segmenter, metrics, bytes, sha)) => (segmenter, Some(metrics), bytes, sha),
        // The name `wbc fit` gives a profile made without the network.
        Err(reason) => (
            Segmenter::Classical { reason },
            None,
            0,
            "the classical labeller".into(),
        ),
    }
}

/// The calibration when both its files load (`None` and the page carries on without it).
async fn load_calibration((card, bin): (Download, Download)) -> Option<Calibration> {
    let card = card.bytes().await.ok()?;
    let bin = bin.bytes().await.ok()?;
    Calibration::from_bytes(&card, &bin).ok()
}

/// The measured type's card when it loads (`None` and the network's type stands alone).
async fn load_measured_type(download: Download) -> Option<MeasuredTypeCard> {
    let card = download.bytes().await.ok()?;
    serde_json::from_slice(&card).ok()
}

/// The loaded, warmed-up pipeline.
pub struct Engine {
    analyzer: Analyzer,
    /// Attribute-network inputs of recent cells by id, for explanations on demand.
    inputs: RefCell<BTreeMap<u32, Vec<f32>>>,
}

impl Engine {
    /// Choose the device, download and load the models, and run one warm-up inference (the
    /// first run compiles the GPU shaders). Returns the engine and what to tell the page.
    pub async fn start(force_cpu: bool) -> Result<(Engine, EngineReport), String> {
        let t0 = now_ms();
        // The files download while the device is chosen (asking for a WebGPU adapter takes
        // a while).
        let downloads = Downloads::start();
        let (device, kind, fallback_reason) = choose_device(force_cpu).await;
        let t1 = now_ms();
        let (card, weights) = downloads.attribute.read::<AttributeNetConfig>().await?;
        let model_bytes = weights.len();
        // The segmentation network is optional: without it the overlay still comes, from the
        // classical labeller, and the page says why.
        let (segmenter, seg_metrics, seg_model_bytes, seg_sha) =
            load_segmenter(downloads.segmentation, &device).await;
        // Which networks a profile fitted here belongs to (as `wbc fit` names them).
        let networks = wbc_core::adapt::Networks {
            attribute_net: card.weights_sha256.clone().unwrap_or_default(),
            seg_net: seg_sha,
        };
        let mut analyzer = Analyzer::new(&card, weights, segmenter, seg_metrics.as_ref(), &device)
            .map_err(|e| format!("{ATTRIBUTE_MODEL}.bpk: {e}"))?;
        if let Some(calibration) = load_calibration(downloads.calibration).await {
            analyzer = analyzer.with_calibration(calibration);
        }
        if let Some(card) = load_measured_type(downloads.measured_type).await {
            analyzer = analyzer.with_measured_type(card);
        }
        let t2 = now_ms();
        analyzer.warm_up().await.map_err(|e| e.to_string())?;
        let t3 = now_ms();
        // On WebGPU, one warm pass of both networks (the shaders are compiled by now): the
        // page moves to this worker only if it is faster than the CPU one. The CPU worker is
        // not timed here: that would delay its first answer. A timing that fails leaves the
        // report without one (the page then hands over, as it did before comparing).
        let networks_ms = if kind == ComputeDevice::WebGpu {
            analyzer
                .time_networks(1, now_ms)
                .await
                .ok()
                .map(|(attribute, segmentation)| attribute + segmentation)
        } else {
            None
        };
        let report = EngineReport {
            device: kind,
            fallback_reason,
            device_ms: t1 - t0,
            load_ms: t2 - t1,
            warmup_ms: t3 - t2,
            model_bytes,
            segmenter: analyzer.segmenter().describe(),
            seg_model_bytes,
            rules: analyzer.rules().to_vec(),
            front_end: analyzer.calibration().map(|_| analyzer.settings()),
            networks_ms,
            networks: Some(networks),
        };
        let engine = Engine {
            analyzer,
            inputs: RefCell::new(BTreeMap::new()),
        };
        Ok((engine, report))
    }

    /// The calibration card's front-end steps, with the page's stain choice when it has
    /// made one (`None`: the card's).
    fn settings(&self, stain: Option<bool>) -> wbc_core::front_end::FrontEndSettings {
        let defaults = self.analyzer.settings();
        wbc_core::front_end::FrontEndSettings {
            stain: stain.unwrap_or(defaults.stain),
            ..defaults
        }
    }

    /// Where the network found evidence for `value` of `attribute` on an analysed cell: from
    /// the network input kept when this worker analysed it, otherwise made again from the
    /// cell's `file` (analysed with the same `stain` setting).
    pub async fn explain(
        &self,
        id: u32,
        attribute: usize,
        value: usize,
        stain: Option<bool>,
        file: &[u8],
    ) -> Result<Vec<u8>, String> {
        let kept = self.inputs.borrow().get(&id).cloned();
        let input = match kept {
            Some(input) => input,
            None if file.is_empty() => {
                return Err("this cell is no longer held by the worker; load it again".into())
            }
            None => {
                let image = preprocess::decode(file).map_err(|e| e.to_string())?;
                let input = self
                    .analyzer
                    .attribute_input(&image, self.settings(stain))
                    .await
                    .map_err(|e| e.to_string())?;
                self.keep_input(id, input.clone());
                input
            }
        };
        self.analyzer
            .explain(&input, attribute, value, SEGMENTATION_SIDE)
            .await
    }

    /// Keep a cell's network input for explanations (the latest [`KEPT_INPUTS`] cells).
    fn keep_input(&self, id: u32, input: Vec<f32>) {
        let mut kept = self.inputs.borrow_mut();
        kept.insert(id, input);
        while kept.len() > KEPT_INPUTS {
            kept.pop_first();
        }
    }

    /// One timed forward pass of each network alone (the peer benchmark).
    pub async fn time_networks(
        &self,
        batch: usize,
        now: fn() -> f64,
    ) -> Result<(f64, f64), String> {
        self.analyzer
            .time_networks(batch.clamp(1, 64), now)
            .await
            .map_err(|e| e.to_string())
    }

    /// Analyse one uploaded file, with or without stain normalisation. Returns the message
    /// and its byte attachments (the cropped cell as PNG, the label map, a thumbnail PNG, and
    /// the image the networks saw when its colours were corrected).
    pub async fn analyse(
        &self,
        id: u32,
        name: String,
        stain: Option<bool>,
        bytes: &[u8],
    ) -> (FromWorker, Vec<Vec<u8>>) {
        let t0 = now_ms();
        let image = match preprocess::decode(bytes) {
            Ok(img) => img,
            Err(e) => {
                let reason = e.to_string();
                return (FromWorker::Refused { id, name, reason }, vec![]);
            }
        };
        let decode_ms = now_ms() - t0;
        let (width, height) = image.dimensions();
        let settings = self.settings(stain);
        let cell = match self.analyzer.analyse_with(&image, settings, now_ms).await {
            Ok(cell) => cell,
            Err(e) => {
                let reason = e.to_string();
                return (FromWorker::Refused { id, name, reason }, vec![]);
            }
        };
        self.keep_input(id, cell.attribute_input.clone());
        let (report, attachments) = self.report(id, name, (width, height), decode_ms, cell);
        (FromWorker::Analysed(report), attachments)
    }

    /// What the page gets of an analysed cell: its report, and the attachments `Analysed`
    /// names (the crop, the label map, a thumbnail, the recoloured square when there is one).
    fn report(
        &self,
        id: u32,
        name: String,
        (width, height): (u32, u32),
        decode_ms: f64,
        cell: wbc_nets::CellAnalysis,
    ) -> (CellReport, Vec<Vec<u8>>) {
        let png = display_png(&cell.shown, DISPLAY_MAX_SIDE).unwrap_or_default();
        let thumbnail = display_png(&cell.shown, THUMBNAIL_SIDE).unwrap_or_default();
        let normalised = cell
            .front_end
            .settings
            .recolours()
            .then(|| display_png(&cell.square, DISPLAY_MAX_SIDE))
            .flatten();
        let calibrated = self.analyzer.calibration().is_some();
        let report = CellReport {
            id,
            name,
            width,
            height,
            prediction: cell.prediction,
            features: cell.features,
            morphometry: cell.morphometry,
            preprocess_ms: decode_ms + cell.times.preprocess_ms,
            inference_ms: cell.times.inference_ms,
            segmentation_ms: cell.times.segmentation_ms,
            front_end: calibrated.then(|| FrontEndSummary {
                settings: cell.front_end.settings,
                scale: cell.front_end.scale,
                look_strength: cell.front_end.restain.strength(),
            }),
            familiarity: cell.familiarity,
            measured_type: cell.measured_type,
            normalised_image: normalised.is_some(),
        };
        let mut attachments = vec![png, cell.labels.into_raw(), thumbnail];
        attachments.extend(normalised);
        (report, attachments)
    }

    /// "Show me": the cell analysed from its file, its square edited as its label map guides
    /// (`wbc_core::edit`), and the edited square analysed again with the same settings.
    /// Returns the edited cell's report, its square as PNG and its label map.
    pub async fn edit(
        &self,
        id: u32,
        edit: &wbc_core::edit::Edit,
        stain: Option<bool>,
        file: &[u8],
    ) -> Result<(CellReport, Vec<Vec<u8>>), String> {
        if file.is_empty() {
            return Err("this cell's file is no longer held by the page; load it again".into());
        }
        let t0 = now_ms();
        let image = preprocess::decode(file).map_err(|e| e.to_string())?;
        let settings = self.settings(stain);
        let cell = self
            .analyzer
            .analyse_with(&image, settings, now_ms)
            .await
            .map_err(|e| e.to_string())?;
        let edited = wbc_core::edit::apply(&cell.shown, &cell.labels, edit);
        let again = self
            .analyzer
            .analyse_with(&edited, settings, now_ms)
            .await
            .map_err(|e| e.to_string())?;
        let size = edited.dimensions();
        let (report, attachments) = self.report(id, String::new(), size, now_ms() - t0, again);
        Ok((report, attachments.into_iter().take(2).collect()))
    }
}

/// The square crop as PNG, shrunk to at most `side` so the page does not hold huge images.
fn display_png(square: &RgbImage, side: u32) -> Option<Vec<u8>> {
    let shown = if square.width() > side {
        imageops::resize(square, side, side, imageops::FilterType::Triangle)
    } else {
        square.clone()
    };
    let mut out = Cursor::new(Vec::new());
    shown.write_to(&mut out, ImageFormat::Png).ok()?;
    Some(out.into_inner())
}
