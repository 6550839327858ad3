//! `wbc adapt-eval`: how much a few of the user's own labelled cells help on a microscope the
//! networks never saw. Every cell of cellavision100, tecom300 and Chula's held-back series goes
//! through the page's whole pipeline once; then, for k = 1, 3, 5, 10 labelled cells per type
//! (as many as a set has), 20 random draws each, the shipped cell-type answer is corrected
//! with `wbc_core::adapt::Correction` fitted on the labelled cells and scored on the cells not
//! labelled, beside the shipped answer on the same cells. The correction's strength is chosen
//! on Chula's held-back series alone (k = 5), which may be used for choosing; the two external
//! sets are only measured.

use anyhow::{Context, Result};
use burn::tensor::Device;
use serde::Serialize;
use std::path::PathBuf;
use wbc_core::adapt::{argmax, batch_priors, reweighted, Correction, Familiar};
use wbc_core::CELL_TYPES;
use wbc_lab::cards;
use wbc_lab::data::{chula_cells, external_set};
use wbc_lab::rng::Rng;
use wbc_nets::{block_on, Analyzer};

#[derive(clap::Args, Debug)]
pub struct AdaptEvalArgs {
    /// Folder holding cellavision100/, tecom300/ and chula/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub pipeline: cards::PipelineArgs,
    /// Labelled cells per type.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,10")]
    pub k: Vec<usize>,
    /// Random draws of the labelled cells for each k.
    #[arg(long, default_value_t = 20)]
    pub draws: usize,
    /// The correction strengths (L2) tried on Chula's held-back series (0: only the early
    /// stop of the fit holds the correction back).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,0.00003,0.0001,0.0003,0.001"
    )]
    pub strengths: Vec<f32>,
    /// Only the first N cells of each set (smoke tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Where the report goes.
    #[arg(long, default_value = "models/adaptation.json")]
    pub out: PathBuf,
    /// Also write every analysed cell (set, truth, shipped answer, features) as JSON lines,
    /// for trying other methods without analysing the cells again.
    #[arg(long)]
    pub cells_out: Option<PathBuf>,
}

/// One analysed cell: what the page would hold of it.
struct Seen {
    features: Vec<f32>,
    shipped: Vec<f32>,
    truth: usize,
    /// Whether the page says "unlike the training images" of it.
    unlike: bool,
}

/// The mean, spread and range of one k on one set.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub set: String,
    pub k: usize,
    pub draws: usize,
    /// Accuracy (%) on the cells not labelled: the shipped answer, and the corrected one.
    pub shipped_mean: f64,
    pub adapted_mean: f64,
    pub adapted_sd: f64,
    pub adapted_min: f64,
    pub adapted_max: f64,
    /// Mean cells scored per draw.
    pub scored: f64,
}

fn analyse_all(
    analyzer: &Analyzer,
    images: Vec<(String, image::RgbImage, usize)>,
) -> Result<Vec<Seen>> {
    images
        .into_iter()
        .map(|(name, image, truth)| {
            let a = block_on(analyzer.analyse_with(&image, analyzer.settings(), || 0.0))
                .with_context(|| name.clone())?;
            let unlike = a
                .familiarity
                .as_ref()
                .is_some_and(|f| f.reasons.iter().any(|r| r.is_unlike_training()));
            Ok(Seen {
                features: a.features,
                shipped: a.prediction.cell_type,
                truth,
                unlike,
            })
        })
        .collect()
}

/// One draw: `k` labelled cells of each type (all of a type when it has no more), the rest
/// scored. Returns (shipped right, corrected right, scored).
fn draw(cells: &[Seen], k: usize, l2: f32, rng: &mut Rng) -> (usize, usize, usize) {
    let (labelled, correction) = fit_draw(cells, k, l2, rng);
    let (mut shipped, mut adapted, mut scored) = (0, 0, 0);
    for c in cells
        .iter()
        .zip(&labelled)
        .filter(|(_, &l)| !l)
        .map(|(c, _)| c)
    {
        scored += 1;
        shipped += usize::from(argmax(&c.shipped) == c.truth);
        adapted +=
            usize::from(argmax(&correction.probabilities(&c.features, &c.shipped)) == c.truth);
    }
    (shipped, adapted, scored)
}

