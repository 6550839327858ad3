//! Your microscope, your question: the labelled cells, the fit, the profile with its
//! cross-validated scores (what adapting gains, what interpretability costs), the switch that
//! applies it, and the profile's export and import ([`crate::state::Adaptation`]). In the
//! cell panel: the cell's own label and the question's answer for it.

use crate::state::{Adaptation, CellView, QuestionAnswer};
use leptos::prelude::*;
use std::collections::BTreeMap;
use wbc_core::adapt::{Accuracy, Profile};
use wbc_core::metrics::argmax;
use wbc_core::ATTRIBUTES;

fn percent(a: &Accuracy) -> String {
    format!(
        "{:.0}% ({} of {}; 95% interval {:.0}–{:.0}%)",
        100.0 * a.rate(),
        a.right,
        a.of,
        100.0 * a.low,
        100.0 * a.high
    )
}

/// "12 cells' nucleus shape, 8 cells' cytoplasm colour".
fn attribute_cells(profile: &Profile) -> String {
    profile
        .attributes
        .iter()
        .map(|a| {
            let title = wbc_core::schema::attribute(&a.attribute)
                .map_or(a.attribute.as_str(), |(_, s)| s.title);
            format!("{} cells' {}", a.shipped_accuracy.of, title.to_lowercase())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts_text(classes: &[String], counts: &[usize]) -> String {
    classes
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| format!("{c} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A profile's attribute corrections, each with its cross-validated accuracy on the
/// labelled cells, shipped against corrected, and whether it is used.
#[component]
fn AttributeFits(profile: Profile) -> impl IntoView {
    (!profile.attributes.is_empty()).then(|| view! {
        <div class="attribute-fits" data-testid="attribute-fits">
            <p><strong>"Attributes corrected from your values"</strong>" (5-fold cross-validation on the cells you gave values; a correction is used only when it fixed clearly more of them than it broke):"</p>
            <ul>
                {profile.attributes.iter().map(|a| {
                    let title = wbc_core::schema::attribute(&a.attribute).map_or(a.attribute.as_str(), |(_, s)| s.title);
                    view! {
                        <li data-testid=format!("attribute-fit-{}", a.attribute) data-used=a.used.to_string()
                            data-shipped=format!("{:.4}", a.shipped_accuracy.rate()) data-adapted=format!("{:.4}", a.adapted_accuracy.rate())>
                            {format!("{title}: as shipped {}, corrected {}: {}", percent(&a.shipped_accuracy), percent(&a.adapted_accuracy),
                                if a.used { "used" } else { "not used (no clear gain)" })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    })
}

/// What a profile is and how well it did on cells it was not fitted on.
#[component]
fn ProfileSummary(profile: Profile) -> impl IntoView {
    let attribute_fits = view! { <AttributeFits profile=profile.clone()/> };
    let n: usize = profile.counts.iter().sum();
    let fitted = format!(
        "Fitted on {n} labelled cells ({}) on {}.",
        counts_text(&profile.classes, &profile.counts),
        profile.date
    );
    if let (Some(shipped), Some(adapted)) = (profile.shipped_accuracy, profile.adapted_accuracy) {
        let gain = 100.0 * (adapted.rate() - shipped.rate());
        view! {
            <div class="profile-summary" data-testid="profile-summary" data-kind="adaptation"
                data-shipped=format!("{:.4}", shipped.rate()) data-adapted=format!("{:.4}", adapted.rate())>
                <p><strong>"The cell type, adapted to your microscope. "</strong>{fitted}</p>
                <p>"On your labelled cells, each answered by a fit that did not see it (5-fold cross-validation): the shipped answer "
                    {percent(&shipped)}", adapted "{percent(&adapted)}": "
                    <strong>{format!("{gain:+.0} points", )}</strong>"."</p>
                {attribute_fits}
            </div>
        }
        .into_any()
    } else if let Some(q) = profile.question.clone() {
        let last = profile.classes.last().cloned().unwrap_or_default();
        let cost = 100.0 * (q.probe_accuracy.rate() - q.interpretable_accuracy.rate());
        view! {
            <div class="profile-summary" data-testid="profile-summary" data-kind="question"
                data-interpretable=format!("{:.4}", q.interpretable_accuracy.rate())
                data-probe=format!("{:.4}", q.probe_accuracy.rate())>
                <p><strong>{format!("Your question: {}. ", profile.classes.join(" or "))}</strong>{fitted}</p>
                <p>"Cross-validated on your labelled cells (5-fold): the interpretable classifier on the attributes and measurements "
                    {percent(&q.interpretable_accuracy)}"; the black-box probe on the image network's features "
                    {percent(&q.probe_accuracy)}". "
                    {if cost > 0.0 { format!("Interpretability costs {cost:.0} points here.") } else { "Interpretability costs nothing here.".to_string() }}</p>
                <p>{format!("The interpretable classifier's largest weights (towards {last}):")}</p>
                <ul class="weights" data-testid="question-weights">
                    {q.top_inputs(6).into_iter().map(|(name, w)| view! {
                        <li data-input=name.clone()>{format!("{w:+.2}  {name}")}</li>
                    }).collect_view()}
                </ul>
                {attribute_fits}
            </div>
        }
        .into_any()
    } else {
        view! {
            <div class="profile-summary" data-testid="profile-summary" data-kind="attributes">
                <p><strong>"Your attribute values. "</strong>{format!("Fitted on {} on {}.", attribute_cells(&profile), profile.date)}</p>
                {attribute_fits}
            </div>
        }
        .into_any()
    }
}

/// The labelled cells, the fit and the profile (in the table view).
#[component]
pub fn YourMicroscope() -> impl IntoView {
    let adaptation = expect_context::<Adaptation>();
    // Cells per class label, and cells with a value given per attribute.
    let counts = Memo::new(move |_| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut attributes = [0usize; 11];
        let labelled = adaptation.labelled();
        for l in &labelled {
            if let Some(label) = &l.label {
                *counts.entry(label.clone()).or_default() += 1;
            }
            for (n, v) in attributes.iter_mut().zip(&l.attributes) {
                *n += usize::from(v.is_some());
            }
        }
        (counts, attributes, labelled.len())
    });
    let total = move || counts.with(|c| c.2);
    let attribute_counts = move || {
        counts.with(|c| {
            ATTRIBUTES
                .iter()
                .zip(&c.1)
                .filter(|(_, n)| **n > 0)
                .map(|(a, n)| format!("{} {n}", a.title.to_lowercase()))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <section class="your-microscope" data-testid="your-microscope">
            <h2>"Your microscope, your question"</h2>
            <p class="hint">"Label some of your own cells: in a cell's panel, by dropping a folder whose sub-folders name the classes, or with a labels CSV in the dataset view. Labelled with the five cell types, the page corrects its cell type for your microscope; labelled with classes of your own (band or segmented, blast or normal…), it answers your question for every cell, with an interpretable classifier beside a black box. Give an attribute's value where you read it differently (\"the nucleus is indented\"): the page corrects that attribute for cells like it, where cross-validation shows a clear gain. Nothing leaves this computer."</p>
            <p data-testid="label-counts" data-total=move || total().to_string()>{move || match total() {
                0 => "No cells labelled yet.".to_string(),
                n => {
                    let classes = counts.with(|c| c.0.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>());
                    let mut parts = Vec::new();
                    if !classes.is_empty() {
                        parts.push(classes.join(", "));
                    }
                    let attributes = attribute_counts();
                    if !attributes.is_empty() {
                        parts.push(format!("attribute values given: {}", attributes.join(", ")));
                    }
                    format!("{n} labelled cell{}: {}.", if n == 1 { "" } else { "s" }, parts.join("; "))
                }
            }}</p>
            <p class="actions">
                <button data-testid="fit-profile" disabled=move || adaptation.fitting.get().is_some() || total() < 2
                    on:click=move |_| adaptation.fit()>"Fit to my labelled cells"</button>
                {move || adaptation.fitting.get().map(|p| view! {
                    <progress data-testid="fit-progress" max="1" value=p.to_string()></progress>
                })}
                {move || adaptation.last_fit.get().map(|t| view! {
                    <span class="hint" data-testid="fit-timing" data-total-ms=format!("{:.1}", t.total_ms)
                        data-longest-ms=format!("{:.1}", t.longest_slice_ms) data-cells=t.cells.to_string()>
                        {format!(" fitted on {} cells in {:.0} ms; the page was never held more than {:.0} ms at a time.", t.cells, t.total_ms, t.longest_slice_ms)}
                    </span>
                })}
            </p>
            {move || adaptation.profile.get().map(|p| view! {
                <ProfileSummary profile=(*p).clone()/>
                <p class="actions">
                    <label>
                        <input type="checkbox" data-testid="apply-profile" prop:checked=move || adaptation.applied.get()
                            on:change=move |e| adaptation.set_applied(event_target_checked(&e))/>
                        " Use this profile for what the page shows"
                    </label>
                    <button data-testid="export-profile" on:click=move |_| adaptation.export()>"Export the profile"</button>
                </p>
            })}
            <p class="actions">
                <label>"Import a profile (from a colleague, or exported earlier): "
                    <input type="file" accept=".json,application/json" data-testid="profile-input"
                        on:change=move |e: leptos::ev::Event| {
                            let input: web_sys::HtmlInputElement = event_target(&e);
                            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                                adaptation.import(file);
                            }
                            input.set_value("");
                        }/>
                </label>
            </p>
        </section>
    }
}

/// The cell's own label, as the user sets it (a type or a class of their own question).
#[component]
pub fn CellLabel(cell: CellView) -> impl IntoView {
    let adaptation = expect_context::<Adaptation>();
    let (id, name) = (cell.id, cell.name.clone());
    let label = move || adaptation.label_of(id, &name).unwrap_or_default();
    let list = format!("class-names-{id}");
    view! {
        <p class="cell-label">
            <label>"Your label for this cell: "
                <input data-testid="cell-label" list=list.clone() placeholder="e.g. monocyte, or band"
                    prop:value=label
                    on:change=move |e| adaptation.set_label(id, &event_target_value(&e))/>
            </label>
            <datalist id=list>
                {move || adaptation.class_names().into_iter().map(|n| view! { <option value=n></option> }).collect_view()}
            </datalist>
            <span class="hint">" (the five types adapt the page to your microscope; other names make your own question)"</span>
        </p>
    }
}

/// The user's question answered for this cell, with the attributes that decided it.
#[component]
pub fn QuestionAnswerView(answer: QuestionAnswer, edited: bool) -> impl IntoView {
    let i = argmax(&answer.interpretable);
    let p = argmax(&answer.probe);
    view! {
        <section class="question-answer" data-testid="question-answer" data-class=answer.classes[i].clone()
            data-probe-class=answer.classes[p].clone()>
            <h3>"Your question"</h3>
            <p class="verdict">{answer.classes[i].clone()}
                <span class="conf">{format!(" ({:.0}%, from the {}attributes and measurements)", 100.0 * answer.interpretable[i], if edited { "edited " } else { "" })}</span></p>
            <p class="hint">{format!("The black-box probe on the image features says {} ({:.0}%).", answer.classes[p], 100.0 * answer.probe[p])}</p>
            <ul class="reasons">
                {answer.reasons.into_iter().map(|(name, v)| view! {
                    <li>{format!("{name}: {v:+.2} {}", if v > 0.0 { "for" } else { "against" })}</li>
                }).collect_view()}
            </ul>
        </section>
    }
}
