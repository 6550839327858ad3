//! What the page knows and the actions that change it. Components read these signals and call
//! these methods; only this module talks to the worker client.

mod faults;
mod kept;
mod standby;

pub use standby::Gpu;

use crate::worker_client::WorkerClient;
use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use wasm_bindgen::{JsCast, JsValue};
use wbc_core::cbm::Cbm;
use wbc_core::confidence::Familiarity;
use wbc_core::counterfactual::ReferenceIndex;
use wbc_core::cross_check::Rule;
use wbc_core::measured_type::MeasuredTypeAnswer;
use wbc_core::morphometry::Morphometry;
use wbc_core::preprocess::MAX_FILE_BYTES;
use wbc_core::quiz::Score;
use wbc_core::{audit, table, CellPrediction};
use wbc_messages::{CellReport, EngineReport, FromWorker, FrontEndSummary, ToWorker};
use web_sys::{Blob, File};

/// One analysed cell as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CellView {
    pub id: u32,
    pub name: String,
    /// Object URL of the cropped cell (PNG), in the image's own colours; empty while the
    /// cell holds no detail.
    pub image_url: String,
    /// Object URL of a small thumbnail (PNG), kept for every cell.
    pub thumb_url: String,
    /// Whether the full crop and label map are held: only for the cell on show and the
    /// latest few, so memory stays flat in the number of cells (see [`KEEP_DETAIL`]).
    pub detail: bool,
    /// Object URL of the square as the networks saw it (colours corrected), when it differs.
    pub normalised_url: Option<String>,
    /// What the front end did; `None` without a calibration card.
    pub front_end: Option<FrontEndSummary>,
    /// The familiarity check; `None` without a calibration card.
    pub familiarity: Option<Familiarity>,
    /// The network's and the measured type's opinions on the type (the prediction's type is
    /// their joining); `None` without the measured-type card.
    pub measured_type: Option<MeasuredTypeAnswer>,
    /// How many times this cell has been analysed again (the stain toggle): its panel is
    /// rebuilt when this changes.
    pub revision: u32,
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

impl CellView {
    /// A cell from the worker's report; it holds its detail (crop and label map) when
    /// `image_url` is set (a cell restored from storage has only its thumbnail).
    fn from_report(
        r: CellReport,
        image_url: String,
        thumb_url: String,
        normalised_url: Option<String>,
        labels: Vec<u8>,
        round_trip_ms: f64,
        answered_at_ms: f64,
    ) -> Self {
        CellView {
            id: r.id,
            name: r.name,
            detail: !image_url.is_empty(),
            image_url,
            thumb_url,
            normalised_url,
            front_end: r.front_end,
            familiarity: r.familiarity,
            measured_type: r.measured_type,
            revision: 0,
            width: r.width,
            height: r.height,
            prediction: r.prediction,
            features: Arc::new(r.features),
            labels: Arc::new(labels),
            morphometry: r.morphometry,
            preprocess_ms: r.preprocess_ms,
            inference_ms: r.inference_ms,
            segmentation_ms: r.segmentation_ms,
            round_trip_ms,
            answered_at_ms,
        }
    }
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
    /// Measurement-vs-attribute rules (thresholds from the segmentation card).
    pub rules: Vec<Rule>,
    /// Whether the worker has a front end (a calibration card).
    pub front_end: bool,
    /// Both networks once on a cell, warm (ms), on WebGPU and on the CPU, when the page
    /// compared them before choosing its device.
    pub compared: Option<(f64, f64)>,
}

/// A class-activation map shown over a cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CamView {
    pub cell: u32,
    pub attribute: usize,
    pub value: usize,
    /// `side`² bytes, 0 = no evidence, 255 = the strongest.
    pub heat: Arc<Vec<u8>>,
    pub side: u32,
    pub ms: f64,
}

/// A cell as the analyser's table and dataset view see it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableEntry {
    pub id: u32,
    pub thumb_url: String,
    pub row: table::Row,
}

impl AsRef<table::Row> for TableEntry {
    fn as_ref(&self) -> &table::Row {
        &self.row
    }
}

/// A file the page or the worker refused, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub name: String,
    pub reason: String,
}

/// Which of the page's views is on show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageView {
    /// One cell explained: overlay, attributes, CBM, counterfactuals.
    Explorer,
    /// Every loaded cell as a row of the analyser's table.
    Table,
    /// The loaded set as a whole: attribute values per type, and errors against labels.
    Dataset,
    /// Every attribute and value in words, with example cells.
    Glossary,
    /// Name the type and attributes of labelled cells; compare with the model.
    Quiz,
}

