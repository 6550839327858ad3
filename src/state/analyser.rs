//! The analyser: the table's rows (every loaded cell with the CBM's type), its filter and
//! sort order, and a labels file loaded for the dataset view.

use super::cells::Cells;
use super::extras::Extras;
use super::notices::Notices;
use super::web::file_text;
use leptos::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use wbc_core::{audit, table};
use web_sys::File;

/// A cell as the analyser's table and dataset view see it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableEntry {
    pub id: u32,
    pub thumb_url: String,
    pub row: table::Row,
}

impl AsRef<table::Row> for TableEntry {
    fn as_ref(&self) -> &table::Row {
        &self.row
    }
}

/// The default sort: the order the cells were loaded in.
pub const LOADED_ORDER: (table::SortKey, bool) = (table::SortKey::Loaded, false);

#[derive(Clone, Copy)]
pub struct Analyser {
    /// The table's filter and sort order (kept while the user looks at a cell).
    pub filter: RwSignal<table::Filter>,
    pub sort: RwSignal<(table::SortKey, bool)>,
    /// A labels file the user loaded for the dataset view: its name and the labels by file
    /// name.
    pub labels: RwSignal<Option<(String, Arc<BTreeMap<String, audit::Labels>>)>>,
    cells: Cells,
    extras: Extras,
    notices: Notices,
}

impl Analyser {
    pub fn new(cells: Cells, extras: Extras, notices: Notices) -> Self {
        Self {
            filter: RwSignal::new(table::Filter::default()),
            sort: RwSignal::new(LOADED_ORDER),
            labels: RwSignal::new(None),
            cells,
            extras,
            notices,
        }
    }

    /// The table's rows: every loaded cell, with the CBM's type when a CBM is loaded.
    pub fn rows(self) -> Vec<TableEntry> {
        let cbm = self.extras.cbm.get();
        self.cells.cells.with(|cells| {
            cells
                .iter()
                .map(|c| TableEntry {
                    id: c.id,
                    thumb_url: c.thumb_url.clone(),
                    row: table::Row::new(
                        c.name.clone(),
                        c.prediction.clone(),
                        cbm.as_ref(),
                        Some(c.morphometry.clone()),
                        c.familiarity.as_ref(),
                    ),
                })
                .collect()
        })
    }

    /// Read a labels CSV for the dataset view; a bad file leaves the loaded labels as
    /// they were and says what is wrong.
    pub fn load_labels(self, file: File) {
        let name = file.name();
        wasm_bindgen_futures::spawn_local(async move {
            let Some(text) = file_text(&file).await else {
                self.notices
                    .say(format!("{name}: the file could not be read"));
                return;
            };
            match audit::parse_labels(&text) {
                Ok(labels) => self.labels.set(Some((name, Arc::new(labels)))),
                Err(e) => self.notices.say(format!("{name}: {e}")),
            }
        });
    }

    /// Back to no filter and the loaded order.
    pub fn reset(self) {
        self.filter.set(table::Filter::default());
        self.sort.set(LOADED_ORDER);
    }
}
