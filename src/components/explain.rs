//! Why the cell is called what it is: the concept-bottleneck model (CBM) on this cell's
//! attributes (after any edits), each attribute value's contribution to the chosen type, and
//! the CBM's weights as a heatmap. Plots are SVG drawn here.

use crate::state::{Cells, Extras};
use leptos::prelude::*;
use wbc_core::cbm::{input_names, Cbm};
use wbc_core::counterfactual::rank;
use wbc_core::metrics::argmax;
use wbc_core::CELL_TYPES;

fn pct(p: f32) -> String {
    format!("{:.0}%", 100.0 * p)
}

/// CBM verdict before → after the edits, and the disagreement with the image classifier.
#[component]
pub fn CbmVerdict(
    cbm: Cbm,
    predicted: Vec<f32>,
    edited: Signal<Vec<f32>>,
    direct_label: &'static str,
) -> impl IntoView {
    let before = cbm.probabilities(&predicted);
    let cbm2 = cbm.clone();
    let after = Memo::new(move |_| cbm2.probabilities(&edited.get()));
    let label = move || CELL_TYPES[argmax(&after.get())];
    let before_c = before.clone();
    view! {
        <div class="cbm-verdict">
            <h3>"From the attributes alone (concept-bottleneck model)"</h3>
            <p class="verdict">
                <span data-testid="cbm-type" data-probability=move || format!("{:.4}", after.get()[argmax(&after.get())])>{label}</span>
                <span class="conf">{move || format!(" ({})", pct(after.get()[argmax(&after.get())]))}</span>
            </p>
            <p class="disagree" data-testid="disagreement"
               style:display=move || if label() != direct_label { "block" } else { "none" }>
                {move || format!("The answer from the image says {direct_label}, the attributes alone say {}: look at the attributes that separate them.", label())}
            </p>
            <table class="before-after">
                <thead><tr><th>"type"</th><th>"predicted attributes"</th><th>"after your edits"</th></tr></thead>
                <tbody>
                {CELL_TYPES.iter().enumerate().map(|(c, name)| {
                    let b = before_c[c];
                    view! {
                        <tr>
                            <td>{*name}</td>
                            <td><span class="mini-bar" style:width=format!("{:.0}px", 80.0 * b)></span>" "{pct(b)}</td>
                            <td class={move || if (after.get()[c] - b).abs() > 0.01 { "moved" } else { "" }}>
                                <span class="mini-bar after" style:width=move || format!("{:.0}px", 80.0 * after.get()[c])></span>" "{move || pct(after.get()[c])}
                            </td>
                        </tr>
                    }
                }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// Sorted bar chart of weight × probability toward the CBM's chosen type.
#[component]
pub fn Contributions(cbm: Cbm, edited: Signal<Vec<f32>>) -> impl IntoView {
    let names = input_names();
    view! {
        <figure class="contributions" data-testid="contributions">
            {move || {
                let x = edited.get();
                let class = argmax(&cbm.probabilities(&x));
                let mut items: Vec<(String, f32)> = names.iter().cloned().zip(cbm.contributions(&x, class)).filter(|(_, v)| v.abs() > 1e-3).collect();
                items.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
                items.truncate(14);
                let max = items.iter().map(|(_, v)| v.abs()).fold(1e-6, f32::max);
                let row = 18.0;
                let label_w = 230.0;
                let half = 150.0;
                let h = row * items.len() as f32 + 30.0;
                let mid = label_w + half;
                view! {
                    <figcaption>{format!("What pushed this cell toward {} (blue) and away from it (orange): weight × probability", CELL_TYPES[class])}</figcaption>
                    <svg viewBox=format!("0 0 {} {h}", label_w + 2.0 * half + 10.0) role="img" aria-label="attribute contributions">
                        <line x1=mid y1="0" x2=mid y2={h - 20.0} class="axis"/>
                        {items.into_iter().enumerate().map(|(i, (name, v))| {
                            let y = i as f32 * row;
                            // Leave room beyond the longest bar for its value label.
                            let w = (half - 40.0) * v.abs() / max;
                            let x = if v >= 0.0 { mid } else { mid - w };
                            let bar_class = if v >= 0.0 { "pos" } else { "neg" };
                            let value_x = if v >= 0.0 { mid + w + 3.0 } else { mid - w - 3.0 };
                            let anchor = if v >= 0.0 { "start" } else { "end" };
                            let label_x = label_w - 6.0;
                            let (text_y, bar_y, bar_h) = (y + 13.0, y + 3.0, row - 6.0);
                            view! {
                                <g>
                                    <text x=label_x y=text_y text-anchor="end" class="tick">{name.replace(':', " = ")}</text>
                                    <rect x=x y=bar_y width=w height=bar_h class=bar_class/>
                                    <text x=value_x y=text_y text-anchor=anchor class="val">{format!("{v:+.2}")}</text>
                                </g>
                            }
                        }).collect_view()}
                        <text x=mid y={h - 4.0} text-anchor="middle" class="tick">"contribution to the logit (0 = no effect)"</text>
                    </svg>
                }
            }}
        </figure>
    }
}

/// The CBM's weights: 31 attribute values × 5 cell types, diverging colours.
#[component]
pub fn WeightHeatmap(cbm: Cbm) -> impl IntoView {
    let names = input_names();
    let max = cbm
        .weights
        .iter()
        .flatten()
        .map(|w| w.abs())
        .fold(1e-6, f32::max);
    let cell = 16.0;
    let label_w = 260.0;
    let top = 70.0;
    // Room on the right for the last rotated column label.
    let w = label_w + cell * 5.0 + 60.0;
    let h = top + cell * names.len() as f32 + 10.0;
    // Blue (positive) / orange (negative): distinguishable with common colour-vision deficits.
    let colour = move |v: f32| {
        let t = (v.abs() / max).min(1.0);
        let (r, g, b) = if v >= 0.0 {
            (0.0, 114.0, 178.0)
        } else {
            (230.0, 159.0, 0.0)
        };
        let mix = |c: f32| (255.0 - t * (255.0 - c)) as u8;
        format!("rgb({},{},{})", mix(r), mix(g), mix(b))
    };
    view! {
        <figure class="heatmap" data-testid="cbm-heatmap">
            <figcaption>"CBM weights (attribute value × cell type): blue raises the type's score, orange lowers it, white is zero (L1 = "{cbm.l1}")"</figcaption>
            <svg class="natural" viewBox=format!("0 0 {w} {h}") width=w height=h role="img" aria-label="CBM weight heatmap">
                {CELL_TYPES.iter().enumerate().map(|(c, name)| {
                    let x = label_w + cell * c as f32 + cell / 2.0;
                    view! { <text x=x y={top - 6.0} transform=format!("rotate(-50 {x} {})", top - 6.0) class="tick">{*name}</text> }
                }).collect_view()}
                {names.iter().enumerate().map(|(i, name)| {
                    let y = top + cell * i as f32;
                    let row = (0..5).map(|c| {
                        let v = cbm.weights[c][i];
                        view! { <rect x={label_w + cell * c as f32} y=y width={cell - 1.0} height={cell - 1.0} fill=colour(v)><title>{format!("{name} → {}: {v:+.2}", CELL_TYPES[c])}</title></rect> }
                    }).collect_view();
                    view! { <g><text x={label_w - 6.0} y={y + 12.0} text-anchor="end" class="tick">{name.replace(':', " = ")}</text>{row}</g> }
                }).collect_view()}
            </svg>
        </figure>
    }
}

/// One counterfactual match: a loaded cell (click shows it) or a reference cell (thumbnail).
#[derive(Clone)]
struct Match {
    distance: f32,
    path: String,
    image: String,
    cell_type: String,
    loaded: Option<u32>,
}

/// "Show real cells like this": among the loaded cells and the reference index (when the build
/// has one), cells whose predicted attributes have the edited values, closest first in the
/// other attributes (wbc-core's ranking, the same as `wbc counterfactual`).
#[component]
pub fn Counterfactuals(current: u32, edits: Signal<[Option<usize>; 11]>) -> impl IntoView {
    let (loaded, extras) = (expect_context::<Cells>(), expect_context::<Extras>());
    let matches = move || {
        let requests = edits.get();
        let cells = loaded.cells.get();
        let Some(me) = cells.iter().find(|c| c.id == current) else {
            return Vec::new();
        };
        let mine = me.prediction.concepts();
        let query = (mine.as_slice(), me.features.as_slice());
        let others: Vec<&crate::state::CellView> =
            cells.iter().filter(|c| c.id != current).collect();
        let concepts: Vec<Vec<f32>> = others.iter().map(|c| c.prediction.concepts()).collect();
        let mut found: Vec<Match> = rank(
            query,
            others
                .iter()
                .zip(&concepts)
                .map(|(c, k)| (k.as_slice(), c.features.as_slice())),
            &requests,
            5,
        )
        .into_iter()
        .map(|(i, d)| Match {
            distance: d,
            path: others[i].name.clone(),
            // The full crop when the cell still holds it, else its thumbnail.
            image: if others[i].has_detail() {
                others[i].image_url.clone()
            } else {
                others[i].thumb_url.clone()
            },
            cell_type: CELL_TYPES[argmax(&others[i].prediction.cell_type)].to_string(),
            loaded: Some(others[i].id),
        })
        .collect();
        if let Some(index) = extras.reference.get() {
            found.extend(
                rank(
                    query,
                    index
                        .entries
                        .iter()
                        .map(|e| (e.concepts.as_slice(), e.features.as_slice())),
                    &requests,
                    5,
                )
                .into_iter()
                .map(|(i, d)| {
                    let e = &index.entries[i];
                    Match {
                        distance: d,
                        path: e.path.clone(),
                        image: e
                            .thumbnail
                            .as_ref()
                            .map(|t| format!("reference/{t}"))
                            .unwrap_or_default(),
                        cell_type: e.cell_type.clone(),
                        loaded: None,
                    }
                }),
            );
        }
        found.sort_by(|a, b| a.distance.total_cmp(&b.distance));
        found.truncate(6);
        found
    };
    let source = move || match extras.reference.get() {
        Some(index) => format!(
            "Among the cells you have loaded and {} reference cells built into this page ({})",
            index.entries.len(),
            index
                .credit
                .as_deref()
                .unwrap_or("their source is not stated by this build")
        ),
        None => "Among the cells you have loaded (this build has no reference index)".to_string(),
    };
    view! {
        <section class="counterfactuals">
            <h3>"Real cells like this"</h3>
            <p class="hint">{source}": cells whose predicted attributes have your edited values, closest in all other attributes first."</p>
            <ol data-testid="counterfactuals">
                {move || {
                    let m = matches();
                    if m.is_empty() {
                        view! { <li class="none">"No cell matches yet — load more cells (a folder works)."</li> }.into_any()
                    } else {
                        m.into_iter().map(|m| {
                            let source = if m.loaded.is_some() { "loaded" } else { "reference" };
                            let label = format!("{} ({}, {source}, distance {:.2})", m.path.rsplit('/').next().unwrap_or(&m.path), m.cell_type, m.distance);
                            let image = view! { <img decoding="async" src=m.image.clone() alt=m.path.clone()/><span>{label}</span> };
                            match m.loaded {
                                Some(id) => view! {
                                    <li data-path=m.path.clone() data-source=source>
                                        <button title="show this cell" on:click=move |_| loaded.select(id)>{image}</button>
                                    </li>
                                }.into_any(),
                                None => view! {
                                    <li data-path=m.path.clone() data-source=source>
                                        <figure class="reference-cell" title=m.path.clone()>{image}</figure>
                                    </li>
                                }.into_any(),
                            }
                        }).collect_view().into_any()
                    }
                }}
            </ol>
        </section>
    }
}
