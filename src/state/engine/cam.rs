//! "Where?": asking the worker for the class-activation map of one attribute value of one
//! cell (what arrives goes to `maps.rs`).

use super::Engine;
use leptos::prelude::*;
use wbc_messages::ToWorker;

impl Engine {
    /// Ask the worker where the network looked for `value` of `attribute` on cell `id`. The
    /// cell's file goes along: the worker that answers may not be the one that analysed the
    /// cell (WebGPU took over from the CPU, or the worker was restarted), and then it makes
    /// the network input again from the file.
    pub fn explain(self, id: u32, attribute: usize, value: usize) {
        self.cam.pending.set(Some((id, attribute, value)));
        let stain = self.requests.stain.get_untracked();
        let request = ToWorker::Explain {
            id,
            attribute,
            value,
            stain,
        };
        self.send_with_file(id, request, move |engine| engine.cam.pending.set(None));
    }

    /// Send `request` about cell `id` with the cell's file attached (when the page still
    /// has it); `failed` runs when no worker is there to take it.
    pub(super) fn send_with_file(
        self,
        id: u32,
        request: ToWorker,
        failed: impl FnOnce(Engine) + 'static,
    ) {
        let file = self.file_of(id);
        wasm_bindgen_futures::spawn_local(async move {
            let mut attachments = Vec::new();
            if let Some(file) = file {
                if let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await
                {
                    attachments.push(js_sys::Uint8Array::new(&buffer));
                }
            }
            if !self.send(request, attachments) {
                failed(self);
                self.notices.say("the analysis worker is not running");
            }
        });
    }

    /// The worker could not make the map.
    pub fn explain_failed(self, reason: String) {
        self.cam.pending.set(None);
        self.notices
            .say(format!("the activation map could not be made: {reason}"));
    }
}
