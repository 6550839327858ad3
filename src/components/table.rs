//! The morphology analyser: every loaded cell as a row (types, the 11 attributes with their
//! probabilities, measurements, flags), sortable by any column, filtered by type, attribute
//! values, file name and flags, with a differential count of what is shown and CSV/JSON
//! export (`wbc_core::table`, the same format as `wbc analyse --out`). A row opens the cell in
//! the explorer; the filters stay for the way back.

use crate::components::adapt::YourMicroscope;
use crate::components::after_next_paint;
use crate::state::{
    download, open_cell, Adaptation, Analyser, Cells, Engine, Notices, TableEntry, Teaching,
};
use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wbc_core::table::{self, Row, SortKey};
use wbc_core::{ATTRIBUTES, CELL_TYPES};

/// Rows added to the table per painted frame while it fills (see [`AnalyserTable`]).
const ROWS_PER_FRAME: usize = 40;

fn percent(p: f32) -> String {
    format!("{:.0}%", p * 100.0)
}

fn measured<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
}

/// A column heading that sorts by `key` (a second click reverses).
#[component]
fn SortHeader(key: SortKey, label: String) -> impl IntoView {
    let sort = expect_context::<Analyser>().sort;
    let mark = move || match sort.get() {
        (k, false) if k == key => " ▲",
        (k, true) if k == key => " ▼",
        _ => "",
    };
    let aria = move || match sort.get() {
        (k, false) if k == key => "ascending",
        (k, true) if k == key => "descending",
        _ => "none",
    };
    view! {
        <th aria-sort=aria>
            <button class="sort" on:click=move |_| sort.update(|(k, d)| {
                if *k == key { *d = !*d } else { *k = key; *d = false }
            })>{label}{mark}</button>
        </th>
    }
}

/// A `<select>` filter: "any" or one of `options` (index into it).
#[component]
fn FilterSelect(
    testid: String,
    label: String,
    options: Vec<&'static str>,
    get: Signal<Option<usize>>,
    set: Callback<Option<usize>>,
) -> impl IntoView {
    view! {
        <label class="filter">
            <span>{label}</span>
            <select data-testid=testid
                prop:value=move || get.get().map(|v| v.to_string()).unwrap_or_default()
                on:change=move |e| set.run(event_target_value(&e).parse().ok())>
                <option value="">"any"</option>
                {options.into_iter().enumerate().map(|(i, o)| view! {
                    <option value=i.to_string() selected=move || get.get() == Some(i)>{o}</option>
                }).collect_view()}
            </select>
        </label>
    }
}

