//! The engine's requests: files taken in, queued, sent at most [`MAX_IN_FLIGHT`] at a time,
//! counted when answered, analysed again with another setting or by a new worker (the data
//! they live in is `queue.rs`).

use super::queue::{Batch, MAX_IN_FLIGHT};
use super::Engine;
use crate::state::web::page_ms;
use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use wbc_core::preprocess::MAX_FILE_BYTES;
use wbc_messages::ToWorker;
use web_sys::File;

impl Engine {
    /// Take files from any source (picker, drop, paste). A refused file shows a message and
    /// nothing else changes: cells already analysed stay.
    /// Returns each file's request id (the id its cell will have), `None` where refused.
    pub fn add_files(self, files: Vec<File>) -> Vec<Option<u32>> {
        let mut accepted = Vec::new();
        let mut ids = Vec::new();
        for file in files {
            let name = file.name();
            let size = file.size() as usize;
            if size > MAX_FILE_BYTES {
                self.notices.refuse(
                    name,
                    format!(
                        "the file is {} MB; images over {} MB are refused",
                        size / (1024 * 1024),
                        MAX_FILE_BYTES / (1024 * 1024)
                    ),
                );
                ids.push(None);
                continue;
            }
            let id = self.requests.new_id();
            ids.push(Some(id));
            self.requests.files.update_value(|f| {
                f.insert(id, file.clone());
            });
            accepted.push((id, file));
        }
        self.enqueue(accepted, false);
        ids
    }

    /// A cell put back from storage: its file is kept under a new id, which is returned.
    pub fn adopt(self, file: File) -> u32 {
        let id = self.requests.new_id();
        self.requests.files.update_value(|f| {
            f.insert(id, file);
        });
        self.requests.answered.update_value(|a| {
            a.insert(id);
        });
        id
    }

    /// The file behind cell (or request) `id`.
    pub fn file_of(self, id: u32) -> Option<File> {
        self.requests.files.with_value(|f| f.get(&id).cloned())
    }

    /// Whether request `id` is in the worker's hands.
    pub fn waiting(self, id: u32) -> bool {
        self.requests
            .in_flight
            .with_untracked(|m| m.contains_key(&id))
    }

    /// Analyse cell `id` again, ahead of any queue (a cell opened whose detail was let go).
    pub fn reanalyse(self, id: u32) {
        if let Some(file) = self.file_of(id) {
            self.enqueue(vec![(id, file)], true);
        }
    }

    /// Switch stain normalisation on or off and analyse every cell again with it.
    pub fn set_stain(self, on: bool) {
        self.requests.stain.set(Some(on));
        let files: Vec<(u32, File)> = self
            .requests
            .files
            .with_value(|f| f.iter().map(|(id, f)| (*id, f.clone())).collect());
        self.enqueue(files, false);
    }

    /// Request `id` became a cell: count it, let the next file in, and say how long it took
    /// (round trip, and when it arrived, on the page clock).
    pub fn answered(self, id: u32) -> (f64, f64) {
        self.healthy();
        self.finish(id);
        self.requests.answered.update_value(|a| {
            a.insert(id);
        });
        let answered_at_ms = page_ms();
        let round_trip_ms = self
            .requests
            .requested_at
            .try_update_value(|m| m.remove(&id))
            .flatten()
            .map_or(0.0, |t| answered_at_ms - t);
        (round_trip_ms, answered_at_ms)
    }

    /// Request `id` was refused by the worker: count it; a file that never became a cell is
    /// not kept for re-analysis.
    pub fn refused(self, id: u32) {
        self.finish(id);
        self.drop_file_unless_a_cell(id);
    }

    pub(super) fn drop_file_unless_a_cell(self, id: u32) {
        if !self.requests.answered.with_value(|a| a.contains(&id)) {
            self.requests.files.update_value(|f| {
                f.remove(&id);
            });
        }
    }

