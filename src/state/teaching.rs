//! Teaching and presenting: which view is on show, the glossary's focus, the quiz score and
//! presentation mode.

use leptos::prelude::*;
use wbc_core::quiz::Score;

/// Which of the page's views is on show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageView {
    /// One cell explained: overlay, attributes, CBM, counterfactuals.
    Explorer,
    /// Every loaded cell as a row of the analyser's table.
    Table,
    /// The loaded set as a whole: attribute values per type, and errors against labels.
    Dataset,
    /// Every attribute and value in words, with example cells.
    Glossary,
    /// Name the type and attributes of labelled cells; compare with the model.
    Quiz,
}

#[derive(Clone, Copy)]
pub struct Teaching {
    /// The view on show.
    pub view: RwSignal<PageView>,
    /// The attribute the glossary should show first ("what is this?").
    pub glossary_focus: RwSignal<Option<usize>>,
    /// The quiz score (learner and model), kept across reloads.
    pub quiz_score: RwSignal<Score>,
    /// Presentation mode: full screen, large type, keys step through the cells.
    pub presenting: RwSignal<bool>,
}

impl Teaching {
    pub fn new() -> Self {
        Self {
            view: RwSignal::new(PageView::Explorer),
            glossary_focus: RwSignal::new(None),
            quiz_score: RwSignal::new(Score::default()),
            presenting: RwSignal::new(false),
        }
    }

    /// Show attribute `k` in the glossary.
    pub fn explain_attribute(self, k: usize) {
        self.glossary_focus.set(Some(k));
        self.view.set(PageView::Glossary);
    }
}

impl Default for Teaching {
    fn default() -> Self {
        Self::new()
    }
}
