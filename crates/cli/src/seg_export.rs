//! `wbc export-seg`: ship the segmentation network (f16 burnpack + model card) and measure it:
//! per-class IoU against the bootstrap labels on the test split, nucleus and whole-cell IoU on
//! the hand-drawn cellavision100 masks (network and classical labeller side by side), and how
//! well morphometry from its label maps agrees with the WBCAtt attributes.

use crate::models::{git_commit, today};
use crate::train_seg::{score, split_with_labels, SegRunState, SegScores};
use anyhow::{Context, Result};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use image::GrayImage;
use serde_json::json;
use std::path::{Path, PathBuf};
use wbc_core::dataset::LabelledCell;
use wbc_core::metrics::{auc, balanced_accuracy, best_threshold};
use wbc_core::morphometry::{self, Morphometry};
use wbc_core::{preprocess, schema, segmentation};
use wbc_nets::predict::{load_seg_net, save_half, segment};
use wbc_nets::{block_on, SegNet, SegNetConfig, Segmenter};

/// Label maps for morphometry are made at the PBC crop size, where the classical labeller and
/// the size measurements were designed.
const MEASURE_SIDE: usize = 360;

#[derive(clap::Args, Debug)]
pub struct ExportSegArgs {
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// Run folder of `wbc train-seg`.
    #[arg(long, default_value = "runs/seg_net")]
    pub run: PathBuf,
    /// Output stem: writes <stem>.bpk and <stem>.json.
    #[arg(long, default_value = "models/seg_net")]
    pub out: PathBuf,
    #[arg(long, default_value = "target/wbc-cache")]
    pub cache: PathBuf,
    /// Only the first N cells of each split (pipeline tests).
    #[arg(long)]
    pub limit: Option<usize>,
}

/// The segmentation model card.
pub type SegCard = wbc_nets::ModelCard<SegNetConfig>;

/// Load a shipped segmentation network (`<stem>.json` card + `<stem>.bpk` f16 weights).
pub fn load(stem: &Path, device: &Device) -> Result<(SegNet, SegCard)> {
    let card: SegCard = crate::models::read_any_card(stem)?;
    let bytes = std::fs::read(stem.with_extension("bpk"))
        .with_context(|| format!("reading {}.bpk", stem.display()))?;
    Ok((load_seg_net(&card.config, bytes, device)?, card))
}

/// The pipeline's label map of an image at the image's own size: the segmenter sees the
/// centre square (as in the page); outside it the map says "other".
pub fn full_size_labels(
    segmenter: &Segmenter,
    img: &image::RgbImage,
    device: &Device,
) -> Result<GrayImage> {
    let square = preprocess::center_square(img);
    let side = square.width();
    let map = block_on(segmenter.label_square(&square, None, side, device))?;
    let (w, h) = img.dimensions();
    if (w, h) == (side, side) {
        return Ok(map);
    }
    let mut full = GrayImage::new(w, h);
    image::imageops::replace(
        &mut full,
        &map,
        ((w - side) / 2) as i64,
        ((h - side) / 2) as i64,
    );
    Ok(full)
}