/// Progress of the files taken in since the page last went idle.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Batch {
    /// Files taken in (queued, in flight or answered).
    pub total: usize,
    /// Files answered (a cell or a refusal).
    pub done: usize,
    /// Page clock when the batch began (ms).
    pub started_ms: f64,
}

impl Batch {
    pub fn running(&self) -> bool {
        self.done < self.total
    }

    /// Cells per second so far, and seconds left at that rate.
    pub fn rate(&self, now_ms: f64) -> Option<(f64, f64)> {
        let seconds = (now_ms - self.started_ms) / 1e3;
        (self.done > 0 && seconds > 0.0).then(|| {
            let rate = self.done as f64 / seconds;
            (rate, (self.total - self.done) as f64 / rate)
        })
    }
}

/// Cells besides the one on show that keep their full crop and label map; the others keep
/// a thumbnail and their results, and are analysed again when opened.
const KEEP_DETAIL: usize = 8;

/// Requests in the worker's hands at once: enough to keep it busy, few enough that a large
/// folder is not read into memory all at once and a cancel takes effect quickly.
const MAX_IN_FLIGHT: usize = 4;

/// Everything the page state holds; signals are `Copy`, so this is passed around freely.
#[derive(Clone, Copy)]
pub struct AppState {
    pub engine: RwSignal<Option<EngineInfo>>,
    pub fatal: RwSignal<Option<String>>,
    pub error: RwSignal<Option<String>>,
    /// Every file refused this session, with the reason: in a batch, a refusal must not be
    /// wiped by the next good cell (`error` shows only the latest message).
    pub refused: RwSignal<Vec<Refusal>>,
    /// What happened to the analysis engine this session (the GPU lost, the worker
    /// restarted): kept on show in the header, unlike `error`, which the next cell clears.
    pub engine_note: RwSignal<Option<String>>,
    /// Presentation mode: full screen, large type, keys step through the cells.
    pub presenting: RwSignal<bool>,
    /// Whether the app is stored for use without a network (the service worker).
    pub offline: RwSignal<crate::offline::Offline>,
    pub cells: RwSignal<Vec<CellView>>,
    pub selected: RwSignal<Option<u32>>,
    /// Show the newly analysed cell (the first of a batch), until the user picks a cell themselves.
    follow_new: RwSignal<bool>,
    /// Attribute edits per cell; kept when the user looks at other cells.
    pub edits: RwSignal<BTreeMap<u32, Edits>>,
    /// The concept-bottleneck model (`models/cbm.json`), when it loaded.
    pub cbm: RwSignal<Option<Cbm>>,
    /// The reference index (`reference/index.json`, built in by `cargo xtask build
    /// --reference DIR`), when this build has one.
    pub reference: RwSignal<Option<Arc<ReferenceIndex>>>,
    /// Requests sent to the worker and not answered yet: id → file name.
    pub in_flight: RwSignal<BTreeMap<u32, String>>,
    /// The activation map on show, and the one being computed.
    pub cam: RwSignal<Option<CamView>>,
    pub cam_pending: RwSignal<Option<(u32, usize, usize)>>,
    /// Whether the front end normalises the stain (the user's toggle).
    /// `None` until the worker says the calibration card's default (requests sent before
    /// then let the worker follow the card) or the user sets it.
    pub stain: RwSignal<Option<bool>>,
    pub view: RwSignal<PageView>,
    /// The analyser table's filter and sort order (kept while the user looks at a cell).
    pub table_filter: RwSignal<table::Filter>,
    pub table_sort: RwSignal<(table::SortKey, bool)>,
    pub batch: RwSignal<Batch>,
    /// The attribute the glossary should show first ("what is this?").
    pub glossary_focus: RwSignal<Option<usize>>,
    /// A labels file the user loaded for the dataset view: its name and the labels by
    /// file name.
    pub labels: RwSignal<Option<(String, Arc<BTreeMap<String, audit::Labels>>)>>,
    /// The quiz score (learner and model), kept across reloads.
    pub quiz_score: RwSignal<Score>,
    /// Whether the stored session has been read back (until then nothing is written, so a
    /// default value cannot overwrite a stored one).
    restored: RwSignal<bool>,
    /// What the page says about the stored session (restored, cleared, or why it is not kept).
    pub session_note: RwSignal<Option<String>>,
    /// Each cell's key in the stored session (ids are per page load; keys last).
    keys: StoredValue<BTreeMap<u32, String>>,
    /// Page clock origin (ms since 1970), the first part of each new key.
    opened_at: StoredValue<u64>,
    /// Requests in flight when the session was cleared: their answers are dropped.
    forgotten: StoredValue<BTreeSet<u32>>,
    /// Files waiting for a place in flight (see [`MAX_IN_FLIGHT`]).
    queue: StoredValue<VecDeque<(u32, File)>, LocalStorage>,
    /// Cells in the order they were last answered, latest last (for [`KEEP_DETAIL`]).
    recent: StoredValue<VecDeque<u32>>,
    /// The files of the analysed cells, so a cell can be analysed again with another setting.
    files: StoredValue<BTreeMap<u32, File>, LocalStorage>,
    next_id: StoredValue<u32>,
    /// When each request was made (page clock, ms), for the round-trip time.
    requested_at: StoredValue<BTreeMap<u32, f64>>,
    client: StoredValue<Option<WorkerClient>, LocalStorage>,
    /// Which worker is current (ids count up from 1; 0 is none): messages from an earlier
    /// one (crashed, its device lost, or the CPU worker WebGPU took over from) are dropped.
    current_id: StoredValue<u32>,
    /// The last worker id given out.
    worker_ids: StoredValue<u32>,
    /// Where the page is with WebGPU (`state/standby.rs`: CPU first, WebGPU behind).
    pub gpu: RwSignal<Gpu>,
    /// The WebGPU worker while it loads behind the CPU worker, and its id.
    standby: StoredValue<Option<WorkerClient>, LocalStorage>,
    standby_id: StoredValue<Option<u32>>,
    /// Whether the work kept back until the first answer has begun (see
    /// [`AppState::start_background_work`]).
    background_started: StoredValue<bool>,
    /// Run the networks on the CPU (`?cpu` in the address, or after the GPU was lost).
    force_cpu: StoredValue<bool>,
    /// Why the page chose the CPU itself, shown as the fallback reason.
    cpu_reason: StoredValue<Option<String>>,
    /// Move to WebGPU when its worker is ready without comparing speeds (`?webgpu` in the
    /// address).
    force_gpu: StoredValue<bool>,
    /// The WebGPU worker's ready report while the CPU worker is being timed (see
    /// [`AppState::compare_then_take_over`]).
    gpu_ready: StoredValue<Option<EngineReport>>,
    /// Worker crashes since a cell was last answered (a second in a row stops the page).
    crashes_in_a_row: StoredValue<u32>,
}

