//! The page: takes cell images (picker, drag-and-drop, paste), sends them to the inference
//! worker, and shows every analysed cell. A refused file shows a message and nothing else
//! changes: cells already analysed stay.

use crate::components::{cell_panel::CellPanel, drop_zone::DropZone, header::Header};
use crate::protocol::{FromWorker, ToWorker};
use leptos::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wbc_core::cbm::Cbm;
use wbc_core::counterfactual::ReferenceIndex;
use wbc_core::morphometry::Morphometry;
use wbc_core::preprocess::MAX_FILE_BYTES;
use wbc_nets::CellPrediction;
use web_sys::{File, MessageEvent, Worker, WorkerOptions, WorkerType};

/// One analysed cell as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CellView {
    pub id: u32,
    pub name: String,
    /// Object URL of the cropped cell (PNG).
    pub image_url: String,
    pub width: u32,
    pub height: u32,
    pub prediction: CellPrediction,
    /// Pooled encoder features (L2-normalised), for counterfactual retrieval.
    pub features: Arc<Vec<f32>>,
    /// Label map, `SEGMENTATION_SIDE`² bytes.
    pub labels: Arc<Vec<u8>>,
    pub morphometry: Morphometry,
    pub preprocess_ms: f64,
    pub inference_ms: f64,
    pub segmentation_ms: f64,
    /// File chosen → answer back in the page (ms): reading, both transfers and the worker.
    pub round_trip_ms: f64,
    /// Page open → this cell's answer arrived (ms).
    pub answered_at_ms: f64,
}

/// The user's attribute edits for one cell: `Some(value index)` where edited.
pub type Edits = [Option<usize>; 11];

/// What the worker said about itself when it became ready.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineInfo {
    pub device: &'static str,
    pub fallback_reason: Option<String>,
    pub device_ms: f64,
    pub load_ms: f64,
    pub warmup_ms: f64,
    pub model_bytes: usize,
    /// Page open → engine ready (ms).
    pub ready_at_ms: f64,
    /// What draws the segmentation overlay.
    pub segmenter: String,
    pub seg_model_bytes: usize,
}

/// A class-activation map shown over a cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CamView {
    pub cell: u32,
    pub attribute: usize,
    pub value: usize,
    /// Object URL of the coloured map (PNG).
    pub url: String,
    pub ms: f64,
}

/// Everything the page state holds; signals are `Copy`, so this is passed around freely.
#[derive(Clone, Copy)]
pub struct AppState {
    pub engine: RwSignal<Option<EngineInfo>>,
    pub fatal: RwSignal<Option<String>>,
    pub error: RwSignal<Option<String>>,
    pub cells: RwSignal<Vec<CellView>>,
    pub selected: RwSignal<Option<u32>>,
    /// Show each newly analysed cell, until the user picks a cell themselves.
    pub follow_new: RwSignal<bool>,
    /// Attribute edits per cell; kept when the user looks at other cells.
    pub edits: RwSignal<BTreeMap<u32, Edits>>,
    /// The concept-bottleneck model (`models/cbm.json`), when it loaded.
    pub cbm: RwSignal<Option<Cbm>>,
    /// The reference index (`reference/index.json`, built in by `cargo xtask build
    /// --reference DIR`), when this build has one.
    pub reference: RwSignal<Option<Arc<ReferenceIndex>>>,
    /// Files sent to the worker and not answered yet.
    pub in_flight: RwSignal<Vec<String>>,
    /// The activation map on show, and the one being computed.
    pub cam: RwSignal<Option<CamView>>,
    pub cam_pending: RwSignal<Option<(u32, usize, usize)>>,
    next_id: StoredValue<u32>,
    /// When each request was made (page clock, ms), for the round-trip time.
    requested_at: StoredValue<BTreeMap<u32, f64>>,
    worker: StoredValue<Option<Worker>, LocalStorage>,
    /// Requests held until the worker is ready (model loaded); `None` once flushed.
    outbox: StoredValue<Option<Vec<js_sys::Array>>, LocalStorage>,
}

fn page_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

impl AppState {
    fn new() -> Self {
        Self {
            engine: RwSignal::new(None),
            fatal: RwSignal::new(None),
            error: RwSignal::new(None),
            cells: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            follow_new: RwSignal::new(true),
            edits: RwSignal::new(BTreeMap::new()),
            cbm: RwSignal::new(None),
            reference: RwSignal::new(None),
            in_flight: RwSignal::new(Vec::new()),
            cam: RwSignal::new(None),
            cam_pending: RwSignal::new(None),
            next_id: StoredValue::new(1),
            requested_at: StoredValue::new(BTreeMap::new()),
            worker: StoredValue::new_local(None),
            outbox: StoredValue::new_local(Some(Vec::new())),
        }
    }

