//! The analysis engine: the worker's whole lifecycle in one room that owns its ids. It starts
//! the worker (CPU first, WebGPU behind: [`standby`]), sends it requests and holds the queue,
//! the requests in flight and the files they came from ([`requests`]), asks it where the
//! network looked ([`cam`]), and restarts it when it dies ([`faults`]). The messages of the
//! current worker go to the page's one dispatcher (`state/dispatch.rs`), which hands each to
//! the room that owns it.

mod cam;
mod device;
mod edited;
mod faults;
mod maps;
mod queue;
mod requests;
mod show_me;
mod standby;

pub use device::Gpu;
pub use edited::{EditedView, ShowMe};
pub use maps::{Cam, CamView};
pub use queue::{Batch, Requests};

use device::Device;

use super::notices::Notices;
use super::web::page_ms;
use crate::offline::Offline;
use crate::worker_client::WorkerClient;
use leptos::prelude::*;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wbc_core::cross_check::Rule;
use wbc_messages::{EngineReport, FromWorker, ToWorker};

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
    /// Which networks these are: a profile fitted on other ones is refused.
    pub networks: Option<wbc_core::adapt::Networks>,
}

/// Where the current worker's messages go (the page's dispatcher).
pub type Handler = Rc<dyn Fn(FromWorker, Vec<js_sys::Uint8Array>)>;

#[derive(Clone, Copy)]
pub struct Engine {
    /// The current worker's report once it is ready; `None` while it starts.
    pub info: RwSignal<Option<EngineInfo>>,
    /// Whether the app is stored for use without a network (the service worker), which is
    /// started as background work once the first cell is answered.
    pub offline: RwSignal<Offline>,
    /// The activation map on show and the one being computed.
    pub cam: Cam,
    /// "Show me": the edited cell on show and the one being made.
    pub show_me: ShowMe,
    /// The requests: queue, in flight, their files, the batch, the stain setting.
    pub requests: Requests,
    /// Where the page is with WebGPU.
    device: Device,
    pub(super) notices: Notices,
    client: StoredValue<Option<WorkerClient>, LocalStorage>,
    /// Which worker is current (ids count up from 1; 0 is none): messages from an earlier
    /// one (crashed, its device lost, or the CPU worker WebGPU took over from) are dropped.
    current_id: StoredValue<u32>,
    /// The last worker id given out.
    worker_ids: StoredValue<u32>,
    /// Worker crashes since a cell was last answered (a second in a row stops the page).
    crashes_in_a_row: StoredValue<u32>,
    /// Whether the work kept back until the first answer has begun (see
    /// [`Engine::start_background_work`]).
    background_started: StoredValue<bool>,
    handler: StoredValue<Option<Handler>, LocalStorage>,
}

impl Engine {
    /// The engine, not started yet (see [`Engine::start`]).
    pub fn new(notices: Notices) -> Self {
        Self {
            info: RwSignal::new(None),
            offline: RwSignal::new(Offline::Preparing),
            cam: Cam::new(),
            show_me: ShowMe::new(),
            requests: Requests::new(),
            device: Device::new(),
            notices,
            client: StoredValue::new_local(None),
            current_id: StoredValue::new(0),
            worker_ids: StoredValue::new(0),
            crashes_in_a_row: StoredValue::new(0),
            background_started: StoredValue::new(false),
            handler: StoredValue::new_local(None),
        }
    }

    /// Plan the device and start the first worker; its messages go to `handler`.
    pub fn start(self, handler: Handler) {
        self.handler.set_value(Some(handler));
        self.plan_gpu();
        self.start_worker();
    }

    /// Start a worker (the CPU-only build when `cpu`) under a new id. Its messages go to the
    /// handler while it is the current worker and to the standby's handler while it is the
    /// WebGPU worker loading behind ([`standby`]); once it is neither they are dropped. The
    /// caller makes it one or the other.
    fn spawn_worker(self, cpu: bool) -> (u32, Result<WorkerClient, String>) {
        self.worker_ids.update_value(|n| *n += 1);
        let id = self.worker_ids.get_value();
        let current = move || self.current_id.get_value() == id;
        let standby = move || self.device.is_standby(id);
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
                    if let Some(handler) = self.handler.with_value(Clone::clone) {
                        handler(message, attachments)
                    }
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
            Err(reason) => self.notices.fatal.set(Some(reason)),
        }
    }

    /// Work that must not compete with the first cell: storing the build for offline use
    /// (which downloads it all again) and starting the WebGPU worker behind the CPU one. Both
    /// begin once the worker is ready and idle, or has answered a cell (`answered`).
    pub fn start_background_work(self, answered: bool) {
        if !answered && !self.requests.in_flight.with_untracked(|m| m.is_empty()) {
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

    /// The current worker is ready: take the calibration card's stain default (unless the
    /// user chose), send what it holds, and begin the background work when idle.
    pub fn ready(self, mut report: EngineReport) {
        if let Some(settings) = report.front_end {
            // The user's choice, once made, stands.
            if self.requests.stain.get_untracked().is_none() {
                self.requests.stain.set(Some(settings.stain));
            }
        }
        if let Some(reason) = self.device.cpu_reason.get_value() {
            report.fallback_reason = Some(reason);
        }
        self.info.set(Some(engine_info(report)));
        self.flush();
        // A CPU worker started again while WebGPU's speed was being compared: time this one
        // instead.
        if self.device.waiting_for_cpu_time() {
            self.time_cpu_worker();
        }
        self.start_background_work(false);
    }

    /// The worker cannot go on (no model): the page stops, saying why.
    pub fn fatal(self, message: String) {
        crate::offline::register(self.offline);
        // Held requests are sent so the worker answers each with the reason.
        self.flush();
        self.notices.fatal.set(Some(message));
    }

    /// Where the page is with WebGPU (shown beside the device).
    pub fn gpu(self) -> RwSignal<Gpu> {
        self.device.gpu
    }

    /// A cell was answered: the worker is healthy again.
    fn healthy(self) {
        self.crashes_in_a_row.set_value(0);
    }
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
        networks: r.networks,
    }
}
