//! CPU first, WebGPU behind. The worker with WebGPU is four times the download of the CPU-only
//! one (CubeCL's GPU code), so the page starts the CPU-only worker, which answers the first
//! cells, and only then starts the WebGPU worker as a standby. When the standby is ready on
//! WebGPU it takes over: the CPU worker stops, and the files it had not answered go to the
//! new one (the cells already answered stay; "where?" makes its input again from the file).
//! When the standby cannot use WebGPU (no adapter, the device refused, a crash), it is
//! stopped and the CPU worker goes on, with the reason in the device's title.
//!
//! WebGPU is not always the faster: a weak or software GPU (SwiftShader, which headless
//! Chromium uses without one) can take ten times the CPU's time for these small networks. So
//! before handing over, the page times both networks once on each worker (the standby times
//! itself when ready; the CPU worker is asked then) and stays on the CPU when it is faster,
//! saying so. `?webgpu` in the address hands over without comparing.

use super::device::Gpu;
use super::Engine;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wbc_messages::{ComputeDevice, EngineReport, FromWorker, ToWorker};

/// Why the first cells run on the CPU, shown in the device's title until WebGPU takes over.
const CPU_FIRST: &str =
    "WebGPU is loading behind the CPU worker, which answers the first cells meanwhile";

impl Engine {
    /// The plan at page open: WebGPU later when the browser has it and the CPU was not asked
    /// for.
    pub(super) fn plan_gpu(self) {
        if self.device.force_cpu.get_value() {
            self.device.gpu.set(Gpu::Off);
            return;
        }
        let has_gpu = web_sys::window()
            .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"gpu".into()).ok())
            .is_some_and(|g| !g.is_undefined() && !g.is_null());
        if has_gpu {
            self.device.gpu.set(Gpu::Due);
            self.device.cpu_reason.set_value(Some(CPU_FIRST.into()));
        } else {
            self.device.gpu.set(Gpu::Off);
            self.device
                .cpu_reason
                .set_value(Some("this browser does not offer WebGPU".into()));
        }
    }

    /// Whether a new current worker should be the CPU-only build.
    pub(super) fn cpu_worker(self) -> bool {
        self.device.force_cpu.get_value() || self.device.gpu.get_untracked() != Gpu::On
    }

    /// Start the WebGPU worker if it is due (called once the CPU worker is ready and idle,
    /// or has answered a cell, so the download and the shader compilation never delay the
    /// first cell).
    pub(super) fn start_standby_when_due(self) {
        if self.device.gpu.get_untracked() != Gpu::Due {
            return;
        }
        self.device.gpu.set(Gpu::Loading);
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
                self.device.standby_id.set_value(Some(id));
                self.device.standby.set_value(Some(client));
            }
            Err(reason) => self.standby_failed(reason),
        }
    }

    /// A message from the WebGPU worker while it is not the current one.
    pub(super) fn receive_standby(self, message: FromWorker) {
        match message {
            FromWorker::Ready(report) if report.device == ComputeDevice::WebGpu => {
                self.compare_then_take_over(report)
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

    /// The WebGPU worker is ready: unless told to hand over at once, hold its report and
    /// ask the CPU worker for its time on the same two networks ([`Self::cpu_timed`] then
    /// decides).
    fn compare_then_take_over(self, report: EngineReport) {
        let timed = report.networks_ms.is_some_and(f64::is_finite);
        if self.device.force_gpu.get_value() || !timed {
            self.take_over(report, None);
            return;
        }
        self.device.gpu_ready.set_value(Some(report));
        if !self.time_cpu_worker() {
            // No CPU worker to ask (it stopped meanwhile): WebGPU it is.
            if let Some(report) = self
                .device
                .gpu_ready
                .try_update_value(|r| r.take())
                .flatten()
            {
                self.take_over(report, None);
            }
        }
    }

    /// Ask the current (CPU) worker to time both networks; false when it cannot be asked.
    pub(super) fn time_cpu_worker(self) -> bool {
        self.send(ToWorker::TimeNetworks { batch: 1 }, Vec::new())
    }

    /// The CPU worker's time for both networks (ms): hand over to the WebGPU worker waiting
    /// for it if that is faster, otherwise stop it and stay on the CPU, saying why.
    pub fn cpu_timed(self, cpu_ms: f64) {
        let Some(report) = self
            .device
            .gpu_ready
            .try_update_value(|r| r.take())
            .flatten()
        else {
            return;
        };
        let gpu_ms = report.networks_ms.unwrap_or(f64::NAN);
        if !cpu_ms.is_finite() || gpu_ms <= cpu_ms {
            self.take_over(report, cpu_ms.is_finite().then_some((gpu_ms, cpu_ms)));
        } else {
            self.standby_failed(format!(
                "WebGPU is slower than the CPU on this machine: both networks take {gpu_ms:.0} ms a cell on WebGPU against {cpu_ms:.0} ms on the CPU"
            ));
            self.info.update(|e| {
                if let Some(e) = e {
                    e.compared = Some((gpu_ms, cpu_ms));
                }
            });
        }
    }

    /// The WebGPU worker becomes the current worker (`compared`: the two times, when the
    /// page compared them).
    fn take_over(self, report: EngineReport, compared: Option<(f64, f64)>) {
        let Some(standby) = self.device.standby.try_update_value(|s| s.take()).flatten() else {
            return;
        };
        let id = self.device.standby_id.get_value().unwrap_or_default();
        self.terminate_worker();
        self.device.standby_id.set_value(None);
        self.current_id.set_value(id);
        self.client.set_value(Some(standby));
        self.device.gpu.set(Gpu::On);
        self.device.cpu_reason.set_value(None);
        let mut engine = super::engine_info(report);
        engine.compared = compared;
        self.info.set(Some(engine));
        self.flush();
        // What the CPU worker had not answered is analysed again on WebGPU.
        self.requeue_unanswered();
        if let Some((id, attribute, value)) = self.cam.pending.get_untracked() {
            self.explain(id, attribute, value);
        }
        self.pump();
    }

    /// The WebGPU worker cannot be used: stop it, stay on the CPU and say why.
    pub(super) fn standby_failed(self, reason: String) {
        self.device.gpu_ready.set_value(None);
        self.device.standby_id.set_value(None);
        self.device.standby.update_value(|s| {
            if let Some(s) = s.take() {
                s.terminate();
            }
        });
        self.device.gpu.set(Gpu::Off);
        self.device.cpu_reason.set_value(Some(reason.clone()));
        self.info.update(|e| {
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
