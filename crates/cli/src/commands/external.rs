//! `wbc external`: how the cell pipeline holds up on cells from other microscopes. It scores
//! cell type and segmentation (nucleus and whole-cell IoU against the hand-drawn masks) on
//! `cellavision100` and `tecom300`, once per front-end variant, with how many answers carry
//! the "unlike the training images" warning. These sets are for measuring only: nothing here
//! feeds back into training or into a parameter.

use anyhow::{Context, Result};
use burn::tensor::Device;
use serde::Serialize;
use std::path::{Path, PathBuf};
use wbc_core::front_end::FrontEndSettings;
use wbc_core::metrics::argmax;
use wbc_core::{segmentation, CELL_TYPES};
use wbc_lab::cards;
use wbc_lab::data::{external_set, ExternalCell};
use wbc_lab::scoring::variants;
use wbc_nets::{block_on, Analyzer};

#[derive(clap::Args, Debug)]
pub struct ExternalArgs {
    /// Folder holding cellavision100/ and tecom300/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub pipeline: cards::PipelineArgs,
    /// Sets to score.
    #[arg(long, value_delimiter = ',', default_value = "cellavision100,tecom300")]
    pub sets: Vec<String>,
    /// Only the first N images of each set (smoke tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only the pipeline's default front end (no per-step variants).
    #[arg(long)]
    pub default_only: bool,
    /// Also write, for every cell, the square the networks saw with the label map beside it
    /// (PNG) into this folder, one file per cell and front end.
    #[arg(long)]
    pub dump: Option<PathBuf>,
    /// Where the summary goes (shipped beside the model cards: one row per set and variant).
    #[arg(long, default_value = "models/external.json")]
    pub out: PathBuf,
    /// Where one JSON line per cell and variant goes (git-ignored).
    #[arg(long, default_value = "target/external_cells.jsonl")]
    pub cells_out: PathBuf,
}

/// Scores of one front-end variant on one set.
#[derive(Debug, Clone, Serialize)]
pub struct VariantScores {
    pub set: String,
    pub variant: String,
    pub settings: FrontEndSettings,
    pub cells: usize,
    /// Cell-type accuracy (%) of the pipeline's answer (with a measured-type card: the
    /// network's joined with the measured type).
    pub cell_type_accuracy: f64,
    /// With a measured-type card: the attribute network alone, and the measured type alone (%).
    pub network_accuracy: Option<f64>,
    pub measured_accuracy: Option<f64>,
    /// Mean nucleus IoU (%) against the hand-drawn masks.
    pub nucleus_iou: f64,
    /// Mean whole-cell IoU (%).
    pub whole_cell_iou: f64,
    /// Share of all cells carrying the warning (%); null without a calibration card.
    pub flagged: Option<f64>,
    /// Share of the wrong cell-type answers carrying the warning (%).
    pub wrong_flagged: Option<f64>,
    /// Share of the right answers that carry a warning (%): a warning on every cell says
    /// nothing.
    pub right_flagged: Option<f64>,
    /// AUROC of the doubt score for wrong against right answers.
    pub doubt_auroc: Option<f64>,
    /// Mean top cell-type probability of the wrong answers (%).
    pub wrong_confidence: f64,
    /// Cells per true type → predicted type counts, in CELL_TYPES order.
    pub confusion: Vec<Vec<usize>>,
}

