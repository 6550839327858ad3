//! "Show me": the cell on show edited so one attribute takes another value (its size, its
//! nucleus for the N:C ratio, the cytoplasm's or the granules' colour, vacuoles), analysed
//! again in the worker by the whole pipeline, and shown beside the original with what moved
//! (`wbc_core::edit`; the asking and answering in `state/engine/show_me.rs`). The sliders
//! walk the cell across a boundary: each step is analysed again.

use crate::state::{CellView, EditedView, Engine, Extras, ShowMe};
use leptos::prelude::*;
use wbc_core::edit::{Edit, TargetStains, SLIDER_RANGE, SLIDER_STEP};
use wbc_core::metrics::argmax;
use wbc_core::{ATTRIBUTES, CELL_TYPES};

/// The attribute's index (the schema names every attribute the edits touch).
fn index_of(name: &str) -> usize {
    wbc_core::schema::attribute(name).map_or(0, |(k, _)| k)
}

/// The edit in words; a restain names the value it aims at (`aimed`, from [`aimed_at`]) where
/// the stains told which.
fn describe(edit: &Edit, aimed: Option<(usize, usize)>) -> String {
    match edit {
        Edit::Cytoplasm { .. } => match aimed {
            Some((k, v)) => format!(
                "the cytoplasm restained toward {} \"{}\"",
                in_sentence(ATTRIBUTES[k].title),
                ATTRIBUTES[k].values[v]
            ),
            None => "the cytoplasm restained".into(),
        },
        Edit::Size { factor } => format!("the cell scaled ×{factor:.2}"),
        Edit::Nucleus { factor } => format!("the nucleus scaled ×{factor:.2} (N:C)"),
        Edit::Ring { factor } => format!("the cytoplasm's ring scaled ×{factor:.2} (N:C)"),
        Edit::Vacuoles { add: true } => "vacuoles added".into(),
        Edit::Vacuoles { add: false } => "the vacuoles filled".into(),
    }
}

fn kind(edit: &Edit) -> &'static str {
    match edit {
        Edit::Size { .. } => "size",
        Edit::Nucleus { .. } => "nucleus",
        Edit::Ring { .. } => "ring",
        Edit::Cytoplasm { .. } => "colour",
        Edit::Vacuoles { .. } => "vacuoles",
    }
}

/// A slider that asks for an edit of `make(factor)` when let go.
#[component]
fn ScaleSlider(
    testid: &'static str,
    label: &'static str,
    make: fn(f32) -> Edit,
    id: u32,
) -> impl IntoView {
    let engine = expect_context::<Engine>();
    let factor = RwSignal::new(1.0f32);
    view! {
        <label class="scale">
            {label}
            <input type="range" min=SLIDER_RANGE.0 max=SLIDER_RANGE.1 step=SLIDER_STEP data-testid=testid
                prop:value=move || factor.get().to_string()
                on:input=move |e| factor.set(event_target_value(&e).parse().unwrap_or(1.0))
                on:change=move |_| engine.show_me(id, make(factor.get_untracked()))/>
            <output>{move || format!("×{:.2}", factor.get())}</output>
        </label>
    }
}

/// Buttons restaining the cytoplasm to each value of attribute `k` that has a target stain.
fn colour_buttons(
    engine: Engine,
    id: u32,
    k: usize,
    stains: &TargetStains,
    testid: &'static str,
) -> impl IntoView {
    let targets = if k == index_of("cytoplasm_colour") {
        &stains.cytoplasm_colour
    } else {
        &stains.granule_colour
    };
    let buttons: Vec<_> = targets
        .iter()
        .enumerate()
        .filter_map(|(v, t)| t.map(|t| (v, t)))
        .map(|(v, target)| {
            let name = ATTRIBUTES[k].values[v];
            view! {
                <button data-testid=format!("{testid}-{}", name.replace(' ', "-"))
                    on:click=move |_| engine.show_me(id, Edit::Cytoplasm { target, strength: 1.0 })>{name}</button>
            }
        })
        .collect();
    view! {
        <span class="colours">{format!("{}: ", ATTRIBUTES[k].title)}{buttons}</span>
    }
}

/// The attribute an edit aims at and the value it asks for (`None` where the page cannot
/// tell, a colour without its measured stains).
fn aimed_at(edit: &Edit, stains: &TargetStains) -> Option<(usize, usize)> {
    let name_value = |name: &str, value: &str| {
        let (k, a) = wbc_core::schema::attribute(name)?;
        Some((k, a.values.iter().position(|v| *v == value)?))
    };
    match *edit {
        Edit::Size { factor } => {
            name_value("cell_size", if factor >= 1.0 { "big" } else { "small" })
        }
        Edit::Nucleus { factor } => name_value(
            "nuclear_cytoplasmic_ratio",
            if factor >= 1.0 { "high" } else { "low" },
        ),
        // A wider ring is more cytoplasm: the N:C ratio falls.
        Edit::Ring { factor } => name_value(
            "nuclear_cytoplasmic_ratio",
            if factor >= 1.0 { "low" } else { "high" },
        ),
        Edit::Cytoplasm { target, .. } => {
            let (name, v) = stains.colour_target(&target)?;
            Some((index_of(name), v))
        }
        Edit::Vacuoles { add } => name_value("cytoplasm_vacuole", if add { "yes" } else { "no" }),
    }
}

