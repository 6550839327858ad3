//! One analysed cell, explained and editable: the image with its segmentation, the cell type
//! from the image and from the attributes (CBM), the 11 attributes with a probability bar per
//! value and a selector to change each, why the CBM decided as it did, and real cells like
//! the edited one.

use crate::components::adapt::{CellLabel, QuestionAnswerView};
use crate::components::after_next_paint;
use crate::components::explain::{CbmVerdict, Contributions, Counterfactuals, WeightHeatmap};
use crate::components::glossary::WhatIsThis;
use crate::components::overlay::{Measurements, SegmentationOverlay};
use crate::components::show_me::ShowMeSection;
use crate::state::{Adaptation, Cam, CellView, Cells, Edits, Engine, Extras};
use leptos::prelude::*;
use wbc_core::cbm::intervene;
use wbc_core::front_end::ScaleSource;
use wbc_core::measured_type::MeasuredTypeAnswer;
use wbc_core::metrics::argmax;
use wbc_core::schema::ATTRIBUTE_GROUPS;
use wbc_core::{ATTRIBUTES, CELL_TYPES};
use wbc_messages::SEGMENTATION_SIDE;

/// The panel's last build step (see [`CellPanel`]).
const LAST_STAGE: u8 = 4;

fn percent(p: f32) -> String {
    format!("{:.0}%", 100.0 * p)
}

/// Horizontal bars, one per value; the chosen value is highlighted.
#[component]
pub fn ProbabilityBars(labels: Vec<&'static str>, probabilities: Vec<f32>) -> impl IntoView {
    let best = argmax(&probabilities);
    labels
        .into_iter()
        .zip(probabilities)
        .enumerate()
        .map(|(i, (label, p))| {
            view! {
                <div class="bar-row" class:best=i == best data-value=label data-probability=format!("{p:.4}")>
                    <span class="bar-label">{label}</span>
                    <span class="bar-track"><span class="bar-fill" style:width=percent(p)></span></span>
                    <span class="bar-value">{percent(p)}</span>
                </div>
            }
        })
        .collect_view()
}

/// One attribute: predicted probabilities, and a selector to set another value.
#[component]
fn AttributeEditor(
    cell_id: u32,
    name: String,
    k: usize,
    probabilities: Vec<f32>,
    /// As shipped, before a profile's correction.
    shipped: Vec<f32>,
    edits: Signal<Edits>,
    set_edit: Callback<(usize, Option<usize>)>,
) -> impl IntoView {
    let a = &ATTRIBUTES[k];
    let predicted = argmax(&probabilities);
    let shipped = argmax(&shipped);
    let adaptation = expect_context::<Adaptation>();
    let corrected = move || adaptation.attribute_corrected(k);
    // The user's own value (a label the profile learns from), not a what-if.
    let name = StoredValue::new(name);
    let own = move || name.with_value(|n| adaptation.attribute_labels_of(cell_id, n)[k]);
    let current = move || edits.get()[k].unwrap_or(predicted);
    let edited = move || edits.get()[k].is_some();
    let (cam, engine) = (expect_context::<Cam>(), expect_context::<Engine>());
    let pending = move || {
        cam.pending
            .get()
            .is_some_and(|(c, a, _)| c == cell_id && a == k)
    };
    let shown = move || {
        cam.shown
            .get()
            .is_some_and(|c| c.cell == cell_id && c.attribute == k)
    };
    view! {
        <div class="attribute" class:edited=edited data-testid=format!("attribute-{}", a.name)
            data-value=move || a.values[current()] data-edited=move || edited().to_string()>
            <h4 title=a.definition>
                {a.title}": "<b>{move || a.values[current()]}</b>
                {move || edited().then(|| view! { <span class="edited-mark">" (edited; predicted "{a.values[predicted]}")"</span> })}
                {move || corrected().then(|| view! {
                    <span class="corrected-mark" data-testid=format!("corrected-{}", a.name)>
                        {format!(" (corrected from your values; as shipped: {})", a.values[shipped])}</span>
                })}
            </h4>
            <p class="definition">{a.definition}" "<WhatIsThis k=k/></p>
            <ProbabilityBars labels=a.values.to_vec() probabilities=probabilities/>
            <label class="edit">"set to "
                <select prop:value=move || current().to_string()
                    on:change=move |e| {
                        let v: usize = event_target_value(&e).parse().unwrap_or(predicted);
                        set_edit.run((k, (v != predicted).then_some(v)));
                    }>
                    {a.values.iter().enumerate().map(|(i, v)| view! {
                        <option value=i.to_string() selected=move || current() == i>{*v}{if i == predicted { " (predicted)" } else { "" }}</option>
                    }).collect_view()}
                </select>
            </label>
            <label class="edit own-value" title="What you read in this cell: kept as your label and learnt from when you fit a profile (unlike \"set to\", which only asks what if)">" your value: "
                <select data-testid=format!("own-{}", a.name) prop:value=move || own().map_or(String::new(), |v| v.to_string())
                    on:change=move |e| {
                        let v = event_target_value(&e).parse::<usize>().ok();
                        adaptation.set_attribute_label(cell_id, k, v);
                    }>
                    <option value="" selected=move || own().is_none()>"—"</option>
                    {a.values.iter().enumerate().map(|(i, v)| view! {
                        <option value=i.to_string() selected=move || own() == Some(i)>{*v}</option>
                    }).collect_view()}
                </select>
            </label>
            <button class="cam-button" data-testid=format!("cam-{}", a.name) class:active=shown
                title="Show where in the image the network found evidence for the value shown"
                disabled=pending
                on:click=move |_| engine.explain(cell_id, k, current())>
                {move || if pending() { "looking…" } else { "where?" }}
            </button>
        </div>
    }
}

