//! Presentation mode, for a conference hall or a classroom projector: the page goes full
//! screen (Fullscreen API) with large type and high-contrast colours, the cell and its overlay
//! big; → / ← (and a clicker's PageDown / PageUp, or Space) step through the loaded cells, I
//! jumps to the intervention selectors ("what if"), Esc leaves.

use crate::state::{Cells, PageView, Teaching};
use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Enter presentation mode: the explorer, full screen where the browser allows it (a page
/// without the permission, or a headless one, still gets the large, high-contrast layout).
pub fn enter(teaching: Teaching) {
    teaching.view.set(PageView::Explorer);
    teaching.presenting.set(true);
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        // A refusal (no user gesture, no permission) is an answer, not an error.
        let _ = root.request_fullscreen();
    }
}

/// Leave presentation mode (and full screen, if the page is in it).
pub fn leave(teaching: Teaching) {
    teaching.presenting.set(false);
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        if doc.fullscreen_element().is_some() {
            doc.exit_fullscreen();
        }
    }
}

/// Whether a key press belongs to a form control (typing a file name filter, choosing a
/// value): those keys are not presentation commands.
fn typing(event: &web_sys::KeyboardEvent) -> bool {
    event
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"))
}

/// The "Present" button and, while presenting, the key handling and the navigation bar.
#[component]
pub fn PresentControls() -> impl IntoView {
    let (cells, teaching) = (expect_context::<Cells>(), expect_context::<Teaching>());
    let keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| {
        if !teaching.presenting.get_untracked() {
            return;
        }
        // Esc leaves from anywhere, a focused selector included.
        if e.key() != "Escape" && typing(&e) {
            return;
        }
        let handled = match e.key().as_str() {
            "ArrowRight" | "PageDown" | " " => {
                cells.step_cell(1);
                true
            }
            "ArrowLeft" | "PageUp" => {
                cells.step_cell(-1);
                true
            }
            "i" | "I" => {
                focus_interventions();
                true
            }
            "Escape" => {
                leave(teaching);
                true
            }
            _ => false,
        };
        if handled {
            e.prevent_default();
        }
    });
    // Leaving full screen with the browser's own Esc leaves presentation mode too.
    let fullscreen = window_event_listener(
        ev::Custom::new("fullscreenchange"),
        move |_: web_sys::Event| {
            let full = web_sys::window()
                .and_then(|w| w.document())
                .is_some_and(|d| d.fullscreen_element().is_some());
            if !full {
                teaching.presenting.set(false);
            }
        },
    );
    on_cleanup(move || {
        keys.remove();
        fullscreen.remove();
    });
    let position = move || {
        let selected = cells.selected.get();
        cells.cells.with(|cells| {
            let at = cells.iter().position(|c| Some(c.id) == selected);
            match at {
                Some(i) => format!("cell {} of {}", i + 1, cells.len()),
                None => format!("{} cells", cells.len()),
            }
        })
    };
    view! {
        <Show when=move || !teaching.presenting.get()>
            <button class="present-button" data-testid="present" on:click=move |_| enter(teaching)
                title="Full screen, large type, arrow keys or a clicker to step through the cells">
                "Present"
            </button>
        </Show>
        <Show when=move || teaching.presenting.get()>
            <nav class="present-bar" data-testid="present-bar" aria-label="Presentation">
                <button data-testid="present-previous" on:click=move |_| cells.step_cell(-1) aria-label="Previous cell">"← previous"</button>
                <span data-testid="present-position" aria-live="polite">{position}</span>
                <button data-testid="present-next" on:click=move |_| cells.step_cell(1) aria-label="Next cell">"next →"</button>
                <button data-testid="present-interventions" on:click=move |_| focus_interventions()>"I: what if"</button>
                <button data-testid="present-leave" on:click=move |_| leave(teaching)>"Esc: leave"</button>
            </nav>
        </Show>
    }
}

/// Bring the intervention selectors into view and put the keyboard on the first one.
fn focus_interventions() {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Ok(Some(select)) = doc.query_selector("[data-testid=cell-panel] .attribute select") {
        select.scroll_into_view();
        if let Ok(select) = select.dyn_into::<web_sys::HtmlElement>() {
            let _ = select.focus();
        }
    }
}
