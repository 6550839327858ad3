//! Your microscope, your question: the user's own labels and what is fitted on them.
//!
//! - Labels: set in the cell panel, taken from the sub-folder a dropped folder put a cell in,
//!   or from a labels CSV loaded in the dataset view, matched by file name. A label is a cell
//!   type, a class of the user's own question, or an attribute's value ("the nucleus is
//!   indented": set beside the attribute in the panel, or a CSV's attribute columns).
//! - The fit: `wbc_core::adapt::Fitting`, the same plan `wbc fit` runs, here a few steps per
//!   task (about 20 ms each, then the page gets the thread back), so it never holds the page.
//! - The profile: when the labels are the five cell types, the shipped answer corrected for
//!   this microscope (switched on by the user after seeing its cross-validated gain);
//!   otherwise the user's own question, answered for every cell by an interpretable
//!   classifier and a black-box probe. Attribute values correct those attributes the same way
//!   as the cell type, where cross-validation shows a clear gain. Exported and imported as one
//!   JSON file; one made for other networks is refused with a message, and the profile in use
//!   stays.

use super::analyser::{Analyser, TableEntry};
use super::cells::{CellView, Cells};
use super::engine::Engine;
use super::notices::Notices;
use super::web::{download, file_text, next_task, page_ms};
use leptos::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use wbc_core::adapt::fitting::{class_index, classes_of, Fitting, LabelledCell};
use wbc_core::adapt::{argmax, interpretable_inputs, interpretable_names, Networks, Profile};
use wbc_core::{ATTRIBUTES, CELL_TYPES};
use web_sys::File;

/// How long one slice of a fit may hold the page (ms): well under the 100 ms a page may be
/// busy before a click feels ignored.
const SLICE_MS: f64 = 20.0;

/// How the last fit went, for the page and the tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitTiming {
    pub cells: usize,
    /// From the click to the profile (ms).
    pub total_ms: f64,
    /// The longest the page was held at once (ms).
    pub longest_slice_ms: f64,
}

/// A question profile's answer for one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct QuestionAnswer {
    pub classes: Vec<String>,
    /// The interpretable classifier's probabilities.
    pub interpretable: Vec<f32>,
    /// The probe's.
    pub probe: Vec<f32>,
    /// The interpretable inputs that pushed this cell's answer most, with how much (towards
    /// the answer, against the other classes' mean).
    pub reasons: Vec<(String, f32)>,
}

/// A cell's attribute values as the user gave them ([`ATTRIBUTES`] order).
pub type AttributeLabels = [Option<usize>; 11];

/// A labelled cell: its class label and attribute values, either of which may be missing.
#[derive(Clone, Debug)]
pub struct Labelled {
    pub cell: CellView,
    pub label: Option<String>,
    pub attributes: AttributeLabels,
}

#[derive(Clone, Copy)]
pub struct Adaptation {
    /// Labels the user gave (the cell panel, a dropped folder), by cell id.
    pub labels: RwSignal<BTreeMap<u32, String>>,
    /// Attribute values the user gave in the cell panel (value index per attribute), by cell
    /// id.
    pub attribute_labels: RwSignal<BTreeMap<u32, AttributeLabels>>,
    /// The fitted or imported profile.
    pub profile: RwSignal<Option<Arc<Profile>>>,
    /// Whether the profile is applied to what the page shows.
    pub applied: RwSignal<bool>,
    /// A fit's progress (0–1) while it runs.
    pub fitting: RwSignal<Option<f32>>,
    pub last_fit: RwSignal<Option<FitTiming>>,
    cells: Cells,
    analyser: Analyser,
    engine: Engine,
    notices: Notices,
}

impl Adaptation {
    pub fn new(cells: Cells, analyser: Analyser, engine: Engine, notices: Notices) -> Self {
        let a = Self {
            labels: RwSignal::new(BTreeMap::new()),
            attribute_labels: RwSignal::new(BTreeMap::new()),
            profile: RwSignal::new(None),
            applied: RwSignal::new(false),
            fitting: RwSignal::new(None),
            last_fit: RwSignal::new(None),
            cells,
            analyser,
            engine,
            notices,
        };
        a.refuse_a_profile_for_other_networks();
        a
    }

