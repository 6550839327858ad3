//! `wbc export-seg`: ship the segmentation network (f16 burnpack + model card) and measure it:
//! per-class IoU against the bootstrap labels on the test split, nucleus and whole-cell IoU on
//! the hand-drawn cellavision100 masks (network and classical labeller side by side), and how
//! well morphometry from its label maps agrees with the WBCAtt attributes.

use super::train_seg::SegRunState;
use anyhow::{Context, Result};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::Device;
use image::GrayImage;
use serde_json::json;
use std::path::{Path, PathBuf};
use wbc_core::dataset::LabelledCell;
use wbc_core::metrics::{auc, balanced_accuracy, best_threshold};
use wbc_core::morphometry::{self, Morphometry};
use wbc_core::segmentation::TidyParams;
use wbc_core::{schema, segmentation};
use wbc_lab::cards::{git_commit, today, SegCard};
use wbc_lab::data::PbcArgs;
use wbc_lab::scoring::{score_segmentation, SegScores};
use wbc_nets::predict::{load_seg_net, save_half, segment};
use wbc_nets::{block_on, SegNet, SegNetConfig, Segmenter};

/// Label maps for morphometry are made at the PBC crop size, where the classical labeller and
/// the size measurements were designed.
const MEASURE_SIDE: usize = 360;

#[derive(clap::Args, Debug)]
pub struct ExportSegArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// Run folder of `wbc train-seg`.
    #[arg(long, default_value = "runs/seg_net")]
    pub run: PathBuf,
    /// Output stem: writes <stem>.bpk and <stem>.json.
    #[arg(long, default_value = "models/seg_net")]
    pub out: PathBuf,
}

/// The network's raw (untidied) 360 px label maps of a split, each beside its bootstrap map.
fn maps_beside_labels(
    net: &SegNet,
    split: &wbc_lab::data::Split,
    masks: &Path,
    device: &Device,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut pairs = Vec::with_capacity(split.pixels.len());
    for (chunk, inputs) in split.pixels.input_batches(16) {
        let maps = segment(net, &inputs, split.pixels.size, MEASURE_SIDE, device)?;
        for (i, map) in chunk.zip(maps) {
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
            pairs.push((map, truth.into_raw()));
        }
    }
    Ok(pairs)
}

