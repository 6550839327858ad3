//! WBC Explorer in the browser. Two wasm binaries share this library:
//! - `wbc-explorer` (main thread): the Leptos UI in [`app`] and [`components`]; it never
//!   touches Burn, so it stays small and the page stays responsive;
//! - `worker` (a module Web Worker): [`engine`] picks WebGPU or the flex CPU backend, loads the
//!   models and analyses cells.
//!
//! They talk through the messages in [`protocol`].
#![forbid(unsafe_code)]

pub mod app;
pub mod components;
pub mod engine;
pub mod protocol;
