//! The dataset view (bias discovery): for the loaded cells, each attribute's values per
//! predicted type as small multiples; with a labels file (WBCAtt's CSV format), both
//! classifiers' accuracy and confusion, the error rate per attribute value with its 95%
//! interval (worst first) and the agreement with attribute labels (`wbc_core::audit`); with
//! the user's own question applied, its error rate per attribute value on their labelled cells.

use crate::state::{Adaptation, Analyser};
use leptos::prelude::*;
use wbc_core::audit::{self, Audit, ValueErrors};
use wbc_core::{ATTRIBUTES, CELL_TYPES};

/// Okabe–Ito, colour-blind safe (as the overlay).
const PALETTE: [&str; 6] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
];

fn pct(k: usize, n: usize) -> String {
    if n == 0 {
        "–".into()
    } else {
        format!("{:.1}%", 100.0 * k as f64 / n as f64)
    }
}

/// One stacked bar: the share of each value among `counts`.
fn bar(counts: &[usize], values: &[&str], width: f64) -> impl IntoView {
    let n: usize = counts.iter().sum();
    let mut x = 0.0;
    let parts: Vec<_> = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(v, &c)| {
            let w = width * c as f64 / n as f64;
            let rect = view! {
                <rect x=x y="0" width=w height="14" fill=PALETTE[v % PALETTE.len()]>
                    <title>{format!("{}: {c} of {n}", values[v])}</title>
                </rect>
            };
            x += w;
            rect
        })
        .collect();
    view! {
        <svg width=width height="14" role="img" aria-label=format!("{n} cells")>
            <rect width=width height="14" fill="#eef0f4"/>
            {parts}
        </svg>
    }
}

fn confusion(title: &'static str, m: [[usize; 5]; 5]) -> impl IntoView {
    view! {
        <table class="confusion">
            <caption>{title}" (rows: label, columns: prediction)"</caption>
            <tr><th></th>{CELL_TYPES.iter().map(|t| view! { <th>{&t[..3]}</th> }).collect_view()}</tr>
            {(0..5).map(|t| view! {
                <tr>
                    <th>{CELL_TYPES[t]}</th>
                    {(0..5).map(|p| { let (diagonal, off) = (p == t, p != t && m[t][p] > 0); view! { <td class:diagonal=diagonal class:off=off>{m[t][p]}</td> } }).collect_view()}
                </tr>
            }).collect_view()}
        </table>
    }
}

/// Error rates per predicted attribute value with their intervals, worst first.
fn errors_table(testid: &'static str, errors: Vec<ValueErrors>) -> impl IntoView {
    view! {
    <table class="errors" data-testid=testid>
                    <tr><th>"attribute"</th><th>"value"</th><th>"cells"</th><th>"wrong"</th><th>"error rate"</th><th>"95% interval"</th><th></th></tr>
                    {errors.iter().map(|e| view! {
                        <tr>
                            <td>{ATTRIBUTES[e.attribute].name.replace('_', " ")}</td>
                            <td>{ATTRIBUTES[e.attribute].values[e.value]}</td>
                            <td>{e.cells}</td>
                            <td>{e.errors}</td>
                            <td>{format!("{:.1}%", e.rate * 100.0)}</td>
                            <td>{format!("{:.1}–{:.1}%", e.low * 100.0, e.high * 100.0)}</td>
                            <td>
                                <svg width="120" height="10" role="img" aria-label="error rate and interval">
                                    <rect width="120" height="10" fill="#eef0f4"/>
                                    <rect x=120.0 * e.low width=120.0 * (e.high - e.low) y="3" height="4" fill="#f0c39b"/>
                                    <rect x=120.0 * e.rate - 1.0 width="2" height="10" fill="#b34700"/>
                                </svg>
                            </td>
                        </tr>
                    }).collect_view()}
                </table>
        }
}

