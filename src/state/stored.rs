//! The stored session ([`crate::session`]: IndexedDB): what is written when, how a reload
//! puts it back, and "clear session". This room reads the others through their public
//! methods and writes nothing but the browser's storage, except when it puts a stored
//! session back or clears one, which it does through those rooms' own methods.

use super::adaptation::{Adaptation, AttributeLabels};
use super::analyser::{Analyser, LOADED_ORDER};
use super::cells::{CellView, Cells, Edits, Pictures};
use super::engine::Engine;
use super::notices::Notices;
use super::teaching::Teaching;
use super::web::object_url;
use crate::session::{
    self, PROFILE, QUIZ_SCORE, SELECTED, TABLE_FILTER, TABLE_SORT, USER_ATTRIBUTES, USER_LABELS,
};
use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use wbc_core::quiz::Score;
use wbc_core::table;
use wbc_messages::CellReport;
use web_sys::Blob;

/// A cell's results as read back from storage (written by [`StoredSession::keep_cell`] as
/// `{"report": …, "round_trip_ms": …}`, without copying the report).
#[derive(serde::Deserialize)]
struct SavedReport {
    report: CellReport,
    round_trip_ms: f64,
}

/// The profile as kept in storage.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct StoredProfile {
    profile: wbc_core::adapt::Profile,
    applied: bool,
}

#[derive(Clone, Copy)]
pub struct StoredSession {
    /// Whether the stored session has been read back (until then no setting is written, so
    /// a default value cannot overwrite a stored one).
    restored: RwSignal<bool>,
    /// Each cell's key in the stored session (ids are per page load; keys last).
    keys: StoredValue<BTreeMap<u32, String>>,
    /// Page clock origin (ms since 1970), the first part of each new key.
    opened_at: StoredValue<u64>,
    /// Keys made so far in this page, the second part of each new key: keys sort in the
    /// order cells were answered, which is the order the page lists them (by id they
    /// sorted in the order files were given, and two workers can answer out of that order).
    keys_made: StoredValue<u32>,
    /// Requests in flight when the session was cleared: their answers are dropped.
    forgotten: StoredValue<BTreeSet<u32>>,
    /// The edits as last written, to write only what changed.
    written_edits: StoredValue<BTreeMap<u32, Edits>>,
    cells: Cells,
    engine: Engine,
    analyser: Analyser,
    adaptation: Adaptation,
    teaching: Teaching,
    notices: Notices,
}

impl StoredSession {
    /// Read back the stored session, and keep the settings and edits from now on.
    pub fn start(
        cells: Cells,
        engine: Engine,
        analyser: Analyser,
        adaptation: Adaptation,
        teaching: Teaching,
        notices: Notices,
    ) -> Self {
        let stored = Self {
            restored: RwSignal::new(false),
            keys: StoredValue::new(BTreeMap::new()),
            opened_at: StoredValue::new(js_sys::Date::now() as u64),
            keys_made: StoredValue::new(0),
            forgotten: StoredValue::new(BTreeSet::new()),
            written_edits: StoredValue::new(BTreeMap::new()),
            cells,
            engine,
            analyser,
            adaptation,
            teaching,
            notices,
        };
        stored.restore();
        stored.keep_settings();
        stored.keep_edits();
        stored
    }

    /// Run a storage write in the background; the first failure is said once (the session
    /// goes on in memory, it is only not kept across a reload).
    fn write(self, what: impl std::future::Future<Output = Result<(), String>> + 'static) {
        leptos::task::spawn_local(async move {
            if let Err(e) = what.await {
                let note = self.notices.session_note;
                if note.get_untracked().is_none_or(|n| !n.contains("not kept")) {
                    note.set(Some(format!(
                        "This session is not kept across a reload: the browser's storage refused it ({e})."
                    )));
                }
            }
        });
    }

    /// The stored key of cell `id`, made when first needed.
    fn key_of(self, id: u32) -> String {
        let stamp = self.opened_at.get_value();
        let keys_made = self.keys_made;
        self.keys
            .try_update_value(|k| {
                k.entry(id)
                    .or_insert_with(|| {
                        let seq = keys_made.try_update_value(|n| {
                            *n += 1;
                            *n
                        });
                        format!("{stamp:013}-{:06}", seq.unwrap_or_default())
                    })
                    .clone()
            })
            .unwrap_or_default()
    }

    /// Whether the answer for `id` belongs to a cleared session (and is to be dropped).
    pub fn forget(self, id: u32) -> bool {
        self.forgotten
            .try_update_value(|f| f.remove(&id))
            .unwrap_or(false)
    }

    /// Keep an analysed cell: its file, thumbnail and results (read back as a
    /// [`SavedReport`]).
    pub fn keep_cell(self, report: &CellReport, thumb: Option<Blob>, round_trip_ms: f64) {
        let (Some(file), Some(thumb)) = (self.engine.file_of(report.id), thumb) else {
            return;
        };
        let saved = serde_json::json!({ "report": report, "round_trip_ms": round_trip_ms });
        let json = saved.to_string();
        let key = self.key_of(report.id);
        self.write(async move { session::put_cell(&key, &file, &thumb, &json).await });
    }

