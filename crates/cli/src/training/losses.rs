//! The training losses: weighted cross-entropy per softmax group of the attribute head, its
//! soft-target (distillation) form, and the segmentation network's pixel weights.

use crate::data::{LabelCache, PixelCache};
use crate::scoring;
use anyhow::Result;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::tensor::{activation::log_softmax, Device, Int, Tensor, TensorData};
use wbc_core::dataset::LabelledCell;
use wbc_core::segmentation::NUM_LABELS;
use wbc_core::{ATTRIBUTES, CELL_TYPES};
use wbc_nets::AttributeNet;

/// Class weights ∝ 1/√frequency (mean 1), so rare values (e.g. vacuoles) count in the loss
/// without swamping it; macro-F1 rewards getting rare values right.
fn class_weights(cells: &[LabelledCell]) -> Vec<Vec<f32>> {
    let mut groups: Vec<Vec<f32>> = ATTRIBUTES
        .iter()
        .map(|a| vec![0.0; a.values.len()])
        .collect();
    groups.push(vec![0.0; CELL_TYPES.len()]);
    for c in cells {
        for (k, &v) in c.attributes.iter().enumerate() {
            groups[k][v] += 1.0;
        }
        groups[11][c.cell_type] += 1.0;
    }
    groups
        .into_iter()
        .map(|counts| {
            let w: Vec<f32> = counts.iter().map(|&n| 1.0 / (n.max(1.0)).sqrt()).collect();
            let mean = w.iter().sum::<f32>() / w.len() as f32;
            w.into_iter().map(|x| x / mean).collect()
        })
        .collect()
}

/// Sum of the 12 weighted cross-entropies (11 attributes, cell type) of a batch.
pub fn multitask_loss(
    losses: &[CrossEntropyLoss],
    logits: Tensor<2>,
    batch: &[usize],
    cells: &[LabelledCell],
    device: &Device,
) -> Tensor<1> {
    sum_over_groups(|g, offset, n| {
        let targets: Vec<i64> = batch
            .iter()
            .map(|&i| {
                let c = &cells[i];
                (if g < 11 { c.attributes[g] } else { c.cell_type }) as i64
            })
            .collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch.len()]), device);
        losses[g].forward(logits.clone().narrow(1, offset, n), targets)
    })
}

/// Sum of `loss(group, offset, width)` over the 12 softmax groups of the head (11
/// attributes, then the cell type).
fn sum_over_groups(mut loss: impl FnMut(usize, usize, usize) -> Tensor<1>) -> Tensor<1> {
    let widths = ATTRIBUTES
        .iter()
        .map(|a| a.values.len())
        .chain([CELL_TYPES.len()]);
    let mut offset = 0;
    let mut total: Option<Tensor<1>> = None;
    for (g, n) in widths.enumerate() {
        let l = loss(g, offset, n);
        total = Some(match total {
            Some(acc) => acc + l,
            None => l,
        });
        offset += n;
    }
    total.expect("at least one group")
}

/// Cross-entropy of each softmax group against soft targets (the teacher's probabilities,
/// `[batch, HEAD_WIDTH]`), summed over the 12 groups as [`multitask_loss`] is.
pub fn distillation_loss(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    sum_over_groups(|_, offset, n| {
        let log_p = log_softmax(logits.clone().narrow(1, offset, n), 1);
        (targets.clone().narrow(1, offset, n) * log_p)
            .sum_dim(1)
            .mean()
            .neg()
    })
}

/// The teacher's probabilities for every cell of a cache, flattened to `HEAD_WIDTH` a cell.
pub fn teacher_targets(teacher: &AttributeNet, pixels: &PixelCache) -> Result<Vec<f32>> {
    let preds = scoring::predict_cache(teacher, pixels, &Device::flex())?;
    Ok(preds
        .iter()
        .flat_map(|p| p.attributes.iter().flatten().chain(&p.cell_type).copied())
        .collect())
}

/// One weighted cross-entropy per softmax group (see [`class_weights`]), its targets
/// smoothed by `smoothing` (0 = one-hot).
pub fn group_losses(
    cells: &[LabelledCell],
    smoothing: f32,
    device: &Device,
) -> Vec<CrossEntropyLoss> {
    class_weights(cells)
        .iter()
        .map(|w| {
            CrossEntropyLossConfig::new()
                .with_weights(Some(w.clone()))
                .with_smoothing((smoothing > 0.0).then_some(smoothing))
                .init(device)
        })
        .collect()
}

/// Pixel class weights ∝ 1/√frequency (mean 1): vacuoles and platelets are a fraction of a
/// percent of the pixels and would otherwise be ignored.
pub fn pixel_weights(labels: &LabelCache) -> Vec<f32> {
    let mut counts = [0f64; NUM_LABELS];
    for &l in &labels.labels {
        counts[(l as usize).min(NUM_LABELS - 1)] += 1.0;
    }
    let w: Vec<f32> = counts
        .iter()
        .map(|&n| (1.0 / n.max(1.0).sqrt()) as f32)
        .collect();
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    w.into_iter().map(|x| x / mean).collect()
}
