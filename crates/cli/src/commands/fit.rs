//! `wbc fit`: fit a profile from the user's own labelled cells, with the same code the page
//! uses (`wbc_core::adapt`). Labels come from a folder whose sub-folders name the classes, or
//! from a labels CSV (`img_name, label`) beside `--images`. When the classes are the five cell
//! types the profile adapts the cell type to this microscope; otherwise it answers the user's
//! own question, interpretably (attribute probabilities and measurements, L1) and with a
//! black-box probe on the encoder's features, each with its cross-validated accuracy.

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use wbc_core::adapt::fitting::{class_index, classes_of, Fitting, LabelledCell, FOLDS};
use wbc_core::adapt::{interpretable_inputs, Accuracy};
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

pub fn run(args: FitArgs) -> Result<()> {
    let pairs = labelled(&args)?;
    let names: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
    let (classes, types) = classes_of(&names);
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    let mut cells = Vec::new();
    for (path, class) in &pairs {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let image = wbc_core::preprocess::decode(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let a = block_on(analyzer.analyse(&image, || 0.0))
            .with_context(|| path.display().to_string())?;
        cells.push(LabelledCell {
            inputs: interpretable_inputs(&a.prediction.concepts(), &a.morphometry),
            features: a.features,
            shipped: a.prediction.cell_type,
            label: class_index(&classes, class).unwrap_or(0),
        });
    }
    let n = cells.len();
    let fitting = Fitting::new(cells, classes.clone(), types).map_err(anyhow::Error::msg)?;
    let profile = fitting.run(args.pipeline.networks()?, cards::today());
    let say = |what: &str, acc: &Accuracy| {
        eprintln!(
            "{what}: {:.1}% ({FOLDS}-fold cross-validated, {} of {}), 95% interval {:.1}–{:.1}",
            100.0 * acc.rate(),
            acc.right,
            acc.of,
            100.0 * acc.low,
            100.0 * acc.high
        )
    };
    if let (Some(shipped), Some(adapted)) = (&profile.shipped_accuracy, &profile.adapted_accuracy) {
        eprintln!("cell type on these {n} cells:");
        say("  shipped answer", shipped);
        say("  adapted", adapted);
    }
    if let Some(q) = &profile.question {
        say(
            "interpretable (attributes and measurements)",
            &q.interpretable_accuracy,
        );
        say("probe (encoder features)", &q.probe_accuracy);
        eprintln!(
            "the interpretable model's largest weights (towards {}):",
            classes.last().unwrap_or(&String::new())
        );
        for (name, w) in q.top_inputs(8) {
            eprintln!("  {w:+.2}  {name}");
        }
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
