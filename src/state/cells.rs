//! The analysed cells: each cell's view (results, thumbnail, crop and label map while it is
//! on show or recent), the user's attribute edits, and which cell is on show. New files come
//! in here and go on to the engine; a cell whose detail was let go is analysed again when
//! opened.

use super::engine::Engine;
use super::web::{fetch_file, fetch_text};
use leptos::prelude::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use wbc_core::confidence::Familiarity;
use wbc_core::measured_type::MeasuredTypeAnswer;
use wbc_core::morphometry::Morphometry;
use wbc_core::CellPrediction;
use wbc_messages::{CellReport, FrontEndSummary};
use web_sys::File;

/// One analysed cell as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CellView {
    pub id: u32,
    pub name: String,
    /// Object URL of the cropped cell (PNG), in the image's own colours; empty while the
    /// cell holds no detail (see [`CellView::has_detail`]).
    pub image_url: String,
    /// Object URL of a small thumbnail (PNG), kept for every cell.
    pub thumb_url: String,
    /// Object URL of the square as the networks saw it (colours corrected), when it differs.
    pub normalised_url: Option<String>,
    /// What the front end did; `None` without a calibration card.
    pub front_end: Option<FrontEndSummary>,
    /// The familiarity check (as the profile leaves it); `None` without a calibration card.
    pub familiarity: Option<Familiarity>,
    /// The network's and the measured type's opinions on the type (the prediction's type is
    /// their joining); `None` without the measured-type card.
    pub measured_type: Option<MeasuredTypeAnswer>,
    /// How many times this cell has been analysed again (the stain toggle): its panel is
    /// rebuilt when this changes.
    pub revision: u32,
    /// The networks' probabilities; its cell type is the adapted one while a profile that
    /// adapts the type is applied (`state/adaptation.rs`).
    pub prediction: CellPrediction,
    /// The type and familiarity as the page answers them without a profile.
    pub shipped: Shipped,
    /// Pooled encoder features (L2-normalised), for counterfactual retrieval.
    pub features: Arc<Vec<f32>>,
    /// Label map, `SEGMENTATION_SIDE`² bytes.
    pub labels: Arc<Vec<u8>>,
    pub morphometry: Morphometry,
    pub timings: CellTimings,
}

/// A cell's type, attributes and familiarity as the page answers them without a profile (a
/// profile, while applied, changes them on the cell: `state/adaptation.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Shipped {
    pub cell_type: Vec<f32>,
    /// The attribute probabilities (a profile's attribute corrections change them on the
    /// cell while applied).
    pub attributes: Vec<Vec<f32>>,
    pub familiarity: Option<Familiarity>,
}

/// How long a cell took (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct CellTimings {
    pub preprocess_ms: f64,
    pub inference_ms: f64,
    pub segmentation_ms: f64,
    /// File chosen → answer back in the page: reading, both transfers and the worker.
    pub round_trip_ms: f64,
    /// Page open → this cell's answer arrived.
    pub answered_at_ms: f64,
}

/// Where a cell's pictures are (object URLs; empty or `None` where it has none).
pub struct Pictures {
    pub image_url: String,
    pub thumb_url: String,
    pub normalised_url: Option<String>,
    /// The label map.
    pub labels: Vec<u8>,
}

impl CellView {
    /// A cell from the worker's report; it holds its detail (crop and label map) when
    /// `pictures.image_url` is set (a cell restored from storage has only its thumbnail).
    /// `timing`: its round trip and when it arrived (ms).
    pub fn from_report(r: CellReport, pictures: Pictures, timing: (f64, f64)) -> Self {
        CellView {
            id: r.id,
            name: r.name,
            image_url: pictures.image_url,
            thumb_url: pictures.thumb_url,
            normalised_url: pictures.normalised_url,
            front_end: r.front_end,
            familiarity: r.familiarity.clone(),
            measured_type: r.measured_type,
            revision: 0,
            shipped: Shipped {
                cell_type: r.prediction.cell_type.clone(),
                attributes: r.prediction.attributes.clone(),
                familiarity: r.familiarity,
            },
            prediction: r.prediction,
            features: Arc::new(r.features),
            labels: Arc::new(pictures.labels),
            morphometry: r.morphometry,
            timings: CellTimings {
                preprocess_ms: r.preprocess_ms,
                inference_ms: r.inference_ms,
                segmentation_ms: r.segmentation_ms,
                round_trip_ms: timing.0,
                answered_at_ms: timing.1,
            },
        }
    }