fn page_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

impl AppState {
    /// The state, with the worker started and the optional extras (CBM, reference index)
    /// being fetched.
    pub fn start() -> Self {
        let state = Self {
            engine: RwSignal::new(None),
            fatal: RwSignal::new(None),
            error: RwSignal::new(None),
            refused: RwSignal::new(Vec::new()),
            engine_note: RwSignal::new(None),
            presenting: RwSignal::new(false),
            offline: RwSignal::new(crate::offline::Offline::Preparing),
            cells: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            follow_new: RwSignal::new(true),
            edits: RwSignal::new(BTreeMap::new()),
            cbm: RwSignal::new(None),
            reference: RwSignal::new(None),
            in_flight: RwSignal::new(BTreeMap::new()),
            cam: RwSignal::new(None),
            cam_pending: RwSignal::new(None),
            stain: RwSignal::new(None),
            view: RwSignal::new(PageView::Explorer),
            table_filter: RwSignal::new(table::Filter::default()),
            table_sort: RwSignal::new((table::SortKey::Loaded, false)),
            batch: RwSignal::new(Batch::default()),
            glossary_focus: RwSignal::new(None),
            labels: RwSignal::new(None),
            quiz_score: RwSignal::new(Score::default()),
            restored: RwSignal::new(false),
            session_note: RwSignal::new(None),
            keys: StoredValue::new(BTreeMap::new()),
            opened_at: StoredValue::new(js_sys::Date::now() as u64),
            forgotten: StoredValue::new(BTreeSet::new()),
            queue: StoredValue::new_local(VecDeque::new()),
            recent: StoredValue::new(VecDeque::new()),
            files: StoredValue::new_local(BTreeMap::new()),
            next_id: StoredValue::new(1),
            requested_at: StoredValue::new(BTreeMap::new()),
            client: StoredValue::new_local(None),
            current_id: StoredValue::new(0),
            worker_ids: StoredValue::new(0),
            gpu: RwSignal::new(Gpu::Off),
            standby: StoredValue::new_local(None),
            standby_id: StoredValue::new(None),
            background_started: StoredValue::new(false),
            force_cpu: StoredValue::new(in_address("cpu")),
            cpu_reason: StoredValue::new(None),
            force_gpu: StoredValue::new(in_address("webgpu")),
            gpu_ready: StoredValue::new(None),
            crashes_in_a_row: StoredValue::new(0),
        };
        state.plan_gpu();
        state.start_worker();
        state.load_extras();
        state.restore();
        state.keep_settings();
        state
    }

