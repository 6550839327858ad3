//! The stored session's controls: what is kept in this browser, and "clear session" (asked
//! once more before anything is removed, since it cannot be undone).

use crate::state::{Cells, Notices, StoredSession};
use leptos::prelude::*;

#[component]
pub fn SessionControls() -> impl IntoView {
    let stored = expect_context::<StoredSession>();
    let (loaded, notices) = (expect_context::<Cells>(), expect_context::<Notices>());
    let asking = RwSignal::new(false);
    let cells = move || loaded.cells.with(Vec::len);
    let question = move || {
        let n = cells();
        format!(
            "Remove the {n} cell{} (images, results and edits), the table's filter and the quiz score from this page and from this browser's storage?",
            if n == 1 { "" } else { "s" }
        )
    };
    view! {
        <section class="session" aria-label="This session">
            <Show when=move || asking.get() fallback=move || view! {
                <span class="session-kept">{move || format!(
                    "This session ({} cell{}, edits, table filter, quiz score) is kept in this browser only, across reloads.",
                    cells(), if cells() == 1 { "" } else { "s" })}</span>
                <button data-testid="clear-session" on:click=move |_| asking.set(true)>"Clear session"</button>
            }>
                <span role="alert">{question}</span>
                <button data-testid="clear-session-confirm" on:click=move |_| {
                    asking.set(false);
                    stored.clear_session();
                }>"Remove"</button>
                <button data-testid="clear-session-cancel" on:click=move |_| asking.set(false)>"Keep"</button>
            </Show>
            <Show when=move || notices.session_note.get().is_some()>
                <p class="session-note" role="status" data-testid="session-note">
                    {move || notices.session_note.get()}
                    <button class="dismiss" on:click=move |_| notices.session_note.set(None) aria-label="Dismiss">"×"</button>
                </p>
            </Show>
        </section>
    }
}