    /// Start the worker (`?cpu` in the page address forces the CPU path).
    fn start_worker(self) {
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        let url = if search.contains("cpu") {
            "./worker_loader.js?cpu"
        } else {
            "./worker_loader.js"
        };
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        let worker = match Worker::new_with_options(url, &options) {
            Ok(w) => w,
            Err(e) => {
                self.fatal
                    .set(Some(format!("the analysis worker could not start: {e:?}")));
                return;
            }
        };
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            self.on_worker_message(event);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let on_error =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
                self.fatal.set(Some(format!(
                    "the analysis worker stopped: {}",
                    event.message()
                )));
                self.in_flight.set(Vec::new());
            });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        self.worker.set_value(Some(worker));
    }

    fn on_worker_message(self, event: MessageEvent) {
        let parts: js_sys::Array = event.data().unchecked_into();
        let Some(json) = parts.get(0).as_string() else {
            return;
        };
        let message: FromWorker = match serde_json::from_str(&json) {
            Ok(m) => m,
            Err(e) => {
                self.fatal
                    .set(Some(format!("unexpected message from the worker: {e}")));
                return;
            }
        };
        match message {
            FromWorker::Ready {
                device,
                fallback_reason,
                device_ms,
                load_ms,
                warmup_ms,
                model_bytes,
                segmenter,
                seg_model_bytes,
            } => {
                self.engine.set(Some(EngineInfo {
                    device: device.label(),
                    fallback_reason,
                    device_ms,
                    load_ms,
                    warmup_ms,
                    model_bytes,
                    ready_at_ms: page_ms(),
                    segmenter,
                    seg_model_bytes,
                }));
                self.flush_outbox();
            }
            FromWorker::Analysed {
                id,
                name,
                width,
                height,
                prediction,
                features,
                morphometry,
                preprocess_ms,
                inference_ms,
                segmentation_ms,
            } => {
                self.finish(&name);
                let answered_at_ms = page_ms();
                let round_trip_ms = self
                    .requested_at
                    .try_update_value(|m| m.remove(&id))
                    .flatten()
                    .map_or(0.0, |t| answered_at_ms - t);
                let image_url = parts
                    .get(1)
                    .dyn_into::<js_sys::Uint8Array>()
                    .ok()
                    .and_then(|bytes| png_object_url(&bytes))
                    .unwrap_or_default();
                let labels = parts
                    .get(2)
                    .dyn_into::<js_sys::Uint8Array>()
                    .map(|a| a.to_vec())
                    .unwrap_or_default();
                self.cells.update(|cells| {
                    cells.push(CellView {
                        id,
                        name,
                        image_url,
                        width,
                        height,
                        prediction,
                        features: Arc::new(features),
                        labels: Arc::new(labels),
                        morphometry,
                        preprocess_ms,
                        inference_ms,
                        segmentation_ms,
                        round_trip_ms,
                        answered_at_ms,
                    })
                });
                if self.follow_new.get_untracked() || self.selected.get_untracked().is_none() {
                    self.selected.set(Some(id));
                }
                self.error.set(None);
            }
            FromWorker::Explained {
                id,
                attribute,
                value,
                side,
                ms,
            } => {
                let heat = parts
                    .get(1)
                    .dyn_into::<js_sys::Uint8Array>()
                    .map(|a| a.to_vec())
                    .unwrap_or_default();
                // Only the latest request is shown; a late answer to an older one is dropped.
                if self.cam_pending.get_untracked() == Some((id, attribute, value)) {
                    self.cam_pending.set(None);
                    if let Some(url) = crate::components::overlay::heat_png(&heat, side) {
                        if let Some(old) = self.cam.get_untracked() {
                            let _ = web_sys::Url::revoke_object_url(&old.url);
                        }
                        self.cam.set(Some(CamView {
                            cell: id,
                            attribute,
                            value,
                            url,
                            ms,
                        }));
                    }
                }
            }
            FromWorker::ExplainFailed { reason, .. } => {
                self.cam_pending.set(None);
                self.error.set(Some(format!(
                    "the activation map could not be made: {reason}"
                )));
            }
            FromWorker::Refused { name, reason, .. } => {
                self.finish(&name);
                self.error.set(Some(format!("{name}: {reason}")));
            }
            FromWorker::Fatal { message } => {
                self.flush_outbox();
                self.fatal.set(Some(message));
            }
        }
    }

    /// Send the requests held while the worker was starting.
    fn flush_outbox(self) {
        let held = self
            .outbox
            .try_update_value(|o| o.take())
            .flatten()
            .unwrap_or_default();
        for parts in held {
            self.send(&parts);
        }
    }

    fn send(self, parts: &js_sys::Array) -> bool {
        self.worker
            .with_value(|w| w.as_ref().map(|w| w.post_message(parts).is_ok()))
            .unwrap_or(false)
    }

    /// Ask the worker where the network looked for `value` of `attribute` on cell `id`.
    pub fn request_cam(self, id: u32, attribute: usize, value: usize) {
        let request = ToWorker::Explain {
            id,
            attribute,
            value,
        };
        let parts = js_sys::Array::of1(&JsValue::from_str(
            &serde_json::to_string(&request).unwrap_or_default(),
        ));
        self.cam_pending.set(Some((id, attribute, value)));
        if !self.send(&parts) {
            self.cam_pending.set(None);
            self.error
                .set(Some("the analysis worker is not running".to_string()));
        }
    }

    /// Hide the activation map.
    pub fn clear_cam(self) {
        if let Some(old) = self.cam.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old.url);
        }
        self.cam.set(None);
        self.cam_pending.set(None);
    }

    fn finish(self, name: &str) {
        self.in_flight.update(|v| {
            if let Some(i) = v.iter().position(|n| n == name) {
                v.remove(i);
            }
        });
    }

    /// Fetch the concept-bottleneck model and the reference index. The page works without
    /// either (no CBM panel; counterfactuals among loaded cells only).
    fn load_extras(self) {
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(text) = fetch_text("models/cbm.json").await {
                match serde_json::from_str::<Cbm>(&text) {
                    Ok(cbm) => self.cbm.set(Some(cbm)),
                    Err(e) => self
                        .error
                        .set(Some(format!("models/cbm.json could not be read: {e}"))),
                }
            }
            if let Some(text) = fetch_text("reference/index.json").await {
                match serde_json::from_str::<ReferenceIndex>(&text) {
                    Ok(index) => self.reference.set(Some(Arc::new(index))),
                    Err(e) => self
                        .error
                        .set(Some(format!("reference/index.json could not be read: {e}"))),
                }
            }
        });
    }

    /// Take files from any source (picker, drop, paste).
    pub fn add_files(self, files: Vec<File>) {
        self.follow_new.set(true);
        for file in files {
            let name = file.name();
            let size = file.size() as usize;
            if size > MAX_FILE_BYTES {
                self.error.set(Some(format!(
                    "{name}: the file is {} MB; images over {} MB are refused",
                    size / (1024 * 1024),
                    MAX_FILE_BYTES / (1024 * 1024)
                )));
                continue;
            }
            let id = self.next_id.get_value();
            self.next_id.set_value(id + 1);
            self.requested_at.update_value(|m| {
                m.insert(id, page_ms());
            });
            self.in_flight.update(|v| v.push(name.clone()));
            wasm_bindgen_futures::spawn_local(async move {
                let buffer = match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
                    Ok(b) => b,
                    Err(_) => {
                        self.finish(&name);
                        self.error
                            .set(Some(format!("{name}: the file could not be read")));
                        return;
                    }
                };
                let request = ToWorker::Analyse {
                    id,
                    name: name.clone(),
                };
                let parts = js_sys::Array::new();
                parts.push(&JsValue::from_str(
                    &serde_json::to_string(&request).unwrap_or_default(),
                ));
                parts.push(&js_sys::Uint8Array::new(&buffer));
                // Until the worker says Ready its message handler may not exist yet (the
                // module is still compiling) and a message posted then is lost: hold it.
                let held = self
                    .outbox
                    .try_update_value(|o| match o {
                        Some(queue) => {
                            queue.push(parts.clone());
                            true
                        }
                        None => false,
                    })
                    .unwrap_or(false);
                if !held && !self.send(&parts) {
                    self.finish(&name);
                    self.error
                        .set(Some(format!("{name}: the analysis worker is not running")));
                }
            });
        }
    }
}

