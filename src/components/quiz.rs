//! The quiz, for a classroom: a labelled cell is shown (the sample cells carry their WBCAtt
//! labels; a labels file loaded in the dataset view labels the user's own cells); the learner
//! names its type, one attribute, or the type and all 11 attributes; then sees the model's
//! answer and the label beside theirs, with the glossary's meaning for each mistake. The
//! score (learner and model on the same questions) is kept in the browser's storage across
//! reloads, with the rest of the session.

use crate::components::glossary::WhatIsThis;
use crate::state::{fetch_text, Analyser, Cells, Teaching};
use leptos::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use wbc_core::audit::{parse_labels, Labels};
use wbc_core::glossary::GLOSSARY;
use wbc_core::quiz::{mark, Marked, Mode, Score, Target};
use wbc_core::ATTRIBUTES;

/// A target's name in test hooks: "cell_type" or the attribute's name.
fn key(t: Target) -> &'static str {
    match t {
        Target::CellType => "cell_type",
        Target::Attribute(k) => ATTRIBUTES[k].name,
    }
}

fn mode_value(m: Mode) -> String {
    match m {
        Mode::CellType => "type".into(),
        Mode::Attribute(k) => ATTRIBUTES[k].name.into(),
        Mode::All => "all".into(),
    }
}

fn parse_mode(v: &str) -> Mode {
    match v {
        "all" => Mode::All,
        name => ATTRIBUTES
            .iter()
            .position(|a| a.name == name)
            .map_or(Mode::CellType, Mode::Attribute),
    }
}

fn pct(p: Option<(f64, f64)>, learner: bool) -> String {
    match p {
        Some((l, m)) => format!("{:.0}%", if learner { l } else { m }),
        None => "–".into(),
    }
}

#[component]
pub fn Quiz() -> impl IntoView {
    let cells = expect_context::<Cells>();
    let (analyser, teaching) = (expect_context::<Analyser>(), expect_context::<Teaching>());
    let sample_labels = RwSignal::new(None::<Arc<BTreeMap<String, Labels>>>);
    leptos::task::spawn_local(async move {
        if let Some(text) = fetch_text("samples/labels.csv").await {
            if let Ok(labels) = parse_labels(&text) {
                sample_labels.set(Some(Arc::new(labels)));
            }
        }
    });
    let labels_of = move |name: &str| -> Option<Labels> {
        let user = analyser
            .labels
            .with(|l| l.as_ref().and_then(|(_, l)| l.get(name).copied()));
        user.or_else(|| sample_labels.with(|l| l.as_ref().and_then(|l| l.get(name).copied())))
    };
    // Labelled cells that are analysed: the question pool.
    let pool = Memo::new(move |_| {
        cells.cells.with(|cells| {
            cells
                .iter()
                .filter_map(|c| labels_of(&c.name).map(|l| (c.id, l)))
                .collect::<Vec<_>>()
        })
    });
    let mode = RwSignal::new(Mode::CellType);
    let question = RwSignal::new(None::<(u32, Labels)>);
    let choices = RwSignal::new(Vec::<Option<usize>>::new());
    let answered = RwSignal::new(None::<Vec<Marked>>);
    // Kept across reloads with the rest of the session (crate::session).
    let score = teaching.quiz_score;
    let asked = move || {
        question
            .get()
            .map(|(_, l)| Target::asked(mode.get(), &l))
            .unwrap_or_default()
    };
    let next = move || {
        let pool = pool.get_untracked();
        if pool.is_empty() {
            return;
        }
        let current = question.get_untracked().map(|(id, _)| id);
        let mut pick = (js_sys::Math::random() * pool.len() as f64) as usize % pool.len();
        if pool.len() > 1 && Some(pool[pick].0) == current {
            pick = (pick + 1) % pool.len();
        }
        let (id, labels) = pool[pick];
        // The full crop comes back if the page had let it go.
        cells.select(id);
        let n = Target::asked(mode.get_untracked(), &labels).len();
        choices.set(vec![None; n]);
        answered.set(None);
        question.set(Some((id, labels)));
    };
    let answer = move || {
        let Some((id, labels)) = question.get_untracked() else {
            return;
        };
        let Some(cell) = cells.cell_untracked(id) else {
            return;
        };
        let targets = Target::asked(mode.get_untracked(), &labels);
        let marked = mark(
            &targets,
            &choices.get_untracked(),
            &labels,
            &cell.prediction,
        );
        score.update(|s| s.add(&marked));
        answered.set(Some(marked));
    };
    let image = move || {
        let (id, _) = question.get()?;
        cells.cells.with(|cells| {
            cells.iter().find(|c| c.id == id).map(|c| {
                if c.has_detail() {
                    c.image_url.clone()
                } else {
                    c.thumb_url.clone()
                }
            })
        })
    };
    view! {
        <section class="quiz" data-testid="quiz">
            <h2>"Quiz: name the cell, then compare with the model and the label"</h2>
            <label>"Ask about "
                <select data-testid="quiz-mode" prop:value=move || mode_value(mode.get())
                    on:change=move |e| { mode.set(parse_mode(&event_target_value(&e))); question.set(None); answered.set(None); }>
                    <option value="type">"the cell type"</option>
                    {ATTRIBUTES.iter().map(|a| view! { <option value=a.name>{format!("one attribute: {}", a.title)}</option> }).collect_view()}
                    <option value="all">"the type and all 11 attributes"</option>
                </select>
            </label>
            <Show when=move || pool.with(Vec::is_empty)>
                <p class="hint">"The quiz asks about cells with known labels: the built-in sample cells, or your own with a labels file loaded in the dataset view. "
                    <button data-testid="quiz-load-samples" on:click=move |_| cells.load_samples()>"load the sample cells"</button></p>
            </Show>
            <Show when=move || !pool.with(Vec::is_empty)>
                <p>{move || format!("{} labelled cells to ask about.", pool.with(Vec::len))}" "
                    <button data-testid="quiz-next" on:click=move |_| next()>
                        {move || if question.get().is_some() { "next cell" } else { "start" }}
                    </button></p>
            </Show>
            {move || question.get().map(|(id, _)| view! {
                <QuizQuestion id=id targets=asked() image=Signal::derive(image) choices=choices answered=answered
                    on_answer=Callback::new(move |_| answer())/>
            })}
            {move || answered.get().map(|marked| view! { <QuizResult marked=marked/> })}
            <QuizScore score=score/>
        </section>
    }
}