/// An attribute's title inside a sentence: "cell size", but "N:C ratio" kept as written.
fn in_sentence(title: &str) -> String {
    let mut chars = title.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if second.is_lowercase() => first
            .to_lowercase()
            .chain(title[first.len_utf8()..].chars())
            .collect(),
        _ => title.to_string(),
    }
}

/// How often WBCAtt's training cells of the cell's type carry the value the edit asks for;
/// where hardly ever, the network has had nothing to learn that combination from, and the
/// page says so rather than let an unmoved answer look like a verdict on the cell.
fn support_note(
    (k, v): (usize, usize),
    cell_type: usize,
    stains: &TargetStains,
) -> Option<impl IntoView> {
    let seen = stains.with_type(cell_type, k, v)?;
    let rare = seen.rare();
    let (attribute, value) = (in_sentence(ATTRIBUTES[k].title), ATTRIBUTES[k].values[v]);
    let kind = CELL_TYPES[cell_type].to_lowercase();
    let (count, of, share) = (seen.cells, seen.of, 100.0 * seen.share());
    let text = if rare {
        format!("WBCAtt's training cells show {attribute} \"{value}\" in {count} of {of} {kind}s ({share:.1}%): the network has had almost nothing to learn that combination from, and may read this attribute with the cell type rather than from the edit.")
    } else {
        format!("WBCAtt's training cells show {attribute} \"{value}\" in {count} of {of} {kind}s ({share:.0}%).")
    };
    Some(view! { <p class="hint" data-testid="edit-support" data-rare=rare.to_string()>{text}</p> })
}

/// What moved between the cell and its edited twin: the types, every attribute that moved,
/// and always the attribute the edit aims at (`aimed`), so the user sees whether the
/// network followed the edit even when it did not.
fn what_moved(
    cell: &CellView,
    edited: &EditedView,
    cbm: Option<&wbc_core::cbm::Cbm>,
    aimed: Option<usize>,
) -> impl IntoView {
    let before = &cell.prediction;
    let after = &edited.prediction;
    let (t0, t1) = (argmax(&before.cell_type), argmax(&after.cell_type));
    let mut rows = vec![(
        "cell type (image network)".to_string(),
        format!("{} {:.0}%", CELL_TYPES[t0], 100.0 * before.cell_type[t0]),
        format!("{} {:.0}%", CELL_TYPES[t1], 100.0 * after.cell_type[t1]),
        t0 != t1,
    )];
    if let Some(cbm) = cbm {
        let (a, b) = (
            cbm.probabilities(&before.concepts()),
            cbm.probabilities(&after.concepts()),
        );
        let (c0, c1) = (argmax(&a), argmax(&b));
        rows.push((
            "cell type (from the attributes, CBM)".into(),
            format!("{} {:.0}%", CELL_TYPES[c0], 100.0 * a[c0]),
            format!("{} {:.0}%", CELL_TYPES[c1], 100.0 * b[c1]),
            c0 != c1,
        ));
    }
    for (k, a) in ATTRIBUTES.iter().enumerate() {
        let (v0, v1) = (argmax(&before.attributes[k]), argmax(&after.attributes[k]));
        let moved = 100.0 * (after.attributes[k][v0] - before.attributes[k][v0]);
        if v0 != v1 || moved.abs() >= 10.0 || aimed == Some(k) {
            rows.push((
                a.title.to_string(),
                format!("{} {:.0}%", a.values[v0], 100.0 * before.attributes[k][v0]),
                format!("{} {:.0}%", a.values[v1], 100.0 * after.attributes[k][v1]),
                v0 != v1,
            ));
        }
    }
    let m = |v: Option<f32>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    rows.push((
        "N:C, measured".into(),
        m(cell.morphometry.nc_ratio),
        m(edited.morphometry.nc_ratio),
        false,
    ));
    rows.push((
        "size in red cells, measured".into(),
        m(cell.morphometry.cell_to_red_cell),
        m(edited.morphometry.cell_to_red_cell),
        false,
    ));
    let unlike = edited
        .familiarity
        .as_ref()
        .is_some_and(|f| f.reasons.iter().any(|r| r.is_unlike_training()));
    view! {
        <table class="what-moved" data-testid="what-moved">
            <tr><th></th><th>"as it is"</th><th>"edited"</th></tr>
            {rows.into_iter().map(|(name, a, b, changed)| view! {
                <tr class:changed=changed data-changed=changed.to_string()><td>{name}</td><td>{a}</td><td>{b}</td></tr>
            }).collect_view()}
        </table>
        {unlike.then(|| view! { <p class="hint" data-testid="edited-unfamiliar">"The edited cell is unlike the training images: read its answers with care."</p> })}
    }
}