fn audit_view(a: Audit) -> impl IntoView {
    let t = &a.types;
    let summary = format!(
        "{} labelled cells: direct type {} correct ({}), CBM {} ({}){}",
        t.labelled,
        t.direct_correct,
        pct(t.direct_correct, t.labelled),
        t.cbm_correct,
        pct(t.cbm_correct, t.labelled),
        if a.unmatched > 0 {
            format!("; {} loaded cells have no label", a.unmatched)
        } else {
            String::new()
        }
    );
    view! {
        <div class="audit" data-testid="audit">
            <p data-testid="audit-summary"><b>{summary}</b></p>
            <div class="confusions">
                {confusion("Direct type", t.direct_confusion)}
                {confusion("Concept bottleneck (from attributes only)", t.cbm_confusion)}
            </div>
            <h3>"Where the direct type fails: error rate per predicted attribute value"</h3>
            {errors_table("errors-by-value", a.errors_by_value.clone())}
            <Show when={let n = a.agreement.len(); move || n > 0}>
                <h3>"Agreement with the attribute labels"</h3>
                <table class="errors" data-testid="attribute-agreement">
                    <tr><th>"attribute"</th><th>"labelled"</th><th>"agree"</th></tr>
                    {a.agreement.iter().map(|g| view! {
                        <tr><td>{ATTRIBUTES[g.attribute].name.replace('_', " ")}</td><td>{g.labelled}</td><td>{pct(g.agree, g.labelled)}</td></tr>
                    }).collect_view()}
                </table>
            </Show>
        </div>
    }
}

#[component]
pub fn DatasetView() -> impl IntoView {
    let analyser = expect_context::<Analyser>();
    let adaptation = expect_context::<Adaptation>();
    // With the user's labels and the question's answers, so bias discovery works on it too.
    let rows = Memo::new(move |_| {
        adaptation
            .rows()
            .into_iter()
            .map(|e| e.row)
            .collect::<Vec<_>>()
    });
    let distribution = move || rows.with(|r| audit::value_distribution(r));
    let per_type = move || rows.with(|r| wbc_core::table::counts(r));
    let crossed = move || {
        analyser
            .labels
            .get()
            .map(|(_, labels)| rows.with(|r| audit::audit(r, &labels)))
    };
    view! {
        <section class="dataset" data-testid="dataset-view">
            <div class="labels-load">
                <label>
                    "Load labels (CSV in WBCAtt's format: img_name, label, optionally attribute columns): "
                    <input type="file" accept=".csv,text/csv" data-testid="labels-input"
                        on:change=move |e: leptos::ev::Event| {
                            let input: web_sys::HtmlInputElement = event_target(&e);
                            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                                analyser.load_labels(file);
                            }
                            input.set_value("");
                        }/>
                </label>
                {move || analyser.labels.get().map(|(name, labels)| view! {
                    <span class="hint">{format!(" {name}: {} labelled cells ", labels.len())}</span>
                    <button on:click=move |_| analyser.labels.set(None)>"remove labels"</button>
                })}
            </div>
            <h3>"Predicted attribute values per predicted type"</h3>
            <table class="multiples">
                <tr>
                    <th></th>
                    {move || per_type().iter().zip(CELL_TYPES).map(|(n, t)| view! { <th>{format!("{t} ({n})")}</th> }).collect_view()}
                </tr>
                {move || {
                    let d = distribution();
                    ATTRIBUTES.iter().enumerate().map(|(k, a)| view! {
                        <tr>
                            <th>
                                {a.name.replace('_', " ")}
                                <div class="legend">
                                    {a.values.iter().enumerate().map(|(v, name)| view! {
                                        <span><i style:background=PALETTE[v % PALETTE.len()]></i>{*name}</span>
                                    }).collect_view()}
                                </div>
                            </th>
                            {(0..CELL_TYPES.len()).map(|t| view! { <td>{bar(&d[t][k], a.values, 110.0)}</td> }).collect_view()}
                        </tr>
                    }).collect_view()
                }}
            </table>
            {move || crossed().map(audit_view)}
            {move || {
                let errors = rows.with(|r| audit::question_errors(r));
                (!errors.is_empty()).then(|| view! {
                    <h3>"Where your question's interpretable classifier fails: error rate per predicted attribute value, on your labelled cells"</h3>
                    {errors_table("question-errors", errors)}
                })
            }}
        </section>
    }
}
