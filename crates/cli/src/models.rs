//! The shipped model files: `models/<name>.bpk` (burnpack, f16 weights) and
//! `models/<name>.json` (the model card, which also carries the architecture).

use anyhow::{Context, Result};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use wbc_nets::predict::load_attribute_net;
use wbc_nets::{AttributeNet, AttributeNetConfig};

/// The model card written next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub description: String,
    pub config: AttributeNetConfig,
    pub input_size: usize,
    pub parameters: usize,
    pub flops_per_cell: u64,
    pub bytes: usize,
    pub weights_dtype: String,
    pub data: String,
    pub split: String,
    pub training: serde_json::Value,
    pub metrics: serde_json::Value,
    pub commands: serde_json::Value,
    pub commit: String,
    pub date: String,
}

/// `models/attribute_net` → (`.bpk`, `.json`).
pub fn paths(stem: &Path) -> (PathBuf, PathBuf) {
    (stem.with_extension("bpk"), stem.with_extension("json"))
}

pub fn read_card(stem: &Path) -> Result<ModelCard> {
    let (_, card) = paths(stem);
    let bytes = std::fs::read(&card).with_context(|| format!("reading {}", card.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", card.display()))
}

/// Load a shipped model (card + f16 weights).
pub fn load(stem: &Path, device: &Device) -> Result<(AttributeNet, ModelCard)> {
    let card = read_card(stem)?;
    let (bpk, _) = paths(stem);
    let bytes = std::fs::read(&bpk).with_context(|| format!("reading {}", bpk.display()))?;
    let net = load_attribute_net(&card.config, bytes, device)?;
    Ok((net, card))
}

/// The current commit, for the card.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Today's date (UTC), for the card.
pub fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
