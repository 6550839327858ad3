//! The whole page: header, drop zone, messages, the list of analysed cells and the panel of
//! the cell on show.

use crate::components::dataset::DatasetView;
use crate::components::glossary::Glossary;
use crate::components::present::PresentControls;
use crate::components::quiz::Quiz;
use crate::components::session::SessionControls;
use crate::components::table::{AnalyserTable, BatchProgress};
use crate::components::{cell_panel::CellPanel, drop_zone::DropZone, header::Header};
use crate::state::{Cells, Page, PageView};
use leptos::prelude::*;

#[component]
pub fn App() -> impl IntoView {
    let Page {
        notices,
        cells,
        teaching,
        ..
    } = Page::start();
    // The panel is rebuilt only when another cell is selected or the cell on show is analysed
    // again, not when more cells arrive (which would reset its toggles and slider).
    let selected = Memo::new(move |_| {
        let id = cells.selected.get();
        let revision = cells
            .cells
            .with(|cells| cells.iter().find(|c| Some(c.id) == id).map(|c| c.revision));
        id.zip(revision)
    });
    view! {
        <Header/>
        <main class:presenting=move || teaching.presenting.get() data-presenting=move || teaching.presenting.get().to_string()>
            <DropZone/>
            <SessionControls/>
            <Show when=move || notices.fatal.get().is_some()>
                <p class="fatal" role="alert" data-testid="fatal">{move || notices.fatal.get()}</p>
            </Show>
            <p class="error" role="alert" data-testid="error"
                style:display=move || if notices.error.get().is_some() { "block" } else { "none" }>
                {move || notices.error.get()}
                <button class="dismiss" on:click=move |_| notices.error.set(None) aria-label="Dismiss">"×"</button>
            </p>
            <Show when=move || notices.refused.with(|r| !r.is_empty())>
                <details class="refused" data-testid="refused">
                    <summary>{move || {
                        let n = notices.refused.with(Vec::len);
                        format!("{n} file{} could not be analysed", if n == 1 { "" } else { "s" })
                    }}</summary>
                    <ul>
                        {move || notices.refused.get().into_iter().map(|r| {
                            let name = r.name.clone();
                            view! {
                                <li data-testid="refused-file" data-name=name>
                                    <strong>{r.name}</strong>": "{r.reason}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <button data-testid="refused-clear" on:click=move |_| notices.refused.set(Vec::new())>
                        "Clear this list"
                    </button>
                </details>
            </Show>
            <BatchProgress/>
            <PresentControls/>
            <nav class="views" aria-label="Views">
                    <button data-testid="view-explorer" aria-pressed=move || (teaching.view.get() == PageView::Explorer).to_string()
                        on:click=move |_| teaching.view.set(PageView::Explorer)>"Explorer: one cell"</button>
                    <button data-testid="view-table" aria-pressed=move || (teaching.view.get() == PageView::Table).to_string()
                        on:click=move |_| teaching.view.set(PageView::Table)>
                        {move || match cells.cells.with(Vec::len) {
                            1 => "Table: 1 cell".to_string(),
                            n => format!("Table: all {n} cells"),
                        }}
                    </button>
                    <button data-testid="view-dataset" aria-pressed=move || (teaching.view.get() == PageView::Dataset).to_string()
                        on:click=move |_| teaching.view.set(PageView::Dataset)>"Dataset view"</button>
                    <button data-testid="view-glossary" aria-pressed=move || (teaching.view.get() == PageView::Glossary).to_string()
                        on:click=move |_| teaching.view.set(PageView::Glossary)>"Glossary"</button>
                    <button data-testid="view-quiz" aria-pressed=move || (teaching.view.get() == PageView::Quiz).to_string()
                        on:click=move |_| teaching.view.set(PageView::Quiz)>"Quiz"</button>
            </nav>
            {move || match teaching.view.get() {
                PageView::Table => view! { <AnalyserTable/> }.into_any(),
                PageView::Dataset => view! { <DatasetView/> }.into_any(),
                PageView::Glossary => view! { <Glossary/> }.into_any(),
                PageView::Quiz => view! { <Quiz/> }.into_any(),
                PageView::Explorer => view! {
                    <CellList/>
                    {move || selected.get().and_then(|(id, _)| cells.cell_untracked(id)).map(|cell| if cell.has_detail() {
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
    let cells = expect_context::<Cells>();
    view! {
        <ul class="cell-list" data-testid="cell-list">
            <For each=move || cells.cells.get() key=|c| (c.id, c.revision) let:cell>
                {
                    let id = cell.id;
                    view! {
                        <li class:selected=move || cells.selected.get() == Some(id)>
                            <button on:click=move |_| cells.select(id) title=cell.name.clone()>
                                <img decoding="async" src=cell.thumb_url.clone() alt=cell.name.clone()/>
                            </button>
                        </li>
                    }
                }
            </For>
        </ul>
    }
}
