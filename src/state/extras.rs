//! The optional knowledge the page loads beside the worker's networks: the concept-bottleneck
//! model (`models/cbm.json`), the target stains of "show me" (`models/edit_stains.json`) and
//! the reference index of real cells (`reference/index.json`,
//! built in by `cargo xtask build --reference DIR`). The page works without either (no CBM
//! panel; counterfactuals among the loaded cells only).

use super::notices::Notices;
use super::web::fetch_text;
use leptos::prelude::*;
use std::sync::Arc;
use wbc_core::cbm::Cbm;
use wbc_core::counterfactual::ReferenceIndex;
use wbc_core::edit::TargetStains;

#[derive(Clone, Copy)]
pub struct Extras {
    /// The concept-bottleneck model, when it loaded.
    pub cbm: RwSignal<Option<Cbm>>,
    /// The reference index, when this build has one.
    pub reference: RwSignal<Option<Arc<ReferenceIndex>>>,
    /// The target stains of "show me"'s colour edits, when they loaded.
    pub stains: RwSignal<Option<TargetStains>>,
}

impl Extras {
    /// Start fetching both; a file that is there but unreadable is said in `notices`.
    pub fn load(notices: Notices) -> Self {
        let extras = Self {
            cbm: RwSignal::new(None),
            reference: RwSignal::new(None),
            stains: RwSignal::new(None),
        };
        wasm_bindgen_futures::spawn_local(async move {
            if let Some(text) = fetch_text("models/cbm.json").await {
                match serde_json::from_str::<Cbm>(&text) {
                    Ok(cbm) => extras.cbm.set(Some(cbm)),
                    Err(e) => notices.say(format!("models/cbm.json could not be read: {e}")),
                }
            }
            if let Some(text) = fetch_text("models/edit_stains.json").await {
                match serde_json::from_str::<TargetStains>(&text) {
                    Ok(s) => extras.stains.set(Some(s)),
                    Err(e) => {
                        notices.say(format!("models/edit_stains.json could not be read: {e}"))
                    }
                }
            }
            if let Some(text) = fetch_text("reference/index.json").await {
                match serde_json::from_str::<ReferenceIndex>(&text) {
                    Ok(index) => extras.reference.set(Some(Arc::new(index))),
                    Err(e) => notices.say(format!("reference/index.json could not be read: {e}")),
                }
            }
        });
        extras
    }
}
