//! `wbc train-structure` and `wbc ablation`: the cell-structure-aware attribute models
//! (one-pass and K-pass, max or attention aggregation), fine-tuned from the attribute
//! network on the bootstrap masks, and their test-split ablation with bootstrap masks and
//! with the masks the segmentation network predicts.

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use wbc_core::preprocess;
use wbc_lab::cards::{git_commit, today};
use wbc_lab::data::PbcArgs;
use wbc_lab::data::{LabelCache, PixelCache};
use wbc_lab::scoring::{self, SplitScores};
use wbc_lab::training::augment::Augmentation;
use wbc_lab::training::checkpoint::RunArgs;
use wbc_lab::training::checkpoint::RunFolder;
use wbc_lab::training::epochs::train_run;
use wbc_lab::training::losses::{group_losses, multitask_loss};
use wbc_nets::predict::{predictions_from_data, segment};
use wbc_nets::structure_net::structure_masks;
use wbc_nets::{
    Aggregation, AttributeNetConfig, CellPrediction, Passes, StructureAwareNet, StructureNetConfig,
};

#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct TrainStructureArgs {
    /// Data, seed, tiny architecture (pipeline tests), restart.
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunArgs,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// How the per-structure vectors are combined: global (the plain network, the
    /// control), max or attention.
    #[arg(long, default_value = "max")]
    pub aggregation: Aggregation,
    /// one: pool one feature map inside each structure; k: one encoder pass per structure.
    #[arg(long, default_value = "one")]
    pub passes: Passes,
    /// Start from these attribute-network weights (a `wbc train` checkpoint).
    #[arg(long, default_value = "runs/attribute_net/best.bpk")]
    pub init: PathBuf,
    /// Run folder (default: runs/structure_<aggregation>_<passes>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 4)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate (fine-tuning: lower than from scratch).
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
}

pub type StructureRunState =
    wbc_lab::training::checkpoint::RunState<TrainStructureArgs, StructureNetConfig, SplitScores>;

/// Predictions for every cached cell with its label map (at the cache's size).
pub fn predict_with_masks(
    net: &StructureAwareNet,
    pixels: &PixelCache,
    labels: &LabelCache,
    device: &Device,
) -> Result<Vec<CellPrediction>> {
    let size = pixels.size;
    let mut out = Vec::with_capacity(pixels.len());
    let idx: Vec<usize> = (0..pixels.len()).collect();
    for chunk in idx.chunks(64) {
        let inputs: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| preprocess::normalize(pixels.cell(i), size))
            .collect();
        let maps: Vec<&[u8]> = chunk.iter().map(|&i| labels.cell(i)).collect();
        let images = Tensor::<4>::from_data(
            TensorData::new(inputs, [chunk.len(), 3, size, size]),
            device,
        );
        let logits = net.forward(images, structure_masks(&maps, size, device));
        out.extend(predictions_from_data(
            logits
                .try_into_data()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        )?);
    }
    Ok(out)
}

