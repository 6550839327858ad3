//! The model card: one JSON file beside each shipped burnpack (`models/<name>.json`). It holds
//! the architecture (so the weights can be rebuilt), what the network was trained on, its
//! measured numbers and the commands that made them. One type for every network; `C` is the
//! network's config.

use serde::{Deserialize, Serialize};

/// A model card.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard<C> {
    pub name: String,
    pub description: String,
    /// The architecture, as the network's config type.
    pub config: C,
    /// Side of the square network input (pixels).
    pub input_size: usize,
    pub parameters: usize,
    pub flops_per_cell: u64,
    /// Size of the burnpack (bytes).
    pub bytes: usize,
    pub weights_dtype: String,
    /// The data the network learned from, where the card says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The split its numbers come from, where the card says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    pub training: serde_json::Value,
    pub metrics: serde_json::Value,
    pub commands: serde_json::Value,
    /// The commit that produced the card; `-dirty` when the working tree had changes.
    pub commit: String,
    pub date: String,
}

impl<C: serde::de::DeserializeOwned> ModelCard<C> {
    /// Parse a card's JSON bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
