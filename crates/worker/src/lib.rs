//! The inference Web Worker: Burn runs here so the page never freezes. The page holds its
//! requests until this worker says `Ready`; a request that still arrives early is refused with
//! a reason rather than lost. Requests are answered one at a time, in order; a panic is
//! reported to the page with the cell it happened on, and the page starts a new worker.
//!
//! Two builds of the same worker (two binaries, `src/bin/`): `worker` with WebGPU and the
//! CPU, and `worker_cpu` with the CPU only (feature `webgpu` off). CubeCL's GPU code is most
//! of the first one's size, so the page starts the small one first and the first cells are
//! answered while the WebGPU worker loads behind it (`src/state/engine/standby.rs` in the page).
#![forbid(unsafe_code)]

mod engine;

use engine::{now_ms, Engine};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wbc_messages::{decode, encode, js_bytes, FromWorker, ToWorker, SEGMENTATION_SIDE};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

/// The engine once it is ready, or why there is none.
enum State {
    Starting,
    Ready(Rc<Engine>),
    Failed(String),
}

fn post(message: &FromWorker, attachments: Vec<Vec<u8>>) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let encoded = encode(message, attachments.iter().map(|b| js_bytes(b)).collect());
    let _ = scope.post_message_with_transfer(&encoded.data, &encoded.transfer);
}

fn refuse(request: ToWorker, reason: String) {
    let message = match request {
        ToWorker::Analyse { id, name, .. } => FromWorker::Refused { id, name, reason },
        ToWorker::Explain { id, .. } => FromWorker::ExplainFailed { id, reason },
        ToWorker::Edit { id, .. } => FromWorker::EditFailed { id, reason },
        ToWorker::TimeNetworks { .. } => FromWorker::Fatal { message: reason },
    };
    post(&message, vec![]);
}

thread_local! {
    /// The cell being analysed, for the panic hook: the page reports that cell as failed.
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
    /// Requests waiting for the engine, answered one at a time (so "the cell being
    /// analysed" is always one cell, and the answers come in the order asked).
    static QUEUE: RefCell<VecDeque<(ToWorker, Vec<u8>)>> = const { RefCell::new(VecDeque::new()) };
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// A file name that makes the worker panic (`panic-on=NAME` in the worker address, passed on
/// from the page's): fault injection for the test of the crash path. Unset in normal use.
fn panic_on() -> Option<String> {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let search = scope.location().search();
    let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
    params.get("panic-on")
}

/// Take a request; it is answered after those before it.
fn handle(engine: Rc<Engine>, request: ToWorker, bytes: Vec<u8>) {
    QUEUE.with(|q| q.borrow_mut().push_back((request, bytes)));
    if BUSY.with(|b| b.replace(true)) {
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        let panic_on = panic_on();
        while let Some((request, bytes)) = QUEUE.with(|q| q.borrow_mut().pop_front()) {
            answer(&engine, request, bytes, panic_on.as_deref()).await;
        }
        BUSY.with(|b| b.set(false));
    });
}

async fn answer(engine: &Engine, request: ToWorker, bytes: Vec<u8>, panic_on: Option<&str>) {
    match request {
        ToWorker::Analyse { id, name, stain } => {
            CURRENT.with(|c| c.set(Some(id)));
            if panic_on == Some(name.as_str()) {
                panic!("fault injected for {name} (panic-on in the page address)");
            }
            let (message, attachments) = engine.analyse(id, name, stain, &bytes).await;
            CURRENT.with(|c| c.set(None));
            post(&message, attachments);
        }
        ToWorker::Explain {
            id,
            attribute,
            value,
            stain,
        } => {
            let t0 = now_ms();
            match engine.explain(id, attribute, value, stain, &bytes).await {
                Ok(map) => post(
                    &FromWorker::Explained {
                        id,
                        attribute,
                        value,
                        side: SEGMENTATION_SIDE,
                        ms: now_ms() - t0,
                    },
                    vec![map],
                ),
                Err(reason) => post(&FromWorker::ExplainFailed { id, reason }, vec![]),
            }
        }
        ToWorker::Edit { id, edit, stain } => {
            let t0 = now_ms();
            CURRENT.with(|c| c.set(Some(id)));
            let result = engine.edit(id, &edit, stain, &bytes).await;
            CURRENT.with(|c| c.set(None));
            match result {
                Ok((report, attachments)) => post(
                    &FromWorker::Edited {
                        id,
                        edit,
                        report,
                        ms: now_ms() - t0,
                    },
                    attachments,
                ),
                Err(reason) => post(&FromWorker::EditFailed { id, reason }, vec![]),
            }
        }
        ToWorker::TimeNetworks { batch } => match engine.time_networks(batch, now_ms).await {
            Ok((attribute_ms, segmentation_ms)) => post(
                &FromWorker::NetworkTimes {
                    attribute_ms,
                    segmentation_ms,
                },
                vec![],
            ),
            Err(message) => post(&FromWorker::Fatal { message }, vec![]),
        },
    }
}

/// Tell the page about a panic before the wasm traps: which cell, and the message (also
/// written to the console, as before).
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = match info.payload().downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "a panic".into()),
        };
        let id = CURRENT.with(|c| c.get());
        post(&FromWorker::Crashed { id, message }, vec![]);
    }));
}

/// The worker's entry point (both binaries): answer the page until the worker is stopped.
pub fn run() {
    report_panics();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let state = Rc::new(RefCell::new(State::Starting));
    // `?cpu` in the worker URL forces the CPU path (used by tests and the device switch).
    let force_cpu = wbc_messages::query_has(&scope.location().search(), "cpu");

    let on_message = {
        let state = state.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Ok((request, attachments)) = decode::<ToWorker>(&event.data()) else {
                return;
            };
            let bytes = attachments.first().map(|a| a.to_vec()).unwrap_or_default();
            match &*state.borrow() {
                State::Ready(engine) => handle(engine.clone(), request, bytes),
                State::Failed(reason) => refuse(request, reason.clone()),
                State::Starting => refuse(request, "the models are still loading".into()),
            }
        })
    };
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();

    wasm_bindgen_futures::spawn_local(async move {
        match Engine::start(force_cpu).await {
            Ok((engine, report)) => {
                *state.borrow_mut() = State::Ready(Rc::new(engine));
                post(&FromWorker::Ready(report), vec![]);
            }
            Err(message) => {
                let message = format!(
                    "the attribute model could not be loaded ({message}); nothing can be analysed until the page is reloaded with working model files"
                );
                *state.borrow_mut() = State::Failed(message.clone());
                post(&FromWorker::Fatal { message }, vec![]);
            }
        }
    });
}