pub fn train(args: TrainStructureArgs) -> Result<StructureRunState> {
    let name = format!(
        "structure_{}_{}",
        serde_json::to_value(args.aggregation)?
            .as_str()
            .unwrap_or("?"),
        serde_json::to_value(args.passes)?.as_str().unwrap_or("?")
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(name));
    let folder = RunFolder::create(&out)?;
    let base = match args.run.tiny {
        Some(size) => AttributeNetConfig::tiny(size),
        None => AttributeNetConfig::standard(),
    };
    let config = StructureNetConfig {
        base,
        aggregation: args.aggregation,
        passes: args.passes,
    };
    let size = config.base.input_size;
    let (train, train_labels) = args.run.pbc.split_with_labels(&args.masks, "train", size)?;
    let (val, val_labels) = args.run.pbc.split_with_labels(&args.masks, "val", size)?;

    let device = Device::flex().autodiff();
    let mut model = config.init(&device);
    if args.run.tiny.is_none() {
        // Fine-tune: the encoder and head start from the trained attribute network.
        model
            .base
            .load_from(&mut BurnpackStore::from_file(&args.init))
            .with_context(|| format!("loading {}", args.init.display()))?;
    }
    let optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let losses = group_losses(&train.cells, 0.0, &device);
    let state = train_run(
        &folder,
        StructureRunState::fresh(args.clone(), config.clone()),
        (model, optim),
        &args.run.schedule(
            train.cells.len(),
            (args.epochs, args.batch, args.lr),
            104_729,
        ),
        |model, batch, aug_rng| {
            let mut inputs = Vec::with_capacity(batch.len() * 3 * size * size);
            let mut maps: Vec<Vec<u8>> = Vec::with_capacity(batch.len());
            for &i in batch {
                let aug = Augmentation::draw(size, aug_rng);
                inputs.extend(aug.image(train.pixels.cell(i)));
                maps.push(aug.labels(train_labels.cell(i)).collect());
            }
            let images = Tensor::<4>::from_data(
                TensorData::new(inputs, [batch.len(), 3, size, size]),
                &device,
            );
            let refs: Vec<&[u8]> = maps.iter().map(Vec::as_slice).collect();
            let logits = model.forward(images, structure_masks(&refs, size, &device));
            multitask_loss(&losses, logits, batch, &train.cells, &device)
        },
        |model, done| {
            let preds =
                predict_with_masks(&model.valid(), &val.pixels, &val_labels, &Device::flex())?;
            let val_scores = scoring::score(&val.cells, &preds);
            done.report(&format!(
                "val attribute macro-F1 {:.2}  cell-type acc {:.2}",
                val_scores.mean_attribute_macro_f1, val_scores.cell_type_accuracy
            ));
            Ok((val_scores.mean_attribute_macro_f1, val_scores))
        },
    )?;
    Ok(state)
}

#[derive(clap::Args, Debug)]
pub struct AblationArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// Run folders of `wbc train-structure` to compare.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// The segmentation network whose predicted masks are the practical case.
    #[arg(long, default_value = "models/seg_net")]
    pub seg: PathBuf,
    /// Where the table goes (JSON).
    #[arg(long, default_value = "models/structure_ablation.json")]
    pub out: PathBuf,
}

fn summary(s: &SplitScores) -> serde_json::Value {
    json!({
        "mean_attribute_macro_f1": s.mean_attribute_macro_f1,
        "per_attribute_macro_f1": s.attributes.iter().map(|(k, g)| (k.clone(), g.macro_f1)).collect::<std::collections::BTreeMap<_, _>>(),
        "cell_type_accuracy": s.cell_type_accuracy,
    })
}

