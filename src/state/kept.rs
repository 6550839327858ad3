//! The page state's side of the stored session ([`crate::session`]): what is written when, how a
//! reload puts it back, and "clear session".

use super::{object_url, release, AppState, CellView, Edits};
use crate::session::{self, QUIZ_SCORE, SELECTED, TABLE_FILTER, TABLE_SORT};
use leptos::prelude::*;
use std::collections::BTreeMap;
use wbc_core::quiz::Score;
use wbc_core::table;
use wbc_messages::CellReport;
use web_sys::Blob;

/// A cell's results as read back from storage (written by [`AppState::keep_cell`] as
/// `{"report": …, "round_trip_ms": …}`, without copying the report).
#[derive(serde::Deserialize)]
struct SavedReport {
    report: CellReport,
    round_trip_ms: f64,
}

impl AppState {
    /// Run a storage write in the background; the first failure is said once (the session
    /// goes on in memory, it is only not kept across a reload).
    fn write(self, what: impl std::future::Future<Output = Result<(), String>> + 'static) {
        leptos::task::spawn_local(async move {
            if let Err(e) = what.await {
                if self
                    .session_note
                    .get_untracked()
                    .is_none_or(|n| !n.contains("not kept"))
                {
                    self.session_note.set(Some(format!(
                        "This session is not kept across a reload: the browser's storage refused it ({e})."
                    )));
                }
            }
        });
    }

    /// The stored key of cell `id`, made when first needed.
    fn key_of(self, id: u32) -> String {
        let stamp = self.opened_at.get_value();
        self.keys
            .try_update_value(|k| {
                k.entry(id)
                    .or_insert_with(|| format!("{stamp:013}-{id:06}"))
                    .clone()
            })
            .unwrap_or_default()
    }

    /// Whether the answer for `id` belongs to a cleared session (and is to be dropped).
    pub(super) fn forget(self, id: u32) -> bool {
        self.forgotten
            .try_update_value(|f| f.remove(&id))
            .unwrap_or(false)
    }

    /// Keep an analysed cell: its file, thumbnail and results (read back as a
    /// [`SavedReport`]).
    pub(super) fn keep_cell(self, report: &CellReport, thumb: Option<Blob>, round_trip_ms: f64) {
        let (Some(file), Some(thumb)) =
            (self.files.with_value(|f| f.get(&report.id).cloned()), thumb)
        else {
            return;
        };
        let saved = serde_json::json!({ "report": report, "round_trip_ms": round_trip_ms });
        let json = saved.to_string();
        let key = self.key_of(report.id);
        self.write(async move { session::put_cell(&key, &file, &thumb, &json).await });
    }

    /// Keep cell `id`'s edits (or forget them when it has none).
    pub(super) fn keep_edits(self, id: u32) {
        let edits = self.edits.with_untracked(|e| e.get(&id).copied());
        let json = edits.and_then(|e| serde_json::to_string(&e).ok());
        let key = self.key_of(id);
        self.write(async move { session::put_edits(&key, json.as_deref()).await });
    }