/// Mean whole-cell IoU (%) of the network's 360 px maps against the bootstrap maps over a
/// split, raw and after `tidy_cell`.
fn val_whole_cell_iou(
    net: &SegNet,
    split: &crate::train::Split,
    masks: &Path,
    device: &Device,
) -> Result<(f64, f64)> {
    let in_cell = segmentation::is_white_cell;
    let iou = |a: &[u8], b: &[u8]| {
        let (mut inter, mut union) = (0usize, 0usize);
        for (&x, &y) in a.iter().zip(b) {
            inter += (in_cell(x) && in_cell(y)) as usize;
            union += (in_cell(x) || in_cell(y)) as usize;
        }
        if union == 0 {
            100.0
        } else {
            100.0 * inter as f64 / union as f64
        }
    };
    let (mut raw, mut tidy) = (0.0, 0.0);
    let idx: Vec<usize> = (0..split.pixels.len()).collect();
    for chunk in idx.chunks(16) {
        let inputs: Vec<Vec<f32>> = chunk
            .iter()
            .map(|&i| preprocess::normalize(split.pixels.cell(i), split.pixels.size))
            .collect();
        let maps = segment(net, &inputs, split.pixels.size, MEASURE_SIDE, device)?;
        for (&i, mut map) in chunk.iter().zip(maps) {
            let path = masks.join(split.cells[i].img_name.replace(".jpg", ".png"));
            let truth = image::open(&path)
                .with_context(|| format!("{} (run `wbc masks` first)", path.display()))?
                .to_luma8();
            // The maps are the images' centre squares: 360 px, or 366 for the larger images.
            let side = MEASURE_SIDE as u32;
            let truth = if truth.dimensions() == (side, side) {
                truth
            } else {
                image::imageops::resize(&truth, side, side, image::imageops::FilterType::Nearest)
            };
            raw += iou(&map, truth.as_raw());
            segmentation::tidy_cell(&mut map, MEASURE_SIDE, MEASURE_SIDE);
            tidy += iou(&map, truth.as_raw());
        }
    }
    let n = split.pixels.len().max(1) as f64;
    Ok((raw / n, tidy / n))
}

/// Mean nucleus and whole-cell IoU over cellavision100 for a labelling function.
fn cellavision(
    data: &Path,
    mut label: impl FnMut(&image::RgbImage) -> Result<GrayImage>,
) -> Result<serde_json::Value> {
    let dir = data.join("cellavision100");
    let (mut n_sum, mut c_sum, mut count) = (0.0, 0.0, 0usize);
    for id in 1..=100 {
        let name = format!("{id:03}.png");
        let img = image::open(dir.join("images").join(&name))
            .with_context(|| format!("cellavision100 image {name}"))?
            .to_rgb8();
        let truth = image::open(dir.join("masks").join(&name))
            .with_context(|| format!("cellavision100 mask {name}"))?
            .to_luma8();
        let (n, c) = segmentation::cellavision_iou(&label(&img)?, &truth);
        n_sum += n;
        c_sum += c;
        count += 1;
    }
    Ok(json!({
        "images": count,
        "nucleus_iou": n_sum / count as f64,
        "whole_cell_iou": c_sum / count as f64,
    }))
}

/// Morphometry of every cell of a split from the network's label maps.
fn network_morphometry(
    net: &SegNet,
    pixels: &crate::cache::PixelCache,
    device: &Device,
) -> Result<Vec<Morphometry>> {
    let mut out = Vec::with_capacity(pixels.len());
    let idx: Vec<usize> = (0..pixels.len()).collect();
    for chunk in idx.chunks(16) {
        let inputs: Vec<Vec<f32>> = chunk
            .iter()
            .map(|&i| preprocess::normalize(pixels.cell(i), pixels.size))
            .collect();
        for map in segment(net, &inputs, pixels.size, MEASURE_SIDE, device)? {
            let map = GrayImage::from_raw(MEASURE_SIDE as u32, MEASURE_SIDE as u32, map)
                .context("label map size")?;
            out.push(morphometry::measure(&map));
        }
    }
    Ok(out)
}

/// Morphometry from the bootstrap labeller's maps (`wbc masks`).
fn bootstrap_morphometry(masks: &Path, cells: &[LabelledCell]) -> Result<Vec<Morphometry>> {
    cells
        .iter()
        .map(|c| {
            let path = masks.join(c.img_name.replace(".jpg", ".png"));
            let map = image::open(&path)
                .with_context(|| format!("{} (run `wbc masks` first)", path.display()))?
                .to_luma8();
            Ok(morphometry::measure(&map))
        })
        .collect()
}

