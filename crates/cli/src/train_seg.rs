//! `wbc train-seg`: the segmentation network learns the bootstrap labeller's label maps
//! (`wbc masks`), with the same checkpointing and resumption as `wbc train`.

use crate::cache::{self, LabelCache, PixelCache};
use crate::checkpoint::RunFolder;
use crate::epochs::{record_best, train_epochs, Schedule};
use crate::train::{load_split, Augmentation};
use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wbc_core::metrics::Confusion;
use wbc_core::preprocess;
use wbc_core::segmentation::{LABEL_NAMES, NUM_LABELS};
use wbc_nets::predict::segment;
use wbc_nets::{SegNet, SegNetConfig};

#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct TrainSegArgs {
    /// Folder holding pbc/ and wbcatt/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// Run folder: checkpoints, history and the best weights go here.
    #[arg(long, default_value = "runs/seg_net")]
    pub out: PathBuf,
    /// Where decoded, resized images and label maps are cached between runs.
    #[arg(long, default_value = "target/wbc-cache")]
    pub cache: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Peak learning rate (AdamW, 1 warm-up epoch, cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Use only the first N cells of each split (pipeline tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Train the tiny architecture (pipeline tests) at this input size.
    #[arg(long)]
    pub tiny: Option<usize>,
    /// Start afresh even if the run folder holds a checkpoint.
    #[arg(long)]
    pub restart: bool,
    /// Wider augmentation for other microscopes and stains: stain strength (optical density
    /// ×0.67–1.5, each channel ±15% more) and zoom 0.7–1.43× instead of 0.8–1.25×.
    #[arg(long)]
    #[serde(default)]
    pub stain_jitter: bool,
    /// Augmentation for any microscope (overrides --stain-jitter): zoom 0.5–2× with
    /// background padding, lamp colours, stain hue and density, blur and noise.
    #[arg(long)]
    #[serde(default)]
    pub any_microscope: bool,
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
pub fn score(
    net: &SegNet,
    pixels: &PixelCache,
    labels: &LabelCache,
    device: &Device,
) -> Result<SegScores> {
    let mut confusion = Confusion::new(NUM_LABELS);
    let idx: Vec<usize> = (0..pixels.len()).collect();
    for chunk in idx.chunks(64) {
        let inputs: Vec<Vec<f32>> = chunk
            .iter()
            .map(|&i| preprocess::normalize(pixels.cell(i), pixels.size))
            .collect();
        let maps = segment(net, &inputs, pixels.size, labels.size, device)?;
        for (&i, map) in chunk.iter().zip(&maps) {
            for (&t, &p) in labels.cell(i).iter().zip(map) {
                confusion.add(t as usize, p as usize);
            }
        }
    }
    Ok(SegScores::from_confusion(&confusion))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegRunState {
    pub args: TrainSegArgs,
    pub config: SegNetConfig,
    pub epoch: usize,
    pub best_epoch: usize,
    pub best_val_miou: f64,
    pub history: Vec<SegEpochLog>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegEpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub seconds: f64,
    pub val: SegScores,
}

/// Pixel class weights ∝ 1/√frequency (mean 1): vacuoles and platelets are a fraction of a
/// percent of the pixels and would otherwise be ignored.
fn pixel_weights(labels: &LabelCache) -> Vec<f32> {
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

pub fn split_with_labels(
    data: &Path,
    masks: &Path,
    cache_dir: &Path,
    split: &str,
    size: usize,
    limit: Option<usize>,
) -> Result<(crate::train::Split, LabelCache)> {
    let s = load_split(data, cache_dir, split, size, limit)?;
    let labels = cache::load_or_build_labels(masks, cache_dir, split, &s.cells, size)?;
    Ok((s, labels))
}

pub fn run(args: TrainSegArgs) -> Result<SegRunState> {
    let folder = RunFolder::create(&args.out)?;
    let config = match args.tiny {
        Some(size) => SegNetConfig::tiny(size),
        None => SegNetConfig::standard(),
    };
    let size = config.input_size;
    let (train, train_labels) = split_with_labels(
        &args.data,
        &args.masks,
        &args.cache,
        "train",
        size,
        args.limit,
    )?;
    let (val, val_labels) = split_with_labels(
        &args.data,
        &args.masks,
        &args.cache,
        "val",
        size,
        args.limit,
    )?;
    eprintln!(
        "train {} cells, val {} cells, input {size}px",
        train.cells.len(),
        val.cells.len()
    );

    let device = Device::flex().autodiff();
    let mut model: SegNet = config.init(&device);
    let optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let fresh = SegRunState {
        args: args.clone(),
        config: config.clone(),
        epoch: 0,
        best_epoch: 0,
        best_val_miou: -1.0,
        history: vec![],
    };
    let (mut state, mut optim) = folder.resume_or_start(args.restart, fresh, &mut model, optim)?;
    let loss_fn = CrossEntropyLossConfig::new()
        .with_weights(Some(pixel_weights(&train_labels)))
        .init(&device);
    let plane = size * size;
    let schedule = Schedule {
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        augmentation_stream: 7919,
    };
    let done = state.epoch;
    train_epochs(
        model,
        &mut optim,
        done,
        train.cells.len(),
        &schedule,
        |model, batch, aug_rng| {
            let mut inputs = Vec::with_capacity(batch.len() * 3 * plane);
            let mut targets = Vec::with_capacity(batch.len() * plane);
            for &i in batch {
                let aug = if args.any_microscope {
                    Augmentation::draw_for_any_microscope(size, aug_rng)
                } else {
                    Augmentation::draw_for_segmentation(size, args.stain_jitter, aug_rng)
                };
                inputs.extend(aug.image(train.pixels.cell(i)));
                targets.extend(aug.labels(train_labels.cell(i)).map(|l| l as i64));
            }
            let n = batch.len();
            let images =
                Tensor::<4>::from_data(TensorData::new(inputs, [n, 3, size, size]), &device);
            // Logits at full input size, one row per pixel, for a per-pixel cross-entropy.
            let logits = model.forward_at(images, size);
            let rows = logits
                .permute([0, 2, 3, 1])
                .reshape([n * plane, NUM_LABELS]);
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(targets, [n * plane]), &device);
            loss_fn.forward(rows, targets)
        },
        |model, optim, done| {
            let val_scores = score(&model.valid(), &val.pixels, &val_labels, &Device::flex())?;
            let log = SegEpochLog {
                epoch: done.epoch,
                train_loss: done.train_loss,
                seconds: done.seconds,
                val: val_scores.clone(),
            };
            eprintln!(
                "epoch {:>3}: loss {:.3}  val mIoU {:.2}  (nucleus {:.1}, cytoplasm {:.1})  {:.0} s",
                log.epoch,
                log.train_loss,
                val_scores.miou,
                val_scores.iou["nucleus"].unwrap_or(0.0),
                val_scores.iou["cytoplasm"].unwrap_or(0.0),
                done.seconds
            );
            let improved = record_best(
                val_scores.miou,
                &mut state.best_val_miou,
                &mut state.best_epoch,
                done.epoch,
            );
            state.epoch = done.epoch;
            state.history.push(log);
            folder.save_epoch(model, optim, improved, &state)
        },
    )?;
    Ok(state)
}

crate::checkpoint::run_record!(SegRunState);
