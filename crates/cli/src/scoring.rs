//! The paper's scores: predictions against WBCAtt labels, per attribute accuracy and macro
//! precision/recall/F1, their mean over the 11 attributes, per-value scores and confusion
//! matrices, and cell-type accuracy and macro-F1.

use crate::data::load_split;
use crate::data::{LabelCache, PixelCache};
use anyhow::Result;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;
use wbc_core::dataset;
use wbc_core::dataset::LabelledCell;
use wbc_core::front_end::FrontEndSettings;
use wbc_core::metrics::{argmax, ClassScores, Confusion};
use wbc_core::segmentation::{LABEL_NAMES, NUM_LABELS};
use wbc_core::{preprocess, ATTRIBUTES, CELL_TYPES};
use wbc_nets::predict::predict;
use wbc_nets::predict::segment;
use wbc_nets::SegNet;
use wbc_nets::{AttributeNet, CellPrediction};

/// Run the network over every cell of a cache (no augmentation), in batches.
pub fn predict_cache(
    net: &AttributeNet,
    cache: &PixelCache,
    device: &burn::tensor::Device,
) -> Result<Vec<CellPrediction>> {
    let mut out = Vec::with_capacity(cache.len());
    for (_, inputs) in cache.input_batches(128) {
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

/// Agreement of predicted and reference label maps, pixel by pixel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegScores {
    /// IoU (%) per class name; null where a class is absent from both.
    pub iou: BTreeMap<String, Option<f64>>,
    /// Mean IoU over the classes present (%).
    pub miou: f64,
    pub pixel_accuracy: f64,
}

impl SegScores {
    pub fn from_confusion(c: &Confusion) -> Self {
        let per = c.iou_per_class();
        let present: Vec<f64> = per.iter().flatten().copied().collect();
        Self {
            iou: LABEL_NAMES
                .iter()
                .zip(&per)
                .map(|(n, v)| (n.to_string(), *v))
                .collect(),
            miou: present.iter().sum::<f64>() / present.len().max(1) as f64,
            pixel_accuracy: c.accuracy(),
        }
    }
}

/// Segment every cached cell and compare with its reference map, at the cache's size.
pub fn score_segmentation(
    net: &SegNet,
    pixels: &PixelCache,
    labels: &LabelCache,
    device: &Device,
) -> Result<SegScores> {
    let mut confusion = Confusion::new(NUM_LABELS);
    for (chunk, inputs) in pixels.input_batches(64) {
        let maps = segment(net, &inputs, pixels.size, labels.size, device)?;
        for (i, map) in chunk.zip(&maps) {
            for (&t, &p) in labels.cell(i).iter().zip(map) {
                confusion.add(t as usize, p as usize);
            }
        }
    }
    Ok(SegScores::from_confusion(&confusion))
}

/// The front-end variants scored, in table order.
pub fn variants() -> Vec<(&'static str, FrontEndSettings)> {
    let s = |white_balance, stain, scale| FrontEndSettings {
        white_balance,
        stain,
        scale,
    };
    vec![
        ("none", FrontEndSettings::OFF),
        ("white balance", s(true, false, false)),
        ("white balance + stain", s(true, true, false)),
        ("scale only", s(false, false, true)),
        ("white balance + scale", s(true, false, true)),
        ("all (white balance + stain + scale)", FrontEndSettings::ALL),
    ]
}

/// The report printed by `wbc evaluate` and stored in the model card.
#[derive(Debug, Serialize)]
pub struct Report {
    pub split: String,
    pub scores: SplitScores,
    /// On the re-annotated cells of this split: the model and the second annotators, both
    /// scored against the official labels.
    pub human_ceiling: Option<HumanCeiling>,
}

#[derive(Debug, Serialize)]
pub struct HumanCeiling {
    pub cells: usize,
    pub model_mean_attribute_macro_f1: f64,
    pub human_mean_attribute_macro_f1: f64,
    pub model_per_attribute: HashMap<String, f64>,
    pub human_per_attribute: HashMap<String, f64>,
}

pub fn evaluate_net(
    net: &AttributeNet,
    size: usize,
    data: &Path,
    cache: &Path,
    split: &str,
    limit: Option<usize>,
    tta: bool,
) -> Result<Report> {
    let s = load_split(data, cache, split, size, limit)?;
    let preds = if tta {
        crate::scoring::predict_cache_tta(net, &s.pixels, &Device::flex())?
    } else {
        crate::scoring::predict_cache(net, &s.pixels, &Device::flex())?
    };
    let scores = crate::scoring::score(&s.cells, &preds);
    let reannotated = data.join("wbcatt/pbc_attr_reannotations.csv");
    let human_ceiling = if reannotated.exists() {
        let second: HashMap<String, dataset::LabelledCell> = dataset::read_csv(&reannotated)?
            .into_iter()
            .map(|c| (c.img_name.clone(), c))
            .collect();
        let mut truth = Vec::new();
        let mut model = Vec::new();
        let mut human = Vec::new();
        for (cell, p) in s.cells.iter().zip(&preds) {
            if let Some(h) = second.get(&cell.img_name) {
                truth.push(cell.clone());
                model.push(crate::scoring::decisions(p));
                human.push((h.attributes, h.cell_type));
            }
        }
        (!truth.is_empty()).then(|| {
            let m = score_indices(&truth, &model);
            let h = score_indices(&truth, &human);
            HumanCeiling {
                cells: truth.len(),
                model_mean_attribute_macro_f1: m.mean_attribute_macro_f1,
                human_mean_attribute_macro_f1: h.mean_attribute_macro_f1,
                model_per_attribute: m
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.macro_f1))
                    .collect(),
                human_per_attribute: h
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.macro_f1))
                    .collect(),
            }
        })
    } else {
        None
    };
    Ok(Report {
        split: split.to_string(),
        scores,
        human_ceiling,
    })
}

pub fn print_summary(r: &Report) {
    println!("{} split, {} cells", r.split, r.scores.cells);
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8}",
        "attribute", "acc", "macroP", "macroR", "macroF1"
    );
    for a in wbc_core::ATTRIBUTES.iter() {
        let g = &r.scores.attributes[a.name];
        println!(
            "{:<28} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            a.name, g.accuracy, g.macro_precision, g.macro_recall, g.macro_f1
        );
    }
    println!(
        "{:<28} {:>8.2} {:>8} {:>8} {:>8.2}",
        "MEAN over 11 attributes",
        r.scores.mean_attribute_accuracy,
        "",
        "",
        r.scores.mean_attribute_macro_f1
    );
    println!(
        "cell type: accuracy {:.2}, macro-F1 {:.2}",
        r.scores.cell_type_accuracy, r.scores.cell_type_macro_f1
    );
    if let Some(h) = &r.human_ceiling {
        println!(
            "re-annotated cells ({}): model mean macro-F1 {:.2}, second annotation {:.2}",
            h.cells, h.model_mean_attribute_macro_f1, h.human_mean_attribute_macro_f1
        );
    }
}