/// Mean whole-cell IoU (%) of the maps against their bootstrap maps, after tidying with
/// `tidy` (`None`: as the network drew them). Tidies on every core.
fn mean_whole_cell_iou(pairs: &[(Vec<u8>, Vec<u8>)], tidy: Option<TidyParams>) -> f64 {
    let in_cell = segmentation::is_white_cell;
    let iou = |(map, truth): &(Vec<u8>, Vec<u8>)| {
        let mut map = map.clone();
        if let Some(p) = tidy {
            segmentation::tidy_cell_with(&mut map, MEASURE_SIDE, MEASURE_SIDE, p);
        }
        let (mut inter, mut union) = (0usize, 0usize);
        for (&x, &y) in map.iter().zip(truth) {
            inter += (in_cell(x) && in_cell(y)) as usize;
            union += (in_cell(x) || in_cell(y)) as usize;
        }
        if union == 0 {
            100.0
        } else {
            100.0 * inter as f64 / union as f64
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let part = pairs.len().div_ceil(threads).max(1);
    let sum: f64 = std::thread::scope(|s| {
        let handles: Vec<_> = pairs
            .chunks(part)
            .map(|c| s.spawn(move || c.iter().map(iou).sum::<f64>()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("tidy thread"))
            .sum()
    });
    sum / pairs.len().max(1) as f64
}

/// The lobe reaches (px at 360) and waist gains the tidy sweep tries. The first of each is
/// the default, so a tie keeps it; a waist gain of 1 never gives a piece away.
const LOBE_REACHES: [f32; 6] = [40.0, 22.0, 30.0, 50.0, 60.0, 70.0];
const WAIST_GAINS: [f32; 7] = [0.03, 1.0, 0.0, 0.02, 0.04, 0.07, 0.1];

/// Choose on val whether and how to tidy the network's maps: mean whole-cell IoU against the
/// bootstrap labels at 360 px, untidied, then over the lobe reach (at the default waist
/// gain), then over the waist gain at the chosen reach. Returns the choice (`None`: do not
/// tidy) and the sweep for the card.
fn tidy_sweep(pairs: &[(Vec<u8>, Vec<u8>)]) -> (Option<TidyParams>, serde_json::Value) {
    let untidied = mean_whole_cell_iou(pairs, None);
    eprintln!("  untidied: {untidied:.3}");
    let mut best = (TidyParams::default(), f64::NEG_INFINITY);
    let sweep = |params: TidyParams, best: &mut (TidyParams, f64)| {
        // The waist sweep starts at the reach sweep's winner, already scored.
        if params == best.0 && best.1.is_finite() {
            return best.1;
        }
        let score = mean_whole_cell_iou(pairs, Some(params));
        eprintln!("  {params:?}: {score:.3}");
        if score > best.1 {
            *best = (params, score);
        }
        score
    };
    let reaches: Vec<(f32, f64)> = LOBE_REACHES
        .iter()
        .map(|&lobe_reach| {
            let p = TidyParams {
                lobe_reach,
                ..TidyParams::default()
            };
            (lobe_reach, sweep(p, &mut best))
        })
        .collect();
    let gains: Vec<(f32, f64)> = WAIST_GAINS
        .iter()
        .map(|&waist_gain| {
            let p = TidyParams {
                waist_gain,
                ..best.0
            };
            (waist_gain, sweep(p, &mut best))
        })
        .collect();
    let chosen = (best.1 > untidied).then_some(best.0);
    let record = json!({
        "rule": "mean whole-cell IoU against the bootstrap labels on val at 360 px; lobe reach swept at the default waist gain, then waist gain at the best reach; ties keep the default (listed first); tidy only if it beats the untidied maps",
        "untidied": untidied,
        "lobe_reach": reaches,
        "waist_gain": gains,
        "chosen": chosen,
        "command": "wbc tidy-sweep (export-seg runs the same sweep)",
        "commit": git_commit(),
    });
    (chosen, record)
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
    pixels: &wbc_lab::data::PixelCache,
    device: &Device,
) -> Result<Vec<Morphometry>> {
    let mut out = Vec::with_capacity(pixels.len());
    for (_, inputs) in pixels.input_batches(16) {
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

#[derive(clap::Args, Debug)]
pub struct TidySweepArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// The shipped segmentation network (stem of its .json card and .bpk weights): the sweep's
    /// choice and record are written into this card; the weights stay as they are.
    #[arg(long, default_value = "models/seg_net")]
    pub model: PathBuf,
}

/// Rerun the tidy sweep of `export-seg` on a shipped network and write its choice and
/// record into the card.
pub fn tidy_sweep_card(args: TidySweepArgs) -> Result<()> {
    let device = Device::flex();
    let (net, mut card) = wbc_lab::cards::seg_net(&args.model, &device)?;
    let val = args.pbc.split("val", card.config.input_size)?;
    eprintln!("tidy sweep on {} val cells…", val.cells.len());
    let pairs = maps_beside_labels(&net.with_tidy(None), &val, &args.masks, &device)?;
    let (tidy, sweep) = tidy_sweep(&pairs);
    card.config.tidy_cell = tidy.is_some();
    card.config.tidy = tidy.unwrap_or_default();
    card.metrics["tidy_sweep_on_val"] = sweep;
    if let Some(m) = card.metrics.as_object_mut() {
        m.remove("tidy_cell_choice_on_val");
    }
    card.commands["tidy_sweep"] = json!(format!(
        "cargo run --release -p wbc -- tidy-sweep --model {}",
        args.model.display()
    ));
    let path = args.model.with_extension("json");
    std::fs::write(&path, serde_json::to_string_pretty(&card)? + "\n")?;
    println!(
        "tidy_cell {} with {:?}: written to {}",
        card.config.tidy_cell,
        card.config.tidy,
        path.display()
    );
    Ok(())
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
    // Tidying the central cell, and how, is a choice made on val: whole-cell IoU against the
    // bootstrap labels at 360 px (`tidy_sweep`).
    let val = args.pbc.split("val", size)?;
    let raw_config = SegNetConfig {
        tidy_cell: false,
        ..state.config.clone()
    };
    let raw_net = load_seg_net(&raw_config, bytes.clone(), &device)?;
    eprintln!("tidy sweep on val…");
    let pairs = maps_beside_labels(&raw_net, &val, &args.masks, &device)?;
    let (tidy, sweep) = tidy_sweep(&pairs);
    drop(pairs);
    let config = SegNetConfig {
        tidy_cell: tidy.is_some(),
        tidy: tidy.unwrap_or_default(),
        ..raw_config
    };
    eprintln!("→ tidy_cell {}, {:?}", config.tidy_cell, config.tidy);
    // Everything below measures the shipped (f16) weights, as the card's config runs them.
    let net = raw_net.clone().with_tidy(tidy);

    eprintln!("test split against the bootstrap labels…");
    let (test, test_labels) = args.pbc.split_with_labels(&args.masks, "test", size)?;
    let test_scores: SegScores = score_segmentation(&net, &test.pixels, &test_labels, &device)?;
    let trained = trained.with_tidy(tidy);
    let trained_scores = score_segmentation(&trained, &test.pixels, &test_labels, &device)?;

    eprintln!("cellavision100…");
    let tidied = Segmenter::Network {
        net: net.clone(),
        size,
    };
    let untidied = Segmenter::Network {
        net: raw_net.clone(),
        size,
    };
    let cv_net = cellavision(&args.pbc.data, |img| {
        Ok(block_on(tidied.label_image(img, &device))?)
    })?;
    let cv_raw = cellavision(&args.pbc.data, |img| {
        Ok(block_on(untidied.label_image(img, &device))?)
    })?;
    let cv_labeller = cellavision(&args.pbc.data, |img| Ok(segmentation::segment(img)))?;

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
        description: "Compact encoder-decoder labelling each pixel of a cell crop as other, cytoplasm, nucleus, platelet, red blood cell or vacuole. Trained from scratch on the classical labeller's maps of the PBC train split (the WBCAtt+ masks are not public), with zoom and stain-tint augmentation (with --stain-jitter, see training.args: also stain strength and a wider zoom; with --any-microscope: zoom 0.5-2x padded with background, lamp colours other than PBC's pink, stain density and hue, turns by any angle, blur and noise) and, where the config says centre_prior, the distance from the image centre as a fourth input channel; epochs selected on val mIoU.".into(),
        config: config.clone(),
        input_size: size,
        parameters: net.parameter_count(),
        flops_per_cell: state.config.flops(),
        bytes: bytes.len(),
        weights_sha256: Some(wbc_nets::card::sha256_hex(&bytes)),
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
            "tidy_sweep_on_val": sweep,
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
                state.args.run.seed,
                if state.args.any_microscope {
                    " --any-microscope"
                } else if state.args.stain_jitter {
                    " --stain-jitter"
                } else {
                    ""
                },
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

#[derive(clap::Args, Debug)]
pub struct SegShiftsArgs {
    /// Folder holding pbc/ and wbcatt/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Bootstrap label maps written by `wbc masks`.
    #[arg(long, default_value = "target/wbc-masks")]
    pub masks: PathBuf,
    /// The segmentation network (stem of its .json card and .bpk weights): the record is
    /// written into this card.
    #[arg(long, default_value = "models/seg_net")]
    pub model: PathBuf,
    /// Val cells scored, evenly spread over the split (every type).
    #[arg(long, default_value_t = 300)]
    pub cells: usize,
}

/// Nucleus and whole-cell IoU (%) of a label map against a bootstrap map of the same size.
fn nucleus_and_cell_iou(map: &[u8], truth: &[u8]) -> (f64, f64) {
    let iou = |hit: &dyn Fn(u8) -> bool| {
        let (mut inter, mut union) = (0usize, 0usize);
        for (&p, &t) in map.iter().zip(truth) {
            inter += (hit(p) && hit(t)) as usize;
            union += (hit(p) || hit(t)) as usize;
        }
        if union == 0 {
            100.0
        } else {
            100.0 * inter as f64 / union as f64
        }
    };
    (
        iou(&|l| l == segmentation::NUCLEUS),
        iou(&segmentation::is_white_cell),
    )
}

/// The segmenter on val cells as they are and under each synthetic shift (rescaled 0.6× and
/// 1.6×, recoloured, blurred, JPEG q20): nucleus and whole-cell IoU against the bootstrap
/// maps, the rescaled views' maps mapped back onto the original square. This is what decides
/// whether a segmenter trained for other microscopes ships; the external sets only report.
pub fn val_under_shifts(
    segmenter: &Segmenter,
    data: &Path,
    masks: &Path,
    cells: usize,
    device: &Device,
) -> Result<serde_json::Value> {
    use wbc_lab::shifts::{shift_placed, SHIFTS};
    let val = wbc_core::dataset::read_csv(&wbc_core::dataset::split_csv(data, "val"))?;
    let step = (val.len() as f64 / cells.clamp(1, val.len().max(1)) as f64).max(1.0);
    let chosen: Vec<&LabelledCell> = (0..cells.min(val.len()))
        .map(|i| &val[(i as f64 * step) as usize])
        .collect();
    let mut rng = wbc_lab::rng::Rng::new(17);
    // Sums of (nucleus, whole cell) per view: the clean view first, then each shift.
    let mut sums = vec![(0.0f64, 0.0f64); SHIFTS.len() + 1];
    let bar = wbc_lab::data::progress(chosen.len() as u64, "val cells under shifts");
    for cell in &chosen {
        let path = data.join("pbc").join(&cell.path);
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let square = wbc_core::preprocess::center_square(&wbc_core::preprocess::decode(&bytes)?);
        let side = square.width();
        let mask = masks.join(cell.img_name.replace(".jpg", ".png"));
        let truth = image::open(&mask)
            .with_context(|| format!("{} (run `wbc masks` first)", mask.display()))?
            .to_luma8();
        let truth = if truth.dimensions() == (side, side) {
            truth
        } else {
            image::imageops::resize(&truth, side, side, image::imageops::FilterType::Nearest)
        };
        let clean = block_on(segmenter.label_image(&square, device))?;
        let mut scores = vec![nucleus_and_cell_iou(clean.as_raw(), truth.as_raw())];
        for s in SHIFTS {
            let (view, placement) = shift_placed(&square, s, &mut rng)?;
            let map = block_on(segmenter.label_image(&view, device))?;
            let map = match placement {
                Some(p) => p.labels_to_image(&map, side, side),
                None => map,
            };
            scores.push(nucleus_and_cell_iou(map.as_raw(), truth.as_raw()));
        }
        for (sum, (n, c)) in sums.iter_mut().zip(scores) {
            sum.0 += n;
            sum.1 += c;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n = chosen.len().max(1) as f64;
    let view = |(a, b): (f64, f64)| json!({"nucleus_iou": a / n, "whole_cell_iou": b / n});
    let shifted = &sums[1..];
    let mean = |f: &dyn Fn(&(f64, f64)) -> f64| {
        shifted.iter().map(f).sum::<f64>() / (n * shifted.len() as f64)
    };
    let per_shift: serde_json::Map<String, serde_json::Value> = SHIFTS
        .iter()
        .zip(shifted)
        .map(|(s, &v)| (s.name(), view(v)))
        .collect();
    Ok(json!({
        "note": "val cells against the bootstrap maps, as they are and under synthetic shifts; rescaled views mapped back onto the original square",
        "cells": chosen.len(),
        "clean": view(sums[0]),
        "shifted_mean": {
            "nucleus_iou": mean(&|v| v.0),
            "whole_cell_iou": mean(&|v| v.1),
        },
        "per_shift": per_shift,
        "commit": git_commit(),
    }))
}

/// Score a segmentation network on val under synthetic shifts and record it in its card.
pub fn seg_shifts_card(args: SegShiftsArgs) -> Result<()> {
    let device = Device::flex();
    let (net, mut card) = wbc_lab::cards::seg_net(&args.model, &device)?;
    let segmenter = Segmenter::Network {
        net,
        size: card.input_size,
    };
    let record = val_under_shifts(&segmenter, &args.data, &args.masks, args.cells, &device)?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    card.metrics["val_under_shifts"] = record;
    card.commands["val_under_shifts"] = json!(format!(
        "cargo run --release -p wbc -- seg-shifts --model {} --cells {}",
        args.model.display(),
        args.cells
    ));
    let path = args.model.with_extension("json");
    std::fs::write(&path, serde_json::to_string_pretty(&card)? + "\n")?;
    eprintln!("written to {}", path.display());
    Ok(())
}
