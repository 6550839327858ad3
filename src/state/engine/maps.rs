//! The activation map on show and the one asked for ("where?"). Only the latest request is
//! shown; a late answer to an older one is dropped.

use leptos::prelude::*;
use std::sync::Arc;

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