/// Where "unlike the training images" falls among the adapted answers of the cells not
/// labelled (% of the right ones, % of the wrong ones), before and after the familiarity
/// check learns the labelled cells (`Familiar` with `reach`); means over the draws.
#[derive(Debug, Clone, Serialize)]
pub struct Warned {
    pub set: String,
    pub k: usize,
    pub reach: f32,
    pub right_before: f64,
    pub right_after: f64,
    pub wrong_before: f64,
    pub wrong_after: f64,
}

fn warned(set: &str, cells: &[Seen], k: usize, draws: usize, l2: f32, reach: f32) -> Warned {
    let mut rng = Rng::new(7_000 + k as u64);
    let mut sums = [0.0f64; 4];
    for _ in 0..draws {
        let (labelled, correction) = fit_draw(cells, k, l2, &mut rng);
        let (features, labels): (Vec<&[f32]>, Vec<usize>) = cells
            .iter()
            .zip(&labelled)
            .filter(|(_, &l)| l)
            .map(|(c, _)| (c.features.as_slice(), c.truth))
            .unzip();
        let familiar = Familiar::fit(&features, &labels, CELL_TYPES.len());
        // [right, wrong] × [flagged before, flagged after, count]
        let mut n = [[0usize; 3]; 2];
        for c in cells
            .iter()
            .zip(&labelled)
            .filter(|(_, &l)| !l)
            .map(|(c, _)| c)
        {
            let answer = argmax(&correction.probabilities(&c.features, &c.shipped));
            let w = usize::from(answer != c.truth);
            n[w][0] += usize::from(c.unlike);
            n[w][1] += usize::from(c.unlike && !familiar.knows(&c.features, answer, reach));
            n[w][2] += 1;
        }
        let pct = |a: usize, of: usize| 100.0 * a as f64 / of.max(1) as f64;
        sums[0] += pct(n[0][0], n[0][2]);
        sums[1] += pct(n[0][1], n[0][2]);
        sums[2] += pct(n[1][0], n[1][2]);
        sums[3] += pct(n[1][1], n[1][2]);
    }
    let d = draws.max(1) as f64;
    Warned {
        set: set.into(),
        k,
        reach,
        right_before: sums[0] / d,
        right_after: sums[1] / d,
        wrong_before: sums[2] / d,
        wrong_after: sums[3] / d,
    }
}

/// One draw's labelled cells (`k` of each type) and the correction fitted on them.
fn fit_draw(cells: &[Seen], k: usize, l2: f32, rng: &mut Rng) -> (Vec<bool>, Correction) {
    let mut labelled = vec![false; cells.len()];
    for t in 0..CELL_TYPES.len() {
        let mut of_type: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].truth == t).collect();
        rng.shuffle(&mut of_type);
        for &i in of_type.iter().take(k) {
            labelled[i] = true;
        }
    }
    let train: Vec<(&[f32], &[f32], usize)> = cells
        .iter()
        .zip(&labelled)
        .filter(|(_, &l)| l)
        .map(|(c, _)| (c.features.as_slice(), c.shipped.as_slice(), c.truth))
        .collect();
    let correction = Correction::fit(&train, CELL_TYPES.len(), l2);
    (labelled, correction)
}