    /// The networks the page runs, once the worker has said.
    fn networks(self) -> Option<Networks> {
        self.engine
            .info
            .with_untracked(|i| i.as_ref().and_then(|i| i.networks.clone()))
    }

    /// A profile put back from storage is checked once the networks are known.
    fn refuse_a_profile_for_other_networks(self) {
        Effect::new(move |_| {
            let Some(networks) = self
                .engine
                .info
                .with(|i| i.as_ref().and_then(|i| i.networks.clone()))
            else {
                return;
            };
            let stale = self
                .profile
                .with_untracked(|p| p.as_ref().is_some_and(|p| p.networks != networks));
            if stale {
                self.set_applied(false);
                self.profile.set(None);
                self.notices.say("the stored profile was fitted on other network versions and was put aside: fit it again from your labelled cells");
            }
        });
    }

    /// A cell's label: the user's own, else a loaded labels CSV's type for its file name.
    pub fn label_of(self, id: u32, name: &str) -> Option<String> {
        self.labels.with(|l| l.get(&id).cloned()).or_else(|| {
            self.analyser.labels.with(|l| {
                l.as_ref()
                    .and_then(|(_, l)| l.get(name))
                    .and_then(|l| l.cell_type)
                    .map(|t| CELL_TYPES[t].to_string())
            })
        })
    }