/// The two opinions under the cell type: the attribute network's (from the image) and the
/// measured type's (from the segmentation's measurements of shape and density), and whether
/// they agree. On another microscope's cells they often do not, and the reader should know.
#[component]
fn TypeOpinions(m: MeasuredTypeAnswer) -> impl IntoView {
    let (net, measured) = (argmax(&m.network), argmax(&m.measured));
    let agree = net == measured;
    let measured_text = view! {
        <span title="A regression on the nucleus's shape and lobes, the nucleus-to-cell ratio, the size against the red cells and the stain densities, measured on the segmentation">
            "Measured shape and density alone: "<b>{CELL_TYPES[measured]}</b>{format!(" ({})", percent(m.measured[measured]))}". "</span>
    };
    view! {
        <p class="type-opinions" class:disagree=!agree data-testid="type-opinions"
            data-network=CELL_TYPES[net] data-measured=CELL_TYPES[measured] data-agree=agree.to_string()>
            {m.used.then(|| view! {
                {format!("The answer above joins two opinions ({}). ", m.joining_text())}
                <span>"Image network alone: "<b>{CELL_TYPES[net]}</b>{format!(" ({}). ", percent(m.network[net]))}</span>
            })}
            {(!m.used).then(|| "Second opinion. ")}
            {measured_text}
            {if agree {
                view! { <span>"The two agree."</span> }.into_any()
            } else {
                view! { <span class="warn">"They disagree: check the cell by eye."</span> }.into_any()
            }}
        </p>
    }
}

