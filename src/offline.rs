//! Offline use: register the service worker (`sw.js`, written into every build by
//! `cargo xtask service-worker`), which stores the page, both wasm files, the JS glue, the
//! models, the sample cells and what else the page fetches, and ask it what it holds, so the
//! page can say when it is ready to work without a network and how much it stored.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// What the service worker has stored for this build.
#[derive(Clone, Debug, PartialEq)]
pub enum Offline {
    /// Registering, or storing the build's files (the first visit).
    Preparing,
    /// Everything is stored: the app opens and works with the network off.
    Ready { files: u32, bytes: f64 },
    /// No service worker here (an old browser, a private window that refuses it, or a page
    /// opened from a file): the app works, but only online.
    Unavailable(String),
}

fn field(value: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// Register the service worker and keep `status` up to date with its answers. Called once the
/// worker has loaded the models (or failed to), so the download of the whole build for
/// offline use comes after the first prediction's.
pub fn register(status: RwSignal<Offline>) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let container = field(&window.navigator(), "serviceWorker");
    if container.is_undefined() || container.is_null() {
        status.set(Offline::Unavailable(
            "this browser offers no service worker here".into(),
        ));
        return;
    }
    let container: web_sys::ServiceWorkerContainer = container.unchecked_into();
    // The worker reports after storing a build, and on request.
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            let data = e.data();
            if field(&data, "type").as_string().as_deref() == Some("offline-ready") {
                status.set(Offline::Ready {
                    files: field(&data, "files").as_f64().unwrap_or(0.0) as u32,
                    bytes: field(&data, "bytes").as_f64().unwrap_or(0.0),
                });
            }
        });
    container.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let registered = container.register("./sw.js");
    let ready = container.ready();
    leptos::task::spawn_local(async move {
        if let Err(e) = wasm_bindgen_futures::JsFuture::from(registered).await {
            let reason = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|| "the service worker could not be registered".into());
            status.set(Offline::Unavailable(reason));
            return;
        }
        // Once a worker is active, ask it what it holds (a second visit gets no "activate").
        if let Ok(registration) = wasm_bindgen_futures::JsFuture::from(
            ready
                .unwrap_or_else(|_| js_sys::Promise::reject(&JsValue::from_str("no registration"))),
        )
        .await
        {
            let registration: web_sys::ServiceWorkerRegistration = registration.unchecked_into();
            if let Some(active) = registration.active() {
                let _ = active.post_message(&JsValue::from_str("status"));
            }
        }
    });
}

/// "ready to work offline · 41.3 MB stored", for the header.
pub fn describe(status: &Offline) -> String {
    match status {
        Offline::Preparing => "preparing…".into(),
        Offline::Ready { files, bytes } => {
            format!("ready · {:.1} MB in {files} files stored", bytes / 1e6)
        }
        Offline::Unavailable(_) => "online only".into(),
    }
}