/// The text of a same-origin file, or `None` when it is missing or unreadable.
async fn fetch_text(url: &str) -> Option<String> {
    let window = web_sys::window()?;
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url))
        .await
        .ok()?
        .dyn_into::<web_sys::Response>()
        .ok()?;
    if !response.ok() {
        return None;
    }
    wasm_bindgen_futures::JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()
}

/// An object URL for PNG bytes (shown by an `<img>`; nothing leaves the page).
pub fn png_object_url(bytes: &js_sys::Uint8Array) -> Option<String> {
    let parts = js_sys::Array::of1(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    state.start_worker();
    state.load_extras();
    let selected_cell = move || {
        let id = state.selected.get()?;
        state
            .cells
            .with(|cells| cells.iter().find(|c| c.id == id).cloned())
    };
    view! {
        <Header/>
        <main>
            <DropZone/>
            <Show when=move || state.fatal.get().is_some()>
                <p class="fatal" role="alert" data-testid="fatal">{move || state.fatal.get()}</p>
            </Show>
            <p class="error" role="alert" data-testid="error"
                style:display=move || if state.error.get().is_some() { "block" } else { "none" }>
                {move || state.error.get()}
                <button class="dismiss" on:click=move |_| state.error.set(None) aria-label="Dismiss">"×"</button>
            </p>
            <CellList/>
            {move || selected_cell().map(|cell| view! { <CellPanel cell=cell/> })}
        </main>
    }
}

/// Thumbnails of every analysed cell; clicking one shows it.
#[component]
fn CellList() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <ul class="cell-list" data-testid="cell-list">
            <For each=move || state.cells.get() key=|c| c.id let:cell>
                {
                    let id = cell.id;
                    view! {
                        <li class:selected=move || state.selected.get() == Some(id)>
                            <button on:click=move |_| { state.follow_new.set(false); state.selected.set(Some(id)); } title=cell.name.clone()>
                                <img src=cell.image_url.clone() alt=cell.name.clone()/>
                            </button>
                        </li>
                    }
                }
            </For>
        </ul>
    }
}
