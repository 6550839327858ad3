//! The paper's scores: predictions against WBCAtt labels, per attribute accuracy and macro
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

/// Logit adjustment (Menon et al., ICLR 2021): adding −τ·ln(prior) to an attribute's logits
/// trades a little accuracy on common values for recall on rare ones, which macro-F1 rewards.
/// τ is chosen per attribute on val; the cell type is left alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogitAdjustment {
    /// τ per attribute.
    pub tau: BTreeMap<String, f64>,
    /// One offset per head logit (zeros for the cell type), to add to the head's bias.
    pub offsets: Vec<f32>,
    pub val_mean_attribute_macro_f1_before: f64,
    pub val_mean_attribute_macro_f1_after: f64,
}

/// The τ grid searched on val.
pub const TAU_GRID: [f64; 9] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0];

pub fn choose_logit_adjustment(
    train: &[LabelledCell],
    val: &[LabelledCell],
    val_preds: &[CellPrediction],
) -> LogitAdjustment {
    let mut tau = BTreeMap::new();
    let mut offsets = Vec::new();
    let (mut before, mut after) = (0.0, 0.0);
    for (k, a) in ATTRIBUTES.iter().enumerate() {
        let n = a.values.len();
        // Add-one smoothed training prior, so an unseen value does not get an infinite boost.
        let mut counts = vec![1.0f64; n];
        for c in train {
            counts[c.attributes[k]] += 1.0;
        }
        let total: f64 = counts.iter().sum();
        let log_prior: Vec<f64> = counts.iter().map(|c| (c / total).ln()).collect();
        let f1_at = |t: f64| {
            let mut conf = Confusion::new(n);
            for (cell, p) in val.iter().zip(val_preds) {
                let adjusted: Vec<f32> = p.attributes[k]
                    .iter()
                    .zip(&log_prior)
                    .map(|(&q, &lp)| ((q.max(1e-12) as f64).ln() - t * lp) as f32)
                    .collect();
                conf.add(cell.attributes[k], argmax(&adjusted));
            }
            conf.macro_f1()
        };
        let scored: Vec<(f64, f64)> = TAU_GRID.iter().map(|&t| (t, f1_at(t))).collect();
        // The best val macro-F1; the smaller τ on ties.
        let (best_t, best_f1) =
            scored.iter().copied().fold(
                (0.0, f64::MIN),
                |acc, x| if x.1 > acc.1 + 1e-9 { x } else { acc },
            );
        before += scored[0].1;
        after += best_f1;
        tau.insert(a.name.to_string(), best_t);
        offsets.extend(log_prior.iter().map(|lp| (-best_t * lp) as f32));
    }
    offsets.extend(std::iter::repeat_n(0.0, CELL_TYPES.len()));
    LogitAdjustment {
        tau,
        offsets,
        val_mean_attribute_macro_f1_before: before / ATTRIBUTES.len() as f64,
        val_mean_attribute_macro_f1_after: after / ATTRIBUTES.len() as f64,
    }
}
