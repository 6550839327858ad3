//! Title bar: which device runs the networks, and whether the app is working.

use crate::offline::{self, Offline};
use crate::state::{Engine, Notices};
use leptos::prelude::*;

#[component]
pub fn Header() -> impl IntoView {
    let (engine, notices) = (expect_context::<Engine>(), expect_context::<Notices>());
    let device = move || match engine.info.get() {
        Some(e) => e.device,
        None if notices.fatal.get().is_some() => "none",
        None => "…",
    };
    let status = move || {
        if notices.fatal.get().is_some() {
            "stopped".to_string()
        } else if engine.info.get().is_none() {
            "loading model".to_string()
        } else {
            let n = engine.requests.in_flight.with(|m| m.len());
            if n == 0 {
                "idle".to_string()
            } else {
                format!("working ({n})")
            }
        }
    };
    let device_title = move || {
        engine.info.get().map(|e| match e.fallback_reason {
            Some(reason) => format!("CPU fallback: {reason}"),
            None => "Burn on the browser's WebGPU".to_string(),
        })
    };
    view! {
        <header>
            <h1>"WBC Explorer"</h1>
            <p class="tagline">"White blood cell morphology, explained — runs entirely in your browser."</p>
            <div class="badges">
                <span class="badge">"device: "<b data-testid="device" title=device_title
                    data-webgpu-ms=move || engine.info.get().and_then(|e| e.compared).map(|(g, _)| format!("{g:.1}"))
                    data-cpu-ms=move || engine.info.get().and_then(|e| e.compared).map(|(_, c)| format!("{c:.1}"))>{device}</b>
                    <Show when=move || engine.info.get().is_some_and(|e| e.device == "CPU" && e.compared.is_some())>
                        <span class="gpu-note" data-testid="cpu-faster" title=device_title>" · faster than WebGPU here"</span>
                    </Show>
                    <Show when=move || engine.gpu().get().pending() && engine.info.get().is_some()>
                        <span class="gpu-loading" data-testid="gpu-loading" title="The first cells run on the CPU while the WebGPU worker loads; it takes over when ready">" · WebGPU loading…"</span>
                    </Show>
                </span>
                <span class="badge" class:busy=move || status() != "idle">"status: "<b data-testid="status">{status}</b></span>
                <span class="badge" title=move || match engine.offline.get() {
                    Offline::Unavailable(reason) => reason,
                    _ => "After one visit the app opens and analyses cells with the network off".into(),
                }>"offline: "<b data-testid="offline-ready" data-ready=move || matches!(engine.offline.get(), Offline::Ready { .. }).to_string()>
                    {move || offline::describe(&engine.offline.get())}</b></span>
            </div>
            <Show when=move || notices.engine_note.get().is_some()>
                <p class="engine-note" role="status" data-testid="engine-note">{move || notices.engine_note.get()}</p>
            </Show>
        </header>
    }
}