/// Evaluate every run on the test split with bootstrap and with predicted masks.
pub fn ablation(args: AblationArgs) -> Result<()> {
    let device = Device::flex();
    // The practical case: label maps the shipped segmentation network predicts.
    let (seg, seg_card) = wbc_lab::cards::seg_net(&args.seg, &device)?;
    // Every run and the segmenter read the same input size.
    let size = seg_card.input_size;
    let (test, boot) = args.pbc.split_with_labels(&args.masks, "test", size)?;
    let mut predicted = Vec::with_capacity(boot.labels.len());
    let idx: Vec<usize> = (0..test.pixels.len()).collect();
    for chunk in idx.chunks(64) {
        let inputs: Vec<Vec<f32>> = chunk
            .iter()
            .map(|&i| preprocess::normalize(test.pixels.cell(i), size))
            .collect();
        for map in segment(&seg, &inputs, size, size, &device)? {
            predicted.extend(map);
        }
    }
    let predicted = LabelCache {
        size,
        labels: predicted,
    };
    let mut rows = Vec::new();
    println!("| model | passes | aggregation | GFLOPs/cell | test macro-F1 (bootstrap masks) | test macro-F1 (predicted masks) | nucleus shape | vacuole | val macro-F1 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for run in &args.runs {
        let state: StructureRunState = serde_json::from_slice(
            &std::fs::read(run.join("state.json"))
                .with_context(|| format!("{}/state.json", run.display()))?,
        )?;
        if state.config.base.input_size != size {
            anyhow::bail!(
                "{}: {} px inputs, the segmentation network {size} px",
                run.display(),
                state.config.base.input_size
            );
        }
        let mut net = state.config.init(&device);
        net.load_from(&mut BurnpackStore::from_file(run.join("best.bpk")))
            .with_context(|| format!("{}/best.bpk", run.display()))?;
        let with_boot = scoring::score(
            &test.cells,
            &predict_with_masks(&net, &test.pixels, &boot, &device)?,
        );
        let with_pred = scoring::score(
            &test.cells,
            &predict_with_masks(&net, &test.pixels, &predicted, &device)?,
        );
        let gflops = state.config.flops() as f64 / 1e9;
        let f1 = |s: &SplitScores, a: &str| s.attributes[a].macro_f1;
        println!(
            "| {} | {:?} | {:?} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            run.display(),
            state.config.passes,
            state.config.aggregation,
            gflops,
            with_boot.mean_attribute_macro_f1,
            with_pred.mean_attribute_macro_f1,
            f1(&with_pred, "nucleus_shape"),
            f1(&with_pred, "cytoplasm_vacuole"),
            state.best_val,
        );
        rows.push(json!({
            "run": run.display().to_string(),
            "passes": state.config.passes,
            "aggregation": state.config.aggregation,
            "flops_per_cell": state.config.flops(),
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "val_mean_attribute_macro_f1": state.best_val,
            "test_with_bootstrap_masks": summary(&with_boot),
            "test_with_predicted_masks": summary(&with_pred),
            "init": state.args.init,
            "lr": state.args.lr,
        }));
    }
    // The choice is made on val (never on test): the best val macro-F1, and among runs within
    // 0.1 of it the cheapest, since the app pays every FLOP on the user's machine.
    let best_val = rows
        .iter()
        .filter_map(|r| r["val_mean_attribute_macro_f1"].as_f64())
        .fold(f64::MIN, f64::max);
    let choice = rows
        .iter()
        .filter(|r| r["val_mean_attribute_macro_f1"].as_f64().unwrap_or(f64::MIN) >= best_val - 0.1)
        .min_by_key(|r| r["flops_per_cell"].as_u64().unwrap_or(u64::MAX))
        .map(|r| json!({"run": r["run"], "aggregation": r["aggregation"], "passes": r["passes"], "val_mean_attribute_macro_f1": r["val_mean_attribute_macro_f1"], "rule": "best val mean macro-F1; within 0.1 of it, fewest FLOPs"}));
    if let Some(c) = &choice {
        println!("chosen on val: {c}");
    }
    // What the browser runs follows from the choice.
    let app = match choice.as_ref().and_then(|c| c["aggregation"].as_str()) {
        Some("global") | None => "The app keeps the plain attribute network (models/attribute_net): no structure-aware variant beat the control on val by more than 0.1 macro-F1, so none is worth its extra work in the browser (masks before attributes, and K+1 encoder passes for K-pass).".to_string(),
        Some(other) => format!("The app should run the {other} variant chosen on val (see choice_on_val): it is the best accuracy per FLOP."),
    };
    println!("{app}");
    let report = json!({
        "choice_on_val": choice,
        "app": app,
        "split": "test",
        "cells": test.cells.len(),
        "note": "every run fine-tuned for the same epochs from the same attribute-network checkpoint; 'global' is the control (no structure)",
        "rows": rows,
        "command": format!("cargo run --release -p wbc -- ablation {}", args.runs.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(" ")),
        "commit": git_commit(),
        "date": today(),
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
