//! The inference Web Worker: Burn runs here so the page never freezes. Requests that arrive
//! while the model is still loading wait in a queue.

use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wbc_explorer::engine::{now_ms, Engine};
use wbc_explorer::protocol::{FromWorker, ToWorker, SEGMENTATION_SIDE};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

#[derive(Default)]
struct State {
    engine: Option<Rc<Engine>>,
    fatal: Option<String>,
    pending: Vec<(ToWorker, Vec<u8>)>,
}

fn post(message: &FromWorker, attachments: Vec<Vec<u8>>) {
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let json = serde_json::to_string(message)
        .unwrap_or_else(|e| format!("{{\"Fatal\":{{\"message\":\"{e}\"}}}}"));
    let parts = js_sys::Array::new();
    parts.push(&JsValue::from_str(&json));
    for bytes in attachments {
        parts.push(&js_sys::Uint8Array::from(bytes.as_slice()));
    }
    let _ = scope.post_message(&parts);
}

fn handle(state: &Rc<RefCell<State>>, request: ToWorker, bytes: Vec<u8>) {
    let s = state.borrow();
    if let Some(engine) = s.engine.clone() {
        wasm_bindgen_futures::spawn_local(async move {
            match request {
                ToWorker::Analyse { id, name } => {
                    let (message, attachments) = engine.analyse(id, name, &bytes).await;
                    post(&message, attachments);
                }
                ToWorker::Explain {
                    id,
                    attribute,
                    value,
                } => {
                    let t0 = now_ms();
                    match engine.explain(id, attribute, value).await {
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
            }
        });
    } else if let Some(fatal) = &s.fatal {
        let message = match request {
            ToWorker::Analyse { id, name } => FromWorker::Refused {
                id,
                name,
                reason: fatal.clone(),
            },
            ToWorker::Explain { id, .. } => FromWorker::ExplainFailed {
                id,
                reason: fatal.clone(),
            },
        };
        post(&message, vec![]);
    } else {
        drop(s);
        state.borrow_mut().pending.push((request, bytes));
    }
}

fn main() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let state = Rc::new(RefCell::new(State::default()));
    // `?cpu` in the worker URL forces the CPU path (used by tests and the device switch).
    let force_cpu = scope.location().search().contains("cpu");

    let on_message = {
        let state = state.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let parts: js_sys::Array = event.data().unchecked_into();
            let Some(json) = parts.get(0).as_string() else {
                return;
            };
            let Ok(request) = serde_json::from_str::<ToWorker>(&json) else {
                return;
            };
            let bytes = parts
                .get(1)
                .dyn_into::<js_sys::Uint8Array>()
                .map(|a| a.to_vec())
                .unwrap_or_default();
            handle(&state, request, bytes);
        })
    };
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();

    wasm_bindgen_futures::spawn_local(async move {
        match Engine::start(force_cpu).await {
            Ok((engine, ready)) => {
                post(&ready, vec![]);
                state.borrow_mut().engine = Some(Rc::new(engine));
            }
            Err(message) => {
                let message = format!(
                    "the attribute model could not be loaded ({message}); nothing can be analysed until the page is reloaded with working model files"
                );
                post(
                    &FromWorker::Fatal {
                        message: message.clone(),
                    },
                    vec![],
                );
                state.borrow_mut().fatal = Some(message);
            }
        }
        let pending = std::mem::take(&mut state.borrow_mut().pending);
        for (request, bytes) in pending {
            handle(&state, request, bytes);
        }
    });
}
