//! CPU first, WebGPU behind. The worker with WebGPU is four times the download of the CPU-only
//! one (CubeCL's GPU code), so the page starts the CPU-only worker, which answers the first
//! cells, and only then starts the WebGPU worker as a standby. When the standby is ready on
//! WebGPU it takes over: the CPU worker stops, and the files it had not answered go to the
//! new one (the cells already answered stay; "where?" makes its input again from the file).
//! When the standby cannot use WebGPU (no adapter, the device refused, a crash), it is
//! stopped and the CPU worker goes on, with the reason in the device's title.

use super::AppState;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wbc_messages::{ComputeDevice, EngineReport, FromWorker};

/// Where the page is with WebGPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gpu {
    /// Not used: the CPU was asked for (`?cpu`), the browser has no WebGPU, the standby
    /// could not use it, or the device was lost.
    Off,
    /// The CPU worker runs; the WebGPU worker starts once it is ready and idle, or has
    /// answered its first cell.
    Due,
    /// The WebGPU worker is loading behind the CPU worker.
    Loading,
    /// The WebGPU worker is the current one.
    On,
}

impl Gpu {
    /// Whether the page may still move to WebGPU (shown beside the device).
    pub fn pending(self) -> bool {
        matches!(self, Gpu::Due | Gpu::Loading)
    }
}

/// Why the first cells run on the CPU, shown in the device's title until WebGPU takes over.
const CPU_FIRST: &str =
    "WebGPU is loading behind the CPU worker, which answers the first cells meanwhile";

impl AppState {
    /// The plan at page open: WebGPU later when the browser has it and the CPU was not asked
    /// for.
    pub(super) fn plan_gpu(self) {
        if self.force_cpu.get_value() {
            self.gpu.set(Gpu::Off);
            return;
        }
        let has_gpu = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"gpu".into()).ok())
            .is_some_and(|g| !g.is_undefined() && !g.is_null());
        if has_gpu {
            self.gpu.set(Gpu::Due);
            self.cpu_reason.set_value(Some(CPU_FIRST.into()));
        } else {
            self.gpu.set(Gpu::Off);
            self.cpu_reason
                .set_value(Some("this browser does not offer WebGPU".into()));
        }
    }

    /// Whether a new current worker should be the CPU-only build.
    pub(super) fn cpu_worker(self) -> bool {
        self.force_cpu.get_value() || self.gpu.get_untracked() != Gpu::On
    }

    /// Start the WebGPU worker if it is due (called once the CPU worker is ready and idle,
    /// or has answered a cell, so the download and the shader compilation never delay the
    /// first cell).
    pub(super) fn start_standby_when_due(self) {
        if self.gpu.get_untracked() != Gpu::Due {
            return;
        }
        self.gpu.set(Gpu::Loading);
        wasm_bindgen_futures::spawn_local(async move {
            // A browser with `navigator.gpu` but no adapter: say so without downloading the
            // WebGPU worker.
            if let Err(reason) = adapter_available().await {
                self.standby_failed(reason);
                return;
            }
            self.start_standby();
        });
    }

    fn start_standby(self) {
        let (id, started) = self.spawn_worker(false);
        match started {
            Ok(client) => {
                self.standby_id.set_value(Some(id));
                self.standby.set_value(Some(client));
            }
            Err(reason) => self.standby_failed(reason),
        }
    }

    /// A message from the WebGPU worker while it is not the current one.
    pub(super) fn receive_standby(self, message: FromWorker) {
        match message {
            FromWorker::Ready(report) if report.device == ComputeDevice::WebGpu => {
                self.take_over(report)
            }
            FromWorker::Ready(report) => self.standby_failed(
                report
                    .fallback_reason
                    .unwrap_or_else(|| "WebGPU did not start".into()),
            ),
            FromWorker::Fatal { message } | FromWorker::Crashed { message, .. } => {
                self.standby_failed(format!("the WebGPU worker stopped: {message}"))
            }
            FromWorker::DeviceLost { reason } => {
                self.standby_failed(format!("the WebGPU device was lost ({reason})"))
            }
            _ => {}
        }
    }

    /// The WebGPU worker is ready: it becomes the current worker.
    fn take_over(self, report: EngineReport) {
        let Some(standby) = self.standby.try_update_value(|s| s.take()).flatten() else {
            return;
        };
        let id = self.standby_id.get_value().unwrap_or_default();
        self.terminate_worker();
        self.standby_id.set_value(None);
        self.current_id.set_value(id);
        self.client.set_value(Some(standby));
        self.gpu.set(Gpu::On);
        self.cpu_reason.set_value(None);
        self.engine.set(Some(super::engine_info(report)));
        self.flush();
        // What the CPU worker had not answered is analysed again on WebGPU.
        self.requeue_unanswered();
        if let Some((id, attribute, value)) = self.cam_pending.get_untracked() {
            self.request_cam(id, attribute, value);
        }
        self.pump();
    }

    /// The WebGPU worker cannot be used: stop it, stay on the CPU and say why.
    pub(super) fn standby_failed(self, reason: String) {
        self.standby_id.set_value(None);
        self.standby.update_value(|s| {
            if let Some(s) = s.take() {
                s.terminate();
            }
        });
        self.gpu.set(Gpu::Off);
        self.cpu_reason.set_value(Some(reason.clone()));
        self.engine.update(|e| {
            if let Some(e) = e {
                e.fallback_reason = Some(reason);
            }
        });
    }
}

/// Ask the browser for a WebGPU adapter (the worker asks again for its own).
async fn adapter_available() -> Result<(), String> {
    let error = |e: JsValue| format!("WebGPU could not be asked for an adapter: {e:?}");
    let navigator = web_sys::window().ok_or("no window")?.navigator();
    let gpu = js_sys::Reflect::get(&navigator, &"gpu".into()).map_err(error)?;
    let request: js_sys::Function = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
        .map_err(error)?
        .dyn_into()
        .map_err(|_| "navigator.gpu.requestAdapter is missing".to_string())?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .map_err(error)?
        .dyn_into()
        .map_err(error)?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(error)?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU is present but no adapter is available".into());
    }
    Ok(())
}
