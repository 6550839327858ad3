//! What the page knows, in one room per concern. Each room is a small `Copy` handle of
//! signals with the methods that change them, provided through context on its own, so a
//! component takes the narrowest handle it needs (`expect_context::<Cells>()`):
//!
//! - [`Notices`]: the messages (fatal, latest error, refused files, engine and session notes);
//! - [`Engine`]: the worker's whole lifecycle (start, device hand-over, restart), the request
//!   queue and the files behind it, timing, and "where?" maps ([`Cam`]);
//! - [`Cells`]: the analysed cells, their edits and the one on show;
//! - [`Extras`]: the CBM and the reference index;
//! - [`Analyser`]: the table's rows, filter and sort, and a labels file;
//! - [`Adaptation`]: the user's own labels, the profile fitted on them and whether it is
//!   applied;
//! - [`Teaching`]: the view on show, the glossary's focus, the quiz score, presentation mode;
//! - [`StoredSession`]: the session kept in the browser's storage.
//!
//! Dependencies run one way: Notices ← Engine ← Cells ← Analyser ← Adaptation ←
//! StoredSession (Extras and Teaching beside). The worker's messages arrive in one place ([`dispatch`]).

mod adaptation;
mod analyser;
mod cells;
mod dispatch;
mod engine;
mod extras;
mod notices;
mod stored;
mod teaching;
mod web;

pub use adaptation::{Adaptation, AttributeLabels, FitTiming, Labelled, QuestionAnswer};
pub use analyser::{Analyser, TableEntry};
pub use cells::{CellView, Cells, Edits};
pub use engine::{Batch, Cam, CamView, EditedView, Engine, EngineInfo, Gpu, ShowMe};
pub use extras::Extras;
pub use notices::{Notices, Refusal};
pub use stored::StoredSession;
pub use teaching::{PageView, Teaching};
pub use web::{download, fetch_text};

use leptos::prelude::*;
use std::rc::Rc;

/// Every room of the page. Made once, by the app.
#[derive(Clone, Copy)]
pub struct Page {
    pub notices: Notices,
    pub engine: Engine,
    pub cells: Cells,
    pub extras: Extras,
    pub analyser: Analyser,
    pub adaptation: Adaptation,
    pub teaching: Teaching,
    pub stored: StoredSession,
}

impl Page {
    /// The rooms, each provided through context, with the worker started, the extras being
    /// fetched and the stored session being read back.
    pub fn start() -> Self {
        let notices = Notices::new();
        let engine = Engine::new(notices);
        let cells = Cells::new(engine);
        let extras = Extras::load(notices);
        let analyser = Analyser::new(cells, extras, notices);
        let adaptation = Adaptation::new(cells, analyser, engine, notices);
        let teaching = Teaching::new();
        let stored = StoredSession::start(cells, engine, analyser, adaptation, teaching, notices);
        let page = Self {
            notices,
            engine,
            cells,
            extras,
            analyser,
            adaptation,
            teaching,
            stored,
        };
        provide_context(notices);
        provide_context(engine);
        provide_context(engine.cam);
        provide_context(engine.show_me);
        provide_context(cells);
        provide_context(extras);
        provide_context(analyser);
        provide_context(adaptation);
        provide_context(teaching);
        provide_context(stored);
        engine.start(Rc::new(move |message, attachments| {
            page.receive(message, attachments)
        }));
        page
    }
}

/// Show cell `id` in the explorer (from the table, the glossary: back returns to them).
pub fn open_cell(cells: Cells, teaching: Teaching, id: u32) {
    cells.select(id);
    teaching.view.set(PageView::Explorer);
}
