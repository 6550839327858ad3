//! `wbc counterfactual-images`: the "show me" edits (`wbc_core::edit`) on PBC test cells, each
//! edited square analysed again by the page's whole pipeline. The report says, per kind of
//! edit, how often the attribute network's answer for the edited attribute moves to the value
//! asked, how often the segmentation's measurement moves the right way, how far the other
//! attributes' probabilities move, and how many edited cells stay familiar; and, for cells
//! the network calls lymphocytes or monocytes, where the type flips as the cell or its nucleus
//! is scaled in the page's slider steps, each way over ×0.5–2: at what factor, to what type,
//! whether the edited cell is still familiar there, and how many cells flip within each
//! candidate slider range (the page's range is chosen on val by the rule in the report). A
//! contact sheet of before/after pairs goes to `docs/`.
//!
//! The cytoplasm's target stains are measured here on PBC train: the mean optical density of
//! the cytoplasm of cells labelled with each cytoplasm colour and each granule colour.

use anyhow::{Context, Result};
use burn::tensor::Device;
use image::{imageops, RgbImage};
use serde::Serialize;
use std::path::PathBuf;
use wbc_core::dataset::{read_csv, split_csv, LabelledCell};
use wbc_core::edit::{
    apply, counts_by_type, mean_density, with_type, Edit, TargetStains, RARE_WITH_TYPE,
    SLIDER_RANGE, SLIDER_STEP,
};
use wbc_core::metrics::argmax;
use wbc_core::segmentation::CYTOPLASM;
use wbc_core::{ATTRIBUTES, CELL_TYPES};
use wbc_lab::cards;
use wbc_nets::{block_on, Analyzer, CellAnalysis};

#[derive(clap::Args, Debug)]
pub struct CounterfactualImagesArgs {
    /// Folder holding pbc/ and wbcatt/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub pipeline: cards::PipelineArgs,
    /// The split whose cells are edited (the report is on test; val for trying edits).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Cells edited (spread over the split).
    #[arg(long, default_value_t = 100)]
    pub cells: usize,
    /// PBC train cells per attribute value for the target stains.
    #[arg(long, default_value_t = 40)]
    pub stain_cells: usize,
    #[arg(long, default_value = "models/counterfactual_images.json")]
    pub out: PathBuf,
    #[arg(long, default_value = "docs/counterfactual_images.jpg")]
    pub sheet: PathBuf,
    /// The target stains for the page.
    #[arg(long, default_value = "models/edit_stains.json")]
    pub stains: PathBuf,
    /// Every edit's outcome, one JSON object per line.
    #[arg(long, default_value = "target/counterfactual_images_edits.jsonl")]
    pub edits: PathBuf,
}

const CELL_SIZE: usize = 0;
const NC_RATIO: usize = 3;
const VACUOLE: usize = 5;
const CYTOPLASM_COLOUR: usize = 7;
const GRANULE_COLOUR: usize = 9;

/// The linear scale that turns a "big" cell small and back (and the nucleus for N:C).
const SHRINK: f32 = 0.75;
const GROW: f32 = 1.33;

/// One edit of one cell and what the pipeline then said.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    kind: &'static str,
    /// How strong the edit that got there was (the scale, or the colour's strength).
    strength: f32,
    cell: String,
    attribute: &'static str,
    from: &'static str,
    to: &'static str,
    /// The attribute network's answer for the edited attribute is the value asked.
    moved: bool,
    /// The segmentation's measurement moved the way asked (size and N:C only).
    measured: Option<bool>,
    /// Mean over the other attributes of how far their probabilities moved (total
    /// variation, points).
    off_target: f32,
    /// The edited cell carries no "unlike the training images".
    familiar: bool,
    type_before: &'static str,
    type_after: &'static str,
    /// WBCAtt shows the value asked in at least 5% of PBC train cells of the type the
    /// network saw before the edit (else it has had nothing to learn that combination from).
    supported: bool,
}

