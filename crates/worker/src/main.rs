//! The inference Web Worker: Burn runs here so the page never freezes. The page holds its
//! requests until this worker says `Ready`, so nothing needs queueing here; a request that
//! still arrives early is refused with a reason rather than lost.
#![forbid(unsafe_code)]

mod engine;

use engine::{now_ms, Engine};
use std::cell::RefCell;
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
    };
    post(&message, vec![]);
}

fn handle(engine: Rc<Engine>, request: ToWorker, bytes: Vec<u8>) {
    wasm_bindgen_futures::spawn_local(async move {
        match request {
            ToWorker::Analyse { id, name, stain } => {
                let (message, attachments) = engine.analyse(id, name, stain, &bytes).await;
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
}

fn main() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    let state = Rc::new(RefCell::new(State::Starting));
    // `?cpu` in the worker URL forces the CPU path (used by tests and the device switch).
    let force_cpu = scope.location().search().contains("cpu");

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
