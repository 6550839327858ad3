//! "Show me": the edited cell on show and the edit asked for (what arrives from the worker;
//! asking is in `show_me.rs`). Only the latest request is shown; a late answer to an older
//! one is dropped.

use leptos::prelude::*;
use wbc_core::confidence::Familiarity;
use wbc_core::edit::Edit;
use wbc_core::morphometry::Morphometry;
use wbc_core::CellPrediction;

/// A cell edited and analysed again.
#[derive(Clone, Debug, PartialEq)]
pub struct EditedView {
    pub cell: u32,
    pub edit: Edit,
    /// Object URL of the edited square (PNG).
    pub image_url: String,
    pub prediction: CellPrediction,
    pub morphometry: Morphometry,
    pub familiarity: Option<Familiarity>,
    /// The whole request in the worker (ms).
    pub ms: f64,
}

/// The edited cell on show, and the edit being made.
#[derive(Clone, Copy)]
pub struct ShowMe {
    pub shown: RwSignal<Option<EditedView>>,
    pub pending: RwSignal<Option<(u32, Edit)>>,
}

impl ShowMe {
    pub fn new() -> Self {
        Self {
            shown: RwSignal::new(None),
            pending: RwSignal::new(None),
        }
    }

    /// The worker's edited cell, shown if it is the edit asked for last.
    pub fn arrived(self, view: EditedView) {
        let asked = self
            .pending
            .with_untracked(|p| p.as_ref() == Some(&(view.cell, view.edit.clone())));
        if asked {
            self.pending.set(None);
            if let Some(old) = self.shown.get_untracked() {
                let _ = web_sys::Url::revoke_object_url(&old.image_url);
            }
            self.shown.set(Some(view));
        } else {
            let _ = web_sys::Url::revoke_object_url(&view.image_url);
        }
    }

    /// Back to the cell as it is.
    pub fn clear(self) {
        if let Some(old) = self.shown.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old.image_url);
        }
        self.shown.set(None);
        self.pending.set(None);
    }
}

impl Default for ShowMe {
    fn default() -> Self {
        Self::new()
    }
}