/// Per kind of edit.
#[derive(Debug, Clone, Serialize)]
struct Summary {
    kind: &'static str,
    edits: usize,
    moved_percent: f64,
    /// The median strength at which the moved ones got there.
    strength_median: Option<f32>,
    measured_percent: Option<f64>,
    off_target_points: f64,
    familiar_percent: f64,
    type_changed_percent: f64,
    /// The same over the edits WBCAtt supports (`Outcome::supported`).
    supported_edits: usize,
    supported_moved_percent: f64,
    supported_off_target_points: f64,
    supported_familiar_percent: f64,
}

fn analyse(analyzer: &Analyzer, image: &RgbImage) -> Result<CellAnalysis> {
    Ok(block_on(analyzer.analyse(image, || 0.0))?)
}

fn unlike(a: &CellAnalysis) -> bool {
    a.familiarity
        .as_ref()
        .is_some_and(|f| f.reasons.iter().any(|r| r.is_unlike_training()))
}

/// Mean total-variation distance (points) of every attribute but `k`.
fn off_target(before: &CellAnalysis, after: &CellAnalysis, k: usize) -> f32 {
    let moved: Vec<f32> = (0..ATTRIBUTES.len())
        .filter(|&j| j != k)
        .map(|j| {
            let (a, b) = (
                &before.prediction.attributes[j],
                &after.prediction.attributes[j],
            );
            50.0 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>()
        })
        .collect();
    moved.iter().sum::<f32>() / moved.len() as f32
}

fn value(a: &CellAnalysis, k: usize) -> usize {
    argmax(&a.prediction.attributes[k])
}

fn load(data: &std::path::Path, cell: &LabelledCell) -> Result<RgbImage> {
    let path = data.join("pbc").join(&cell.path);
    let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
    Ok(wbc_core::preprocess::decode(&bytes)?)
}

/// The cytoplasm's mean optical density over train cells labelled with each value of
/// attribute `k` (`None` for a value without cells).
fn target_stains(
    analyzer: &Analyzer,
    data: &std::path::Path,
    train: &[LabelledCell],
    k: usize,
    per_value: usize,
) -> Result<Vec<Option<[f32; 3]>>> {
    let mut out = Vec::new();
    for v in 0..ATTRIBUTES[k].values.len() {
        let of: Vec<&LabelledCell> = train.iter().filter(|c| c.attributes[k] == v).collect();
        let picked: Vec<&LabelledCell> = (0..per_value.min(of.len()))
            .map(|i| of[i * of.len() / per_value.min(of.len()).max(1)])
            .collect();
        let mut sum = [0.0f32; 3];
        let mut n = 0;
        for cell in picked {
            let a = analyse(analyzer, &load(data, cell)?)?;
            if let Some(d) = mean_density(&a.shown, &a.labels, CYTOPLASM) {
                for c in 0..3 {
                    sum[c] += d[c];
                }
                n += 1;
            }
        }
        out.push((n > 0).then(|| sum.map(|s| s / n as f32)));
    }
    Ok(out)
}

/// The steps of a walk in the direction of `edit`: scales 0.9 down to 0.5 or 1.1 up to 1.6;
/// a colour moved 1 to 4 times the way to its target; vacuoles at once.
fn steps(edit: &Edit) -> Vec<Edit> {
    let scales = |factor: f32| -> Vec<f32> {
        if factor < 1.0 {
            (1..=5).map(|i| 1.0 - 0.1 * i as f32).collect()
        } else {
            (1..=6).map(|i| 1.0 + 0.1 * i as f32).collect()
        }
    };
    match *edit {
        Edit::Size { factor } => scales(factor)
            .into_iter()
            .map(|factor| Edit::Size { factor })
            .collect(),
        Edit::Nucleus { factor } => scales(factor)
            .into_iter()
            .map(|factor| Edit::Nucleus { factor })
            .collect(),
        Edit::Ring { factor } => scales(factor)
            .into_iter()
            .map(|factor| Edit::Ring { factor })
            .collect(),
        Edit::Cytoplasm { target, .. } => (1..=4)
            .map(|s| Edit::Cytoplasm {
                target,
                strength: s as f32,
            })
            .collect(),
        Edit::Vacuoles { add } => vec![Edit::Vacuoles { add }],
    }
}

