//! Scoring predictions against WBCAtt labels the paper's way: per attribute accuracy and macro
//! precision/recall/F1, their mean over the 11 attributes, per-value scores and confusion
//! matrices, and cell-type accuracy and macro-F1.

use crate::cache::PixelCache;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use wbc_core::dataset::LabelledCell;
use wbc_core::metrics::{argmax, ClassScores, Confusion};
use wbc_core::{preprocess, ATTRIBUTES, CELL_TYPES};
use wbc_nets::predict::predict;
use wbc_nets::{AttributeNet, CellPrediction};

/// Run the network over every cell of a cache (no augmentation), in batches.
pub fn predict_cache(
    net: &AttributeNet,
    cache: &PixelCache,
    device: &burn::tensor::Device,
) -> Result<Vec<CellPrediction>> {
    let mut out = Vec::with_capacity(cache.len());
    let idx: Vec<usize> = (0..cache.len()).collect();
    for chunk in idx.chunks(128) {
        let inputs: Vec<Vec<f32>> = chunk
            .iter()
            .map(|&i| preprocess::normalize(cache.cell(i), cache.size))
            .collect();
        out.extend(predict(net, &inputs, cache.size, device)?);
    }
    Ok(out)
}

/// As [`predict_cache`], averaging each cell's 8 symmetric views (test-time augmentation).
pub fn predict_cache_tta(
    net: &AttributeNet,
    cache: &PixelCache,
    device: &burn::tensor::Device,
) -> Result<Vec<CellPrediction>> {
    let mut out = Vec::with_capacity(cache.len());
    for i in 0..cache.len() {
        let inputs: Vec<Vec<f32>> = (0..8)
            .map(|k| {
                preprocess::normalize(
                    &preprocess::dihedral(cache.cell(i), cache.size, k),
                    cache.size,
                )
            })
            .collect();
        out.push(CellPrediction::average(&predict(
            net, &inputs, cache.size, device,
        )?));
    }
    Ok(out)
}

/// Scores of one attribute (or of the cell type).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupScores {
    pub accuracy: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub macro_f1: f64,
    /// Per value, keyed by the CSV spelling.
    pub per_value: BTreeMap<String, ClassScores>,
    /// Value names in matrix order.
    pub values: Vec<String>,
    /// `confusion[truth][prediction]`.
    pub confusion: Vec<Vec<u64>>,
}

impl GroupScores {
    fn from_confusion(c: &Confusion, values: &[&str]) -> Self {
        let (p, r, f) = c.macro_scores();
        let per = c.per_class();
        Self {
            accuracy: c.accuracy(),
            macro_precision: p,
            macro_recall: r,
            macro_f1: f,
            per_value: values
                .iter()
                .zip(per)
                .map(|(v, s)| (v.to_string(), s))
                .collect(),
            values: values.iter().map(|v| v.to_string()).collect(),
            confusion: c.counts.clone(),
        }
    }
}

/// Everything reported for one split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitScores {
    pub cells: usize,
    pub mean_attribute_macro_f1: f64,
    pub mean_attribute_accuracy: f64,
    pub attributes: BTreeMap<String, GroupScores>,
    pub cell_type_accuracy: f64,
    pub cell_type_macro_f1: f64,
    pub cell_type: GroupScores,
}

/// Score label-index predictions: `predicted[i]` holds 11 attribute indices and a cell type.
pub fn score_indices(truth: &[LabelledCell], predicted: &[([usize; 11], usize)]) -> SplitScores {
    let mut confusions: Vec<Confusion> = ATTRIBUTES
        .iter()
        .map(|a| Confusion::new(a.values.len()))
        .collect();
    let mut types = Confusion::new(CELL_TYPES.len());
    for (t, (attrs, ct)) in truth.iter().zip(predicted) {
        for k in 0..11 {
            confusions[k].add(t.attributes[k], attrs[k]);
        }
        types.add(t.cell_type, *ct);
    }
    let attributes: BTreeMap<String, GroupScores> = ATTRIBUTES
        .iter()
        .zip(&confusions)
        .map(|(a, c)| (a.name.to_string(), GroupScores::from_confusion(c, a.values)))
        .collect();
    let mean = |f: fn(&GroupScores) -> f64| {
        attributes.values().map(f).sum::<f64>() / attributes.len() as f64
    };
    let cell_type = GroupScores::from_confusion(&types, &CELL_TYPES);
    SplitScores {
        cells: truth.len(),
        mean_attribute_macro_f1: mean(|g| g.macro_f1),
        mean_attribute_accuracy: mean(|g| g.accuracy),
        attributes,
        cell_type_accuracy: cell_type.accuracy,
        cell_type_macro_f1: cell_type.macro_f1,
        cell_type,
    }
}

/// The most probable value of every group.
pub fn decisions(p: &CellPrediction) -> ([usize; 11], usize) {
    let mut attrs = [0; 11];
    for (k, probs) in p.attributes.iter().enumerate() {
        attrs[k] = argmax(probs);
    }
    (attrs, argmax(&p.cell_type))
}

pub fn score(truth: &[LabelledCell], preds: &[CellPrediction]) -> SplitScores {
    let decided: Vec<_> = preds.iter().map(decisions).collect();
    score_indices(truth, &decided)
}
