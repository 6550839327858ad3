//! What the page tells the user: a fatal stop, the latest error, the session's refused files,
//! what happened to the analysis engine, and what became of the stored session.

use leptos::prelude::*;

/// A file the page or the worker refused, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub name: String,
    pub reason: String,
}

/// The page's messages. Every room that can fail holds this handle and says so here.
#[derive(Clone, Copy)]
pub struct Notices {
    /// The page cannot go on (no worker, no model): shown until a reload.
    pub fatal: RwSignal<Option<String>>,
    /// The latest message; the next good cell clears it.
    pub error: RwSignal<Option<String>>,
    /// Every file refused this session, with the reason: in a batch, a refusal must not be
    /// wiped by the next good cell (`error` shows only the latest message).
    pub refused: RwSignal<Vec<Refusal>>,
    /// What happened to the analysis engine this session (the GPU lost, the worker
    /// restarted): kept on show in the header, unlike `error`.
    pub engine_note: RwSignal<Option<String>>,
    /// What the page says about the stored session (restored, cleared, or why it is not kept).
    pub session_note: RwSignal<Option<String>>,
}

impl Notices {
    pub fn new() -> Self {
        Self {
            fatal: RwSignal::new(None),
            error: RwSignal::new(None),
            refused: RwSignal::new(Vec::new()),
            engine_note: RwSignal::new(None),
            session_note: RwSignal::new(None),
        }
    }

    /// Show `message` as the latest error.
    pub fn say(self, message: impl Into<String>) {
        self.error.set(Some(message.into()));
    }

    /// A file that will not become a cell: the message names it, and it joins the session's
    /// list of refused files.
    pub fn refuse(self, name: String, reason: String) {
        self.error.set(Some(format!("{name}: {reason}")));
        self.refused.update(|r| r.push(Refusal { name, reason }));
    }
}

impl Default for Notices {
    fn default() -> Self {
        Self::new()
    }
}