fn row(set: &str, cells: &[Seen], k: usize, draws: usize, l2: f32) -> Row {
    let mut rng = Rng::new(7_000 + k as u64);
    let runs: Vec<(f64, f64, usize)> = (0..draws)
        .map(|_| {
            let (s, a, n) = draw(cells, k, l2, &mut rng);
            let pct = |x: usize| 100.0 * x as f64 / n.max(1) as f64;
            (pct(s), pct(a), n)
        })
        .collect();
    let mean =
        |f: &dyn Fn(&(f64, f64, usize)) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    let adapted_mean = mean(&|r| r.1);
    let sd = (runs
        .iter()
        .map(|r| (r.1 - adapted_mean).powi(2))
        .sum::<f64>()
        / runs.len() as f64)
        .sqrt();
    Row {
        set: set.into(),
        k,
        draws,
        shipped_mean: mean(&|r| r.0),
        adapted_mean,
        adapted_sd: sd,
        adapted_min: runs.iter().map(|r| r.1).fold(f64::INFINITY, f64::min),
        adapted_max: runs.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max),
        scored: mean(&|r| r.2 as f64),
    }
}

/// Without labels: each batch's class priors re-estimated from the shipped answers (EM), and
/// the answers moved to them. The whole set as one batch, and batches of `size` random cells
/// (50 draws). Returns (shipped %, adapted %) for each.
fn unlabelled(cells: &[Seen], train_priors: &[f32], size: usize) -> [(f64, f64); 2] {
    let score = |idx: &[usize]| {
        let answers: Vec<Vec<f32>> = idx.iter().map(|&i| cells[i].shipped.clone()).collect();
        let priors = batch_priors(&answers, train_priors, 50);
        let (mut s, mut a) = (0, 0);
        for (&i, p) in idx.iter().zip(&answers) {
            s += usize::from(argmax(p) == cells[i].truth);
            a += usize::from(argmax(&reweighted(p, train_priors, &priors)) == cells[i].truth);
        }
        let n = idx.len().max(1) as f64;
        (100.0 * s as f64 / n, 100.0 * a as f64 / n)
    };
    let all: Vec<usize> = (0..cells.len()).collect();
    let whole = score(&all);
    let mut rng = Rng::new(91);
    let draws = 50;
    let mut sum = (0.0, 0.0);
    for _ in 0..draws {
        let mut idx = all.clone();
        rng.shuffle(&mut idx);
        idx.truncate(size.min(idx.len()));
        let (s, a) = score(&idx);
        sum = (sum.0 + s, sum.1 + a);
    }
    [whole, (sum.0 / draws as f64, sum.1 / draws as f64)]
}

