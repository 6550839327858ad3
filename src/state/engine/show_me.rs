//! "Show me": asking the worker for a cell edited so one attribute takes another value
//! (`wbc_core::edit`), analysed again by the whole pipeline (what arrives goes to
//! `edited.rs`).

use super::Engine;
use leptos::prelude::*;
use wbc_core::edit::Edit;
use wbc_messages::ToWorker;

impl Engine {
    /// Ask the worker for cell `id` with `edit` made. The cell's file goes along, as for
    /// "where?" (`cam.rs`): the worker makes the square and its label map again from it.
    pub fn show_me(self, id: u32, edit: Edit) {
        self.show_me.pending.set(Some((id, edit.clone())));
        let stain = self.requests.stain.get_untracked();
        let request = ToWorker::Edit { id, edit, stain };
        self.send_with_file(id, request, move |engine| {
            engine.show_me.pending.set(None);
        });
    }

    /// The worker could not make the edit.
    pub fn edit_failed(self, reason: String) {
        self.show_me.pending.set(None);
        self.notices
            .say(format!("the edited cell could not be made: {reason}"));
    }
}