    /// Keep the table's filter and sort, the quiz score and the cell on show whenever they
    /// change (once the stored ones are back). A default value is deleted rather than
    /// written, so a cleared session leaves nothing behind.
    pub(super) fn keep_settings(self) {
        fn setting<T: serde::Serialize + PartialEq + Default + Send + Sync + 'static>(
            state: AppState,
            name: &'static str,
            value: impl Fn() -> T + 'static,
        ) {
            Effect::new(move |_| {
                let v = value();
                if !state.restored.get_untracked() {
                    return;
                }
                let json = (v != T::default())
                    .then(|| serde_json::to_string(&v).ok())
                    .flatten();
                state.write(async move { session::put_setting(name, json.as_deref()).await });
            });
        }
        let s = self;
        setting(s, TABLE_FILTER, move || s.table_filter.get());
        setting(s, TABLE_SORT, move || {
            Some(s.table_sort.get()).filter(|v| *v != (table::SortKey::Loaded, false))
        });
        setting(s, QUIZ_SCORE, move || s.quiz_score.get());
        setting(s, SELECTED, move || {
            s.selected
                .get()
                .and_then(|id| s.keys.with_value(|k| k.get(&id).cloned()))
        });
    }

    /// Put back the session stored by an earlier visit: the cells (thumbnail and results;
    /// the one on show is analysed again for its overlay), their edits, the table's filter
    /// and sort, and the quiz score. Cells added meanwhile stay, after the restored ones.
    pub(super) fn restore(self) {
        leptos::task::spawn_local(async move {
            let stored = match session::load().await {
                Ok(stored) => stored,
                Err(e) => {
                    self.session_note.set(Some(format!(
                        "This session is not kept across a reload: the browser's storage is unavailable ({e})."
                    )));
                    self.restored.set(true);
                    return;
                }
            };
            let setting = |name: &str| stored.settings.get(name);
            let shown_key = setting(SELECTED).and_then(|j| serde_json::from_str::<String>(j).ok());
            let mut cells = Vec::new();
            let mut edits = BTreeMap::new();
            let mut shown = None;
            for kept in stored.cells {
                let Ok(saved) = serde_json::from_str::<SavedReport>(&kept.report) else {
                    continue;
                };
                let id = self.next_id.get_value();
                self.next_id.set_value(id + 1);
                if let Some(e) = stored
                    .edits
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
                self.files.update_value(|f| {
                    f.insert(id, kept.file);
                });
                cells.push(restored_view(id, saved, object_url(&kept.thumb)));
            }
            let n = cells.len();
            if n > 0 {
                self.cells.update(|c| {
                    cells.append(c);
                    *c = cells;
                });
                self.edits.update(|e| e.extend(edits));
            }
            if let Some(f) =
                setting(TABLE_FILTER).and_then(|j| serde_json::from_str::<table::Filter>(j).ok())
            {
                self.table_filter.set(f);
            }
            if let Some(s) = setting(TABLE_SORT)
                .and_then(|j| serde_json::from_str::<Option<(table::SortKey, bool)>>(j).ok())
                .flatten()
            {
                self.table_sort.set(s);
            }
            if let Some(s) = setting(QUIZ_SCORE).and_then(|j| serde_json::from_str::<Score>(j).ok())
            {
                self.quiz_score.set(s);
            }
            self.restored.set(true);
            if n > 0 {
                self.session_note.set(Some(format!(
                    "{n} cell{} from your last visit restored from this browser's storage.",
                    if n == 1 { "" } else { "s" }
                )));
                if self.selected.get_untracked().is_none() {
                    let last = self.cells.with_untracked(|c| c.get(n - 1).map(|c| c.id));
                    if let Some(id) = shown.or(last) {
                        self.select(id);
                    }
                }
            }
        });
    }

    /// Remove every stored image and result, and start afresh: the cells, edits, refused
    /// files, table filter and quiz score go from the page and from the browser's storage.
    /// Answers still on their way are dropped.
    pub fn clear_session(self) {
        self.cancel();
        let in_flight: Vec<u32> = self
            .in_flight
            .with_untracked(|m| m.keys().copied().collect());
        self.forgotten.update_value(|f| f.extend(in_flight));
        self.in_flight.set(BTreeMap::new());
        self.batch.set(super::Batch::default());
        self.cells.update(|cells| {
            for c in cells.drain(..) {
                release(&c);
                let _ = web_sys::Url::revoke_object_url(&c.thumb_url);
            }
        });
        self.selected.set(None);
        self.follow_new.set(true);
        self.clear_cam();
        self.edits.set(BTreeMap::new());
        self.refused.set(Vec::new());
        self.error.set(None);
        self.files.update_value(BTreeMap::clear);
        self.keys.update_value(BTreeMap::clear);
        self.recent.update_value(|r| r.clear());
        self.requested_at.update_value(BTreeMap::clear);
        self.table_filter.set(table::Filter::default());
        self.table_sort.set((table::SortKey::Loaded, false));
        self.quiz_score.set(Score::default());
        leptos::task::spawn_local(async move {
            let note = match session::clear().await {
                Ok(n) => format!(
                    "Session cleared: {n} stored cell{} (images and results), the edits, the table's filter and the quiz score were removed from this browser.",
                    if n == 1 { "" } else { "s" }
                ),
                Err(e) => format!("The cells are gone from the page, but the browser's storage could not be emptied: {e}"),
            };
            self.session_note.set(Some(note));
        });
    }
}

/// A cell as it comes back from storage, as cell `id` of this page: thumbnail and results;
/// its crop and label map come when it is opened (analysed again).
fn restored_view(id: u32, saved: SavedReport, thumb_url: Option<String>) -> CellView {
    let report = CellReport { id, ..saved.report };
    CellView::from_report(
        report,
        String::new(),
        thumb_url.unwrap_or_default(),
        None,
        Vec::new(),
        saved.round_trip_ms,
        0.0,
    )
}