#[component]
pub fn AnalyserTable() -> impl IntoView {
    let analyser = expect_context::<Analyser>();
    let (cells, teaching) = (expect_context::<Cells>(), expect_context::<Teaching>());
    let notices = expect_context::<Notices>();
    let filter = analyser.filter;
    let adaptation = expect_context::<Adaptation>();
    let rows = Memo::new(move |_| adaptation.rows());
    let shown = Memo::new(move |_| {
        let (key, descending) = analyser.sort.get();
        rows.with(|rows| table::view(rows, &filter.get(), key, descending))
    });
    // The keyboard cursor: a position in `shown`.
    let cursor = RwSignal::new(0usize);
    let counts = move || rows.with(|rows| table::counts(shown.get().iter().map(|&i| &rows[i].row)));
    // The row under the cursor, for the grid's active descendant.
    let active_row = move || {
        shown.with(|s| s.get(cursor.get()).copied()).map(|i| {
            let id = rows.with(|r| r[i].id);
            format!("table-row-{id}")
        })
    };
    let export = move |json: bool| {
        rows.with(|rows| {
            let picked: Vec<&Row> = shown
                .get_untracked()
                .iter()
                .map(|&i| &rows[i].row)
                .collect();
            let result = if json {
                serde_json::to_string_pretty(&table::to_json(picked))
                    .ok()
                    .and_then(|t| download("wbc-cells.json", "application/json", &t))
            } else {
                download("wbc-cells.csv", "text/csv", &table::to_csv(picked))
            };
            if result.is_none() {
                notices.say("the export could not be made");
            }
        })
    };
    let on_key = move |e: ev::KeyboardEvent| {
        let n = shown.with_untracked(Vec::len);
        if n == 0 {
            return;
        }
        match e.key().as_str() {
            "ArrowDown" => cursor.update(|c| *c = (*c + 1).min(n - 1)),
            "ArrowUp" => cursor.update(|c| *c = c.saturating_sub(1)),
            "Home" => cursor.set(0),
            "End" => cursor.set(n - 1),
            "Enter" => {
                let i = shown.with_untracked(|s| s[cursor.get_untracked().min(n - 1)]);
                open_cell(cells, teaching, rows.with_untracked(|r| r[i].id));
            }
            _ => return,
        }
        e.prevent_default();
    };
    // Rows go in ROWS_PER_FRAME at a time, one step per painted frame: opening the table on
    // hundreds of cells built every row in one main-thread task (up to 390 ms for 80 rows on
    // this machine). Once grown, the limit stays: sorting and filtering show every row.
    let limit = RwSignal::new(ROWS_PER_FRAME);
    let growing = StoredValue::new(false);
    Effect::new(move |_| {
        if shown.with(Vec::len) > limit.get() && !growing.get_value() {
            growing.set_value(true);
            // A table left before the next paint is gone: nothing to grow.
            after_next_paint(move || {
                let _ = growing.try_set_value(false);
                let _ = limit.try_update(|l| *l += ROWS_PER_FRAME);
            });
        }
    });
    let pending = move || (shown.with(Vec::len) > limit.get()).then_some("true");
    view! {
        <YourMicroscope/>
        <section class="analyser" data-testid="analyser">
            <TableFilters filter=filter/>
            <div class="table-summary">
                <p data-testid="differential" aria-live="polite">
                    <b>{move || format!("{} of {} cells", shown.with(Vec::len), rows.with(Vec::len))}</b>
                    {move || counts().iter().zip(CELL_TYPES).filter(|(n, _)| **n > 0)
                        .map(|(n, t)| format!(" · {t} {n}")).collect::<String>()}
                </p>
                <button data-testid="export-csv" on:click=move |_| export(false)>"export CSV"</button>
                <button data-testid="export-json" on:click=move |_| export(true)>"export JSON"</button>
            </div>
            <div class="table-scroll">
            // A grid: the rows are selectable and the arrow keys move the selection, which a
            // screen reader follows through the active descendant.
            <table data-testid="batch-table" tabindex="0" on:keydown=on_key data-rows-pending=pending
                role="grid" aria-activedescendant=move || active_row()
                aria-label="Analysed cells: arrow keys move, Enter opens a cell">
                <TableHead/>
                <tbody>
                    // Keyed rows: a cell arriving during a batch adds its row and leaves the
                    // others' DOM alone (before, every row was rebuilt for every arriving
                    // cell). A row is rebuilt when its place changes (a sort, a filter) or the
                    // CBM column fills in; a cell's row never changes otherwise.
                    <For each=move || rows.with(|rows| shown.get().iter().take(limit.get()).enumerate().map(|(pos, &i)| (pos, rows[i].clone())).collect::<Vec<_>>())
                        key=|(pos, entry)| (entry.id, *pos, entry.row.cbm.is_some())
                        children=move |(pos, entry)| view! {
                            <TableRow entry=entry selected=Signal::derive(move || cursor.get() == pos)
                                open=Callback::new(move |id| open_cell(cells, teaching, id))/>
                        }/>
                </tbody>
            </table>
            </div>
        </section>
    }
}

/// Files taken in: done / total, cells per second, time left, and a cancel button.
#[component]
pub fn BatchProgress() -> impl IntoView {
    let engine = expect_context::<Engine>();
    let batch = engine.requests.batch;
    let text = move || {
        let b = batch.get();
        let now = web_sys::window()
            .and_then(|w| w.performance())
            .map_or(0.0, |p| p.now());
        let rate = match b.rate(now) {
            Some((rate, left)) if b.running() => {
                format!(" · {rate:.1} cells/s · {left:.0} s left")
            }
            Some((rate, _)) => format!(" · {rate:.1} cells/s"),
            None => String::new(),
        };
        format!("{} / {} analysed{rate}", b.done, b.total)
    };
    // The page's wasm memory, for outside measurements (the batch benchmark): read when the
    // progress changes.
    let wasm_bytes = move || {
        batch.track();
        wasm_bindgen::memory()
            .dyn_into::<js_sys::WebAssembly::Memory>()
            .map(|m| {
                m.buffer()
                    .unchecked_into::<js_sys::ArrayBuffer>()
                    .byte_length()
            })
            .unwrap_or(0)
    };
    view! {
        <Show when=move || { batch.get().total > 1 }>
            <div class="batch-progress" data-testid="batch-progress" role="status" data-wasm-memory=wasm_bytes>
                <progress max=move || batch.get().total value=move || batch.get().done></progress>
                <span>{text}</span>
                <Show when=move || batch.get().running()>
                    <button data-testid="cancel-batch" on:click=move |_| engine.cancel()>"cancel"</button>
                </Show>
            </div>
        </Show>
    }
}

