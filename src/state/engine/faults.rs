//! When the worker dies: a panic in its wasm, or the WebGPU device lost under it. A new worker
//! takes over the requests that were not answered; the cell that crashed the worker is
//! reported as failed, and after a lost device the rest runs on the CPU. Nothing analysed is
//! lost: the cells, files and edits live on the page, not in the worker.

use super::device::Gpu;
use super::Engine;
use leptos::prelude::*;
use std::collections::BTreeMap;

impl Engine {
    /// The worker stopped (panicked, with the cell it was on when known, or failed in a way
    /// it could not report). A crash right after a restart, before any cell was answered,
    /// stops the page (a worker that cannot start would otherwise restart forever).
    pub fn worker_stopped(self, crashed: Option<u32>, reason: String) {
        let crashes = self.crashes_in_a_row.get_value() + 1;
        self.crashes_in_a_row.set_value(crashes);
        if crashes > 1 {
            self.terminate_worker();
            self.notices.fatal.set(Some(format!(
                "the analysis worker stopped again right after a restart ({reason}); reload the page to try again"
            )));
            self.requests.in_flight.set(BTreeMap::new());
            return;
        }
        if let Some(id) = crashed {
            let name = self
                .requests
                .in_flight
                .with_untracked(|m| m.get(&id).cloned());
            self.settle(id);
            self.drop_file_unless_a_cell(id);
            if let Some(name) = name {
                self.notices.refuse(
                    name,
                    format!("the analysis stopped on this file ({reason}); it was skipped, the worker restarted and the rest goes on"),
                );
            }
        }
        self.notices.engine_note.set(Some(format!(
            "The analysis worker stopped ({reason}) and was restarted; the files it had not answered are analysed again."
        )));
        self.restart_worker();
    }

    /// The WebGPU device was lost: go on on the CPU.
    pub fn device_lost(self, reason: String) {
        if self.device.force_cpu.get_value() {
            return;
        }
        let note =
            format!("the WebGPU device was lost ({reason}); the analysis goes on on the CPU");
        self.notices.engine_note.set(Some(format!(
            "The WebGPU device was lost ({reason}); the analysis goes on on the CPU, with the same results."
        )));
        self.device.force_cpu.set_value(true);
        self.device.gpu.set(Gpu::Off);
        self.device.cpu_reason.set_value(Some(note));
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
        self.info.set(None);
        self.cam.pending.set(None);
        self.requeue_unanswered();
        self.start_worker();
        self.pump();
    }
}
