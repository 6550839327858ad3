//! `wbc evaluate` and `wbc export`: score a model on a split the paper's way, compare with the
//! human second annotation, and write the shipped model + card.

use super::train::RunState;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use serde_json::json;
use std::path::{Path, PathBuf};
use wbc_core::dataset;
use wbc_lab::cards::{self, ModelCard};
use wbc_lab::data::PbcArgs;
use wbc_lab::scoring::{self, evaluate_net, print_summary};
use wbc_nets::predict::save_half;
use wbc_nets::AttributeNet;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// Model to evaluate: a stem under models/ (reads <stem>.bpk and <stem>.json).
    #[arg(long, default_value = "models/attribute_net")]
    pub model: PathBuf,
    /// Split to score (train, val or test). Model choices are made on val only.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Write the full report (per value scores, confusion matrices) as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Average each cell's 8 symmetric views (rotations and mirrors) before deciding.
    #[arg(long)]
    pub tta: bool,
}

pub fn evaluate(args: EvaluateArgs) -> Result<()> {
    let device = Device::flex();
    let (net, card) = cards::attribute_net(&args.model, &device)?;
    let report = evaluate_net(
        &net,
        card.input_size,
        &args.pbc.data,
        &args.pbc.cache,
        &args.split,
        args.pbc.limit,
        args.tta,
    )?;
    print_summary(&report);
    if let Some(path) = args.report {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// Training run folder (holds best.bpk and state.json).
    #[arg(long, default_value = "runs/attribute_net")]
    pub run: PathBuf,
    /// Output stem: writes <stem>.bpk (f16 weights) and <stem>.json (model card).
    #[arg(long, default_value = "models/attribute_net")]
    pub out: PathBuf,
    /// Fold a logit adjustment, τ per attribute chosen on val, into the head's bias. Off by
    /// default: with the class-weighted loss it moved val by +0.05 and test by −0.05.
    #[arg(long)]
    pub logit_adjustment: bool,
    /// Re-estimate the batch-norm statistics on this many batches of 64 plain train images
    /// before export. A run trained on heavily augmented batches keeps their statistics;
    /// this gives it the statistics of the images it will see after the front end. Decide
    /// with `wbc evaluate --split val` on both exports.
    #[arg(long)]
    pub refresh_bn: Option<usize>,
}

/// Run `batches` batches of plain (unaugmented) train images through the network in
/// training mode, so each batch norm's running mean and variance move to those images'
/// (momentum 0.1: after 30 batches 4% of the old statistics remain). No weight changes.
fn refresh_batch_norm(
    args: &ExportArgs,
    config: &wbc_nets::AttributeNetConfig,
    batches: usize,
) -> Result<AttributeNet> {
    let size = config.input_size;
    let train = args.pbc.split("train", size)?;
    let device = Device::flex().autodiff();
    let mut model: AttributeNet = config.init(&device);
    model.load_from(&mut BurnpackStore::from_file(args.run.join("best.bpk")))?;
    let n = (batches * 64).min(train.cells.len());
    // Spread over the whole split (the CSV is grouped by type).
    let picks: Vec<usize> = (0..n).map(|j| j * train.cells.len() / n).collect();
    for chunk in picks.chunks(64) {
        let inputs: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| wbc_core::preprocess::normalize(train.pixels.cell(i), size))
            .collect();
        let images = burn::tensor::Tensor::<4>::from_data(
            burn::tensor::TensorData::new(inputs, [chunk.len(), 3, size, size]),
            &device,
        );
        let _ = model.forward(images);
    }
    eprintln!("batch-norm statistics re-estimated on {n} plain train images");
    Ok(model.valid())
}

