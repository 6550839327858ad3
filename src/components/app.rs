//! The whole page: header, drop zone, messages, the list of analysed cells and the panel of
//! the cell on show.

use crate::components::dataset::DatasetView;
use crate::components::glossary::Glossary;
use crate::components::present::PresentControls;
use crate::components::quiz::Quiz;
use crate::components::session::SessionControls;
use crate::components::table::{AnalyserTable, BatchProgress};
use crate::components::{cell_panel::CellPanel, drop_zone::DropZone, header::Header};
use crate::state::{AppState, PageView};
use leptos::prelude::*;

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::start();
    provide_context(state);
    // The panel is rebuilt only when another cell is selected or the cell on show is analysed
    // again, not when more cells arrive (which would reset its toggles and slider).
    let selected = Memo::new(move |_| {
        let id = state.selected.get();
        let revision = state
            .cells
            .with(|cells| cells.iter().find(|c| Some(c.id) == id).map(|c| c.revision));
        id.zip(revision)
    });
    view! {
        <Header/>
        <main class:presenting=move || state.presenting.get() data-presenting=move || state.presenting.get().to_string()>
            <DropZone/>
            <SessionControls/>
            <Show when=move || state.fatal.get().is_some()>
                <p class="fatal" role="alert" data-testid="fatal">{move || state.fatal.get()}</p>
            </Show>
            <p class="error" role="alert" data-testid="error"
                style:display=move || if state.error.get().is_some() { "block" } else { "none" }>
                {move || state.error.get()}
                <button class="dismiss" on:click=move |_| state.error.set(None) aria-label="Dismiss">"×"</button>
            </p>
            <Show when=move || state.refused.with(|r| !r.is_empty())>
                <details class="refused" data-testid="refused">
                    <summary>{move || {
                        let n = state.refused.with(Vec::len);
                        format!("{n} file{} could not be analysed", if n == 1 { "" } else { "s" })
                    }}</summary>
                    <ul>
                        {move || state.refused.get().into_iter().map(|r| {
                            let name = r.name.clone();
                            view! {
                                <li data-testid="refused-file" data-name=name>
                                    <strong>{r.name}</strong>": "{r.reason}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <button data-testid="refused-clear" on:click=move |_| state.refused.set(Vec::new())>
                        "Clear this list"
                    </button>
                </details>
            </Show>
            <BatchProgress/>
            <PresentControls/>
            <nav class="views" aria-label="Views">
                    <button data-testid="view-explorer" aria-pressed=move || (state.view.get() == PageView::Explorer).to_string()
                        on:click=move |_| state.view.set(PageView::Explorer)>"Explorer: one cell"</button>
                    <button data-testid="view-table" aria-pressed=move || (state.view.get() == PageView::Table).to_string()
                        on:click=move |_| state.view.set(PageView::Table)>
                        {move || match state.cells.with(Vec::len) {
                            1 => "Table: 1 cell".to_string(),
                            n => format!("Table: all {n} cells"),
                        }}
                    </button>
                    <button data-testid="view-dataset" aria-pressed=move || (state.view.get() == PageView::Dataset).to_string()
                        on:click=move |_| state.view.set(PageView::Dataset)>"Dataset view"</button>
                    <button data-testid="view-glossary" aria-pressed=move || (state.view.get() == PageView::Glossary).to_string()
                        on:click=move |_| state.view.set(PageView::Glossary)>"Glossary"</button>
                    <button data-testid="view-quiz" aria-pressed=move || (state.view.get() == PageView::Quiz).to_string()
                        on:click=move |_| state.view.set(PageView::Quiz)>"Quiz"</button>
            </nav>
            {move || match state.view.get() {
                PageView::Table => view! { <AnalyserTable/> }.into_any(),
                PageView::Dataset => view! { <DatasetView/> }.into_any(),
                PageView::Glossary => view! { <Glossary/> }.into_any(),
                PageView::Quiz => view! { <Quiz/> }.into_any(),
                PageView::Explorer => view! {
                    <CellList/>
                    {move || selected.get().and_then(|(id, _)| state.cell_untracked(id)).map(|cell| if cell.detail {
                        view! { <CellPanel cell=cell/> }.into_any()
                    } else {
                        view! { <p class="reloading" data-testid="reloading">{format!("Analysing {} again to show its overlay…", cell.name)}</p> }.into_any()
                    })}
                }.into_any(),
            }}
        </main>
    }
}

/// Thumbnails of every analysed cell; clicking one shows it.
#[component]
fn CellList() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <ul class="cell-list" data-testid="cell-list">
            <For each=move || state.cells.get() key=|c| (c.id, c.revision) let:cell>
                {
                    let id = cell.id;
                    view! {
                        <li class:selected=move || state.selected.get() == Some(id)>
                            <button on:click=move |_| state.select(id) title=cell.name.clone()>
                                <img decoding="async" src=cell.thumb_url.clone() alt=cell.name.clone()/>
                            </button>
                        </li>
                    }
                }
            </For>
        </ul>
    }
}