    /// Whether the full crop and label map are held: only for the cell on show and the
    /// latest few, so memory stays flat in the number of cells (see [`KEEP_DETAIL`]).
    pub fn has_detail(&self) -> bool {
        !self.image_url.is_empty()
    }
}

/// The user's attribute edits for one cell: `Some(value index)` where edited.
pub type Edits = [Option<usize>; 11];

/// Cells besides the one on show that keep their full crop and label map; the others keep
/// a thumbnail and their results, and are analysed again when opened.
const KEEP_DETAIL: usize = 8;

#[derive(Clone, Copy)]
pub struct Cells {
    pub cells: RwSignal<Vec<CellView>>,
    pub selected: RwSignal<Option<u32>>,
    /// Attribute edits per cell; kept when the user looks at other cells.
    pub edits: RwSignal<BTreeMap<u32, Edits>>,
    /// Show the newly analysed cell (the first of a batch), until the user picks a cell
    /// themselves.
    follow_new: RwSignal<bool>,
    /// Cells in the order they were last answered, latest last (for [`KEEP_DETAIL`]).
    recent: StoredValue<VecDeque<u32>>,
    engine: Engine,
}

impl Cells {
    pub fn new(engine: Engine) -> Self {
        Self {
            cells: RwSignal::new(Vec::new()),
            selected: RwSignal::new(None),
            edits: RwSignal::new(BTreeMap::new()),
            follow_new: RwSignal::new(true),
            recent: StoredValue::new(VecDeque::new()),
            engine,
        }
    }

    /// Take files from any source (picker, drop, paste): the first new cell is put on show.
    /// Returns each file's cell id (`None` where it was refused).
    pub fn add_files(self, files: Vec<File>) -> Vec<Option<u32>> {
        self.follow_new.set(true);
        self.engine.add_files(files)
    }