/// One answer marked: the learner's, the model's and the label, with the glossary's meaning
/// of each value the learner missed.
#[component]
fn QuizResult(marked: Vec<Marked>) -> impl IntoView {
    view! {
    <table class="quiz-result" data-testid="quiz-result">
            <thead><tr><th>"question"</th><th>"you"</th><th>"model"</th><th>"label (WBCAtt)"</th></tr></thead>
            <tbody>
                {marked.into_iter().map(|m| {
                    let values = m.target.values();
                    let meaning = match m.target {
                        Target::Attribute(k) if !m.learner_right() => GLOSSARY[k].values.get(m.truth).map(|v| v.0),
                        _ => None,
                    };
                    view! {
                        <tr data-testid=format!("quiz-row-{}", key(m.target)) data-learner-right=m.learner_right().to_string() data-model-right=m.model_right().to_string()>
                            <td>{m.target.title()}</td>
                            <td class:right=m.learner_right() class:wrong=!m.learner_right()>{values[m.learner]}{if m.learner_right() { " ✓" } else { " ✗" }}</td>
                            <td class:right=m.model_right() class:wrong=!m.model_right()>{values[m.model]}{if m.model_right() { " ✓" } else { " ✗" }}</td>
                            <td>{values[m.truth]}
                                {meaning.map(|text| view! { <p class="quiz-meaning">{text}</p> })}
                                {match m.target { Target::Attribute(k) if !m.learner_right() => Some(view! { <WhatIsThis k=k/> }), _ => None }}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        }
}

/// The score over every question so far, learner and model side by side, per question kind.
#[component]
fn QuizScore(score: RwSignal<Score>) -> impl IntoView {
    let overall = move || score.with(Score::overall);
    view! {
                <div class="quiz-score" data-testid="quiz-score"
        data-questions=move || score.with(|s| s.questions).to_string()
        data-learner=move || overall().learner.to_string()
        data-model=move || overall().model.to_string()
        data-asked=move || overall().asked.to_string()>
        <h3>{move || format!("Score over {} questions: you {} · the model {} on the same questions",
            score.with(|s| s.questions), pct(overall().percent(), true), pct(overall().percent(), false))}</h3>
        <table>
            <thead><tr><th>"question"</th><th>"asked"</th><th>"you"</th><th>"model"</th></tr></thead>
            <tbody>
                {move || {
                    let s = score.get();
                    std::iter::once((Target::CellType, s.cell_type))
                        .chain(s.attributes.iter().enumerate().map(|(k, t)| (Target::Attribute(k), *t)))
                        .filter(|(_, t)| t.asked > 0)
                        .map(|(target, t)| view! {
                            <tr><td>{target.title()}</td><td>{t.asked}</td><td>{pct(t.percent(), true)}</td><td>{pct(t.percent(), false)}</td></tr>
                        })
                        .collect_view()
                }}
            </tbody>
        </table>
        <button data-testid="quiz-reset" on:click=move |_| score.set(Score::default())>"reset the score"</button>
    </div>
        }
}

/// The cell to name and a selector per question asked.
#[component]
fn QuizQuestion(
    id: u32,
    targets: Vec<Target>,
    image: Signal<Option<String>>,
    choices: RwSignal<Vec<Option<usize>>>,
    answered: RwSignal<Option<Vec<Marked>>>,
    on_answer: Callback<()>,
) -> impl IntoView {
    view! {
    <div class="quiz-question" data-testid="quiz-question" data-cell=id.to_string()>
            <img class="quiz-cell" src=image alt="the cell to name" width="300" height="300"/>
            <div class="quiz-choices">
                {targets.into_iter().enumerate().map(|(i, t)| {
                    let values = t.values();
                    view! {
                        <label class="quiz-choice">{t.title()}" "
                            <select data-testid=format!("quiz-choice-{}", key(t))
                                disabled=move || answered.get().is_some()
                                on:change=move |e| {
                                    let v = event_target_value(&e).parse::<usize>().ok();
                                    choices.update(|c| if let Some(slot) = c.get_mut(i) { *slot = v; });
                                }>
                                <option value="">"— choose —"</option>
                                {values.iter().enumerate().map(|(v, name)| view! { <option value=v.to_string()>{*name}</option> }).collect_view()}
                            </select>
                        </label>
                    }
                }).collect_view()}
                <button data-testid="quiz-answer" disabled=move || answered.get().is_some() || choices.with(|c| c.iter().all(Option::is_none))
                    on:click=move |_| on_answer.run(())>"answer"</button>
            </div>
        </div>
        }
}
