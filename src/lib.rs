//! The WBC Explorer page (main thread). It holds no network: cells go to the inference worker
//! (`crates/worker`) as messages (`crates/messages`) and come back as numbers, a crop and a
//! label map, which the components draw.
//!
//! - [`state`]: what the page knows (cells, edits, selection, the worker's report) and the
//!   actions that change it;
//! - [`worker_client`]: starts the worker, holds requests until it is ready, posts and
//!   receives messages;
//! - [`components`]: one file per panel; they read and act on [`state::AppState`] only;
//! - [`offline`]: the service worker that keeps the app usable with the network off.
#![forbid(unsafe_code)]

pub mod components;
pub mod offline;
pub mod session;
pub mod state;
pub mod worker_client;