    /// Load the built-in sample cells (`samples/index.json`) through the same path as the
    /// user's own files.
    pub fn load_samples(self) {
        let notices = self.engine.notices;
        wasm_bindgen_futures::spawn_local(async move {
            let Some(index) = fetch_text("samples/index.json").await else {
                notices.say("the sample cells are not part of this build");
                return;
            };
            let names: Vec<String> = match serde_json::from_str::<serde_json::Value>(&index) {
                Ok(v) => v["cells"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|n| n.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                Err(e) => {
                    notices.say(format!("samples/index.json could not be read: {e}"));
                    return;
                }
            };
            let mut files = Vec::new();
            for name in names {
                match fetch_file(&format!("samples/{name}"), &name).await {
                    Some(file) => files.push(file),
                    None => notices.say(format!("{name}: the sample cell could not be loaded")),
                }
            }
            self.add_files(files);
        });
    }

    /// A newly analysed cell (or one analysed again, which replaces itself where it stands;
    /// its edits stay). In a batch, only its first cell is put on show: the panel is rebuilt
    /// for the cell on show, and rebuilding it for every arriving cell kept the page busy (a
    /// 60-240 ms task each) and flickered too fast to read. The others arrive as thumbnails.
    pub fn add(self, view: CellView) {
        let id = view.id;
        self.cells
            .update(|cells| match cells.iter_mut().find(|c| c.id == id) {
                Some(old) => {
                    release(old);
                    let _ = web_sys::Url::revoke_object_url(&old.thumb_url);
                    *old = CellView {
                        revision: old.revision + 1,
                        ..view
                    };
                }
                None => cells.push(view),
            });
        let first_of_batch = self
            .engine
            .requests
            .batch
            .with_untracked(|b| b.total <= 1 || b.done <= 1);
        if (self.follow_new.get_untracked() && first_of_batch)
            || self.selected.get_untracked().is_none()
        {
            self.selected.set(Some(id));
        }
        self.engine.notices.error.set(None);
        self.recent.update_value(|r| {
            r.retain(|&x| x != id);
            r.push_back(id);
        });
        self.keep_detail_bounded();
    }

    /// Drop the crop and label map of cells that are neither on show nor among the latest
    /// [`KEEP_DETAIL`] answered.
    fn keep_detail_bounded(self) {
        let shown = self.selected.get_untracked();
        let drop: Vec<u32> = self
            .recent
            .try_update_value(|r| {
                let mut drop = Vec::new();
                while r.len() > KEEP_DETAIL {
                    drop.extend(r.pop_front());
                }
                drop
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|&id| Some(id) != shown)
            .collect();
        if drop.is_empty() {
            return;
        }
        // Untracked: the list and table read thumbnails and results, which stay.
        self.cells.update_untracked(|cells| {
            for c in cells
                .iter_mut()
                .filter(|c| drop.contains(&c.id) && c.has_detail())
            {
                release(c);
                c.image_url.clear();
                c.normalised_url = None;
                c.labels = Arc::new(Vec::new());
            }
        });
    }

    /// A cell by id, without tracking the cell list (a panel does not rebuild when other
    /// cells arrive).
    pub fn cell_untracked(self, id: u32) -> Option<CellView> {
        self.cells
            .with_untracked(|cells| cells.iter().find(|c| c.id == id).cloned())
    }

    /// Show cell `id`; the user chose it, so new cells no longer take over the view. A cell
    /// whose crop and label map were let go is analysed again first (ahead of any queue).
    pub fn select(self, id: u32) {
        self.follow_new.set(false);
        self.selected.set(Some(id));
        let lacks_detail = self
            .cells
            .with_untracked(|c| c.iter().any(|c| c.id == id && !c.has_detail()));
        if lacks_detail && !self.engine.waiting(id) {
            self.engine.reanalyse(id);
        }
    }

    /// Show the cell `step` places after (or before, when negative) the one on show, in the
    /// order they were loaded, wrapping around (presentation mode's next / previous).
    pub fn step_cell(self, step: isize) {
        let ids: Vec<u32> = self
            .cells
            .with_untracked(|c| c.iter().map(|c| c.id).collect());
        if ids.is_empty() {
            return;
        }
        let n = ids.len() as isize;
        let at = self
            .selected
            .get_untracked()
            .and_then(|s| ids.iter().position(|&id| id == s))
            .map_or(if step > 0 { -1 } else { 0 }, |i| i as isize);
        let next = (at + step).rem_euclid(n) as usize;
        self.select(ids[next]);
    }

    /// The edits of cell `id` (none edited when it has none).
    pub fn edits_of(self, id: u32) -> Edits {
        self.edits
            .with(|e| e.get(&id).copied().unwrap_or([None; 11]))
    }

    /// Set (or with `None` clear) the edit of attribute `k` on cell `id`.
    pub fn edit(self, id: u32, k: usize, value: Option<usize>) {
        self.edits.update(|all| {
            let e = all.entry(id).or_insert([None; 11]);
            e[k] = value;
            if e.iter().all(Option::is_none) {
                all.remove(&id);
            }
        });
    }

    /// Clear every edit of cell `id`.
    pub fn reset_edits(self, id: u32) {
        self.edits.update(|all| {
            all.remove(&id);
        });
    }

    /// Put cells and their edits back (from storage) before those loaded meanwhile.
    pub fn restore(self, mut restored: Vec<CellView>, edits: BTreeMap<u32, Edits>) {
        self.cells.update(|c| {
            restored.append(c);
            *c = restored;
        });
        self.edits.update(|e| e.extend(edits));
    }

    /// Remove every cell and edit, and let go of their pictures.
    pub fn clear(self) {
        self.cells.update(|cells| {
            for c in cells.drain(..) {
                release(&c);
                let _ = web_sys::Url::revoke_object_url(&c.thumb_url);
            }
        });
        self.selected.set(None);
        self.follow_new.set(true);
        self.edits.set(BTreeMap::new());
        self.recent.update_value(|r| r.clear());
    }
}

/// Let go of a cell's full crop (and its recoloured twin); the thumbnail stays.
fn release(cell: &CellView) {
    for url in [Some(&cell.image_url), cell.normalised_url.as_ref()]
        .into_iter()
        .flatten()
        .filter(|u| !u.is_empty())
    {
        let _ = web_sys::Url::revoke_object_url(url);
    }
}