#[component]
pub fn ShowMeSection(cell: CellView) -> impl IntoView {
    let (engine, show_me, extras) = (
        expect_context::<Engine>(),
        expect_context::<ShowMe>(),
        expect_context::<Extras>(),
    );
    let id = cell.id;
    let original = cell.image_url.clone();
    // A cell opened anew shows itself, not another cell's edit.
    if show_me
        .shown
        .with_untracked(|s| s.as_ref().is_some_and(|s| s.cell != id))
    {
        show_me.clear();
    }
    view! {
        <section class="show-me" data-testid="show-me">
            <h3>"Show me: this cell changed, and what the networks then say"</h3>
            <p class="hint">"Each edit follows the segmentation and is analysed again by both networks; the nucleus grows or shrinks inside the cell's own outline (grown, it squeezes the cytoplasm; shrunk, the place it left is painted with the cell's own cytoplasm). Nucleus shape, chromatin, cell shape, cytoplasm texture and granule type cannot be changed convincingly by such a rule, so the page does not try."</p>
            {move || extras.stains.get().filter(|s| !s.followed.is_empty()).map(|s| view! {
                <p class="hint" data-testid="show-me-followed">
                    {format!("On 100 PBC test cells, stepping each edit up until the attribute network gave the value asked, it did so for: {}. Where it rarely follows, the network reads that attribute from more than the edited region, or with the cell type: many edits ask for a value WBCAtt never shows with that type (a granulocyte with a high N:C ratio).",
                        s.followed.iter().map(|(k, p)| {
                            let supported = s.followed_supported.iter().find(|(kind, n, _)| kind == k && *n > 0);
                            match supported {
                                Some((_, n, q)) => format!("{k} {p:.0}% ({q:.0}% of the {n} that WBCAtt shows with the cell's type)"),
                                None => format!("{k} {p:.0}%"),
                            }
                        }).collect::<Vec<_>>().join(", "))}
                </p>
            })}
            <div class="show-me-controls">
                <ScaleSlider testid="show-size" label="Cell size " make=|factor| Edit::Size { factor } id=id/>
                <ScaleSlider testid="show-nucleus" label="Nucleus size (N:C) " make=|factor| Edit::Nucleus { factor } id=id/>
                <ScaleSlider testid="show-ring" label="Cytoplasm ring (N:C) " make=|factor| Edit::Ring { factor } id=id/>
                {move || extras.stains.get().map(|s| view! {
                    {colour_buttons(engine, id, index_of("cytoplasm_colour"), &s, "show-cytoplasm")}
                    {colour_buttons(engine, id, index_of("granule_colour"), &s, "show-granules")}
                })}
                <span class="colours">"Vacuoles: "
                    <button data-testid="show-vacuoles-add" on:click=move |_| engine.show_me(id, Edit::Vacuoles { add: true })>"add"</button>
                    <button data-testid="show-vacuoles-fill" on:click=move |_| engine.show_me(id, Edit::Vacuoles { add: false })>"fill"</button>
                </span>
            </div>
            {move || show_me.pending.get().filter(|p| p.0 == id).map(|(_, e)| view! {
                <p class="hint" data-testid="show-me-pending">{format!("Making {}…", describe(&e, extras.stains.get().and_then(|s| aimed_at(&e, &s))))}</p>
            })}
            {move || show_me.shown.get().filter(|s| s.cell == id).map(|edited| {
                let (cbm, stains) = (extras.cbm.get(), extras.stains.get());
                let aimed = stains.as_ref().and_then(|s| aimed_at(&edited.edit, s));
                let support = aimed.zip(stains.as_ref()).and_then(|(aimed, stains)| {
                    support_note(aimed, argmax(&cell.prediction.cell_type), stains)
                });
                let caption = format!("{} ({:.0} ms)", describe(&edited.edit, aimed), edited.ms);
                view! {
                    <div class="edited" data-testid="edited" data-kind=kind(&edited.edit)
                        data-ms=format!("{:.0}", edited.ms)>
                        <figure><img src=original.clone() alt="the cell as it is"/><figcaption>"as it is"</figcaption></figure>
                        <figure><img src=edited.image_url.clone() data-testid="edited-image" alt="the edited cell"/>
                            <figcaption data-testid="edited-caption">{caption}</figcaption></figure>
                        {support}
                        {what_moved(&cell, &edited, cbm.as_ref(), aimed.map(|(k, _)| k))}
                        <button data-testid="show-me-clear" on:click=move |_| show_me.clear()>"back to the cell as it is"</button>
                    </div>
                }
            })}
        </section>
    }
}