/// Score one variant on one set; also returns one JSON line per cell.
fn score(
    analyzer: &Analyzer,
    set: &str,
    variant: &str,
    settings: FrontEndSettings,
    cells: &[ExternalCell],
    dump: Option<&Path>,
) -> Result<(
    VariantScores,
    Vec<serde_json::Value>,
    Vec<(Option<f32>, bool, bool)>,
)> {
    let n_types = CELL_TYPES.len();
    let mut confusion = vec![vec![0usize; n_types]; n_types];
    let (mut right, mut nucleus, mut whole) = (0usize, 0.0, 0.0);
    let (mut network_right, mut measured_right) = (0usize, 0usize);
    let (mut flagged, mut wrong, mut wrong_flagged, mut wrong_conf) = (0usize, 0usize, 0usize, 0.0);
    let mut lines = Vec::new();
    let mut doubts = Vec::new();
    for cell in cells {
        let a = block_on(analyzer.analyse_with(&cell.image, settings, || 0.0))
            .with_context(|| format!("{set}/{}", cell.name))?;
        let predicted = argmax(&a.prediction.cell_type);
        confusion[cell.cell_type][predicted] += 1;
        let (w, h) = cell.image.dimensions();
        let map = a.front_end.placement.labels_to_image(&a.labels, w, h);
        let (n, c) = segmentation::cellavision_iou(&map, &cell.truth);
        if let Some(dir) = dump {
            let side = a.square.width();
            let mut sheet = image::RgbImage::new(side * 2, side);
            image::imageops::replace(&mut sheet, &a.square, 0, 0);
            let labels = image::imageops::resize(
                &a.labels,
                side,
                side,
                image::imageops::FilterType::Nearest,
            );
            let overlay =
                segmentation::overlay(&a.square, &labels, 0.5, &segmentation::SHOW_CELL_LABELS)?;
            let overlay = image::DynamicImage::ImageRgba8(overlay).to_rgb8();
            image::imageops::replace(&mut sheet, &overlay, side as i64, 0);
            let file = format!(
                "{set}_{}_{}.png",
                cell.name.trim_end_matches(".png"),
                variant.replace(' ', "_")
            );
            sheet.save(dir.join(file))?;
        }
        nucleus += n;
        whole += c;
        if let Some(m) = &a.measured_type {
            network_right += (argmax(&m.network) == cell.cell_type) as usize;
            measured_right += (argmax(&m.measured) == cell.cell_type) as usize;
        }
        // Warned for any reason: unlike the training images, or the two opinions differ.
        let warned = a.familiarity.as_ref().is_some_and(|f| f.is_flagged());
        flagged += warned as usize;
        let doubt = a.familiarity.as_ref().and_then(|f| f.doubt);
        doubts.push((doubt, predicted != cell.cell_type, warned));
        if predicted == cell.cell_type {
            right += 1;
        } else {
            wrong += 1;
            wrong_flagged += warned as usize;
            wrong_conf += a.prediction.cell_type[predicted] as f64;
        }
        lines.push(serde_json::json!({
            "set": set, "variant": variant, "image": cell.name,
            "truth": CELL_TYPES[cell.cell_type], "predicted": CELL_TYPES[predicted],
            "probability": a.prediction.cell_type[predicted],
            "nucleus_iou": n, "whole_cell_iou": c,
            "scale": a.front_end.scale, "restain": a.front_end.restain,
            "familiarity": a.familiarity,
            "measured_type": a.measured_type.as_ref().map(|m| serde_json::json!({
                "network": CELL_TYPES[argmax(&m.network)],
                "measured": CELL_TYPES[argmax(&m.measured)],
                "used": m.used,
            })),
        }));
    }
    let total = cells.len().max(1) as f64;
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let calibrated = analyzer.calibration().is_some();
    let warning = WarningScores::of(&doubts);
    Ok((
        VariantScores {
            set: set.into(),
            variant: variant.into(),
            settings,
            cells: cells.len(),
            cell_type_accuracy: pct(right, cells.len()),
            network_accuracy: analyzer
                .measured_type()
                .map(|_| pct(network_right, cells.len())),
            measured_accuracy: analyzer
                .measured_type()
                .map(|_| pct(measured_right, cells.len())),
            nucleus_iou: nucleus / total,
            whole_cell_iou: whole / total,
            flagged: calibrated.then(|| pct(flagged, cells.len())),
            wrong_flagged: calibrated.then(|| pct(wrong_flagged, wrong)),
            right_flagged: calibrated.then_some(warning.right_flagged),
            doubt_auroc: warning.auroc,
            wrong_confidence: 100.0 * wrong_conf / wrong.max(1) as f64,
            confusion,
        },
        lines,
        doubts,
    ))
}

/// The warning judged as a predictor of wrong answers.
#[derive(Debug, Clone, Serialize)]
pub struct WarningScores {
    pub cells: usize,
    pub cell_type_accuracy: f64,
    /// AUROC of the doubt score, wrong against right answers (`None` without doubt scores).
    pub auroc: Option<f64>,
    pub right_flagged: f64,
    pub wrong_flagged: f64,
    /// Accuracy of the answers kept when the most doubtful are set aside, by share kept (%):
    /// the risk–coverage table.
    pub accuracy_at_coverage: Vec<(u32, f64)>,
}