/// One measurement against one attribute: AUC on test, and the accuracy on test of a
/// threshold chosen on val (balanced accuracy, so the rare class counts).
fn agreement(
    measure: impl Fn(&Morphometry) -> Option<f64>,
    attribute: &str,
    positive: impl Fn(&str) -> bool,
    val: (&[Morphometry], &[LabelledCell]),
    test: (&[Morphometry], &[LabelledCell]),
) -> serde_json::Value {
    let (k, a) = schema::attribute(attribute).expect("schema attribute");
    let pairs = |(m, cells): (&[Morphometry], &[LabelledCell])| -> (Vec<f64>, Vec<bool>) {
        m.iter()
            .zip(cells)
            .filter_map(|(m, c)| measure(m).map(|s| (s, positive(a.values[c.attributes[k]]))))
            .unzip()
    };
    let (vs, vp) = pairs(val);
    let (ts, tp) = pairs(test);
    let threshold = best_threshold(&vs, &vp);
    json!({
        "test_auc": auc(&ts, &tp),
        "threshold_from_val": threshold,
        "test_balanced_accuracy": balanced_accuracy(&ts, &tp, threshold),
        "test_cells_measured": ts.len(),
        "test_cells": test.1.len(),
    })
}

fn all_agreements(
    val: (&[Morphometry], &[LabelledCell]),
    test: (&[Morphometry], &[LabelledCell]),
) -> serde_json::Value {
    json!({
        "nc_area_ratio_vs_nuclear_cytoplasmic_ratio_high": agreement(|m| m.nc_ratio.map(f64::from), "nuclear_cytoplasmic_ratio", |v| v == "high", val, test),
        "diameter_over_red_cell_vs_cell_size_big": agreement(|m| m.cell_to_red_cell.map(f64::from), "cell_size", |v| v == "big", val, test),
        "nucleus_lobes_vs_nucleus_shape_segmented": agreement(|m| Some(m.nucleus_lobes as f64), "nucleus_shape", |v| v.starts_with("segmented"), val, test),
        "vacuole_fraction_vs_cytoplasm_vacuole_yes": agreement(|m| Some(m.vacuole_fraction as f64), "cytoplasm_vacuole", |v| v == "yes", val, test),
    })
}

