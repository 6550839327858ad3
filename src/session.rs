//! The session kept in the tab's own storage (IndexedDB), so a reload does not lose it: each
//! analysed cell (its file, thumbnail and results), the attribute edits, the table's filter and
//! sort, and the quiz score. Nothing here leaves the browser; "clear session" empties it all.
//!
//! Three object stores, keyed by strings: `cells` (one record per cell: the file, the
//! thumbnail and the results as JSON), `edits` (JSON per cell key) and `settings` (JSON per
//! name). A cell's key is made when it is first analysed and stays with it across reloads;
//! the page's cell ids are per page load.

use std::cell::RefCell;
use std::collections::BTreeMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, File, IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

const DATABASE: &str = "wbc-explorer-session";
const VERSION: u32 = 1;
pub const CELLS: &str = "cells";
pub const EDITS: &str = "edits";
pub const SETTINGS: &str = "settings";
const STORES: [&str; 3] = [CELLS, EDITS, SETTINGS];

/// Settings' names.
pub const TABLE_FILTER: &str = "table-filter";
pub const TABLE_SORT: &str = "table-sort";
pub const QUIZ_SCORE: &str = "quiz-score";
pub const SELECTED: &str = "selected";
/// The user's own labels, by cell key.
pub const USER_LABELS: &str = "user-labels";
/// The attribute values the user gave, by cell key.
pub const USER_ATTRIBUTES: &str = "user-attributes";
/// The profile fitted or imported, and whether it is applied.
pub const PROFILE: &str = "profile";

