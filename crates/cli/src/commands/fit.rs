//! `wbc fit`: fit a profile from the user's own labelled cells, with the same code the page
//! uses (`wbc_core::adapt`). Labels come from a folder whose sub-folders name the classes, or
//! from a labels CSV (`img_name, label`) beside `--images`. When the classes are the five cell
//! types the profile adapts the cell type to this microscope; otherwise it answers the user's
//! own question, interpretably (attribute probabilities and measurements, L1) and with a
//! black-box probe on the encoder's features, each with its cross-validated accuracy.

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use wbc_core::adapt::{
    argmax, cross_validate, interpretable_inputs, Accuracy, Correction, Profile, Question,
    ADAPTATION_L2, PROFILE_FORMAT,
};
use wbc_core::CELL_TYPES;
use wbc_lab::cards;
use wbc_nets::block_on;

#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// A folder of sub-folders, one per class (its name), or a labels CSV (img_name, label).
    #[arg(long)]
    pub labels: PathBuf,
    /// With a labels CSV: the folder its image names are in (default: the CSV's folder).
    #[arg(long)]
    pub images: Option<PathBuf>,
    #[command(flatten)]
    pub pipeline: cards::PipelineArgs,
    /// Where the profile goes.
    #[arg(long, default_value = "profile.json")]
    pub out: PathBuf,
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["jpg", "jpeg", "png", "bmp", "tif", "tiff"].contains(&e.to_lowercase().as_str())
    })
}

/// (image, class name) pairs from a folder of class folders or a labels CSV.
fn labelled(args: &FitArgs) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    if args.labels.is_dir() {
        let mut classes: Vec<PathBuf> = std::fs::read_dir(&args.labels)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        classes.sort();
        for dir in classes {
            let class = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| is_image(p))
                .collect();
            files.sort();
            out.extend(files.into_iter().map(|f| (f, class.clone())));
        }
    } else {
        let text = std::fs::read_to_string(&args.labels)
            .with_context(|| format!("reading {}", args.labels.display()))?;
        let table = wbc_core::csv_text::read(&text).map_err(anyhow::Error::msg)?;
        let (Some(name), Some(label)) = (table.column("img_name"), table.column("label")) else {
            bail!(
                "{}: a labels CSV needs img_name and label columns",
                args.labels.display()
            );
        };
        let base = args
            .images
            .clone()
            .unwrap_or_else(|| args.labels.parent().unwrap_or(Path::new(".")).to_path_buf());
        for (_, r) in &table.records {
            if let (Some(n), Some(l)) = (r.get(name), r.get(label)) {
                out.push((base.join(n), l.clone()));
            }
        }
    }
    if out.is_empty() {
        bail!("{}: no labelled images found", args.labels.display());
    }
    Ok(out)
}

/// What the fit needs of one analysed cell.
struct Cell {
    features: Vec<f32>,
    shipped: Vec<f32>,
    inputs: Vec<f32>,
    label: usize,
}

pub fn run(args: FitArgs) -> Result<()> {
    let pairs = labelled(&args)?;
    let mut names: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
    names.sort();
    names.dedup();
    // The five cell types (in any case): a cell-type adaptation in the types' own order.
    let type_of = |n: &str| CELL_TYPES.iter().position(|t| t.eq_ignore_ascii_case(n));
    let types = names.iter().all(|n| type_of(n).is_some());
    let classes: Vec<String> = if types {
        CELL_TYPES.iter().map(|t| t.to_string()).collect()
    } else {
        names.clone()
    };
    if !types && classes.len() < 2 {
        bail!("a question needs at least two classes, found {classes:?}");
    }
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    let mut cells = Vec::new();
    for (path, class) in &pairs {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let image = wbc_core::preprocess::decode(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let a = block_on(analyzer.analyse(&image, || 0.0))
            .with_context(|| path.display().to_string())?;
        let label = if types {
            type_of(class).unwrap_or(0)
        } else {
            classes.iter().position(|c| c == class).unwrap_or(0)
        };
        cells.push(Cell {
            inputs: interpretable_inputs(&a.prediction.concepts(), &a.morphometry),
            features: a.features,
            shipped: a.prediction.cell_type,
            label,
        });
    }
    let labels: Vec<usize> = cells.iter().map(|c| c.label).collect();
    let counts: Vec<usize> = (0..classes.len())
        .map(|c| labels.iter().filter(|&&l| l == c).count())
        .collect();
    let mut profile = Profile {
        format: PROFILE_FORMAT,
        classes: classes.clone(),
        counts,
        date: cards::today(),
        networks: args.pipeline.networks()?,
        adaptation: None,
        shipped_accuracy: None,
        adapted_accuracy: None,
        question: None,
    };
    if types {
        let as_fit = |idx: &[usize]| -> Vec<(&[f32], &[f32], usize)> {
            idx.iter()
                .map(|&i| {
                    (
                        cells[i].features.as_slice(),
                        cells[i].shipped.as_slice(),
                        cells[i].label,
                    )
                })
                .collect()
        };
        let adapted = cross_validate(&labels, 5, |train, test| {
            let c = Correction::fit(&as_fit(train), CELL_TYPES.len(), ADAPTATION_L2);
            test.iter()
                .map(|&i| argmax(&c.probabilities(&cells[i].features, &cells[i].shipped)))
                .collect()
        });
        let shipped_right = cells
            .iter()
            .filter(|c| argmax(&c.shipped) == c.label)
            .count();
        let all: Vec<usize> = (0..cells.len()).collect();
        profile.adaptation = Some(Correction::fit(
            &as_fit(&all),
            CELL_TYPES.len(),
            ADAPTATION_L2,
        ));
        profile.shipped_accuracy = Some(Accuracy::new(shipped_right, cells.len()));
        profile.adapted_accuracy = Some(adapted);
        eprintln!(
            "cell type on these {} cells: shipped {:.1}%, adapted {:.1}% (5-fold cross-validated, 95% interval {:.1}–{:.1})",
            cells.len(),
            100.0 * shipped_right as f64 / cells.len() as f64,
            100.0 * adapted.rate(),
            100.0 * adapted.low,
            100.0 * adapted.high
        );
    } else {
        let inputs: Vec<Vec<f32>> = cells.iter().map(|c| c.inputs.clone()).collect();
        let features: Vec<Vec<f32>> = cells.iter().map(|c| c.features.clone()).collect();
        let q = Question::fit(&inputs, &features, &labels, classes.len());
        for (what, acc) in [
            (
                "interpretable (attributes and measurements)",
                q.interpretable_accuracy,
            ),
            ("probe (encoder features)", q.probe_accuracy),
        ] {
            eprintln!(
                "{what}: {:.1}% cross-validated (5-fold, {} of {}), 95% interval {:.1}–{:.1}",
                100.0 * acc.rate(),
                acc.right,
                acc.of,
                100.0 * acc.low,
                100.0 * acc.high
            );
        }
        eprintln!(
            "the interpretable model's largest weights (towards {}):",
            classes.last().unwrap_or(&String::new())
        );
        for (name, w) in q.top_inputs(8) {
            eprintln!("  {w:+.2}  {name}");
        }
        profile.question = Some(q);
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&profile)?)?;
    eprintln!(
        "profile: {} ({} classes, {:?} cells each)",
        args.out.display(),
        classes.len(),
        profile.counts
    );
    Ok(())
}