    /// Keep each cell's edits whenever they change (or forget them when it has none).
    fn keep_edits(self) {
        Effect::new(move |_| {
            let now = self.cells.edits.get();
            let changed: Vec<(u32, Option<Edits>)> = self
                .written_edits
                .try_update_value(|written| {
                    let mut changed: Vec<(u32, Option<Edits>)> = now
                        .iter()
                        .filter(|(id, e)| written.get(id) != Some(e))
                        .map(|(id, e)| (*id, Some(*e)))
                        .collect();
                    changed.extend(
                        written
                            .keys()
                            .filter(|id| !now.contains_key(id))
                            .map(|id| (*id, None)),
                    );
                    *written = now.clone();
                    changed
                })
                .unwrap_or_default();
            for (id, edits) in changed {
                let json = edits.and_then(|e| serde_json::to_string(&e).ok());
                let key = self.key_of(id);
                self.write(async move { session::put_edits(&key, json.as_deref()).await });
            }
        });
    }

    /// Keep the table's filter and sort, the quiz score and the cell on show whenever they
    /// change (once the stored ones are back). A default value is deleted rather than
    /// written, so a cleared session leaves nothing behind.
    fn keep_settings(self) {
        fn setting<T: serde::Serialize + PartialEq + Default + Send + Sync + 'static>(
            stored: StoredSession,
            name: &'static str,
            value: impl Fn() -> T + 'static,
        ) {
            Effect::new(move |_| {
                let v = value();
                if !stored.restored.get_untracked() {
                    return;
                }
                let json = (v != T::default())
                    .then(|| serde_json::to_string(&v).ok())
                    .flatten();
                stored.write(async move { session::put_setting(name, json.as_deref()).await });
            });
        }
        let s = self;
        setting(s, TABLE_FILTER, move || s.analyser.filter.get());
        setting(s, TABLE_SORT, move || {
            Some(s.analyser.sort.get()).filter(|v| *v != LOADED_ORDER)
        });
        setting(s, QUIZ_SCORE, move || s.teaching.quiz_score.get());
        setting(s, USER_LABELS, move || {
            s.adaptation
                .labels
                .get()
                .into_iter()
                .map(|(id, label)| (s.key_of(id), label))
                .collect::<BTreeMap<String, String>>()
        });
        setting(s, USER_ATTRIBUTES, move || {
            s.adaptation
                .attribute_labels
                .get()
                .into_iter()
                .map(|(id, values)| (s.key_of(id), values))
                .collect::<BTreeMap<String, AttributeLabels>>()
        });
        setting(s, PROFILE, move || {
            s.adaptation.profile.get().map(|p| StoredProfile {
                profile: (*p).clone(),
                applied: s.adaptation.applied.get(),
            })
        });
        setting(s, SELECTED, move || {
            s.cells
                .selected
                .get()
                .and_then(|id| s.keys.with_value(|k| k.get(&id).cloned()))
        });
    }

    /// Put back the session stored by an earlier visit: the cells (thumbnail and results;
    /// the one on show is analysed again for its overlay), their edits, the table's filter
    /// and sort, and the quiz score. Cells added meanwhile stay, after the restored ones.
    fn restore(self) {
        leptos::task::spawn_local(async move {
            let stored = match session::load().await {
                Ok(stored) => stored,
                Err(e) => {
                    self.notices.session_note.set(Some(format!(
                        "This session is not kept across a reload: the browser's storage is unavailable ({e})."
                    )));
                    self.restored.set(true);
                    return;
                }
            };
            let setting = |name: &str| stored.settings.get(name);
            let shown_key = setting(SELECTED).and_then(|j| serde_json::from_str::<String>(j).ok());
            let (cells, edits, shown) = self.put_back_cells(stored.cells, &stored.edits, shown_key);
            let n = cells.len();
            if n > 0 {
                self.written_edits
                    .update_value(|w| w.extend(edits.iter().map(|(k, v)| (*k, *v))));
                self.cells.restore(cells, edits);
            }
            if let Some(f) =
                setting(TABLE_FILTER).and_then(|j| serde_json::from_str::<table::Filter>(j).ok())
            {
                self.analyser.filter.set(f);
            }
            if let Some(s) = setting(TABLE_SORT)
                .and_then(|j| serde_json::from_str::<Option<(table::SortKey, bool)>>(j).ok())
                .flatten()
            {
                self.analyser.sort.set(s);
            }
            if let Some(s) = setting(QUIZ_SCORE).and_then(|j| serde_json::from_str::<Score>(j).ok())
            {
                self.teaching.quiz_score.set(s);
            }
            self.put_back_labels(
                setting(USER_LABELS),
                setting(USER_ATTRIBUTES),
                setting(PROFILE),
            );
            self.restored.set(true);
            if n > 0 {
                self.notices.session_note.set(Some(format!(
                    "{n} cell{} from your last visit restored from this browser's storage.",
                    if n == 1 { "" } else { "s" }
                )));
                if self.cells.selected.get_untracked().is_none() {
                    let last = self
                        .cells
                        .cells
                        .with_untracked(|c| c.get(n - 1).map(|c| c.id));
                    if let Some(id) = shown.or(last) {
                        self.cells.select(id);
                    }
                }
            }
        });
    }

    /// The user's labels (by the restored cells' new ids) and the profile (checked against
    /// the networks once they are known: `Adaptation`).
    fn put_back_labels(
        self,
        labels: Option<&String>,
        attributes: Option<&String>,
        profile: Option<&String>,
    ) {
        let by_key: BTreeMap<String, u32> = self
            .keys
            .with_value(|k| k.iter().map(|(id, key)| (key.clone(), *id)).collect());
        if let Some(values) = attributes
            .and_then(|j| serde_json::from_str::<BTreeMap<String, AttributeLabels>>(j).ok())
        {
            self.adaptation.attribute_labels.update(|l| {
                l.extend(
                    values
                        .into_iter()
                        .filter_map(|(key, v)| by_key.get(&key).map(|id| (*id, v))),
                )
            });
        }
        if let Some(labels) =
            labels.and_then(|j| serde_json::from_str::<BTreeMap<String, String>>(j).ok())
        {
            self.adaptation.labels.update(|l| {
                l.extend(
                    labels
                        .into_iter()
                        .filter_map(|(key, label)| by_key.get(&key).map(|id| (*id, label))),
                )
            });
        }
        if let Some(p) = profile.and_then(|j| serde_json::from_str::<StoredProfile>(j).ok()) {
            self.adaptation.restore(p.profile, p.applied);
        }
    }

    /// The stored cells as cells of this page (their files handed to the engine under new
    /// ids), their edits by new id, and the id of the one that was on show.
    fn put_back_cells(
        self,
        kept: Vec<session::StoredCell>,
        stored_edits: &BTreeMap<String, String>,
        shown_key: Option<String>,
    ) -> (Vec<CellView>, BTreeMap<u32, Edits>, Option<u32>) {
        let mut cells = Vec::new();
        let mut edits = BTreeMap::new();
        let mut shown = None;
        for kept in kept {
            let Ok(saved) = serde_json::from_str::<SavedReport>(&kept.report) else {
                continue;
            };
            let id = self.engine.adopt(kept.file);
            if let Some(e) = stored_edits
                .get(&kept.key)
                .and_then(|j| serde_json::from_str::<Edits>(j).ok())
            {
                edits.insert(id, e);
            }
            if shown_key.as_ref() == Some(&kept.key) {
                shown = Some(id);
            }
            self.keys.update_value(|k| {
                k.insert(id, kept.key);
            });
            cells.push(restored_view(id, saved, object_url(&kept.thumb)));
        }
        (cells, edits, shown)
    }

    /// Remove every stored image and result, and start afresh: the cells, edits, refused
    /// files, table filter and quiz score go from the page and from the browser's storage.
    /// Answers still on their way are dropped.
    pub fn clear_session(self) {
        let in_flight = self.engine.forget_all();
        self.forgotten.update_value(|f| f.extend(in_flight));
        self.written_edits.update_value(BTreeMap::clear);
        self.cells.clear();
        self.engine.cam.clear();
        self.notices.refused.set(Vec::new());
        self.notices.error.set(None);
        self.keys.update_value(BTreeMap::clear);
        self.analyser.reset();
        self.adaptation.clear();
        self.teaching.quiz_score.set(Score::default());
        let note = self.notices.session_note;
        leptos::task::spawn_local(async move {
            let said = match session::clear().await {
                Ok(n) => format!(
                    "Session cleared: {n} stored cell{} (images and results), the edits, your labels and profile, the table's filter and the quiz score were removed from this browser.",
                    if n == 1 { "" } else { "s" }
                ),
                Err(e) => format!("The cells are gone from the page, but the browser's storage could not be emptied: {e}"),
            };
            note.set(Some(said));
        });
    }
}

/// A cell as it comes back from storage, as cell `id` of this page: thumbnail and results;
/// its crop and label map come when it is opened (analysed again).
fn restored_view(id: u32, saved: SavedReport, thumb_url: Option<String>) -> CellView {
    let report = CellReport { id, ..saved.report };
    let pictures = Pictures {
        image_url: String::new(),
        thumb_url: thumb_url.unwrap_or_default(),
        normalised_url: None,
        labels: Vec::new(),
    };
    CellView::from_report(report, pictures, (saved.round_trip_ms, 0.0))
}
