//! The glossary: every attribute and each of its values in words (`wbc_core::glossary`),
//! with up to three example cells per value from the loaded cells (the sample cells, for a
//! newcomer) where the network is confident of that value; an example opens in the explorer.

use crate::state::{open_cell, Cells, Teaching};
use leptos::prelude::*;
use wbc_core::glossary::GLOSSARY;
use wbc_core::ATTRIBUTES;

/// An example must carry the value at this probability or more.
const CONFIDENT: f32 = 0.9;
const EXAMPLES: usize = 3;

#[component]
pub fn Glossary() -> impl IntoView {
    let (cells, teaching) = (expect_context::<Cells>(), expect_context::<Teaching>());
    // Scroll to the attribute the explorer's "what is this?" asked for.
    Effect::new(move |_| {
        if let Some(k) = teaching.glossary_focus.get() {
            let id = format!("glossary-{}", ATTRIBUTES[k].name);
            request_animation_frame(move || {
                if let Some(el) = document().get_element_by_id(&id) {
                    el.scroll_into_view();
                }
            });
        }
    });
    let examples = move |k: usize, v: usize| {
        cells.cells.with(|cells| {
            let mut hits: Vec<(f32, u32, String, String)> = cells
                .iter()
                .filter_map(|c| {
                    let p = c.prediction.attributes[k][v];
                    let top = wbc_core::metrics::argmax(&c.prediction.attributes[k]) == v;
                    (top && p >= CONFIDENT).then(|| (p, c.id, c.thumb_url.clone(), c.name.clone()))
                })
                .collect();
            hits.sort_by(|a, b| b.0.total_cmp(&a.0));
            hits.truncate(EXAMPLES);
            hits
        })
    };
    view! {
        <section class="glossary" data-testid="glossary">
            <h2>"Glossary: the 11 attributes and their 31 values"</h2>
            <Show when=move || cells.cells.with(Vec::is_empty)>
                <p class="hint">"Examples come from the cells you load. "
                    <button on:click=move |_| cells.load_samples()>"load the sample cells"</button>
                    " to see real examples of each value."</p>
            </Show>
            {GLOSSARY.iter().enumerate().map(|(k, e)| {
                let a = &ATTRIBUTES[k];
                view! {
                    <article id=format!("glossary-{}", a.name) data-testid=format!("glossary-{}", a.name)
                        class:focused=move || teaching.glossary_focus.get() == Some(k)>
                        <h3>{a.title}</h3>
                        <p>{e.look_at}</p>
                        <dl>
                            {e.values.iter().enumerate().map(|(v, (meaning, separates))| view! {
                                <dt>{a.values[v]}</dt>
                                <dd>
                                    // The value's name is the <dt> already.
                                    <p>{meaning.split_once(": ").map_or(*meaning, |(_, m)| m)}" "<span class="separates">{*separates}</span></p>
                                    <div class="examples" data-testid=format!("examples-{}-{}", a.name, v)>
                                        {move || examples(k, v).into_iter().map(|(p, id, thumb, name)| view! {
                                            <button class="example" title=format!("{name}: {:.0}% {}", p * 100.0, a.values[v])
                                                on:click=move |_| open_cell(cells, teaching, id)>
                                                <img src=thumb alt=format!("example of {}", a.values[v]) width="56" height="56"/>
                                            </button>
                                        }).collect_view()}
                                    </div>
                                </dd>
                            }).collect_view()}
                        </dl>
                    </article>
                }
            }).collect_view()}
        </section>
    }
}

/// "What is this?" beside an attribute: the glossary, opened at that attribute.
#[component]
pub fn WhatIsThis(k: usize) -> impl IntoView {
    let teaching = expect_context::<Teaching>();
    view! {
        <button class="what-is-this" data-testid=format!("what-is-{}", ATTRIBUTES[k].name)
            on:click=move |_| teaching.explain_attribute(k)>"what is this?"</button>
    }
}
