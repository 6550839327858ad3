//! The page's end of the worker: starts it, holds requests until it says `Ready` (until then
//! its message handler may not exist yet, and a message posted then is lost), and posts every
//! request with its bytes transferred rather than copied.

use wasm_bindgen::prelude::*;
use wbc_messages::{decode, encode, FromWorker, ToWorker};
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

/// A running worker.
pub struct WorkerClient {
    worker: Worker,
    /// Requests held until the worker is ready; `None` once flushed.
    outbox: Option<Vec<(ToWorker, Vec<js_sys::Uint8Array>)>>,
}

impl WorkerClient {
    /// Start the worker; `on_message` gets each decoded reply and its byte attachments,
    /// `on_failure` a reason when the worker stops or says something unreadable.
    pub fn start(
        force_cpu: bool,
        on_message: impl Fn(FromWorker, Vec<js_sys::Uint8Array>) + 'static,
        on_failure: impl Fn(String) + Clone + 'static,
    ) -> Result<WorkerClient, String> {
        // The page's own query string goes on to the worker (`?cpu`, and the tests' fault
        // switches, read by the worker and its loader).
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        let params = web_sys::UrlSearchParams::new_with_str(&search)
            .map_err(|e| format!("the page address could not be read: {e:?}"))?;
        if force_cpu {
            params.set("cpu", "");
        }
        let url = format!("./worker_loader.js?{}", String::from(params.to_string()));
        let (worker, held) = match adopt_early_worker(&url) {
            Some(early) => early,
            None => {
                let options = WorkerOptions::new();
                options.set_type(WorkerType::Module);
                let worker = Worker::new_with_options(&url, &options)
                    .map_err(|e| format!("the analysis worker could not start: {e:?}"))?;
                (worker, Vec::new())
            }
        };
        let fail = on_failure.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match decode::<FromWorker>(&event.data()) {
                Ok((message, attachments)) => on_message(message, attachments),
                Err(e) => fail(format!("unexpected message from the worker: {e}")),
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let on_error =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
                on_failure(format!("the analysis worker stopped: {}", event.message()));
            });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_message.forget();
        on_error.forget();
        replay(&worker, held);
        Ok(WorkerClient {
            worker,
            outbox: Some(Vec::new()),
        })
    }

    /// Send a request, or hold it until the worker is ready. False when posting failed.
    pub fn send(&mut self, request: ToWorker, attachments: Vec<js_sys::Uint8Array>) -> bool {
        match &mut self.outbox {
            Some(held) => {
                held.push((request, attachments));
                true
            }
            None => self.post(&request, attachments),
        }
    }

    /// The worker is ready (or has failed and answers every request with a reason): send
    /// what was held.
    pub fn flush(&mut self) {
        for (request, attachments) in self.outbox.take().unwrap_or_default() {
            self.post(&request, attachments);
        }
    }

    /// Stop the worker at once (it crashed, or its device was lost); nothing more comes
    /// from it.
    pub fn terminate(&self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
        self.worker.terminate();
    }

    fn post(&self, request: &ToWorker, attachments: Vec<js_sys::Uint8Array>) -> bool {
        let encoded = encode(request, attachments);
        self.worker
            .post_message_with_transfer(&encoded.data, &encoded.transfer)
            .is_ok()
    }
}

/// The worker `public/early_worker.js` started while the page's wasm was loading, if it is the
/// one asked for (same address), with the events it sent before the page was there. It is
/// adopted once: a restarted worker is a new one.
fn adopt_early_worker(url: &str) -> Option<(Worker, Vec<JsValue>)> {
    let window = web_sys::window()?;
    let key = JsValue::from_str("__wbcEarlyWorker");
    let early = js_sys::Reflect::get(&window, &key).ok()?;
    if early.is_undefined() || early.is_null() {
        return None;
    }
    let _ = js_sys::Reflect::delete_property(&window, &key);
    let field = |name: &str| js_sys::Reflect::get(&early, &JsValue::from_str(name)).ok();
    let worker: Worker = field("worker")?.dyn_into().ok()?;
    if field("url")?.as_string().as_deref() != Some(url) {
        worker.terminate();
        return None;
    }
    let held: js_sys::Array = field("held")?.dyn_into().ok()?;
    Some((worker, held.iter().collect()))
}

/// Hand what the early worker said before the page was there to the handlers, in order, in a
/// microtask: after the caller has made this worker the current one (so its messages are not
/// dropped as a stale worker's), and before any later message from it, which comes as a task.
fn replay(worker: &Worker, held: Vec<JsValue>) {
    if held.is_empty() {
        return;
    }
    let worker = worker.clone();
    let later = Closure::once(move |_: JsValue| {
        for event in held {
            let handler = if event.is_instance_of::<MessageEvent>() {
                worker.onmessage()
            } else {
                worker.onerror()
            };
            if let Some(handler) = handler {
                let _ = handler.call1(&JsValue::NULL, &event);
            }
        }
    });
    let _ = js_sys::Promise::resolve(&JsValue::NULL).then(&later);
    later.forget();
}