pub fn run(args: AdaptEvalArgs) -> Result<()> {
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    let limit = args.limit.unwrap_or(usize::MAX);
    let chula: Vec<(String, image::RgbImage, usize)> = chula_cells(&args.data, true)?
        .into_iter()
        .take(limit)
        .map(|c| {
            let image = image::open(&c.path)
                .with_context(|| c.path.display().to_string())?
                .to_rgb8();
            Ok((c.path.display().to_string(), image, c.cell_type))
        })
        .collect::<Result<_>>()?;
    let mut sets = vec![(
        "chula (held-back series)".to_string(),
        analyse_all(&analyzer, chula)?,
    )];
    for set in ["cellavision100", "tecom300"] {
        let cells = external_set(&args.data.join(set), args.limit)?
            .into_iter()
            .map(|c| (c.name, c.image, c.cell_type))
            .collect();
        sets.push((set.to_string(), analyse_all(&analyzer, cells)?));
        eprintln!("{set}: analysed");
    }
    if let Some(path) = &args.cells_out {
        let mut text = String::new();
        for (set, cells) in &sets {
            for c in cells {
                text.push_str(&serde_json::to_string(&serde_json::json!({
                    "set": set, "truth": c.truth, "shipped": c.shipped, "features": c.features,
                }))?);
                text.push('\n');
            }
        }
        std::fs::write(path, text)?;
    }
    // The strength: the best mean accuracy at k = 5 on Chula's held-back series.
    let choice: Vec<(f32, f64)> = args
        .strengths
        .iter()
        .map(|&l2| (l2, row("chula", &sets[0].1, 5, args.draws, l2).adapted_mean))
        .collect();
    let l2 = choice
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0.01, |c| c.0);
    eprintln!("strength chosen on Chula's held-back series (k = 5): {l2} from {choice:?}");
    // The familiarity check's reach: on Chula's held-back series at k = 5, the one that
    // leaves the widest gap between wrong and right answers still called unlike the training
    // images.
    let reaches: Vec<Warned> = [0.5f32, 1.0, 1.5, 2.0]
        .iter()
        .map(|&r| warned("chula", &sets[0].1, 5, args.draws, l2, r))
        .collect();
    let reach = reaches
        .iter()
        .max_by(|a, b| (a.wrong_after - a.right_after).total_cmp(&(b.wrong_after - b.right_after)))
        .map_or(1.0, |w| w.reach);
    eprintln!("the familiarity check's reach chosen on Chula (k = 5): {reach} from {reaches:?}");
    let mut warnings = Vec::new();
    for (set, cells) in &sets {
        for &k in &args.k {
            let w = warned(set, cells, k, args.draws, l2, reach);
            eprintln!(
                "{set}, k = {k}: unlike the training images on {:.1}% → {:.1}% of right answers, {:.1}% → {:.1}% of wrong ones",
                w.right_before, w.right_after, w.wrong_before, w.wrong_after
            );
            warnings.push(w);
        }
    }
    let mut rows = Vec::new();
    for (set, cells) in &sets {
        for &k in &args.k {
            let r = row(set, cells, k, args.draws, l2);
            eprintln!(
                "{set}, k = {k}: shipped {:.1}%, adapted {:.1}% ± {:.1} (range {:.1}–{:.1}), {:.0} cells scored",
                r.shipped_mean, r.adapted_mean, r.adapted_sd, r.adapted_min, r.adapted_max, r.scored
            );
            rows.push(r);
        }
    }
    // The priors the shipped answers were made for: how often each type is among PBC train.
    let train = wbc_core::dataset::read_csv(&wbc_core::dataset::split_csv(&args.data, "train"))?;
    let train_priors: Vec<f32> = (0..CELL_TYPES.len())
        .map(|t| train.iter().filter(|c| c.cell_type == t).count() as f32 / train.len() as f32)
        .collect();
    let mut unlabelled_rows = Vec::new();
    for (set, cells) in &sets {
        let [whole, batches] = unlabelled(cells, &train_priors, 20);
        eprintln!(
            "{set}, no labels: whole set {:.1}% → {:.1}%, batches of 20 {:.1}% → {:.1}%",
            whole.0, whole.1, batches.0, batches.1
        );
        unlabelled_rows.push(serde_json::json!({
            "set": set, "whole_set": {"shipped": whole.0, "priors_reestimated": whole.1},
            "batches_of_20": {"shipped": batches.0, "priors_reestimated": batches.1, "draws": 50},
        }));
    }
    println!("| set | k per type | shipped answer | adapted (mean ± sd) | range | cells scored |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} ± {:.1} | {:.1}–{:.1} | {:.0} |",
            r.set,
            r.k,
            r.shipped_mean,
            r.adapted_mean,
            r.adapted_sd,
            r.adapted_min,
            r.adapted_max,
            r.scored
        );
    }
    let report = serde_json::json!({
        "what": "cell type adapted to another microscope from k labelled cells per type (wbc_core::adapt::Correction), accuracy on the cells not labelled",
        "command": format!("cargo run --release -p wbc -- adapt-eval --draws {} --k {}", args.draws, args.k.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",")),
        "commit": cards::git_commit(),
        "date": cards::today(),
        "strength": l2,
        "strength_choice_on_chula_k5": choice,
        "unlabelled_batch_adaptation": {
            "method": "class priors re-estimated by EM from the shipped answers (Saerens et al. 2002), against PBC train's priors",
            "train_priors": train_priors,
            "rows": unlabelled_rows,
        },
        "rows": rows,
        "familiarity": {
            "what": "\"unlike the training images\" on the adapted answers of the cells not labelled, % of right and of wrong answers, before and after the check learns the labelled cells (wbc_core::adapt::Familiar)",
            "reach": reach,
            "reach_choice_on_chula_k5": reaches,
            "rows": warnings,
        },
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("report: {}", args.out.display());
    Ok(())
}