    /// Start a worker (the CPU-only build when `cpu`) under a new id. Its messages go to
    /// [`AppState::receive`] while it is the current worker and to the standby's handler while
    /// it is the WebGPU worker loading behind (`state/standby.rs`); once it is neither they
    /// are dropped. The caller makes it one or the other.
    fn spawn_worker(self, cpu: bool) -> (u32, Result<WorkerClient, String>) {
        self.worker_ids.update_value(|n| *n += 1);
        let id = self.worker_ids.get_value();
        let current = move || self.current_id.get_value() == id;
        let standby = move || self.standby_id.get_value() == Some(id);
        // A panic posts `Crashed` (naming the cell) just before the error event: give that
        // message a moment to arrive, so the error event alone does not restart the worker
        // with the crashing cell still in its queue.
        let on_failure = move |reason: String| {
            let later = wasm_bindgen::closure::Closure::once_into_js(move || {
                if standby() {
                    self.standby_failed(format!("the WebGPU worker stopped: {reason}"));
                } else if current() {
                    self.worker_stopped(None, reason);
                }
            });
            if let Some(w) = web_sys::window() {
                let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                    later.unchecked_ref(),
                    250,
                );
            }
        };
        let started = WorkerClient::start(
            cpu,
            move |message, attachments| {
                if current() {
                    self.receive(message, attachments)
                } else if standby() {
                    self.receive_standby(message)
                }
            },
            on_failure,
        );
        (id, started)
    }

    /// Start the current worker: the CPU-only build unless WebGPU has taken over (`?cpu` in
    /// the page address keeps the page on the CPU).
    fn start_worker(self) {
        let (id, started) = self.spawn_worker(self.cpu_worker());
        self.current_id.set_value(id);
        match started {
            Ok(client) => self.client.set_value(Some(client)),
            Err(reason) => self.fatal.set(Some(reason)),
        }
    }

    /// Work that must not compete with the first cell: storing the build for offline use
    /// (which downloads it all again) and starting the WebGPU worker behind the CPU one. Both
    /// begin once the worker is ready and idle, or has answered a cell (`answered`).
    fn start_background_work(self, answered: bool) {
        if !answered && !self.in_flight.with_untracked(|m| m.is_empty()) {
            return;
        }
        if !self.background_started.get_value() {
            self.background_started.set_value(true);
            crate::offline::register(self.offline);
        }
        self.start_standby_when_due();
    }

    fn send(self, request: ToWorker, attachments: Vec<js_sys::Uint8Array>) -> bool {
        self.client
            .try_update_value(|c| c.as_mut().map(|c| c.send(request, attachments)))
            .flatten()
            .unwrap_or(false)
    }

    fn flush(self) {
        self.client.update_value(|c| {
            if let Some(c) = c {
                c.flush()
            }
        });
    }

    /// A reply from the worker.
    fn receive(self, message: FromWorker, attachments: Vec<js_sys::Uint8Array>) {
        let bytes = |i: usize| attachments.get(i).map(|a| a.to_vec()).unwrap_or_default();
        match message {
            FromWorker::Ready(mut report) => {
                if let Some(settings) = report.front_end {
                    // The user's choice, once made, stands.
                    if self.stain.get_untracked().is_none() {
                        self.stain.set(Some(settings.stain));
                    }
                }
                if let Some(reason) = self.cpu_reason.get_value() {
                    report.fallback_reason = Some(reason);
                }
                self.engine.set(Some(engine_info(report)));
                self.flush();
                // A CPU worker started again while WebGPU's speed was being compared: time
                // this one instead.
                if self.gpu_ready.with_value(|r| r.is_some()) {
                    self.time_cpu_worker();
                }
                self.start_background_work(false);
            }
            FromWorker::Analysed(report) if self.forget(report.id) => {}
            FromWorker::Analysed(report) => {
                let image_url = attachments
                    .first()
                    .and_then(png_object_url)
                    .unwrap_or_default();
                let thumb = attachments.get(2).and_then(png_blob);
                let thumb_url = thumb.as_ref().and_then(object_url).unwrap_or_default();
                let normalised_url = if report.normalised_image {
                    attachments.get(3).and_then(png_object_url)
                } else {
                    None
                };
                self.add_cell(
                    report,
                    image_url,
                    thumb,
                    thumb_url,
                    normalised_url,
                    bytes(1),
                );
                self.start_background_work(true);
            }
            FromWorker::Explained {
                id,
                attribute,
                value,
                side,
                ms,
            } => {
                // Only the latest request is shown; a late answer to an older one is dropped.
                if self.cam_pending.get_untracked() == Some((id, attribute, value)) {
                    self.cam_pending.set(None);
                    self.cam.set(Some(CamView {
                        cell: id,
                        attribute,
                        value,
                        heat: Arc::new(bytes(0)),
                        side,
                        ms,
                    }));
                }
            }
            FromWorker::ExplainFailed { reason, .. } => {
                self.cam_pending.set(None);
                self.error.set(Some(format!(
                    "the activation map could not be made: {reason}"
                )));
            }
            FromWorker::Refused { id, .. } if self.forget(id) => {}
            FromWorker::Refused { id, name, reason } => {
                self.finish(id);
                // A file that never became a cell is not kept for re-analysis.
                if self.cell_untracked(id).is_none() {
                    self.files.update_value(|f| {
                        f.remove(&id);
                    });
                }
                self.refuse(name, reason);
                self.start_background_work(true);
            }
            FromWorker::Crashed { id, message } => self.worker_stopped(id, message),
            FromWorker::DeviceLost { reason } => self.device_lost(reason),
            // The CPU worker's speed, asked for when the WebGPU worker was ready.
            FromWorker::NetworkTimes {
                attribute_ms,
                segmentation_ms,
            } => self.cpu_timed(attribute_ms + segmentation_ms),
            FromWorker::Fatal { message } => {
                crate::offline::register(self.offline);
                // Held requests are sent so the worker answers each with the reason.
                self.flush();
                self.fatal.set(Some(message));
            }
        }
    }

    fn add_cell(
        self,
        r: CellReport,
        image_url: String,
        thumb: Option<Blob>,
        thumb_url: String,
        normalised_url: Option<String>,
        labels: Vec<u8>,
    ) {
        self.crashes_in_a_row.set_value(0);
        self.finish(r.id);
        let answered_at_ms = page_ms();
        let round_trip_ms = self
            .requested_at
            .try_update_value(|m| m.remove(&r.id))
            .flatten()
            .map_or(0.0, |t| answered_at_ms - t);
        self.keep_cell(&r, thumb, round_trip_ms);
        let id = r.id;
        self.cells.update(|cells| {
            let view = CellView::from_report(
                r,
                image_url,
                thumb_url,
                normalised_url,
                labels,
                round_trip_ms,
                answered_at_ms,
            );
            // A cell analysed again replaces itself where it stands; its edits stay.
            match cells.iter_mut().find(|c| c.id == id) {
                Some(old) => {
                    release(old);
                    let _ = web_sys::Url::revoke_object_url(&old.thumb_url);
                    *old = CellView {
                        revision: old.revision + 1,
                        ..view
                    };
                }
                None => cells.push(view),
            }
        });
        // In a batch, only its first cell is put on show: the panel is rebuilt for the cell
        // on show, and rebuilding it for every arriving cell kept the page busy (a 60-240 ms
        // task each) and flickered too fast to read. The others arrive as thumbnails.
        let first_of_batch = self.batch.with_untracked(|b| b.total <= 1 || b.done <= 1);
        if (self.follow_new.get_untracked() && first_of_batch)
            || self.selected.get_untracked().is_none()
        {
            self.selected.set(Some(id));
        }
        self.error.set(None);
        self.recent.update_value(|r| {
            r.retain(|&x| x != id);
            r.push_back(id);
        });
        self.keep_detail_bounded();
    }

    /// Drop the crop and label map of cells that are neither on show nor among the latest
    /// [`KEEP_DETAIL`] answered.
    fn keep_detail_bounded(self) {
        let shown = self.selected.get_untracked();
        let drop: Vec<u32> = self
            .recent
            .try_update_value(|r| {
                let mut drop = Vec::new();
                while r.len() > KEEP_DETAIL {
                    drop.extend(r.pop_front());
                }
                drop
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|&id| Some(id) != shown)
            .collect();
        if drop.is_empty() {
            return;
        }
        // Untracked: the list and table read thumbnails and results, which stay.
        self.cells.update_untracked(|cells| {
            for c in cells
                .iter_mut()
                .filter(|c| drop.contains(&c.id) && c.detail)
            {
                release(c);
                c.image_url.clear();
                c.normalised_url = None;
                c.labels = Arc::new(Vec::new());
                c.detail = false;
            }
        });
    }

    /// Request `id` is answered (or failed before reaching the worker): count it and let
    /// the next queued file in.
    fn finish(self, id: u32) {
        self.settle(id);
        self.pump();
    }

    /// Count request `id` as answered, without sending the next.
    fn settle(self, id: u32) {
        let mut was_in_flight = false;
        self.in_flight.update(|m| {
            was_in_flight = m.remove(&id).is_some();
        });
        if was_in_flight {
            self.batch.update(|b| b.done = (b.done + 1).min(b.total));
        }
    }

    /// Send queued files while fewer than [`MAX_IN_FLIGHT`] are in flight.
    fn pump(self) {
        while self.in_flight.with_untracked(|m| m.len()) < MAX_IN_FLIGHT {
            let Some((id, file)) = self.queue.try_update_value(|q| q.pop_front()).flatten() else {
                break;
            };
            self.request(id, file);
        }
    }

    /// Queue files for analysis as cells `id` (ahead of the queue with `first`: a cell the
    /// user opened); a new batch starts when the last one is done.
    fn enqueue(self, files: Vec<(u32, File)>, first: bool) {
        if files.is_empty() {
            return;
        }
        let now = page_ms();
        self.batch.update(|b| {
            if !b.running() {
                *b = Batch {
                    started_ms: now,
                    ..Batch::default()
                };
            }
            b.total += files.len();
        });
        self.queue.update_value(|q| {
            if first {
                for f in files.into_iter().rev() {
                    q.push_front(f);
                }
            } else {
                q.extend(files)
            }
        });
        self.pump();
    }

    /// Drop the files not sent yet; cells already analysed, and those in flight, stay.
    pub fn cancel(self) {
        let dropped: Vec<u32> = self
            .queue
            .try_update_value(|q| q.drain(..).map(|(id, _)| id).collect())
            .unwrap_or_default();
        self.files.update_value(|f| {
            for id in &dropped {
                if self
                    .cells
                    .with_untracked(|c| !c.iter().any(|c| c.id == *id))
                {
                    f.remove(id);
                }
            }
        });
        self.batch
            .update(|b| b.total = b.total.saturating_sub(dropped.len()));
    }

    /// Show cell `id` in the explorer (from the table: back returns to it).
    pub fn open(self, id: u32) {
        self.select(id);
        self.view.set(PageView::Explorer);
    }

    /// The table's rows: every loaded cell, with the CBM's type when a CBM is loaded.
    pub fn rows(self) -> Vec<TableEntry> {
        let cbm = self.cbm.get();
        self.cells.with(|cells| {
            cells
                .iter()
                .map(|c| TableEntry {
                    id: c.id,
                    thumb_url: c.thumb_url.clone(),
                    row: table::Row::new(
                        c.name.clone(),
                        c.prediction.clone(),
                        cbm.as_ref(),
                        Some(c.morphometry.clone()),
                        c.familiarity.as_ref(),
                    ),
                })
                .collect()
        })
    }

    /// Read a labels CSV for the dataset view; a bad file leaves the loaded labels as
    /// they were and says what is wrong.
    pub fn load_labels(self, file: File) {
        let name = file.name();
        wasm_bindgen_futures::spawn_local(async move {
            let text = wasm_bindgen_futures::JsFuture::from(file.text())
                .await
                .ok()
                .and_then(|t| t.as_string());
            let Some(text) = text else {
                self.error
                    .set(Some(format!("{name}: the file could not be read")));
                return;
            };
            match audit::parse_labels(&text) {
                Ok(labels) => self.labels.set(Some((name, Arc::new(labels)))),
                Err(e) => self.error.set(Some(format!("{name}: {e}"))),
            }
        });
    }

    /// Load the built-in sample cells (`samples/index.json`) through the same path as the
    /// user's own files.
    pub fn load_samples(self) {
        wasm_bindgen_futures::spawn_local(async move {
            let Some(index) = fetch_text("samples/index.json").await else {
                self.error
                    .set(Some("the sample cells are not part of this build".into()));
                return;
            };
            let names: Vec<String> = match serde_json::from_str::<serde_json::Value>(&index) {
                Ok(v) => v["cells"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|n| n.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                Err(e) => {
                    self.error
                        .set(Some(format!("samples/index.json could not be read: {e}")));
                    return;
                }
            };
            let mut files = Vec::new();
            for name in names {
                match fetch_file(&format!("samples/{name}"), &name).await {
                    Some(file) => files.push(file),
                    None => self
                        .error
                        .set(Some(format!("{name}: the sample cell could not be loaded"))),
                }
            }
            self.add_files(files);
        });
    }

    /// A cell by id, without tracking the cell list (a panel does not rebuild when other
    /// cells arrive).
    pub fn cell_untracked(self, id: u32) -> Option<CellView> {
        self.cells
            .with_untracked(|cells| cells.iter().find(|c| c.id == id).cloned())
    }

    /// Show cell `id`; the user chose it, so new cells no longer take over the view. A cell
    /// whose crop and label map were let go is analysed again first (ahead of any queue).
    pub fn select(self, id: u32) {
        self.follow_new.set(false);
        self.selected.set(Some(id));
        let lacks_detail = self
            .cells
            .with_untracked(|c| c.iter().any(|c| c.id == id && !c.detail));
        let waiting = self.in_flight.with_untracked(|m| m.contains_key(&id));
        if lacks_detail && !waiting {
            if let Some(file) = self.files.with_value(|f| f.get(&id).cloned()) {
                self.enqueue(vec![(id, file)], true);
            }
        }
    }

    /// Show the cell `step` places after (or before, when negative) the one on show, in the
    /// order they were loaded, wrapping around (presentation mode's next / previous).
    pub fn step_cell(self, step: isize) {
        let ids: Vec<u32> = self
            .cells
            .with_untracked(|c| c.iter().map(|c| c.id).collect());
        if ids.is_empty() {
            return;
        }
        let n = ids.len() as isize;
        let at = self
            .selected
            .get_untracked()
            .and_then(|s| ids.iter().position(|&id| id == s))
            .map_or(if step > 0 { -1 } else { 0 }, |i| i as isize);
        let next = (at + step).rem_euclid(n) as usize;
        self.select(ids[next]);
    }

    /// The edits of cell `id` (none edited when it has none).
    pub fn edits_of(self, id: u32) -> Edits {
        self.edits
            .with(|e| e.get(&id).copied().unwrap_or([None; 11]))
    }

    /// Set (or with `None` clear) the edit of attribute `k` on cell `id`.
    pub fn edit(self, id: u32, k: usize, value: Option<usize>) {
        self.edits.update(|all| {
            let e = all.entry(id).or_insert([None; 11]);
            e[k] = value;
            if e.iter().all(Option::is_none) {
                all.remove(&id);
            }
        });
        self.keep_edits(id);
    }

    /// Clear every edit of cell `id`.
    pub fn reset_edits(self, id: u32) {
        self.edits.update(|all| {
            all.remove(&id);
        });
        self.keep_edits(id);
    }

    /// Ask the worker where the network looked for `value` of `attribute` on cell `id`.
    /// The cell's file goes along: the worker that answers may not be the one that analysed
    /// the cell (WebGPU took over from the CPU, or the worker was restarted), and then it
    /// makes the network input again from the file.
    pub fn request_cam(self, id: u32, attribute: usize, value: usize) {
        self.cam_pending.set(Some((id, attribute, value)));
        let file = self.files.with_value(|f| f.get(&id).cloned());
        let stain = self.stain.get_untracked();
        wasm_bindgen_futures::spawn_local(async move {
            let mut attachments = Vec::new();
            if let Some(file) = file {
                if let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await
                {
                    attachments.push(js_sys::Uint8Array::new(&buffer));
                }
            }
            let request = ToWorker::Explain {
                id,
                attribute,
                value,
                stain,
            };
            if !self.send(request, attachments) {
                self.cam_pending.set(None);
                self.error
                    .set(Some("the analysis worker is not running".to_string()));
            }
        });
    }

    /// Hide the activation map.
    pub fn clear_cam(self) {
        self.cam.set(None);
        self.cam_pending.set(None);
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

    /// Switch stain normalisation on or off and analyse every cell again with it; what the
    /// user did to the cells (edits, the selection) stays.
    pub fn set_stain(self, on: bool) {
        self.stain.set(Some(on));
        let files: Vec<(u32, File)> = self
            .files
            .with_value(|f| f.iter().map(|(id, f)| (*id, f.clone())).collect());
        self.enqueue(files, false);
    }

    /// Read a file and ask the worker to analyse it as cell `id`.
    fn request(self, id: u32, file: File) {
        let name = file.name();
        self.requested_at.update_value(|m| {
            m.insert(id, page_ms());
        });
        self.in_flight.update(|m| {
            m.insert(id, name.clone());
        });
        let stain = self.stain.get_untracked();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await else {
                self.finish(id);
                self.error
                    .set(Some(format!("{name}: the file could not be read")));
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buffer);
            let request = ToWorker::Analyse {
                id,
                name: name.clone(),
                stain,
            };
            if !self.send(request, vec![bytes]) {
                self.finish(id);
                self.error
                    .set(Some(format!("{name}: the analysis worker is not running")));
            }
        });
    }

    /// A file that will not become a cell: the message names it, and it joins the session's
    /// list of refused files.
    pub fn refuse(self, name: String, reason: String) {
        self.error.set(Some(format!("{name}: {reason}")));
        self.refused.update(|r| r.push(Refusal { name, reason }));
    }

    /// Take files from any source (picker, drop, paste). A refused file shows a message and
    /// nothing else changes: cells already analysed stay.
    pub fn add_files(self, files: Vec<File>) {
        self.follow_new.set(true);
        let mut accepted = Vec::new();
        for file in files {
            let name = file.name();
            let size = file.size() as usize;
            if size > MAX_FILE_BYTES {
                self.refuse(
                    name,
                    format!(
                        "the file is {} MB; images over {} MB are refused",
                        size / (1024 * 1024),
                        MAX_FILE_BYTES / (1024 * 1024)
                    ),
                );
                continue;
            }
            let id = self.next_id.get_value();
            self.next_id.set_value(id + 1);
            self.files.update_value(|f| {
                f.insert(id, file.clone());
            });
            accepted.push((id, file));
        }
        self.enqueue(accepted, false);
    }
}

