//! Title bar: which device runs the networks, and whether the app is working.

use crate::offline::{self, Offline};
use crate::state::AppState;
use leptos::prelude::*;

#[component]
pub fn Header() -> impl IntoView {
    let state = expect_context::<AppState>();
    let device = move || match state.engine.get() {
        Some(e) => e.device,
        None if state.fatal.get().is_some() => "none",
        None => "…",
    };
    let status = move || {
        if state.fatal.get().is_some() {
            "stopped".to_string()
        } else if state.engine.get().is_none() {
            "loading model".to_string()
        } else {
            let n = state.in_flight.with(|m| m.len());
            if n == 0 {
                "idle".to_string()
            } else {
                format!("working ({n})")
            }
        }
    };
    let device_title = move || {
        state.engine.get().map(|e| match e.fallback_reason {
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
                    data-webgpu-ms=move || state.engine.get().and_then(|e| e.compared).map(|(g, _)| format!("{g:.1}"))
                    data-cpu-ms=move || state.engine.get().and_then(|e| e.compared).map(|(_, c)| format!("{c:.1}"))>{device}</b>
                    <Show when=move || state.engine.get().is_some_and(|e| e.device == "CPU" && e.compared.is_some())>
                        <span class="gpu-note" data-testid="cpu-faster" title=device_title>" · faster than WebGPU here"</span>
                    </Show>
                    <Show when=move || state.gpu.get().pending() && state.engine.get().is_some()>
                        <span class="gpu-loading" data-testid="gpu-loading" title="The first cells run on the CPU while the WebGPU worker loads; it takes over when ready">" · WebGPU loading…"</span>
                    </Show>
                </span>
                <span class="badge" class:busy=move || status() != "idle">"status: "<b data-testid="status">{status}</b></span>
                <span class="badge" title=move || match state.offline.get() {
                    Offline::Unavailable(reason) => reason,
                    _ => "After one visit the app opens and analyses cells with the network off".into(),
                }>"offline: "<b data-testid="offline-ready" data-ready=move || matches!(state.offline.get(), Offline::Ready { .. }).to_string()>
                    {move || offline::describe(&state.offline.get())}</b></span>
            </div>
            <Show when=move || state.engine_note.get().is_some()>
                <p class="engine-note" role="status" data-testid="engine-note">{move || state.engine_note.get()}</p>
            </Show>
        </header>
    }
}