    /// Set (or with an empty name clear) the user's label of cell `id`; a cell type is kept
    /// in its own spelling.
    pub fn set_label(self, id: u32, label: &str) {
        // A type however it is typed ("monocyte") is the type, spelt once.
        let label = CELL_TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(label.trim()))
            .map_or_else(|| label.trim().to_string(), |t| t.to_string());
        self.labels.update(|l| {
            if label.is_empty() {
                l.remove(&id);
            } else {
                l.insert(id, label);
            }
        });
    }

    /// A cell's attribute values: the user's own, else a loaded labels CSV's, attribute by
    /// attribute.
    pub fn attribute_labels_of(self, id: u32, name: &str) -> AttributeLabels {
        let own = self
            .attribute_labels
            .with(|l| l.get(&id).copied())
            .unwrap_or_default();
        let file = self.analyser.labels.with(|l| {
            l.as_ref()
                .and_then(|(_, l)| l.get(name))
                .map(|l| l.attributes)
                .unwrap_or_default()
        });
        std::array::from_fn(|k| own[k].or(file[k]))
    }

    /// Set (or with `None` clear) the user's value of attribute `k` for cell `id`.
    pub fn set_attribute_label(self, id: u32, k: usize, value: Option<usize>) {
        self.attribute_labels.update(|l| {
            let entry = l.entry(id).or_default();
            entry[k] = value;
            if entry.iter().all(Option::is_none) {
                l.remove(&id);
            }
        });
    }

    /// The class names in use (for the panel's choices): the five types, then the user's
    /// own classes.
    pub fn class_names(self) -> Vec<String> {
        let mut names: Vec<String> = CELL_TYPES.iter().map(|t| t.to_string()).collect();
        self.labels.with(|l| {
            for v in l.values() {
                if class_index(&names, v).is_none() {
                    names.push(v.clone());
                }
            }
        });
        names
    }

    /// The labelled cells: those with a class label or any attribute value.
    pub fn labelled(self) -> Vec<Labelled> {
        self.cells.cells.with(|cells| {
            cells
                .iter()
                .filter_map(|c| {
                    let label = self.label_of(c.id, &c.name);
                    let attributes = self.attribute_labels_of(c.id, &c.name);
                    (label.is_some() || attributes.iter().any(Option::is_some)).then(|| Labelled {
                        cell: c.clone(),
                        label,
                        attributes,
                    })
                })
                .collect()
        })
    }

    /// Fit a profile on the labelled cells, a slice at a time; it is shown when done (a
    /// cell-type adaptation waits for the user to switch it on; a question is answered at
    /// once).
    pub fn fit(self) {
        if self.fitting.get_untracked().is_some() {
            return;
        }
        let Some(networks) = self.networks() else {
            self.notices
                .say("wait until the networks are loaded, then fit again");
            return;
        };
        let labelled = self.labelled();
        let names: Vec<String> = labelled.iter().filter_map(|l| l.label.clone()).collect();
        let (classes, types) = classes_of(&names);
        let cells: Vec<LabelledCell> = labelled
            .iter()
            .map(|l| {
                let c = &l.cell;
                // The question is fitted on the shipped attributes (the fit corrects them
                // itself where the user gave values).
                let concepts: Vec<f32> = c.shipped.attributes.concat();
                LabelledCell {
                    features: c.features.to_vec(),
                    shipped: c.shipped.cell_type.clone(),
                    shipped_attributes: c.shipped.attributes.clone(),
                    inputs: interpretable_inputs(&concepts, &c.morphometry),
                    label: l.label.as_ref().and_then(|n| class_index(&classes, n)),
                    attributes: l.attributes,
                }
            })
            .collect();
        let n = cells.len();
        let mut fitting = match Fitting::new(cells, classes, types) {
            Ok(f) => f,
            Err(e) => {
                self.notices.say(e);
                return;
            }
        };
        self.fitting.set(Some(0.0));
        leptos::task::spawn_local(async move {
            let start = page_ms();
            let mut longest = 0.0f64;
            loop {
                let t0 = page_ms();
                let mut done = false;
                while !done && page_ms() - t0 < SLICE_MS {
                    done = fitting.advance(5);
                }
                longest = longest.max(page_ms() - t0);
                if done {
                    break;
                }
                self.fitting.set(Some(fitting.progress()));
                next_task().await;
            }
            let profile = fitting.profile(networks, today());
            self.last_fit.set(Some(FitTiming {
                cells: n,
                total_ms: page_ms() - start,
                longest_slice_ms: longest,
            }));
            self.fitting.set(None);
            // `set_applied` puts every cell as the new profile makes it (a question changes
            // no cell's type, so it is answered at once).
            let question = profile.question.is_some();
            self.profile.set(Some(Arc::new(profile)));
            self.set_applied(question);
        });
    }

    /// Apply the profile to what the page shows, or go back to the shipped answers.
    pub fn set_applied(self, on: bool) {
        self.applied.set(on);
        self.cells.cells.update(|cells| {
            for c in cells.iter_mut() {
                *c = self.adapt(c.clone());
                c.revision += 1;
            }
        });
    }

    /// A cell as the page shows it under the current profile: while a profile is applied,
    /// its attributes corrected where the profile corrects them, and under a cell-type profile
    /// its type corrected and, when it is like the labelled cells of that type, no longer
    /// "unlike the training images"; else as shipped.
    pub fn adapt(self, mut cell: CellView) -> CellView {
        let profile = self
            .applied
            .get_untracked()
            .then(|| self.profile.get_untracked())
            .flatten();
        cell.prediction.attributes = match &profile {
            Some(p) => p.adapt_attributes(&cell.features, &cell.shipped.attributes),
            None => cell.shipped.attributes.clone(),
        };
        let adapted = profile.and_then(|p| {
            p.adapt_type(
                &cell.features,
                &cell.shipped.cell_type,
                cell.shipped.familiarity.as_ref(),
            )
        });
        (cell.prediction.cell_type, cell.familiarity) = adapted.unwrap_or_else(|| {
            (
                cell.shipped.cell_type.clone(),
                cell.shipped.familiarity.clone(),
            )
        });
        cell
    }

    /// Whether attribute `k` as the page shows it is corrected by the applied profile.
    pub fn attribute_corrected(self, k: usize) -> bool {
        self.applied.get()
            && self.profile.with(|p| {
                p.as_ref().is_some_and(|p| {
                    p.attributes
                        .iter()
                        .any(|a| a.used && a.attribute == ATTRIBUTES[k].name)
                })
            })
    }

    /// Whether the cell type the page shows is the adapted one.
    pub fn type_adapted(self) -> bool {
        self.applied.get()
            && self
                .profile
                .with(|p| p.as_ref().is_some_and(|p| p.adaptation.is_some()))
    }

    /// The user's question answered for `cell` in full (both classifiers and the reasons,
    /// for the panel), when a question profile is applied; with `concepts`, for its
    /// attribute probabilities as the user edited them ("what if").
    pub fn answer(self, cell: &CellView, concepts: &[f32]) -> Option<QuestionAnswer> {
        if !self.applied.get() {
            return None;
        }
        self.profile.with(|p| {
            let p = p.as_ref()?;
            let q = p.question.as_ref()?;
            let x = interpretable_inputs(concepts, &cell.morphometry);
            let interpretable = q.interpretable.probabilities(&x);
            let probe = q.probe.probabilities(&cell.features);
            let answer = argmax(&interpretable);
            let others = (p.classes.len() - 1).max(1) as f32;
            let names = interpretable_names();
            let mut reasons: Vec<(String, f32)> = names
                .into_iter()
                .enumerate()
                .map(|(j, name)| {
                    let w = |c: usize| q.interpretable.weights[c].get(j).copied().unwrap_or(0.0);
                    let rest: f32 = (0..p.classes.len())
                        .filter(|&c| c != answer)
                        .map(w)
                        .sum::<f32>()
                        / others;
                    (name, (w(answer) - rest) * x[j])
                })
                .filter(|(_, v)| *v != 0.0)
                .collect();
            reasons.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            reasons.truncate(5);
            Some(QuestionAnswer {
                classes: p.classes.clone(),
                interpretable,
                probe,
                reasons,
            })
        })
    }

    /// The table's rows, each with the user's label and the question's answer.
    pub fn rows(self) -> Vec<TableEntry> {
        let mut rows = self.analyser.rows();
        self.cells.cells.with(|cells| {
            for (entry, cell) in rows.iter_mut().zip(cells) {
                entry.row.user_label = self.label_of(cell.id, &cell.name);
                entry.row.user_attributes = self
                    .attribute_labels
                    .with(|l| l.get(&cell.id).copied())
                    .unwrap_or_default();
                entry.row.question = self
                    .applied
                    .get()
                    .then(|| {
                        self.profile.with(|p| {
                            p.as_ref().and_then(|p| {
                                p.answer_question(&cell.prediction.concepts(), &cell.morphometry)
                            })
                        })
                    })
                    .flatten();
            }
        });
        rows
    }

    /// Offer the profile as a file.
    pub fn export(self) {
        let text = self.profile.with_untracked(|p| {
            p.as_ref()
                .and_then(|p| serde_json::to_string_pretty(&**p).ok())
        });
        match text {
            Some(t) if download("wbc-profile.json", "application/json", &t).is_some() => {}
            Some(_) => self
                .notices
                .say("the profile could not be offered as a file"),
            None => self.notices.say("there is no profile to export yet"),
        }
    }

    /// Read a profile file and apply it; a broken one, or one for other networks, is refused
    /// with the reason, and the profile in use stays.
    pub fn import(self, file: File) {
        let name = file.name();
        leptos::task::spawn_local(async move {
            let Some(text) = file_text(&file).await else {
                self.notices
                    .say(format!("{name}: the file could not be read"));
                return;
            };
            let Some(networks) = self.networks() else {
                self.notices
                    .say("wait until the networks are loaded, then import the profile again");
                return;
            };
            match Profile::read(&text, &networks) {
                Ok(p) => {
                    self.profile.set(Some(Arc::new(p)));
                    self.set_applied(true);
                }
                Err(e) => self.notices.say(format!("{name}: {e}")),
            }
        });
    }

    /// Put a stored profile back (checked against the networks once they are known).
    pub fn restore(self, profile: Profile, applied: bool) {
        self.profile.set(Some(Arc::new(profile)));
        self.set_applied(applied);
    }

    /// Forget every label and the profile (clear session).
    pub fn clear(self) {
        self.labels.set(BTreeMap::new());
        self.attribute_labels.set(BTreeMap::new());
        self.applied.set(false);
        self.profile.set(None);
        self.last_fit.set(None);
    }
}

/// Today's date (UTC), as a profile records it.
fn today() -> String {
    let iso: String = js_sys::Date::new_0().to_iso_string().into();
    iso.chars().take(10).collect()
}