/// Export the epoch selected on val, in f16, with a card holding the test-split metrics of
/// the exported (f16) weights and the f32 ones, so the cost of half precision is on record.
pub fn export(args: ExportArgs) -> Result<()> {
    let state: RunState = serde_json::from_slice(
        &std::fs::read(args.run.join("state.json")).context("reading state.json")?,
    )?;
    let device = Device::flex();
    let mut net = state.config.init(&device);
    net.load_from(&mut BurnpackStore::from_file(args.run.join("best.bpk")))
        .context("loading best.bpk")?;
    let net = net.valid();
    let net = match args.refresh_bn {
        Some(batches) => refresh_batch_norm(&args, &state.config, batches)?,
        None => net,
    };
    let size = state.config.input_size;
    let score_on = |net: &AttributeNet, split: &str| {
        evaluate_net(
            net,
            size,
            &args.pbc.data,
            &args.pbc.cache,
            split,
            args.pbc.limit,
            false,
        )
    };
    // The unadjusted test scores are reported beside the adjusted ones, not used for any choice.
    let (adjustment, unadjusted) = if args.logit_adjustment {
        let unadjusted = score_on(&net, "test")?;
        let val = args.pbc.split("val", size)?;
        let val_preds = scoring::predict_cache(&net, &val.pixels, &device)?;
        let mut train = dataset::read_csv(&dataset::split_csv(&args.pbc.data, "train"))?;
        if let Some(n) = args.pbc.limit {
            train.truncate(n);
        }
        let adj = scoring::choose_logit_adjustment(&train, &val.cells, &val_preds);
        eprintln!(
            "logit adjustment chosen on val: mean macro-F1 {:.2} -> {:.2}, tau {:?}",
            adj.val_mean_attribute_macro_f1_before, adj.val_mean_attribute_macro_f1_after, adj.tau
        );
        (Some(adj), Some(unadjusted))
    } else {
        (None, None)
    };
    let net = match &adjustment {
        Some(adj) => net.with_head_offsets(&adj.offsets),
        None => net,
    };
    let f32_report = score_on(&net, "test")?;
    let bytes = save_half(&net)?;
    let half = wbc_nets::predict::load_attribute_net(&state.config, bytes.clone(), &device)?;
    let report = score_on(&half, "test")?;
    let val = score_on(&half, "val")?;
    print_summary(&report);
    let (bpk, json_path) = cards::paths(&args.out);
    if let Some(dir) = bpk.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&bpk, &bytes)?;
    let epochs = &state.history;
    let secs: Vec<f64> = epochs.iter().map(|e| e.seconds).collect();
    let a = &state.args;
    let train_cmd =
        format!(
        "wbc train --epochs {} --batch {} --lr {} --weight-decay {} --seed {}{}{}{}{}{}{} --out {}",
        a.epochs,
        a.batch,
        a.lr,
        a.weight_decay,
        a.run.seed,
        a.input_size
            .map(|s| format!(" --input-size {s}"))
            .unwrap_or_default(),
        a.init
            .as_ref()
            .map(|p| format!(" --init {}", p.display()))
            .unwrap_or_default(),
        a.run.tiny.map(|t| format!(" --tiny {t}")).unwrap_or_default(),
        a.run.pbc.limit.map(|l| format!(" --limit {l}")).unwrap_or_default(),
        if a.any_microscope {
            " --any-microscope"
        } else {
            ""
        },
        a.distil
            .map(|d| format!(" --distil {d}"))
            .unwrap_or_default(),
        args.run.display()
    );
    // A second-stage run (`--init`) records the run it started from, so the card tells the
    // whole training and its total time; weights from outside a run folder have no record.
    let first_stage = match &a.init {
        Some(init) => {
            let folder = init.parent().unwrap_or(Path::new("."));
            let record = folder.join("state.json");
            if record.exists() {
                let first: RunState = serde_json::from_slice(&std::fs::read(&record)?)
                    .with_context(|| format!("parsing {}", record.display()))?;
                let secs: f64 = first.history.iter().map(|e| e.seconds).sum();
                Some(json!({
                    "run": folder,
                    "input_size": first.config.input_size,
                    "epochs_run": first.epoch,
                    "best_epoch": first.best_epoch,
                    "best_val_mean_attribute_macro_f1": first.best_val,
                    "total_training_seconds": secs,
                    "train": format!(
                        "wbc train --epochs {} --batch {} --lr {} --weight-decay {} --seed {} --out {}",
                        first.args.epochs, first.args.batch, first.args.lr, first.args.weight_decay, first.args.run.seed, folder.display()
                    ),
                }))
            } else if let Some(card) = std::fs::read(init.with_extension("json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                // Shipped weights: their card tells how they were made.
                let secs = card["training"]["total_training_seconds_all_stages"]
                    .as_f64()
                    .unwrap_or(0.0);
                Some(json!({
                    "weights": init,
                    "card_commit": card["commit"],
                    "card_training": card["training"],
                    "total_training_seconds": secs,
                }))
            } else {
                eprintln!(
                    "{} has no state.json: the card cannot tell the first stage",
                    folder.display()
                );
                None
            }
        }
        None => None,
    };
    let first_stage_secs = first_stage
        .as_ref()
        .and_then(|f| f["total_training_seconds"].as_f64())
        .unwrap_or(0.0);
    let card = ModelCard {
        name: "attribute_net".into(),
        description: "Compact CNN trained from scratch: 11 WBCAtt attribute heads + 5-way cell type, sharing one backbone.".into(),
        config: state.config.clone(),
        input_size: size,
        parameters: net.num_params(),
        flops_per_cell: state.config.flops(),
        bytes: bytes.len(),
        weights_sha256: Some(wbc_nets::card::sha256_hex(&bytes)),
        weights_dtype: "f16 (conv, linear); f32 batch-norm statistics".into(),
        data: Some("PBC (Acevedo et al. 2020) with WBCAtt labels".into()),
        split: Some("official WBCAtt split: trained on train (6,169), epoch chosen on val (1,030), reported on test (3,099)".into()),
        training: json!({
            "epochs_run": state.epoch,
            "best_epoch": state.best_epoch,
            "best_val_mean_attribute_macro_f1": state.best_val,
            "seconds_per_epoch_mean": secs.iter().sum::<f64>() / secs.len().max(1) as f64,
            "total_training_seconds": secs.iter().sum::<f64>(),
            "machine": "2 CPU cores, Burn flex backend",
            "first_stage": first_stage,
            "total_training_seconds_all_stages": first_stage_secs + secs.iter().sum::<f64>(),
            "history": epochs.iter().map(|e| json!({"epoch": e.epoch, "train_loss": e.train_loss, "seconds": e.seconds, "val_mean_attribute_macro_f1": e.val.mean_attribute_macro_f1, "val_cell_type_accuracy": e.val.cell_type_accuracy})).collect::<Vec<_>>(),
        }),
        metrics: json!({
            "test": report,
            "test_without_logit_adjustment": unadjusted.map(|u| json!({
                "mean_attribute_macro_f1": u.scores.mean_attribute_macro_f1,
                "per_attribute_macro_f1": u.scores.attributes.iter().map(|(k, v)| (k.clone(), v.macro_f1)).collect::<std::collections::BTreeMap<_, _>>(),
            })),
            "logit_adjustment": adjustment,
            "test_f32_weights": {
                "mean_attribute_macro_f1": f32_report.scores.mean_attribute_macro_f1,
                "cell_type_accuracy": f32_report.scores.cell_type_accuracy,
            },
            "val": {
                "mean_attribute_macro_f1": val.scores.mean_attribute_macro_f1,
                "cell_type_accuracy": val.scores.cell_type_accuracy,
            },
        }),
        commands: json!({
            "train": train_cmd,
            "export": format!("wbc export --run {} --out {}{}{}", args.run.display(), args.out.display(), if args.logit_adjustment { " --logit-adjustment" } else { "" }, args.refresh_bn.map(|n| format!(" --refresh-bn {n}")).unwrap_or_default()),
            "evaluate": format!("wbc evaluate --model {} --split test", args.out.display()),
        }),
        commit: cards::git_commit(),
        date: cards::today(),
    };
    std::fs::write(&json_path, serde_json::to_vec_pretty(&card)?)?;
    eprintln!(
        "wrote {} ({} bytes) and {}",
        bpk.display(),
        bytes.len(),
        json_path.display()
    );
    Ok(())
}