/// Whether the page's query string names `switch` (`?cpu`, `?webgpu`).
fn in_address(switch: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .is_some_and(|q| wbc_messages::query_has(&q, switch))
}

fn engine_info(r: EngineReport) -> EngineInfo {
    EngineInfo {
        device: r.device.label(),
        fallback_reason: r.fallback_reason,
        device_ms: r.device_ms,
        load_ms: r.load_ms,
        warmup_ms: r.warmup_ms,
        model_bytes: r.model_bytes,
        ready_at_ms: page_ms(),
        segmenter: r.segmenter,
        seg_model_bytes: r.seg_model_bytes,
        rules: r.rules,
        front_end: r.front_end.is_some(),
        compared: None,
    }
}

/// A same-origin file's response, or `None` when it is missing (or the fetch failed). A
/// development server (`trunk serve`) answers a missing file with the page itself and status
/// 200: an HTML answer for a file that is not HTML counts as missing, so an optional asset
/// that is absent is not reported as broken.
async fn fetch_ok(url: &str) -> Option<web_sys::Response> {
    let window = web_sys::window()?;
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url))
        .await
        .ok()?
        .dyn_into::<web_sys::Response>()
        .ok()?;
    let html = response
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|t| t.contains("text/html"));
    (response.ok() && !(html && !url.ends_with(".html"))).then_some(response)
}

