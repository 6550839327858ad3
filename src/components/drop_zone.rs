//! Where cells come in: a file picker (several files at once), drag-and-drop, and Ctrl+V.

use crate::state::{Adaptation, Cells, Notices};
use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{File, FileList, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

fn files_of(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// From a folder, only what may be an image (a folder from an analyser also holds reports,
/// thumbnails databases and hidden files; a single file chosen by hand is always tried).
fn looks_like_image(file: &File) -> bool {
    let name = file.name().to_lowercase();
    !name.starts_with('.')
        && (file.type_().starts_with("image/")
            || [".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"]
                .iter()
                .any(|e| name.ends_with(e)))
}

/// Call a callback-style file-system API once, with a success and an error callback, and
/// await which of them it calls.
async fn callback_value(
    call: impl FnOnce(&js_sys::Function, &js_sys::Function) -> Result<(), JsValue>,
) -> Result<JsValue, String> {
    let mut call = Some(call);
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        if let Some(call) = call.take() {
            if let Err(e) = call(&resolve, &reject) {
                let _ = reject.call1(&JsValue::NULL, &e);
            }
        }
    });
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(|e| reason(&e))
}

/// What a file-system error says (a DOMException's name and message, or its text).
fn reason(e: &JsValue) -> String {
    match e.dyn_ref::<web_sys::DomException>() {
        Some(d) if !d.message().is_empty() => format!("{}: {}", d.name(), d.message()),
        Some(d) => d.name(),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}

/// Every file under a dropped entry with its full path, folders read recursively (`readEntries` answers in
/// chunks: it is called until it returns none), and each file or folder that could not be
/// read, with the reason (its full path, why). One unreadable part does not stop the rest.
async fn files_under(root: FileSystemEntry) -> (Vec<(File, String)>, Vec<(String, String)>) {
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    let mut stack = vec![root];
    while let Some(entry) = stack.pop() {
        if entry.is_file() {
            let path = entry.full_path();
            let entry: FileSystemFileEntry = entry.unchecked_into();
            match callback_value(|ok, err| {
                entry.file_with_callback_and_callback(ok, err);
                Ok(())
            })
            .await
            .and_then(|f| {
                f.dyn_into::<File>()
                    .map_err(|_| "the browser gave no file".to_string())
            }) {
                Ok(file) => files.push((file, path)),
                Err(why) => unreadable.push((path, why)),
            }
        } else if entry.is_directory() {
            let path = entry.full_path();
            let dir: FileSystemDirectoryEntry = entry.unchecked_into();
            let reader = dir.create_reader();
            loop {
                let chunk = match callback_value(|ok, err| {
                    reader.read_entries_with_callback_and_callback(ok, err)
                })
                .await
                {
                    Ok(chunk) => chunk,
                    Err(why) => {
                        unreadable.push((path.clone(), why));
                        break;
                    }
                };
                let chunk: js_sys::Array = chunk.unchecked_into();
                if chunk.length() == 0 {
                    break;
                }
                stack.extend(chunk.iter().map(|e| e.unchecked_into::<FileSystemEntry>()));
            }
        }
    }
    (files, unreadable)
}

/// What was dropped: plain files as they are, folders read recursively for their images.
fn take_drop(
    cells: Cells,
    adaptation: Adaptation,
    notices: Notices,
    transfer: Option<web_sys::DataTransfer>,
) {
    let Some(transfer) = transfer else { return };
    // Entries must be taken during the event; reading them may wait.
    let items = transfer.items();
    let entries: Vec<FileSystemEntry> = (0..items.length())
        .filter_map(|i| items.get(i))
        .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
        .collect();
    if entries.is_empty() || entries.iter().all(|e| e.is_file()) {
        cells.add_files(files_of(transfer.files()));
        return;
    }
    let several = entries.iter().filter(|e| e.is_directory()).count() > 1;
    wasm_bindgen_futures::spawn_local(async move {
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for entry in entries {
            let from_folder = entry.is_directory();
            let root = entry.full_path();
            let (found, failed) = files_under(entry).await;
            files.extend(
                found
                    .into_iter()
                    .filter(|(f, _)| !from_folder || looks_like_image(f))
                    .map(|(f, path)| {
                        let below = path.strip_prefix(&root).unwrap_or(&path).to_string();
                        let label = folder_label(&root, &below, several);
                        (f, label)
                    }),
            );
            unreadable.extend(failed);
        }
        for (path, why) in unreadable.iter().cloned() {
            notices.refuse(
                path,
                format!("could not be read ({why}); the rest of the drop goes on"),
            );
        }
        if files.is_empty() && unreadable.is_empty() {
            notices.say("no images were found in the dropped folder");
        }
        add_labelled(cells, adaptation, files);
    });
}

/// The label a folder gives a file (your question's classes, or cell types): the name of the
/// sub-folder of the dropped (or chosen) folder it lies in, like `wbc fit --labels DIR`; a
/// file right in the folder has none, unless several folders were dropped together (each
/// then names its files). `below`: the file's path under `root`.
fn folder_label(root: &str, below: &str, several: bool) -> Option<String> {
    let parts: Vec<&str> = below.split('/').filter(|p| !p.is_empty()).collect();
    match parts.len() {
        0 | 1 if several => root.rsplit('/').find(|p| !p.is_empty()).map(String::from),
        0 | 1 => None,
        _ => Some(parts[0].to_string()),
    }
}

/// Files with the labels their folders give them: analysed, and each label kept.
fn add_labelled(cells: Cells, adaptation: Adaptation, files: Vec<(File, Option<String>)>) {
    let labels: Vec<Option<String>> = files.iter().map(|(_, l)| l.clone()).collect();
    let ids = cells.add_files(files.into_iter().map(|(f, _)| f).collect());
    for (id, label) in ids.into_iter().zip(labels) {
        if let (Some(id), Some(label)) = (id, label) {
            adaptation.set_label(id, &label);
        }
    }
}

#[component]
pub fn DropZone() -> impl IntoView {
    let (cells, notices) = (expect_context::<Cells>(), expect_context::<Notices>());
    let adaptation = expect_context::<Adaptation>();
    let dragging = RwSignal::new(false);
    // Paste anywhere on the page.
    let paste = window_event_listener(ev::paste, move |event: web_sys::ClipboardEvent| {
        let files = files_of(event.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            event.prevent_default();
            cells.add_files(files);
        }
    });
    on_cleanup(move || paste.remove());
    // `webkitdirectory` (a folder picker in every current browser) is not among Leptos's
    // typed attributes: set it once the input exists.
    let folder = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(input) = folder.get() {
            let _ = input.set_attribute("webkitdirectory", "");
        }
    });
    view! {
        <section class="drop-zone" class:dragging=move || dragging.get() data-testid="drop-zone"
            on:dragover=move |e: ev::DragEvent| { e.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |e: ev::DragEvent| {
                e.prevent_default();
                dragging.set(false);
                take_drop(cells, adaptation, notices, e.data_transfer());
            }>
            <label>
                <span class="drop-title">"Drop white-cell images here, paste one (Ctrl+V), or "</span>
                <span class="pick">"choose files"</span>
                <input type="file" multiple accept="image/*,.tif,.tiff,.bmp" data-testid="file-input"
                    on:change=move |e: ev::Event| {
                        let input: web_sys::HtmlInputElement = event_target(&e);
                        cells.add_files(files_of(input.files()));
                        // Let the same file be chosen again.
                        input.set_value("");
                    }/>
            </label>
            <label class="folder">
                <span class="pick">"or a whole folder"</span>
                <input type="file" multiple data-testid="folder-input" node_ref=folder
                    on:change=move |e: ev::Event| {
                        let input: web_sys::HtmlInputElement = event_target(&e);
                        // `webkitRelativePath`: the chosen folder's name, sub-folders, the file.
                        let files: Vec<(File, Option<String>)> = files_of(input.files()).into_iter().filter(looks_like_image)
                            .map(|f| {
                                let path = js_sys::Reflect::get(&f, &JsValue::from_str("webkitRelativePath"))
                                    .ok().and_then(|p| p.as_string()).unwrap_or_default();
                                let (root, below) = path.split_once('/').unwrap_or(("", &path));
                                let label = folder_label(root, below, false);
                                (f, label)
                            }).collect();
                        if files.is_empty() {
                            notices.say("no images were found in that folder");
                        }
                        add_labelled(cells, adaptation, files);
                        input.set_value("");
                    }/>
            </label>
            <p class="hint">"JPEG, PNG, BMP or TIFF; a single white cell near the centre, as from a CellaVision analyser. Images never leave this computer."</p>
            <p class="samples">
                <button data-testid="sample-cells" on:click=move |_| cells.load_samples()>"try sample cells"</button>
                <span class="hint">" 50 real cells from the PBC dataset (Acevedo et al. 2020, "
                    <a href="https://creativecommons.org/licenses/by/4.0/" rel="license">"CC BY 4.0"</a>
                    "), with WBCAtt labels (MIT; "
                    <a href="samples/NOTICE.txt">"credits and licences"</a>")"</span>
            </p>
        </section>
    }
}