impl WarningScores {
    /// From (doubt score, wrong, warned) per cell.
    pub fn of(cells: &[(Option<f32>, bool, bool)]) -> Self {
        let n = cells.len().max(1) as f64;
        let wrong = cells.iter().filter(|c| c.1).count();
        let right = cells.len() - wrong;
        let scores: Option<Vec<f32>> = cells.iter().map(|c| c.0).collect();
        let is_wrong: Vec<bool> = cells.iter().map(|c| c.1).collect();
        let auroc = scores
            .as_ref()
            .map(|s| wbc_core::confidence::auroc(s, &is_wrong));
        let mut order: Vec<usize> = (0..cells.len()).collect();
        if let Some(s) = &scores {
            order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
        }
        let accuracy_at_coverage = [100u32, 90, 75, 50]
            .iter()
            .map(|&c| {
                let k = ((cells.len() * c as usize) as f64 / 100.0).round().max(1.0) as usize;
                let kept = &order[..k.min(order.len())];
                let ok = kept.iter().filter(|&&i| !is_wrong[i]).count();
                (c, 100.0 * ok as f64 / kept.len().max(1) as f64)
            })
            .collect();
        Self {
            cells: cells.len(),
            cell_type_accuracy: 100.0 * right as f64 / n,
            auroc,
            right_flagged: 100.0 * cells.iter().filter(|c| !c.1 && c.2).count() as f64
                / right.max(1) as f64,
            wrong_flagged: 100.0 * cells.iter().filter(|c| c.1 && c.2).count() as f64
                / wrong.max(1) as f64,
            accuracy_at_coverage,
        }
    }
}

/// The markdown table of a run.
pub fn table(rows: &[VariantScores]) -> String {
    let mut out = String::from(
        "| set | front end | cell type % | network alone % | measured type alone % | nucleus IoU | whole-cell IoU | flagged % | wrong answers flagged % | mean confidence of wrong answers % |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.1}"));
    for r in rows {
        out += &format!(
            "| {} | {} | {:.1} | {} | {} | {:.1} | {:.1} | {} | {} | {:.1} |\n",
            r.set,
            r.variant,
            r.cell_type_accuracy,
            opt(r.network_accuracy),
            opt(r.measured_accuracy),
            r.nucleus_iou,
            r.whole_cell_iou,
            opt(r.flagged),
            opt(r.wrong_flagged),
            r.wrong_confidence
        );
    }
    out
}

pub fn run(args: ExternalArgs) -> Result<()> {
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    if analyzer.calibration().is_none() {
        eprintln!(
            "no calibration card at {}.json: only the plain crop is scored (run `wbc calibrate`)",
            args.pipeline.calibration.display()
        );
    }
    let variants: Vec<(&str, FrontEndSettings)> = if args.default_only {
        vec![("default", analyzer.settings())]
    } else if analyzer.calibration().is_none() {
        vec![("none", FrontEndSettings::OFF)]
    } else {
        variants()
    };
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let default = analyzer.settings();
    let mut pooled = Vec::new();
    for set in &args.sets {
        let cells = external_set(&args.data.join(set), args.limit)?;
        for (variant, settings) in &variants {
            let t = std::time::Instant::now();
            if let Some(dir) = &args.dump {
                std::fs::create_dir_all(dir)?;
            }
            let (row, mut cell_lines, cell_doubts) = score(
                &analyzer,
                set,
                variant,
                *settings,
                &cells,
                args.dump.as_deref(),
            )?;
            eprintln!(
                "{set} / {variant}: type {:.1}%, nucleus {:.1}, whole cell {:.1}, flagged {:?} ({:.0} s)",
                row.cell_type_accuracy,
                row.nucleus_iou,
                row.whole_cell_iou,
                row.flagged,
                t.elapsed().as_secs_f64()
            );
            if *settings == default {
                pooled.extend(cell_doubts);
            }
            rows.push(row);
            lines.append(&mut cell_lines);
        }
    }
    let warning = WarningScores::of(&pooled);
    eprintln!(
        "the warning on all sets together (default front end): {}",
        serde_json::to_string(&warning)?
    );
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = serde_json::json!({
        "what": "cell type and segmentation on external sets (never used for training or choosing parameters), per front-end variant",
        "command": command,
        "commit": cards::git_commit(),
        "date": cards::today(),
        "rows": rows,
        "warning_on_all_sets_default_front_end": warning,
    });
    for path in [&args.out, &args.cells_out] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    let jsonl: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&args.cells_out, jsonl)?;
    print!("{}", table(&rows));
    eprintln!(
        "summary: {}; per cell: {}",
        args.out.display(),
        args.cells_out.display()
    );
    Ok(())
}
