//! "Where?": the class-activation map the worker makes for one attribute value of one cell.
//! Only the latest request is shown; a late answer to an older one is dropped.

use super::Engine;
use leptos::prelude::*;
use std::sync::Arc;
use wbc_messages::ToWorker;

/// A class-activation map shown over a cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CamView {
    pub cell: u32,
    pub attribute: usize,
    pub value: usize,
    /// `side`² bytes, 0 = no evidence, 255 = the strongest.
    pub heat: Arc<Vec<u8>>,
    pub side: u32,
    pub ms: f64,
}

/// The activation map on show, and the one being computed.
#[derive(Clone, Copy)]
pub struct Cam {
    pub shown: RwSignal<Option<CamView>>,
    pub pending: RwSignal<Option<(u32, usize, usize)>>,
}

impl Cam {
    pub fn new() -> Self {
        Self {
            shown: RwSignal::new(None),
            pending: RwSignal::new(None),
        }
    }

    /// The worker's map for (cell, attribute, value), shown if it is the one asked for last.
    pub fn arrived(self, map: CamView) {
        if self.pending.get_untracked() == Some((map.cell, map.attribute, map.value)) {
            self.pending.set(None);
            self.shown.set(Some(map));
        }
    }

    /// Hide the activation map.
    pub fn clear(self) {
        self.shown.set(None);
        self.pending.set(None);
    }
}

impl Default for Cam {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// Ask the worker where the network looked for `value` of `attribute` on cell `id`. The
    /// cell's file goes along: the worker that answers may not be the one that analysed the
    /// cell (WebGPU took over from the CPU, or the worker was restarted), and then it makes
    /// the network input again from the file.
    pub fn explain(self, id: u32, attribute: usize, value: usize) {
        self.cam.pending.set(Some((id, attribute, value)));
        let file = self.file_of(id);
        let stain = self.requests.stain.get_untracked();
        wasm_bindgen_futures::spawn_local(async move {
            let mut attachments = Vec::new();
            if let Some(file) = file {
                if let Ok(buffer) = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await
                {
                    attachments.push(js_sys::Uint8Array::new(&buffer));
                }
            }
            let request = ToWorker::Explain {
                id,
                attribute,
                value,
                stain,
            };
            if !self.send(request, attachments) {
                self.cam.pending.set(None);
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