fn strength(edit: &Edit) -> f32 {
    match *edit {
        Edit::Size { factor } | Edit::Nucleus { factor } | Edit::Ring { factor } => factor,
        Edit::Cytoplasm { strength, .. } => strength,
        Edit::Vacuoles { .. } => 1.0,
    }
}

/// Candidate slider ranges (low, high), narrowest first, judged on val by the rule in the
/// report.
const CANDIDATE_RANGES: [(f32, f32); 3] = [(0.6, 1.5), (0.55, 1.75), (0.5, 2.0)];
/// The range the report walks, in length: the widest candidate, so every candidate for the
/// page's range (`SLIDER_RANGE`) is judged inside it.
const WALK: (f32, f32) = CANDIDATE_RANGES[CANDIDATE_RANGES.len() - 1];

/// Where the type flips as one slider walks away from 1 in the page's steps, each way: the
/// first factor at which the network's type is no longer what it was, and whether the edited
/// cell is still familiar there.
#[derive(Serialize, Clone, Copy)]
struct Flip {
    factor: f32,
    familiar: bool,
    /// The type the network gives there.
    to: &'static str,
}

fn walk_flips(analyzer: &Analyzer, a: &CellAnalysis, nucleus: bool) -> Result<[Option<Flip>; 2]> {
    let before = argmax(&a.prediction.cell_type);
    let mut out = [None, None];
    for (way, end) in [WALK.1, WALK.0].into_iter().enumerate() {
        let sign = if way == 0 { 1.0 } else { -1.0 };
        for step in 1.. {
            let factor = 1.0 + sign * SLIDER_STEP * step as f32;
            if (sign > 0.0 && factor > end + 1e-4) || (sign < 0.0 && factor < end - 1e-4) {
                break;
            }
            let edit = if nucleus {
                Edit::Nucleus { factor }
            } else {
                Edit::Size { factor }
            };
            let b = analyse(analyzer, &apply(&a.shown, &a.labels, &edit))?;
            let after = argmax(&b.prediction.cell_type);
            if after != before {
                out[way] = Some(Flip {
                    factor,
                    familiar: !unlike(&b),
                    to: CELL_TYPES[after],
                });
                break;
            }
        }
    }
    Ok(out)
}

/// Whether a cell's type flips on a slider limited to `range`, still familiar there (to
/// `only` when given).
fn flips_within(f: &[Option<Flip>; 2], range: (f32, f32), only: Option<&str>) -> bool {
    let inside = |x: &Option<Flip>, ok: &dyn Fn(f32) -> bool| {
        x.is_some_and(|x| x.familiar && ok(x.factor) && only.is_none_or(|t| t == x.to))
    };
    inside(&f[0], &|v| v <= range.1 + 1e-4) || inside(&f[1], &|v| v >= range.0 - 1e-4)
}

/// The other side of the lymphocyte–monocyte boundary.
fn across(t: &str) -> &'static str {
    if t == "Lymphocyte" {
        "Monocyte"
    } else {
        "Lymphocyte"
    }
}

