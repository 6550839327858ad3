//! Where the page is with WebGPU: the plan, the standby worker while it loads, the switches
//! in the address, and why the page is on the CPU. What the engine does with it is in
//! `standby.rs`.

use crate::worker_client::WorkerClient;
use leptos::prelude::*;
use wbc_messages::EngineReport;

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

/// Where the page is with WebGPU, and the standby worker while it loads.
#[derive(Clone, Copy)]
pub struct Device {
    pub(super) gpu: RwSignal<Gpu>,
    /// The WebGPU worker while it loads behind the CPU worker, and its id.
    pub(super) standby: StoredValue<Option<WorkerClient>, LocalStorage>,
    pub(super) standby_id: StoredValue<Option<u32>>,
    /// Run the networks on the CPU (`?cpu` in the address, or after the GPU was lost).
    pub(super) force_cpu: StoredValue<bool>,
    /// Why the page chose the CPU itself, shown as the fallback reason.
    pub(super) cpu_reason: StoredValue<Option<String>>,
    /// Move to WebGPU when its worker is ready without comparing speeds (`?webgpu` in the
    /// address).
    pub(super) force_gpu: StoredValue<bool>,
    /// The WebGPU worker's ready report while the CPU worker is being timed (see
    /// [`Engine::compare_then_take_over`]).
    pub(super) gpu_ready: StoredValue<Option<EngineReport>>,
}

impl Device {
    pub(super) fn new() -> Self {
        Self {
            gpu: RwSignal::new(Gpu::Off),
            standby: StoredValue::new_local(None),
            standby_id: StoredValue::new(None),
            force_cpu: StoredValue::new(in_address("cpu")),
            cpu_reason: StoredValue::new(None),
            force_gpu: StoredValue::new(in_address("webgpu")),
            gpu_ready: StoredValue::new(None),
        }
    }

    /// Whether worker `id` is the standby.
    pub(super) fn is_standby(self, id: u32) -> bool {
        self.standby_id.get_value() == Some(id)
    }

    /// Whether a WebGPU worker is ready and waits for the CPU worker's time.
    pub(super) fn waiting_for_cpu_time(self) -> bool {
        self.gpu_ready.with_value(|r| r.is_some())
    }
}

/// Whether the page's query string names `switch` (`?cpu`, `?webgpu`).
fn in_address(switch: &str) -> bool {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .is_some_and(|q| wbc_messages::query_has(&q, switch))
}
