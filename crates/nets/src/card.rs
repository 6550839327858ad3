//! The model card: one JSON file beside each shipped burnpack (`models/<name>.json`). It holds
//! the architecture (so the weights can be rebuilt), what the network was trained on, its
//! measured numbers and the commands that made them. One type for every network; `C` is the
//! network's config.

use crate::predict::LoadError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// SHA-256 of the burnpack (hex), checked before the weights are loaded: a truncated,
    /// altered or mismatched file is named as such instead of loading into nonsense.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
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

impl<C> ModelCard<C> {
    /// Check burnpack bytes against the card's size and SHA-256 (cards without a hash, from
    /// before hashes were recorded, check the size only).
    pub fn check_weights(&self, weights: &[u8]) -> Result<(), LoadError> {
        let named = |detail: String| {
            LoadError::Damaged(format!(
                "the weights of {} do not match its card ({detail}): the file is damaged, cut short or from another build",
                self.name
            ))
        };
        if weights.len() != self.bytes {
            return Err(named(format!(
                "{} bytes, the card says {}",
                weights.len(),
                self.bytes
            )));
        }
        match &self.weights_sha256 {
            Some(expected) if *expected != sha256_hex(weights) => {
                Err(named("SHA-256 differs".into()))
            }
            _ => Ok(()),
        }
    }
}

/// SHA-256 of bytes as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(bytes: &[u8]) -> ModelCard<()> {
        ModelCard {
            name: "seg_net".into(),
            description: String::new(),
            config: (),
            input_size: 112,
            parameters: 0,
            flops_per_cell: 0,
            bytes: bytes.len(),
            weights_sha256: Some(sha256_hex(bytes)),
            weights_dtype: "f16".into(),
            data: None,
            split: None,
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            commands: serde_json::Value::Null,
            commit: String::new(),
            date: String::new(),
        }
    }

    /// The weights the card describes pass; cut short or altered by one bit, they are named.
    #[test]
    fn damaged_weights_are_named() {
        let weights: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let c = card(&weights);
        assert!(c.check_weights(&weights).is_ok());
        let short = c.check_weights(&weights[..500]).unwrap_err().to_string();
        assert!(
            short.contains("seg_net") && short.contains("500 bytes"),
            "{short}"
        );
        let mut altered = weights.clone();
        altered[10] ^= 1;
        let altered = c.check_weights(&altered).unwrap_err().to_string();
        assert!(altered.contains("SHA-256"), "{altered}");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
