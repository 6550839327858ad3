//! The browser's side of things the rooms share: same-origin fetches, downloads, object URLs
//! and the page clock.

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Blob, File};

/// The page clock (ms since the page opened).
pub fn page_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// A same-origin file's response, or `None` when it is missing (or the fetch failed). A
/// development server (`trunk serve`) answers a missing file with the page itself and status
/// 200: an HTML answer for a file that is not HTML counts as missing, so an optional asset
/// that is absent is not reported as broken.
async fn fetch_ok(url: &str) -> Option<web_sys::Response> {
    let window = web_sys::window()?;
    let response = wasm_bindgen_futures::JsFuture::from(window.fetch_with_str(url))
        .await
        .ok()?
        .dyn_into::<web_sys::Response>()
        .ok()?;
    let html = response
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .is_some_and(|t| t.contains("text/html"));
    (response.ok() && !(html && !url.ends_with(".html"))).then_some(response)
}

/// The text of a same-origin file, or `None` when it is missing or unreadable.
pub async fn fetch_text(url: &str) -> Option<String> {
    let response = fetch_ok(url).await?;
    wasm_bindgen_futures::JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()
}

/// A same-origin file as a `File` named `name`, or `None` when it is missing.
pub async fn fetch_file(url: &str, name: &str) -> Option<File> {
    let response = fetch_ok(url).await?;
    let blob: web_sys::Blob = wasm_bindgen_futures::JsFuture::from(response.blob().ok()?)
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    let options = web_sys::FilePropertyBag::new();
    options.set_type(&blob.type_());
    File::new_with_blob_sequence_and_options(&js_sys::Array::of1(&blob), name, &options).ok()
}

/// Offer `text` as a download named `name` (nothing leaves the computer: the browser saves
/// it from memory). Returns the object URL, which stays valid for the page's life.
pub fn download(name: &str, mime: &str, text: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).ok()?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).ok()?;
    let document = web_sys::window()?.document()?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a").ok()?.dyn_into().ok()?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    Some(url)
}

/// PNG bytes as a blob.
pub fn png_blob(bytes: &js_sys::Uint8Array) -> Option<Blob> {
    let parts = js_sys::Array::of1(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/png");
    Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()
}

/// An object URL for a blob (shown by an `<img>`; nothing leaves the page).
pub fn object_url(blob: &Blob) -> Option<String> {
    web_sys::Url::create_object_url_with_blob(blob).ok()
}

/// An object URL for PNG bytes.
pub fn png_object_url(bytes: &js_sys::Uint8Array) -> Option<String> {
    object_url(&png_blob(bytes)?)
}

/// Give the page the thread back until a later task (a `setTimeout` of 0): long work done in
/// slices awaits this between them.
pub async fn next_task() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback(&resolve);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// The text of a file the user chose, or `None` when the browser could not read it.
pub async fn file_text(file: &File) -> Option<String> {
    wasm_bindgen_futures::JsFuture::from(file.text())
        .await
        .ok()
        .and_then(|t| t.as_string())
}