/// What the front end did to a cell, the warning when the cell is unlike the training
/// images, and the controls: the stain-normalisation toggle and the image the networks saw.
#[component]
fn FrontEndNote(cell: CellView, show_normalised: RwSignal<bool>) -> impl IntoView {
    let engine = expect_context::<Engine>();
    let stain = engine.requests.stain;
    let warning = cell.familiarity.as_ref().and_then(|f| f.warning());
    let familiarity = cell.familiarity.clone();
    let Some(fe) = cell.front_end.clone() else {
        return view! {
            <p class="front-end" data-testid="front-end">
                "No calibration card loaded: the image went in as a plain centre crop, with no scale or colour correction and no check of how familiar it looks."
            </p>
        }
        .into_any();
    };
    let source = match fe.scale.source {
        ScaleSource::RedCells => "measured on the red cells",
        ScaleSource::WhiteCell => "from the white cell's size, outside the training range",
        ScaleSource::Unchanged => "no red cells to measure; the white cell's size is within the training range, so taken as it is",
        ScaleSource::NoCell => "no cell found to measure",
    };
    let scale_text = format!(
        "Magnification ×{:.2} of the training images' ({source}); {}",
        fe.scale.factor,
        if fe.settings.scale {
            "resampled to their scale."
        } else {
            "not resampled (scale correction is off in this calibration)."
        }
    );
    let colour_text = match (
        fe.settings.white_balance || fe.settings.stain,
        fe.settings.stain,
    ) {
        (false, _) => "Colours not corrected.".to_string(),
        (true, false) => format!(
            "White-balanced to the training background (correction {:.2}).",
            fe.look_strength
        ),
        (true, true) => format!(
            "White-balanced and stain-normalised to the training images (correction {:.2}).",
            fe.look_strength
        ),
    };
    let has_normalised = cell.normalised_url.is_some();
    let unfamiliar = familiarity.as_ref().is_some_and(|f| f.is_unfamiliar());
    // Until the user sets the toggle, it shows what this cell was analysed with.
    let analysed_with_stain = fe.settings.stain;
    view! {
        <div class="front-end" data-testid="front-end"
            data-scale=format!("{:.3}", fe.scale.factor)
            data-scale-source=format!("{:?}", fe.scale.source)
            data-unfamiliar=unfamiliar.to_string()>
            {warning.map(|w| view! { <p class="unfamiliar" role="alert" data-testid="unfamiliar-warning">{"⚠ "}{w}</p> })}
            <p data-testid="scale">{scale_text}" "{colour_text}</p>
            {familiarity.map(|f| view! {
                <p class="familiarity" data-testid="doubt">{format!("{}Feature distance to the training cells {:.1}; colour correction {:.2}; scale offset {:.2}.", f.doubt.map(|d| format!("Doubt {:.2} (0–1: how likely the cell type is wrong, as the doubt model estimates it). ", d)).unwrap_or_default(), f.feature_distance, f.look_strength, f.scale_offset)}</p>
            })}
            <label class="toggle">
                <input type="checkbox" data-testid="stain-toggle"
                    prop:checked=move || stain.get().unwrap_or(analysed_with_stain)
                    on:change=move |_| engine.set_stain(!stain.get_untracked().unwrap_or(analysed_with_stain))/>
                " Stain normalisation (analyses every cell again)"
            </label>
            {has_normalised.then(|| view! {
                <label class="toggle">
                    <input type="checkbox" data-testid="show-normalised"
                        prop:checked=move || show_normalised.get()
                        on:change=move |_| show_normalised.update(|v| *v = !*v)/>
                    " Show the image as the networks saw it"
                </label>
            })}
        </div>
    }
    .into_any()
}

