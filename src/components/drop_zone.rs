//! Where cells come in: a file picker (several files at once), drag-and-drop, and Ctrl+V.

use crate::state::AppState;
use leptos::ev;
use leptos::prelude::*;
use web_sys::{File, FileList};

fn files_of(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

#[component]
pub fn DropZone() -> impl IntoView {
    let state = expect_context::<AppState>();
    let dragging = RwSignal::new(false);
    // Paste anywhere on the page.
    let paste = window_event_listener(ev::paste, move |event: web_sys::ClipboardEvent| {
        let files = files_of(event.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            event.prevent_default();
            state.add_files(files);
        }
    });
    on_cleanup(move || paste.remove());
    view! {
        <section class="drop-zone" class:dragging=move || dragging.get() data-testid="drop-zone"
            on:dragover=move |e: ev::DragEvent| { e.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |e: ev::DragEvent| {
                e.prevent_default();
                dragging.set(false);
                state.add_files(files_of(e.data_transfer().and_then(|d| d.files())));
            }>
            <label>
                <span class="drop-title">"Drop white-cell images here, paste one (Ctrl+V), or "</span>
                <span class="pick">"choose files"</span>
                <input type="file" multiple accept="image/*,.tif,.tiff,.bmp" data-testid="file-input"
                    on:change=move |e: ev::Event| {
                        let input: web_sys::HtmlInputElement = event_target(&e);
                        state.add_files(files_of(input.files()));
                        // Let the same file be chosen again.
                        input.set_value("");
                    }/>
            </label>
            <p class="hint">"JPEG, PNG, BMP or TIFF; a single white cell near the centre, as from a CellaVision analyser. Images never leave this computer."</p>
            <p class="samples">
                <button data-testid="sample-cells" on:click=move |_| state.load_samples()>"try sample cells"</button>
                <span class="hint">" 50 real cells from the PBC dataset (Acevedo et al. 2020, "
                    <a href="https://creativecommons.org/licenses/by/4.0/" rel="license">"CC BY 4.0"</a>
                    "), with WBCAtt labels"</span>
            </p>
        </section>
    }
}
