//! The WBC Explorer page (main thread). It holds no network: cells go to the inference worker
//! (`crates/worker`) as messages (`crates/messages`) and come back as numbers, a crop and a
//! label map, which the components draw.
//!
//! - [`state`]: what the page knows, in one room per concern (cells, engine, analyser, ...), and
//!   actions that change it;
//! - [`worker_client`]: starts the worker, holds requests until it is ready, posts and
//!   receives messages;
//! - [`components`]: one file per panel; each takes the narrowest room of [`state`] it needs;
//! - [`offline`]: the service worker that keeps the app usable with the network off.
#![forbid(unsafe_code)]

pub mod components;
pub mod offline;
pub mod session;
pub mod state;
pub mod worker_client;