thread_local! {
    /// The open database (opened once per page).
    static OPEN: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// One stored cell.
pub struct StoredCell {
    pub key: String,
    /// The user's file, kept so the cell can be analysed again (its overlay, the stain toggle).
    pub file: File,
    pub thumb: Blob,
    /// The worker's report as JSON (see `state::SavedReport`).
    pub report: String,
}

/// Everything stored, as read back on a reload.
#[derive(Default)]
pub struct Stored {
    /// In the order the cells were first analysed.
    pub cells: Vec<StoredCell>,
    pub edits: BTreeMap<String, String>,
    pub settings: BTreeMap<String, String>,
}

fn describe(e: JsValue) -> String {
    e.dyn_ref::<web_sys::DomException>()
        .map(|d| format!("{}: {}", d.name(), d.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// A promise settled by `target`'s success (or completion) and error (or abort) handlers.
async fn settled(
    set: impl FnOnce(&js_sys::Function, &js_sys::Function),
) -> Result<JsValue, String> {
    let mut set = Some(set);
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        if let Some(set) = set.take() {
            set(&resolve, &reject)
        }
    });
    JsFuture::from(promise).await.map_err(describe)
}

/// The result of a request, once it succeeds.
async fn answer(request: &IdbRequest) -> Result<JsValue, String> {
    let r = request.clone();
    settled(|resolve, reject| {
        let ok = Closure::once_into_js({
            let (r, resolve) = (r.clone(), resolve.clone());
            move || {
                let _ = resolve.call1(&JsValue::NULL, &r.result().unwrap_or(JsValue::UNDEFINED));
            }
        });
        let failed = Closure::once_into_js({
            let (r, reject) = (r.clone(), reject.clone());
            move || {
                let error = r
                    .error()
                    .ok()
                    .flatten()
                    .map_or(JsValue::UNDEFINED, Into::into);
                let _ = reject.call1(&JsValue::NULL, &error);
            }
        });
        r.set_onsuccess(Some(ok.unchecked_ref()));
        r.set_onerror(Some(failed.unchecked_ref()));
    })
    .await
}

/// Wait until a transaction has committed (a write is on disk, or has failed: storage full).
async fn committed(tx: &IdbTransaction) -> Result<(), String> {
    let t = tx.clone();
    settled(|resolve, reject| {
        let ok = Closure::once_into_js({
            let resolve = resolve.clone();
            move || {
                let _ = resolve.call0(&JsValue::NULL);
            }
        });
        let failed = {
            let (t, reject) = (t.clone(), reject.clone());
            Closure::<dyn FnMut()>::new(move || {
                let error = t.error().map_or(JsValue::UNDEFINED, Into::into);
                let _ = reject.call1(&JsValue::NULL, &error);
            })
            .into_js_value()
        };
        t.set_oncomplete(Some(ok.unchecked_ref()));
        t.set_onerror(Some(failed.unchecked_ref()));
        t.set_onabort(Some(failed.unchecked_ref()));
    })
    .await
    .map(|_| ())
}

async fn database() -> Result<IdbDatabase, String> {
    if let Some(db) = OPEN.with(|o| o.borrow().clone()) {
        return Ok(db);
    }
    let factory = web_sys::window()
        .ok_or("no window")?
        .indexed_db()
        .map_err(describe)?
        .ok_or("this browser keeps no IndexedDB (a private window?)")?;
    let request = factory.open_with_u32(DATABASE, VERSION).map_err(describe)?;
    let upgrade = Closure::once_into_js({
        let request = request.clone();
        move || {
            if let Ok(db) = request.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
                for store in STORES {
                    if !db.object_store_names().contains(store) {
                        let _ = db.create_object_store(store);
                    }
                }
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let db: IdbDatabase = answer(&request)
        .await?
        .dyn_into()
        .map_err(|_| "IndexedDB did not open".to_string())?;
    OPEN.with(|o| *o.borrow_mut() = Some(db.clone()));
    Ok(db)
}

fn transaction(db: &IdbDatabase, stores: &[&str], write: bool) -> Result<IdbTransaction, String> {
    let names = stores
        .iter()
        .map(|s| JsValue::from_str(s))
        .collect::<js_sys::Array>();
    let mode = if write {
        IdbTransactionMode::Readwrite
    } else {
        IdbTransactionMode::Readonly
    };
    db.transaction_with_str_sequence_and_mode(&names, mode)
        .map_err(describe)
}

/// Put `value` under `key` in `store`, or delete the key when `value` is `None`.
async fn put(store: &str, key: &str, value: Option<&JsValue>) -> Result<(), String> {
    let db = database().await?;
    let tx = transaction(&db, &[store], true)?;
    let s = tx.object_store(store).map_err(describe)?;
    let key = JsValue::from_str(key);
    match value {
        Some(v) => s.put_with_key(v, &key).map(|_| ()),
        None => s.delete(&key).map(|_| ()),
    }
    .map_err(describe)?;
    committed(&tx).await
}

/// Keep a cell (a cell analysed again replaces its record).
pub async fn put_cell(key: &str, file: &File, thumb: &Blob, report: &str) -> Result<(), String> {
    let record = js_sys::Object::new();
    for (name, value) in [
        ("file", JsValue::from(file)),
        ("thumb", JsValue::from(thumb)),
        ("report", JsValue::from_str(report)),
    ] {
        js_sys::Reflect::set(&record, &JsValue::from_str(name), &value).map_err(describe)?;
    }
    put(CELLS, key, Some(&record)).await
}

/// Keep a cell's edits as JSON (`None`: it has none).
pub async fn put_edits(key: &str, json: Option<&str>) -> Result<(), String> {
    put(EDITS, key, json.map(JsValue::from_str).as_ref()).await
}

/// Keep a setting as JSON (`None`: forget it).
pub async fn put_setting(name: &str, json: Option<&str>) -> Result<(), String> {
    put(SETTINGS, name, json.map(JsValue::from_str).as_ref()).await
}

/// Keys and values of a store, in key order. Both requests are made before either is awaited,
/// so the transaction cannot close in between.
fn everything(tx: &IdbTransaction, store: &str) -> Result<[IdbRequest; 2], String> {
    let s = tx.object_store(store).map_err(describe)?;
    Ok([
        s.get_all_keys().map_err(describe)?,
        s.get_all().map_err(describe)?,
    ])
}

async fn pairs([keys, values]: [IdbRequest; 2]) -> Result<Vec<(String, JsValue)>, String> {
    let keys: js_sys::Array = answer(&keys)
        .await?
        .dyn_into()
        .map_err(|_| "unreadable keys".to_string())?;
    let values: js_sys::Array = answer(&values)
        .await?
        .dyn_into()
        .map_err(|_| "unreadable values".to_string())?;
    Ok(keys
        .iter()
        .zip(values.iter())
        .filter_map(|(k, v)| Some((k.as_string()?, v)))
        .collect())
}

/// Read back everything kept. A record that does not read (written by another version) is
/// skipped, not fatal.
pub async fn load() -> Result<Stored, String> {
    let db = database().await?;
    let tx = transaction(&db, &STORES, false)?;
    let [cells, edits, settings] = [
        everything(&tx, CELLS)?,
        everything(&tx, EDITS)?,
        everything(&tx, SETTINGS)?,
    ];
    let field = |v: &JsValue, name: &str| js_sys::Reflect::get(v, &JsValue::from_str(name)).ok();
    let cells = pairs(cells)
        .await?
        .into_iter()
        .filter_map(|(key, v)| {
            Some(StoredCell {
                file: field(&v, "file")?.dyn_into().ok()?,
                thumb: field(&v, "thumb")?.dyn_into().ok()?,
                report: field(&v, "report")?.as_string()?,
                key,
            })
        })
        .collect();
    let strings = |pairs: Vec<(String, JsValue)>| {
        pairs
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_string()?)))
            .collect()
    };
    Ok(Stored {
        cells,
        edits: strings(pairs(edits).await?),
        settings: strings(pairs(settings).await?),
    })
}

/// Remove every stored image, result, edit and setting; returns how many cells were kept.
pub async fn clear() -> Result<u32, String> {
    let db = database().await?;
    let tx = transaction(&db, &STORES, true)?;
    let count = tx
        .object_store(CELLS)
        .and_then(|s| s.count())
        .map_err(describe)?;
    for store in STORES {
        tx.object_store(store)
            .and_then(|s| s.clear())
            .map_err(describe)?;
    }
    let count = answer(&count).await?.as_f64().unwrap_or(0.0) as u32;
    committed(&tx).await?;
    Ok(count)
}
