//! When the worker dies: a panic in its wasm, or the WebGPU device lost under it. A new worker
//! takes over the requests that were not answered; the cell that crashed the worker is
//! reported as failed, and after a lost device the rest runs on the CPU. Nothing analysed is
//! lost: the cells, files and edits live on the page, not in the worker.

use super::AppState;
use leptos::prelude::*;
use std::collections::BTreeMap;

impl AppState {
    /// The worker stopped (panicked, with the cell it was on when known, or failed in a way
    /// it could not report). A crash right after a restart, before any cell was answered,
    /// stops the page (a worker that cannot start would otherwise restart forever).
    pub(super) fn worker_stopped(self, crashed: Option<u32>, reason: String) {
        let crashes = self.crashes_in_a_row.get_value() + 1;
        self.crashes_in_a_row.set_value(crashes);
        if crashes > 1 {
            self.terminate_worker();
            self.fatal.set(Some(format!(
                "the analysis worker stopped again right after a restart ({reason}); reload the page to try again"
            )));
            self.in_flight.set(BTreeMap::new());
            return;
        }
        if let Some(id) = crashed {
            let name = self.in_flight.with_untracked(|m| m.get(&id).cloned());
            self.settle(id);
            if self.cell_untracked(id).is_none() {
                self.files.update_value(|f| {
                    f.remove(&id);
                });
            }
            if let Some(name) = name {
                self.refuse(
                    name,
                    format!("the analysis stopped on this file ({reason}); it was skipped, the worker restarted and the rest goes on"),
                );
            }
        }
        self.engine_note.set(Some(format!(
            "The analysis worker stopped ({reason}) and was restarted; the files it had not answered are analysed again."
        )));
        self.restart_worker();
    }

    /// The WebGPU device was lost: go on on the CPU.
    pub(super) fn device_lost(self, reason: String) {
        if self.force_cpu.get_value() {
            return;
        }
        let note =
            format!("the WebGPU device was lost ({reason}); the analysis goes on on the CPU");
        self.engine_note.set(Some(format!(
            "The WebGPU device was lost ({reason}); the analysis goes on on the CPU, with the same results."
        )));
        self.force_cpu.set_value(true);
        self.gpu.set(super::Gpu::Off);
        self.cpu_reason.set_value(Some(note));
        self.restart_worker();
    }

    pub(super) fn terminate_worker(self) {
        self.current_id.set_value(0);
        self.client.update_value(|c| {
            if let Some(c) = c.take() {
                c.terminate();
            }
        });
    }

    /// Replace the worker: the requests it had not answered go first to the new one (which
    /// holds them until its models are loaded).
    fn restart_worker(self) {
        self.terminate_worker();
        self.engine.set(None);
        self.cam_pending.set(None);
        self.requeue_unanswered();
        self.start_worker();
        self.pump();
    }

    /// The requests the current worker had not answered go back to the front of the queue,
    /// for the next worker.
    pub(super) fn requeue_unanswered(self) {
        let unanswered: Vec<u32> = self
            .in_flight
            .with_untracked(|m| m.keys().copied().collect());
        self.in_flight.set(BTreeMap::new());
        let files: Vec<_> = self.files.with_value(|f| {
            unanswered
                .iter()
                .filter_map(|id| f.get(id).map(|file| (*id, file.clone())))
                .collect()
        });
        self.queue.update_value(|q| {
            for f in files.into_iter().rev() {
                q.push_front(f);
            }
        });
    }
}
