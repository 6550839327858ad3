//! `wbc train-seg`: the segmentation network learns the bootstrap labeller's label maps
//! (`wbc masks`), with the same checkpointing and resumption as `wbc train`.

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::AdamWConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use wbc_core::segmentation::NUM_LABELS;
use wbc_lab::scoring::{score_segmentation, SegScores};
use wbc_lab::training::augment::Augmentation;
use wbc_lab::training::checkpoint::RunArgs;
use wbc_lab::training::checkpoint::RunFolder;
use wbc_lab::training::epochs::train_run;
use wbc_lab::training::losses::pixel_weights;
use wbc_nets::{SegNet, SegNetConfig};

#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct TrainSegArgs {
    /// Data, seed, tiny architecture (pipeline tests), restart.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// Run folder: checkpoints, history and the best weights go here.
    #[arg(long, default_value = "runs/seg_net")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Peak learning rate (AdamW, 1 warm-up epoch, cosine decay).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
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

pub type SegRunState =
    wbc_lab::training::checkpoint::RunState<TrainSegArgs, SegNetConfig, SegScores>;

pub fn run(args: TrainSegArgs) -> Result<SegRunState> {
    let folder = RunFolder::create(&args.out)?;
    let config = match args.run.tiny {
        Some(size) => SegNetConfig::tiny(size),
        None => SegNetConfig::standard(),
    };
    let size = config.input_size;
    let (train, train_labels) = args.run.pbc.split_with_labels(&args.masks, "train", size)?;
    let (val, val_labels) = args.run.pbc.split_with_labels(&args.masks, "val", size)?;
    eprintln!(
        "train {} cells, val {} cells, input {size}px",
        train.cells.len(),
        val.cells.len()
    );

    let device = Device::flex().autodiff();
    let model: SegNet = config.init(&device);
    let optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let loss_fn = CrossEntropyLossConfig::new()
        .with_weights(Some(pixel_weights(&train_labels)))
        .init(&device);
    let plane = size * size;
    let state = train_run(
        &folder,
        SegRunState::fresh(args.clone(), config.clone()),
        (model, optim),
        &args
            .run
            .schedule(train.cells.len(), (args.epochs, args.batch, args.lr), 7919),
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
        |model, done| {
            let val_scores =
                score_segmentation(&model.valid(), &val.pixels, &val_labels, &Device::flex())?;
            done.report(&format!(
                "val mIoU {:.2}  (nucleus {:.1}, cytoplasm {:.1})",
                val_scores.miou,
                val_scores.iou["nucleus"].unwrap_or(0.0),
                val_scores.iou["cytoplasm"].unwrap_or(0.0)
            ));
            Ok((val_scores.miou, val_scores))
        },
    )?;
    Ok(state)
}