#[component]
pub fn CellPanel(cell: CellView) -> impl IntoView {
    let (cells, extras) = (expect_context::<Cells>(), expect_context::<Extras>());
    let id = cell.id;
    let p = cell.prediction.clone();
    let raw = serde_json::to_string(&p).unwrap_or_default();
    let edits: Signal<Edits> = Signal::derive(move || cells.edits_of(id));
    let set_edit = Callback::new(move |(k, v): (usize, Option<usize>)| cells.edit(id, k, v));
    let concepts = p.concepts();
    let edited_concepts = Signal::derive(move || {
        edits
            .get()
            .iter()
            .enumerate()
            .fold(concepts.clone(), |acc, (k, v)| match v {
                Some(v) => intervene(&acc, k, *v),
                None => acc,
            })
    });
    let n_edits = move || edits.get().iter().filter(|e| e.is_some()).count();
    let p_attrs = p.attributes.clone();
    let shipped_attrs = cell.shipped.attributes.clone();
    let cell_name = cell.name.clone();
    let show_normalised = RwSignal::new(false);
    let (own, normalised) = (cell.image_url.clone(), cell.normalised_url.clone());
    let image_url = Signal::derive(move || match (&normalised, show_normalised.get()) {
        (Some(n), true) => n.clone(),
        _ => own.clone(),
    });
    // The panel is built in five steps, each after the browser has painted the one before:
    // the image and cell type, the 11 attributes, the CBM's contributions, its weight heatmap
    // (an SVG of 155 cells), then the counterfactuals with their thumbnails. Built at once, its style and layout made one main-thread task of
    // 150-350 ms (issue 18: a click must be answered within 200 ms); DOM added by a plain
    // zero timeout is laid out in the same frame, hence the paint wait.
    let stage = RwSignal::new(0u8);
    fn next(stage: RwSignal<u8>) {
        after_next_paint(move || {
            // `None`: the user opened another cell meanwhile and this panel is gone (reading
            // its disposed stage panicked the page when cells were clicked in quick turn).
            let Some(now) = stage.try_update(|s| {
                *s += 1;
                *s
            }) else {
                return;
            };
            if now < LAST_STAGE {
                next(stage);
            }
        });
    }
    next(stage);
    let attributes_ready = move || stage.get() >= 1;
    let why_ready = move || stage.get() >= 2;
    let heatmap_ready = move || stage.get() >= 3;
    let counterfactuals_ready = move || stage.get() >= LAST_STAGE;
    view! {
        <article class="cell-panel" data-testid="cell-panel" data-name=cell.name.clone() data-raw-prediction=raw
            data-building=move || (stage.get() < LAST_STAGE).then_some("true")>
            <div class="left">
                <SegmentationOverlay cell_id=id image_url=image_url name=cell.name.clone() labels=cell.labels.clone() side=SEGMENTATION_SIDE/>
                <FrontEndNote cell=cell.clone() show_normalised=show_normalised/>
                <h3>"Measured on the segmentation"</h3>
                <Measurements m=cell.morphometry.clone() prediction=p.clone()/>
            </div>
            <div class="right">
                <CellTypeSection cell=cell.clone() edited_concepts=edited_concepts n_edits=Signal::derive(n_edits)/>
            </div>
            <section class="attributes">
                <h2>"Morphology (WBCAtt attributes)"</h2>
                <Show when=attributes_ready>
                    {
                        let (p_attrs, shipped_attrs, name) = (p_attrs.clone(), shipped_attrs.clone(), cell_name.clone());
                        ATTRIBUTE_GROUPS.into_iter().map(move |group| {
                            let rows = ATTRIBUTES.iter().enumerate().filter(|(_, a)| a.group == group).map(|(k, _)| {
                                view! { <AttributeEditor cell_id=id name=name.clone() k=k probabilities=p_attrs[k].clone()
                                    shipped=shipped_attrs[k].clone() edits=edits set_edit=set_edit/> }
                            }).collect_view();
                            view! { <div class="group"><h3>{group}</h3>{rows}</div> }
                        }).collect_view()
                    }
                </Show>
            </section>
            <section class="why">
                <Show when=why_ready>
                    {move || extras.cbm.get().map(|cbm| view! {
                        <h2>"Why"</h2>
                        <div class="why-plots">
                            <Contributions cbm=cbm.clone() edited=edited_concepts/>
                            <Show when=heatmap_ready>
                                <WeightHeatmap cbm=cbm.clone()/>
                            </Show>
                        </div>
                    })}
                </Show>
                <Show when=counterfactuals_ready>
                    <Counterfactuals current=id edits=edits/>
                </Show>
            </section>
            <ShowMeSection cell=cell.clone()/>
            <Timings cell=cell.clone()/>
        </article>
    }
}

