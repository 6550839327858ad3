//! `wbc train`: multi-task training of the attribute network from scratch, with per-epoch
//! checkpoints (weights, optimizer state, history) so an interrupted run resumes.

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use wbc_lab::scoring::{self, SplitScores};
use wbc_lab::training::augment::{augment, Augmentation};
use wbc_lab::training::checkpoint::RunArgs;
use wbc_lab::training::checkpoint::RunFolder;
use wbc_lab::training::epochs::train_run;
use wbc_lab::training::losses::{distillation_loss, group_losses, multitask_loss, teacher_targets};
use wbc_nets::{AttributeNet, AttributeNetConfig};

#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct TrainArgs {
    /// Data, seed, tiny architecture (pipeline tests), restart.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,
    /// Run folder: checkpoints, history and the best weights go here.
    #[arg(long, default_value = "runs/attribute_net")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate (AdamW, 1 warm-up epoch, cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f32,
    /// Input side in pixels for the standard network [default: 112].
    #[arg(long)]
    #[serde(default)]
    pub input_size: Option<usize>,
    /// The architecture: `plain` (the 9-layer conv stack first shipped), `resnet` (basic
    /// residual blocks) or `mobile` (MobileNetV2 inverted bottlenecks); see
    /// `AttributeNetConfig::named`.
    #[arg(long, default_value = "plain")]
    #[serde(default = "plain")]
    pub arch: String,
    /// Keep an exponential moving average of the weights with this decay per step (e.g.
    /// 0.999); validation, checkpoints and the best weights use the average.
    #[arg(long)]
    #[serde(default)]
    pub ema: Option<f64>,
    /// Label smoothing of every softmax group's targets (0 = none).
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub label_smoothing: f32,
    /// Start from these weights (a burnpack of a finished run, e.g.
    /// runs/attribute_net/best.bpk) instead of random ones. The network ends in global
    /// pooling, so weights learnt at one input size carry over to a larger one: a second,
    /// sharper stage of training.
    #[arg(long)]
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Augmentation for cells from other microscopes, after the front end has corrected
    /// scale and stain: the residual errors of that correction (zoom 0.85–1.18×, lamp ±8%
    /// per channel, stain density ×0.8–1.25 with ±8% per channel) plus blur and noise.
    #[arg(long)]
    #[serde(default)]
    pub any_microscope: bool,
    /// With --init: also fit the starting network's own answers on the plain image
    /// (self-distillation, weighted this much against the labels' loss). The augmented
    /// student learns to give the clean teacher's answer, so heavy augmentation teaches
    /// invariance without unlearning what the network knew about PBC.
    #[arg(long)]
    #[serde(default)]
    pub distil: Option<f32>,
}

fn plain() -> String {
    "plain".into()
}

/// What the run folder remembers between epochs.
pub type RunState =
    wbc_lab::training::checkpoint::RunState<TrainArgs, AttributeNetConfig, SplitScores>;

pub fn run(args: TrainArgs) -> Result<RunState> {
    let folder = RunFolder::create(&args.out)?;
    let config = match args.run.tiny {
        Some(size) => AttributeNetConfig::tiny(size),
        None => AttributeNetConfig::named(
            &args.arch,
            args.input_size.unwrap_or(wbc_core::preprocess::INPUT_SIZE),
        )
        .with_context(|| format!("no architecture named {:?}", args.arch))?,
    };
    eprintln!(
        "{}: {:.2} GFLOP a cell, {} parameters",
        args.arch,
        config.flops() as f64 / 1e9,
        config.init(&Device::flex()).parameter_count()
    );
    let size = config.input_size;
    let train = args.run.pbc.split("train", size)?;
    let val = args.run.pbc.split("val", size)?;
    eprintln!(
        "train {} cells, val {} cells, input {size}px",
        train.cells.len(),
        val.cells.len()
    );

    let device = Device::flex().autodiff();
    let mut model: AttributeNet = config.init(&device);
    if let Some(init) = &args.init {
        // A run's f32 checkpoint, or a shipped model's f16 weights (models/*.bpk, whose
        // card beside it says f16): those are widened to f32 as they load.
        let shipped_half = std::fs::read(init.with_extension("json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|card| card["weights_dtype"].as_str().map(|d| d.starts_with("f16")))
            .unwrap_or(false);
        if shipped_half {
            let bytes = std::fs::read(init)
                .with_context(|| format!("reading the starting weights {}", init.display()))?;
            wbc_nets::predict::load_half(&mut model, bytes)
                .with_context(|| format!("loading the starting weights {}", init.display()))?;
        } else {
            model
                .load_from(&mut BurnpackStore::from_file(init))
                .with_context(|| format!("loading the starting weights {}", init.display()))?;
        }
        eprintln!("starting from {}", init.display());
    }
    let teacher = match (args.distil, &args.init) {
        (Some(_), Some(_)) => {
            eprintln!("teacher: the starting network's answers on the plain train images");
            Some(teacher_targets(&model.valid(), &train.pixels)?)
        }
        (Some(_), None) => anyhow::bail!("--distil needs --init (the teacher)"),
        _ => None,
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(args.weight_decay)
        .init();

    let losses = group_losses(&train.cells, args.label_smoothing, &device);
    let state = train_run(
        &folder,
        RunState::fresh(args.clone(), config.clone()),
        (model, optim),
        &args
            .run
            .schedule(train.cells.len(), (args.epochs, args.batch, args.lr), 1000),
        |model, batch, aug_rng| {
            let mut inputs = Vec::with_capacity(batch.len() * 3 * size * size);
            for &i in batch {
                let cell = train.pixels.cell(i);
                inputs.extend(if args.any_microscope {
                    Augmentation::draw_for_attributes_any(size, aug_rng).image(cell)
                } else {
                    augment(cell, size, aug_rng)
                });
            }
            let images = Tensor::<4>::from_data(
                TensorData::new(inputs, [batch.len(), 3, size, size]),
                &device,
            );
            let logits = model.forward(images);
            let mut loss = multitask_loss(&losses, logits.clone(), batch, &train.cells, &device);
            if let (Some(weight), Some(targets)) = (args.distil, &teacher) {
                let width = wbc_core::schema::HEAD_WIDTH;
                let rows: Vec<f32> = batch
                    .iter()
                    .flat_map(|&i| targets[i * width..(i + 1) * width].iter().copied())
                    .collect();
                let rows =
                    Tensor::<2>::from_data(TensorData::new(rows, [batch.len(), width]), &device);
                loss = loss + distillation_loss(logits, rows) * weight;
            }
            loss
        },
        |model, done| {
            let preds = scoring::predict_cache(&model.valid(), &val.pixels, &Device::flex())?;
            let val_scores = scoring::score(&val.cells, &preds);
            done.report(&format!(
                "val attribute macro-F1 {:.2}  cell-type acc {:.2}  {:.0} img/s",
                val_scores.mean_attribute_macro_f1,
                val_scores.cell_type_accuracy,
                done.images_per_second
            ));
            Ok((val_scores.mean_attribute_macro_f1, val_scores))
        },
    )?;
    Ok(state)
}