pub fn run(args: CounterfactualImagesArgs) -> Result<()> {
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    let train = read_csv(&split_csv(&args.data, "train"))?;
    let stains = |k| target_stains(&analyzer, &args.data, &train, k, args.stain_cells);
    let (cytoplasm_stains, granule_stains) = (stains(CYTOPLASM_COLOUR)?, stains(GRANULE_COLOUR)?);
    eprintln!("target stains measured on PBC train: cytoplasm {cytoplasm_stains:?}, granules {granule_stains:?}");
    let command = format!(
        "cargo run --release -p wbc -- counterfactual-images --split {} --cells {} --stain-cells {}",
        args.split, args.cells, args.stain_cells
    );
    let by_type = counts_by_type(&train);
    let test = read_csv(&split_csv(&args.data, &args.split))?;
    let n = args.cells.min(test.len());
    let cells: Vec<&LabelledCell> = (0..n).map(|i| &test[i * test.len() / n]).collect();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut pairs: Vec<(&'static str, RgbImage, RgbImage)> = Vec::new();
    let mut flips: Vec<(String, &str, [Option<Flip>; 2], [Option<Flip>; 2])> = Vec::new();
    for cell in &cells {
        let a = analyse(&analyzer, &load(&args.data, cell)?)?;
        let mut edits: Vec<(&'static str, usize, usize, Edit)> = Vec::new();
        let size = value(&a, CELL_SIZE);
        // "big" is value 0: a big cell shrinks to small, a small one grows to big.
        let factor = if size == 0 { SHRINK } else { GROW };
        edits.push(("cell size", CELL_SIZE, 1 - size, Edit::Size { factor }));
        let nc = value(&a, NC_RATIO);
        // "low" is value 0: the nucleus grows to make it high.
        let factor = if nc == 0 { GROW } else { SHRINK };
        edits.push((
            "N:C ratio (nucleus)",
            NC_RATIO,
            1 - nc,
            Edit::Nucleus { factor },
        ));
        // The other way to the same N:C: a narrower cytoplasm ring for "high", wider for "low".
        let factor = if nc == 0 { SHRINK } else { GROW };
        edits.push(("N:C ratio (ring)", NC_RATIO, 1 - nc, Edit::Ring { factor }));
        for (kind, k, stains) in [
            ("cytoplasm colour", CYTOPLASM_COLOUR, &cytoplasm_stains),
            ("granule colour", GRANULE_COLOUR, &granule_stains),
        ] {
            let now = value(&a, k);
            if ATTRIBUTES[k].values[now] == "nil" {
                continue;
            }
            for (v, target) in stains.iter().enumerate() {
                if let (true, Some(target)) = (v != now, target) {
                    if ATTRIBUTES[k].values[v] != "nil" {
                        let edit = Edit::Cytoplasm {
                            target: *target,
                            strength: 1.0,
                        };
                        edits.push((kind, k, v, edit));
                    }
                }
            }
        }
        let vac = value(&a, VACUOLE);
        edits.push((
            "vacuoles",
            VACUOLE,
            1 - vac,
            Edit::Vacuoles { add: vac == 0 },
        ));
        for (kind, k, to, edit) in edits {
            // The walk: the edit made stronger step by step until the attribute network
            // gives the value asked, or the range ends (as the page's sliders let a user do).
            let mut walked = None;
            for step in steps(&edit) {
                let edited = apply(&a.shown, &a.labels, &step);
                let b = analyse(&analyzer, &edited)?;
                let moved = value(&b, k) == to;
                walked = Some((step, edited, b));
                if moved {
                    break;
                }
            }
            let Some((edit, edited, b)) = walked else {
                continue;
            };
            let measured = match k {
                CELL_SIZE => a
                    .morphometry
                    .cell_to_red_cell
                    .zip(b.morphometry.cell_to_red_cell)
                    .map(|(x, y)| if to == 1 { y < x } else { y > x }),
                NC_RATIO => a
                    .morphometry
                    .nc_ratio
                    .zip(b.morphometry.nc_ratio)
                    .map(|(x, y)| if to == 1 { y > x } else { y < x }),
                _ => None,
            };
            let moved = value(&b, k) == to;
            let type_before = argmax(&a.prediction.cell_type);
            let supported = with_type(&by_type, type_before, k, to).is_some_and(|w| !w.rare());
            if moved && pairs.iter().filter(|p| p.0 == kind).count() < 3 {
                pairs.push((kind, a.shown.clone(), edited));
            }
            outcomes.push(Outcome {
                kind,
                strength: strength(&edit),
                cell: cell.img_name.clone(),
                attribute: ATTRIBUTES[k].name,
                from: ATTRIBUTES[k].values[value(&a, k)],
                to: ATTRIBUTES[k].values[to],
                moved,
                measured,
                off_target: off_target(&a, &b, k),
                familiar: !unlike(&b),
                type_before: CELL_TYPES[type_before],
                type_after: CELL_TYPES[argmax(&b.prediction.cell_type)],
                supported,
            });
        }
        let t = CELL_TYPES[argmax(&a.prediction.cell_type)];
        if t == "Lymphocyte" || t == "Monocyte" {
            flips.push((
                cell.img_name.clone(),
                t,
                walk_flips(&analyzer, &a, false)?,
                walk_flips(&analyzer, &a, true)?,
            ));
        }
    }
    let kinds = [
        "cell size",
        "N:C ratio (nucleus)",
        "N:C ratio (ring)",
        "cytoplasm colour",
        "granule colour",
        "vacuoles",
    ];
    let pct = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
    let summaries: Vec<Summary> = kinds
        .iter()
        .map(|&kind| {
            let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.kind == kind).collect();
            let sup: Vec<&&Outcome> = of.iter().filter(|o| o.supported).collect();
            let mean = |v: &[&&Outcome], f: fn(&Outcome) -> f64| {
                v.iter().map(|o| f(o)).sum::<f64>() / v.len().max(1) as f64
            };
            let measured: Vec<bool> = of.iter().filter_map(|o| o.measured).collect();
            Summary {
                kind,
                edits: of.len(),
                moved_percent: pct(of.iter().filter(|o| o.moved).count(), of.len()),
                strength_median: {
                    let mut s: Vec<f32> =
                        of.iter().filter(|o| o.moved).map(|o| o.strength).collect();
                    s.sort_by(f32::total_cmp);
                    s.get(s.len() / 2).copied()
                },
                measured_percent: (!measured.is_empty())
                    .then(|| pct(measured.iter().filter(|&&m| m).count(), measured.len())),
                off_target_points: of.iter().map(|o| o.off_target as f64).sum::<f64>()
                    / of.len().max(1) as f64,
                familiar_percent: pct(of.iter().filter(|o| o.familiar).count(), of.len()),
                type_changed_percent: pct(
                    of.iter().filter(|o| o.type_before != o.type_after).count(),
                    of.len(),
                ),
                supported_edits: sup.len(),
                supported_moved_percent: 100.0 * mean(&sup, |o| o.moved as u8 as f64),
                supported_off_target_points: mean(&sup, |o| o.off_target as f64),
                supported_familiar_percent: 100.0 * mean(&sup, |o| o.familiar as u8 as f64),
            }
        })
        .collect();
    println!("| edit | edits | attribute moved to the value asked (within the walk) | median strength needed | measurement moved as asked | other attributes moved (points) | still familiar | type changed | edits WBCAtt supports: n, moved, other attributes, familiar |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for s in &summaries {
        println!(
            "| {} | {} | {:.1}% | {} | {} | {:.1} | {:.1}% | {:.1}% | {} |",
            s.kind,
            s.edits,
            s.moved_percent,
            s.strength_median.map_or("–".into(), |m| format!("{m:.2}")),
            s.measured_percent
                .map_or("–".into(), |m| format!("{m:.1}%")),
            s.off_target_points,
            s.familiar_percent,
            s.type_changed_percent,
            if s.supported_edits == 0 {
                "0".to_string()
            } else {
                format!(
                    "{}, {:.1}%, {:.1}, {:.1}%",
                    s.supported_edits,
                    s.supported_moved_percent,
                    s.supported_off_target_points,
                    s.supported_familiar_percent
                )
            }
        );
    }
    // Per candidate range: cells whose type flips (still familiar) on the size slider, on the
    // nucleus slider, on either.
    let flipped = |range: (f32, f32)| {
        let size = flips
            .iter()
            .filter(|f| flips_within(&f.2, range, None))
            .count();
        let nucleus = flips
            .iter()
            .filter(|f| flips_within(&f.3, range, None))
            .count();
        let either = flips
            .iter()
            .filter(|f| flips_within(&f.2, range, None) || flips_within(&f.3, range, None))
            .count();
        // Flips across the boundary the sliders are for: a lymphocyte becoming a monocyte or
        // the other way (a lymphocyte whose shrunk nucleus reads as a neutrophil's is a flip,
        // but not that boundary).
        let pair = flips
            .iter()
            .filter(|f| {
                let other = Some(across(f.1));
                flips_within(&f.2, range, other) || flips_within(&f.3, range, other)
            })
            .count();
        (size, nucleus, either, pair)
    };
    let ranges: Vec<serde_json::Value> = CANDIDATE_RANGES
        .iter()
        .map(|&r| {
            let (size, nucleus, either, pair) = flipped(r);
            eprintln!(
                "lymphocytes and monocytes: {} cells; within ×{}–{} the type flips (the edited cell still familiar) on the size slider for {size}, the nucleus slider for {nucleus}, either for {either}; from lymphocyte to monocyte or back for {pair}",
                flips.len(), r.0, r.1
            );
            serde_json::json!({"range": [r.0, r.1], "size_flipped": size, "nucleus_flipped": nucleus, "either_flipped": either, "lymphocyte_monocyte_flipped": pair})
        })
        .collect();
    let (size_flipped, nucleus_flipped, either_flipped, pair_flipped) = flipped(SLIDER_RANGE);
    let per_cell: Vec<serde_json::Value> = flips
        .iter()
        .map(|(cell, t, size, nucleus)| {
            serde_json::json!({
                "cell": cell, "type": t,
                "size_grown_flips_at": size[0], "size_shrunk_flips_at": size[1],
                "nucleus_grown_flips_at": nucleus[0], "nucleus_shrunk_flips_at": nucleus[1],
            })
        })
        .collect();
    let card = TargetStains {
        cytoplasm_colour: cytoplasm_stains.clone(),
        granule_colour: granule_stains.clone(),
        measured: format!(
            "{command}; {} PBC train cells per value; commit {}, {}",
            args.stain_cells,
            cards::git_commit(),
            cards::today()
        ),
        followed: summaries
            .iter()
            .map(|s| (s.kind.to_string(), s.moved_percent))
            .collect(),
        followed_supported: summaries
            .iter()
            .map(|s| {
                (
                    s.kind.to_string(),
                    s.supported_edits,
                    s.supported_moved_percent,
                )
            })
            .collect(),
        by_type,
    };
    std::fs::write(&args.stains, serde_json::to_string_pretty(&card)?)?;
    write_sheet(&pairs, &kinds, &args.sheet)?;
    let report = serde_json::json!({
        "what": "segmentation-guided edits of PBC test cells (wbc_core::edit), each edited square analysed again by the whole pipeline",
        "command": command,
        "commit": cards::git_commit(),
        "date": cards::today(),
        "scales": {"shrink": SHRINK, "grow": GROW},
        "supported": format!("an edit is supported when WBCAtt shows the value asked in at least {:.0}% of the PBC train cells of the type the network saw before the edit", 100.0 * RARE_WITH_TYPE),
        "target_stains": {"cytoplasm_colour": cytoplasm_stains, "granule_colour": granule_stains},
        "summary": summaries,
        "boundary": {
            "cells": flips.len(),
            "slider_range": [SLIDER_RANGE.0, SLIDER_RANGE.1],
            "walked": [WALK.0, WALK.1],
            "step": SLIDER_STEP,
            "size_flipped": size_flipped,
            "nucleus_flipped": nucleus_flipped,
            "either_flipped": either_flipped,
            "lymphocyte_monocyte_flipped": pair_flipped,
            "counted": "a flip counts when the edited cell is still familiar to the familiarity check there",
            "range_rule": "the page's range: the narrowest candidate (in the order listed) in which the type flips on either slider for at least half of val's lymphocytes and monocytes; the widest when none does",
            "candidates": ranges,
            "per_cell": per_cell,
        },
        "edits": args.edits.display().to_string(),
    });
    let mut lines = String::new();
    for o in &outcomes {
        lines.push_str(&serde_json::to_string(o)?);
        lines.push('\n');
    }
    std::fs::write(&args.edits, lines)?;
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    eprintln!(
        "report: {}; contact sheet: {}",
        args.out.display(),
        args.sheet.display()
    );
    Ok(())
}

/// Rows of before/after pairs, one row per kind of edit, 150 px per cell.
fn write_sheet(
    pairs: &[(&'static str, RgbImage, RgbImage)],
    kinds: &[&str],
    path: &std::path::Path,
) -> Result<()> {
    const SIDE: u32 = 150;
    let mut sheet = RgbImage::from_pixel(
        SIDE * 6 + 5 * 4,
        SIDE * kinds.len() as u32,
        image::Rgb([255, 255, 255]),
    );
    for (row, kind) in kinds.iter().enumerate() {
        for (i, (_, before, after)) in pairs.iter().filter(|p| p.0 == *kind).enumerate() {
            for (j, img) in [before, after].into_iter().enumerate() {
                let small = imageops::resize(img, SIDE, SIDE, imageops::FilterType::Triangle);
                let x = (i as u32 * 2 + j as u32) * SIDE + i as u32 * 10;
                imageops::overlay(&mut sheet, &small, x as i64, (row as u32 * SIDE) as i64);
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    sheet.save(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attribute indices the edits match on are the schema's.
    #[test]
    fn the_edited_attributes_are_the_schemas() {
        for (k, name) in [
            (CELL_SIZE, "cell_size"),
            (NC_RATIO, "nuclear_cytoplasmic_ratio"),
            (VACUOLE, "cytoplasm_vacuole"),
            (CYTOPLASM_COLOUR, "cytoplasm_colour"),
            (GRANULE_COLOUR, "granule_colour"),
        ] {
            assert_eq!(ATTRIBUTES[k].name, name);
        }
    }

    /// A flip counts inside a slider range only when the edited cell is still familiar there,
    /// and, for the boundary, only when it lands on the other side of it.
    #[test]
    fn flips_count_inside_the_range_familiar_and_to_the_type_asked() {
        let at = |factor, familiar, to| {
            Some(Flip {
                factor,
                familiar,
                to,
            })
        };
        let grown = [at(1.75, true, "Monocyte"), None];
        assert!(!flips_within(&grown, (0.6, 1.5), None));
        assert!(flips_within(&grown, (0.55, 1.75), None));
        assert!(flips_within(&grown, (0.5, 2.0), Some(across("Lymphocyte"))));
        let shrunk = [None, at(0.55, true, "Neutrophil")];
        assert!(flips_within(&shrunk, (0.5, 2.0), None));
        assert!(!flips_within(&shrunk, (0.6, 1.5), None));
        assert!(!flips_within(
            &shrunk,
            (0.5, 2.0),
            Some(across("Lymphocyte"))
        ));
        let strange = [at(1.2, false, "Monocyte"), None];
        assert!(!flips_within(&strange, (0.5, 2.0), None));
        // The walk covers every candidate, and the page's range is one of them.
        for r in CANDIDATE_RANGES {
            assert!(r.0 >= WALK.0 && r.1 <= WALK.1);
        }
        assert!(CANDIDATE_RANGES.contains(&SLIDER_RANGE));
    }
}