/// The cell type: the joined answer with its probabilities, both opinions under it, the
/// CBM's verdict from the attributes (after the user's edits), and the edits bar.
#[component]
fn CellTypeSection(
    cell: CellView,
    edited_concepts: Signal<Vec<f32>>,
    n_edits: Signal<usize>,
) -> impl IntoView {
    let (cells, extras) = (expect_context::<Cells>(), expect_context::<Extras>());
    let adaptation = expect_context::<Adaptation>();
    let id = cell.id;
    let p = cell.prediction.clone();
    let type_index = argmax(&p.cell_type);
    let type_label = CELL_TYPES[type_index];
    let shipped = argmax(&cell.shipped.cell_type);
    let shipped_note = format!(
        "Adapted to your microscope by your profile; without it: {} ({}).",
        CELL_TYPES[shipped],
        percent(cell.shipped.cell_type[shipped])
    );
    let asked = cell.clone();
    view! {
                <section class="cell-type">
                    <h2>"Cell type"</h2>
                    <Show when=move || adaptation.type_adapted()>
                        <p class="adapted" data-testid="type-adapted">{shipped_note.clone()}</p>
                    </Show>
                    <h3>{if cell.measured_type.as_ref().is_some_and(|m| m.used) { "From the image and its measurements" } else { "From the image (direct classifier)" }}</h3>
                    <p class="verdict">
                        <span data-testid="cell-type" data-probability=format!("{:.4}", p.cell_type[type_index])>{type_label}</span>
                        <span class="conf">{format!(" ({})", percent(p.cell_type[type_index]))}</span>
                    </p>
                    <ProbabilityBars labels=CELL_TYPES.to_vec() probabilities=p.cell_type.clone()/>
                    {cell.measured_type.clone().map(|m| view! { <TypeOpinions m=m/> })}
                    <CellLabel cell=cell.clone()/>
                    // The question follows the what-if edits: its interpretable classifier reads
                    // the edited attribute probabilities, as the CBM does.
                    {move || adaptation.answer(&asked, &edited_concepts.get()).map(|a| view! {
                        <QuestionAnswerView answer=a edited={n_edits.get() > 0}/>
                    })}
                    {
                        let concepts = p.concepts();
                        move || extras.cbm.get().map(|cbm| view! {
                            <CbmVerdict cbm=cbm predicted=concepts.clone() edited=edited_concepts direct_label=type_label/>
                        })
                    }
                    <p class="edits-bar">
                        {move || match n_edits.get() { 0 => "No attribute edited: change any attribute below to see what the model would then say.".to_string(), n => format!("{n} attribute(s) edited.") }}
                        <button data-testid="reset-edits" disabled=move || n_edits.get() == 0
                            on:click=move |_| cells.reset_edits(id)>"Reset all edits"</button>
                    </p>
                </section>
    }
}

/// How long the cell took and on what, with the page clock's marks the benchmarks read.
#[component]
fn Timings(cell: CellView) -> impl IntoView {
    let t = cell.timings;
    let engine = expect_context::<Engine>().info.get_untracked();
    let ready_at = engine.as_ref().map(|e| format!("{:.1}", e.ready_at_ms));
    view! {
            <footer class="timings" data-testid="timings"
                data-round-trip-ms=format!("{:.1}", t.round_trip_ms)
                data-answered-at-ms=format!("{:.1}", t.answered_at_ms)
                data-ready-at-ms=ready_at>
                {format!("Preprocessing {:.0} ms, attribute network {:.0} ms, segmentation {:.0} ms; {:.0} ms from choosing the file to the answer", t.preprocess_ms, t.inference_ms, t.segmentation_ms, t.round_trip_ms)}
                {engine.map(|e| format!(" on {}; models {:.1} MB (attributes) + {:.1} MB (segmentation) loaded in {:.0} ms (warm-up {:.0} ms), ready {:.0} ms after opening the page.",
                    e.device, e.model_bytes as f64 / 1e6, e.seg_model_bytes as f64 / 1e6, e.load_ms, e.warmup_ms, e.ready_at_ms))}
            </footer>
    }
}