/// The text of a same-origin file, or `None` when it is missing or unreadable.
pub(crate) async fn fetch_text(url: &str) -> Option<String> {
    let response = fetch_ok(url).await?;
    wasm_bindgen_futures::JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()
}

/// A same-origin file as a `File` named `name`, or `None` when it is missing.
async fn fetch_file(url: &str, name: &str) -> Option<File> {
    let response = fetch_ok(url).await?;
    let blob: web_sys::Blob = wasm_bindgen_futures::JsFuture::from(response.blob().ok()?)
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    let options = web_sys::FilePropertyBag::new();
    options.set_type(&blob.type_());
    File::new_with_blob_sequence_and_options(&js_sys::Array::of1(&blob), name, &options).ok()
}

/// Offer `text` as a download named `name` (nothing leaves the computer: the browser saves
/// it from memory). Returns the object URL, which stays valid for the page's life.
pub fn download(name: &str, mime: &str, text: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).ok()?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).ok()?;
    let document = web_sys::window()?.document()?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a").ok()?.dyn_into().ok()?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    Some(url)
}

/// Let go of a cell's full crop (and its recoloured twin); the thumbnail stays.
fn release(cell: &CellView) {
    for url in [Some(&cell.image_url), cell.normalised_url.as_ref()]
        .into_iter()
        .flatten()
        .filter(|u| !u.is_empty())
    {
        let _ = web_sys::Url::revoke_object_url(url);
    }
}

/// PNG bytes as a blob.
fn png_blob(bytes: &js_sys::Uint8Array) -> Option<Blob> {
    let parts = js_sys::Array::of1(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()
}

/// An object URL for a blob (shown by an `<img>`; nothing leaves the page).
fn object_url(blob: &Blob) -> Option<String> {
    web_sys::Url::create_object_url_with_blob(blob).ok()
}

/// An object URL for PNG bytes.
fn png_object_url(bytes: &js_sys::Uint8Array) -> Option<String> {
    object_url(&png_blob(bytes)?)
}