/// The table's filters: type, each attribute, part of a file name, flagged only.
#[component]
fn TableFilters(filter: RwSignal<table::Filter>) -> impl IntoView {
    let type_filter = Signal::derive(move || filter.get().cell_type);
    view! {
                <div class="filters">
        <FilterSelect testid="filter-type".into() label="type".into() options=CELL_TYPES.to_vec()
            get=type_filter set=Callback::new(move |v| filter.update(|f| f.cell_type = v))/>
        {ATTRIBUTES.iter().enumerate().map(|(k, a)| {
            let get = Signal::derive(move || filter.get().attributes[k]);
            view! {
                <FilterSelect testid=format!("filter-{}", a.name) label=a.name.replace('_', " ") options=a.values.to_vec()
                    get=get set=Callback::new(move |v| filter.update(|f| f.attributes[k] = v))/>
            }
        }).collect_view()}
        <label class="filter">
            <span>"file name"</span>
            <input type="search" data-testid="filter-text" placeholder="part of a name"
                prop:value=move || filter.get().text
                on:input=move |e| filter.update(|f| f.text = event_target_value(&e))/>
        </label>
        <label class="filter check">
            <input type="checkbox" data-testid="filter-flagged"
                prop:checked=move || filter.get().flagged_only
                on:change=move |e| filter.update(|f| f.flagged_only = event_target_checked(&e))/>
            <span>"flagged only"</span>
        </label>
        <button on:click=move |_| filter.set(Default::default())
            disabled=move || filter.with(table::Filter::is_empty)>"clear filters"</button>
    </div>
        }
}

/// One cell's row; `selected` while the keyboard cursor is on it (the grid's selection).
#[component]
fn TableRow(entry: TableEntry, selected: Signal<bool>, open: Callback<u32>) -> impl IntoView {
    let TableEntry {
        id,
        thumb_url: url,
        row: r,
    } = entry;
    let (t, p) = r.cell_type();
    let disagree = r.disagree();
    let cbm = r
        .cbm
        .map(|(c, p)| format!("{} {}", CELL_TYPES[c], percent(p)))
        .unwrap_or_else(|| "–".into());
    let flags = r.flags().join(", ");
    let flagged = !flags.is_empty();
    view! {
        <tr data-path=r.name.clone() class:cursor=move || selected.get() class:flagged=flagged
            id=format!("table-row-{id}") aria-selected=move || selected.get().to_string()
            on:click=move |_| open.run(id) title="open in the explorer">
            <td><img decoding="async" src=url alt="" width="40" height="40"/></td>
            <td class="name">{r.name.clone()}</td>
            <td>{CELL_TYPES[t]}" "<small>{percent(p)}</small></td>
            <td class:disagree=disagree title=move || disagree.then_some("the CBM disagrees with the direct type")>
                {cbm}{disagree.then_some(" ≠")}
            </td>
            {(0..ATTRIBUTES.len()).map(|k| {
                let (v, p) = r.attribute(k);
                view! { <td>{ATTRIBUTES[k].values[v]}" "<small>{percent(p)}</small></td> }
            }).collect_view()}
            <td>{measured(r.nc_ratio().map(|v| format!("{v:.2}")))}</td>
            <td>{measured(r.size_in_red_cells().map(|v| format!("{v:.2}")))}</td>
            <td>{measured(r.lobes())}</td>
            <td>{measured(r.vacuoles())}</td>
            <td class="flags" title=r.warning()>{flags}</td>
            <td class="user-label">{r.user_label.clone().unwrap_or_default()}</td>
            <td class="question">{r.question.as_ref().map(|(c, p)| view! { {c.clone()}" "<small>{percent(*p)}</small> })}</td>
        </tr>
    }
}

/// The column headers, each a sort button (the attribute columns in WBCAtt's names).
#[component]
fn TableHead() -> impl IntoView {
    view! {
                    <thead>
        <tr>
            <th>"cell"</th>
            <SortHeader key=SortKey::Name label="file".into()/>
            <SortHeader key=SortKey::CellType label="type".into()/>
            <SortHeader key=SortKey::CbmType label="CBM type".into()/>
            {ATTRIBUTES.iter().enumerate().map(|(k, a)| view! {
                <SortHeader key=SortKey::Attribute(k) label=a.name.replace('_', " ")/>
            }).collect_view()}
            <SortHeader key=SortKey::NcRatio label="N:C".into()/>
            <SortHeader key=SortKey::Size label="size (red cells)".into()/>
            <SortHeader key=SortKey::Lobes label="lobes".into()/>
            <SortHeader key=SortKey::Vacuoles label="vacuoles".into()/>
            <SortHeader key=SortKey::Flag label="flags".into()/>
            <th>"your label"</th>
            <th>"your question"</th>
        </tr>
    </thead>
        }
}