pub fn export(args: ExportSegArgs) -> Result<()> {
    let state: SegRunState = serde_json::from_slice(
        &std::fs::read(args.run.join("state.json")).context("reading the run's state.json")?,
    )?;
    let device = Device::flex();
    let mut trained = state.config.init(&device);
    trained
        .load_from(&mut BurnpackStore::from_file(args.run.join("best.bpk")))
        .context("loading best.bpk")?;
    let bytes = save_half(&trained)?;
    let size = state.config.input_size;
    // Tidying the central cell is a choice made on val: whole-cell IoU against the bootstrap
    // labels at 360 px, with and without it.
    let val = crate::train::load_split(&args.data, &args.cache, "val", size, args.limit)?;
    let raw_config = SegNetConfig {
        tidy_cell: false,
        ..state.config.clone()
    };
    let raw_net = load_seg_net(&raw_config, bytes.clone(), &device)?;
    let (val_raw, val_tidy) = val_whole_cell_iou(&raw_net, &val, &args.masks, &device)?;
    let config = SegNetConfig {
        tidy_cell: val_tidy > val_raw,
        ..raw_config
    };
    eprintln!(
        "val whole-cell IoU against the bootstrap labels: raw {val_raw:.2}, tidied {val_tidy:.2} → tidy_cell {}",
        config.tidy_cell
    );
    // Everything below measures the shipped (f16) weights, as the card's config runs them.
    let net = raw_net.clone().with_tidy_cell(config.tidy_cell);

    eprintln!("test split against the bootstrap labels…");
    let (test, test_labels) = split_with_labels(
        &args.data,
        &args.masks,
        &args.cache,
        "test",
        size,
        args.limit,
    )?;
    let test_scores: SegScores = score(&net, &test.pixels, &test_labels, &device)?;
    let trained = trained.with_tidy_cell(config.tidy_cell);
    let trained_scores = score(&trained, &test.pixels, &test_labels, &device)?;

    eprintln!("cellavision100…");
    let tidied = Segmenter::Network {
        net: net.clone(),
        size,
    };
    let untidied = Segmenter::Network {
        net: raw_net.clone(),
        size,
    };
    let cv_net = cellavision(&args.data, |img| full_size_labels(&tidied, img, &device))?;
    let cv_raw = cellavision(&args.data, |img| full_size_labels(&untidied, img, &device))?;
    let cv_labeller = cellavision(&args.data, |img| Ok(segmentation::segment(img)))?;

    eprintln!("morphometry against the WBCAtt labels…");
    let net_val = network_morphometry(&net, &val.pixels, &device)?;
    let net_test = network_morphometry(&net, &test.pixels, &device)?;
    let boot_val = bootstrap_morphometry(&args.masks, &val.cells)?;
    let boot_test = bootstrap_morphometry(&args.masks, &test.cells)?;
    let morph_net = all_agreements((&net_val, &val.cells), (&net_test, &test.cells));
    let morph_boot = all_agreements((&boot_val, &val.cells), (&boot_test, &test.cells));

    let best = state.history.get(state.best_epoch.saturating_sub(1));
    let card = SegCard {
        name: "seg_net".into(),
        description: "Compact encoder-decoder labelling each pixel of a cell crop as other, cytoplasm, nucleus, platelet, red blood cell or vacuole. Trained from scratch on the classical labeller's maps of the PBC train split (the WBCAtt+ masks are not public), with zoom and stain-tint augmentation (with --stain-jitter, see training.args: also stain strength and a wider zoom) and, where the config says centre_prior, the distance from the image centre as a fourth input channel; epochs selected on val mIoU.".into(),
        config: config.clone(),
        input_size: size,
        parameters: net.parameter_count(),
        flops_per_cell: state.config.flops(),
        bytes: bytes.len(),
        weights_dtype: "f16 (conv weights; BatchNorm statistics f32)".into(),
        data: Some("PBC train split, labelled by the classical labeller (`wbc masks`)".into()),
        split: Some("official WBCAtt split: trained on train, epoch chosen on val, scored on test".into()),
        training: json!({
            "epochs": state.epoch,
            "best_epoch": state.best_epoch,
            "best_val": best.map(|b| &b.val),
            "seconds": state.history.iter().map(|h| h.seconds).sum::<f64>(),
            "args": state.args,
        }),
        metrics: json!({
            "test_vs_bootstrap_labels_at_input_size": test_scores,
            "test_vs_bootstrap_labels_f32_weights": {"miou": trained_scores.miou},
            "f16_cost_miou": trained_scores.miou - test_scores.miou,
            "cellavision100": {
                "note": "hand-drawn masks, another stain and scale than PBC; not used for tuning",
                "network": cv_net,
                "network_without_tidy_cell": cv_raw,
                "classical_labeller": cv_labeller,
            },
            "tidy_cell_choice_on_val": {
                "note": "mean whole-cell IoU (nucleus ∪ cytoplasm ∪ vacuole) per val cell against the bootstrap labels, label maps at 360 px; tidy_cell is on when it is higher",
                "raw": val_raw,
                "tidied": val_tidy,
                "tidy_cell": config.tidy_cell,
            },
            "morphometry_vs_wbcatt": {
                "note": "AUC (%) of each measurement for the attribute on the test split, and the test balanced accuracy of a threshold chosen on val; label maps at 360 px",
                "network": morph_net,
                "classical_labeller": morph_boot,
            },
        }),
        commands: json!({
            "masks": "cargo run --release -p wbc -- masks",
            "train": format!(
                "cargo run --release -p wbc -- train-seg --epochs {} --batch {} --lr {} --seed {}{} --out {}",
                state.args.epochs,
                state.args.batch,
                state.args.lr,
                state.args.seed,
                if state.args.stain_jitter { " --stain-jitter" } else { "" },
                args.run.display()
            ),
            "export_and_evaluate": format!(
                "cargo run --release -p wbc -- export-seg --run {} --out {}",
                args.run.display(), args.out.display()
            ),
        }),
        commit: git_commit(),
        date: today(),
    };
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(args.out.with_extension("bpk"), &bytes)?;
    std::fs::write(
        args.out.with_extension("json"),
        serde_json::to_vec_pretty(&card)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&card.metrics)?);
    eprintln!(
        "wrote {} ({} bytes) and its card",
        args.out.with_extension("bpk").display(),
        bytes.len()
    );
    Ok(())
}
