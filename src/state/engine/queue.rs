//! The requests' data: files waiting for a place in flight, those in the worker's hands, when
//! each was asked, the batch they belong to, the file behind every cell, and the stain
//! setting they are analysed with. What the engine does with them is in `requests.rs`.

use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use web_sys::File;

/// Requests in the worker's hands at once: enough to keep it busy, few enough that a large
/// folder is not read into memory all at once and a cancel takes effect quickly.
pub(super) const MAX_IN_FLIGHT: usize = 4;

/// Progress of the files taken in since the page last went idle.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Batch {
    /// Files taken in (queued, in flight or answered).
    pub total: usize,
    /// Files answered (a cell or a refusal).
    pub done: usize,
    /// Page clock when the batch began (ms).
    pub started_ms: f64,
}

impl Batch {
    pub fn running(&self) -> bool {
        self.done < self.total
    }

    /// Cells per second so far, and seconds left at that rate.
    pub fn rate(&self, now_ms: f64) -> Option<(f64, f64)> {
        let seconds = (now_ms - self.started_ms) / 1e3;
        (self.done > 0 && seconds > 0.0).then(|| {
            let rate = self.done as f64 / seconds;
            (rate, (self.total - self.done) as f64 / rate)
        })
    }
}

#[derive(Clone, Copy)]
pub struct Requests {
    /// Requests sent to the worker and not answered yet: id → file name.
    pub in_flight: RwSignal<BTreeMap<u32, String>>,
    pub batch: RwSignal<Batch>,
    /// Whether the front end normalises the stain (the user's toggle). `None` until the
    /// worker says the calibration card's default (requests sent before then let the worker
    /// follow the card) or the user sets it.
    pub stain: RwSignal<Option<bool>>,
    /// Files waiting for a place in flight (see [`MAX_IN_FLIGHT`]).
    pub(super) queue: StoredValue<VecDeque<(u32, File)>, LocalStorage>,
    /// When each request was made (page clock, ms), for the round-trip time.
    pub(super) requested_at: StoredValue<BTreeMap<u32, f64>>,
    /// The files of the cells and of the requests not answered yet.
    pub(super) files: StoredValue<BTreeMap<u32, File>, LocalStorage>,
    /// The ids that became cells (their files are kept when a later request fails).
    pub(super) answered: StoredValue<BTreeSet<u32>>,
    pub(super) next_id: StoredValue<u32>,
}

impl Requests {
    pub fn new() -> Self {
        Self {
            in_flight: RwSignal::new(BTreeMap::new()),
            batch: RwSignal::new(Batch::default()),
            stain: RwSignal::new(None),
            queue: StoredValue::new_local(VecDeque::new()),
            requested_at: StoredValue::new(BTreeMap::new()),
            files: StoredValue::new_local(BTreeMap::new()),
            answered: StoredValue::new(BTreeSet::new()),
            next_id: StoredValue::new(1),
        }
    }

    pub(super) fn new_id(self) -> u32 {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        id
    }
}

impl Default for Requests {
    fn default() -> Self {
        Self::new()
    }
}