    /// Drop the files not sent yet; cells already analysed, and those in flight, stay.
    pub fn cancel(self) {
        let dropped: Vec<u32> = self
            .requests
            .queue
            .try_update_value(|q| q.drain(..).map(|(id, _)| id).collect())
            .unwrap_or_default();
        for &id in &dropped {
            self.drop_file_unless_a_cell(id);
        }
        self.requests
            .batch
            .update(|b| b.total = b.total.saturating_sub(dropped.len()));
    }

    /// Forget every request and file (the session is cleared): returns the ids that were in
    /// flight, whose answers are to be dropped.
    pub fn forget_all(self) -> Vec<u32> {
        self.cancel();
        let in_flight: Vec<u32> = self
            .requests
            .in_flight
            .with_untracked(|m| m.keys().copied().collect());
        self.requests.in_flight.set(BTreeMap::new());
        self.requests.batch.set(Batch::default());
        self.requests.files.update_value(BTreeMap::clear);
        self.requests.answered.update_value(BTreeSet::clear);
        self.requests.requested_at.update_value(BTreeMap::clear);
        in_flight
    }

    /// Request `id` is answered (or failed before reaching the worker): count it and let
    /// the next queued file in.
    pub(super) fn finish(self, id: u32) {
        self.settle(id);
        self.pump();
    }

    /// Count request `id` as answered, without sending the next.
    pub(super) fn settle(self, id: u32) {
        let mut was_in_flight = false;
        self.requests.in_flight.update(|m| {
            was_in_flight = m.remove(&id).is_some();
        });
        if was_in_flight {
            self.requests
                .batch
                .update(|b| b.done = (b.done + 1).min(b.total));
        }
    }

    /// Send queued files while fewer than [`MAX_IN_FLIGHT`] are in flight.
    pub(super) fn pump(self) {
        while self.requests.in_flight.with_untracked(|m| m.len()) < MAX_IN_FLIGHT {
            let Some((id, file)) = self
                .requests
                .queue
                .try_update_value(|q| q.pop_front())
                .flatten()
            else {
                break;
            };
            self.request(id, file);
        }
    }

    /// Queue files for analysis as cells `id` (ahead of the queue with `first`: a cell the
    /// user opened); a new batch starts when the last one is done.
    fn enqueue(self, files: Vec<(u32, File)>, first: bool) {
        if files.is_empty() {
            return;
        }
        let now = page_ms();
        self.requests.batch.update(|b| {
            if !b.running() {
                *b = Batch {
                    started_ms: now,
                    ..Batch::default()
                };
            }
            b.total += files.len();
        });
        self.requests.queue.update_value(|q| {
            if first {
                for f in files.into_iter().rev() {
                    q.push_front(f);
                }
            } else {
                q.extend(files)
            }
        });
        self.pump();
    }

    /// The requests the current worker had not answered go back to the front of the queue,
    /// for the next worker.
    pub(super) fn requeue_unanswered(self) {
        let unanswered: Vec<u32> = self
            .requests
            .in_flight
            .with_untracked(|m| m.keys().copied().collect());
        self.requests.in_flight.set(BTreeMap::new());
        let files: Vec<_> = self.requests.files.with_value(|f| {
            unanswered
                .iter()
                .filter_map(|id| f.get(id).map(|file| (*id, file.clone())))
                .collect()
        });
        self.requests.queue.update_value(|q| {
            for f in files.into_iter().rev() {
                q.push_front(f);
            }
        });
    }

    /// Read a file and ask the worker to analyse it as cell `id`.
    fn request(self, id: u32, file: File) {
        let name = file.name();
        self.requests.requested_at.update_value(|m| {
            m.insert(id, page_ms());
        });
        self.requests.in_flight.update(|m| {
            m.insert(id, name.clone());
        });
        let stain = self.requests.stain.get_untracked();
        wasm_bindgen_futures::spawn_local(async move {
            let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await else {
                self.finish(id);
                self.notices
                    .say(format!("{name}: the file could not be read"));
                return;
            };
            let bytes = js_sys::Uint8Array::new(&buffer);
            let request = ToWorker::Analyse {
                id,
                name: name.clone(),
                stain,
            };
            if !self.send(request, vec![bytes]) {
                self.finish(id);
                self.notices
                    .say(format!("{name}: the analysis worker is not running"));
            }
        });
    }
}
