//! `wbc fit`: fit a profile from the user's own labelled cells, with the same code the page
//! uses (`wbc_core::adapt`). Labels come from a folder whose sub-folders name the classes, or
//! from a labels CSV (`img_name`, and `label` and/or any of the 11 attribute columns, as the
//! WBCAtt files) beside `--images`. When the classes are the five cell types the profile adapts
//! the cell type to this microscope; otherwise it answers the user's own question,
//! interpretably (attribute probabilities and measurements, L1) and with a black-box probe on
//! the encoder's features, each with its cross-validated accuracy. Attribute values correct
//! those attributes' probabilities the same way as the cell type.

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use std::path::{Path, PathBuf};
use wbc_core::adapt::fitting::{class_index, classes_of, Fitting, LabelledCell, FOLDS};
use wbc_core::adapt::{interpretable_inputs, Accuracy};
use wbc_core::ATTRIBUTES;
use wbc_lab::cards;
use wbc_nets::block_on;

#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// A folder of sub-folders, one per class (its name), or a labels CSV (img_name, and label
    /// and/or attribute columns).
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

/// One labelled image: its class name and attribute values, where given.
struct Labelled {
    path: PathBuf,
    class: Option<String>,
    attributes: [Option<usize>; 11],
}

/// The labelled images of a folder of class folders or of a labels CSV.
fn labelled(args: &FitArgs) -> Result<Vec<Labelled>> {
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
            out.extend(files.into_iter().map(|path| Labelled {
                path,
                class: Some(class.clone()),
                attributes: [None; 11],
            }));
        }
    } else {
        let text = std::fs::read_to_string(&args.labels)
            .with_context(|| format!("reading {}", args.labels.display()))?;
        let table = wbc_core::csv_text::read(&text).map_err(anyhow::Error::msg)?;
        let name = table.column("img_name");
        let label = table.column("label");
        let attribute_columns: Vec<Option<usize>> =
            ATTRIBUTES.iter().map(|a| table.column(a.name)).collect();
        let Some(name) =
            name.filter(|_| label.is_some() || attribute_columns.iter().any(Option::is_some))
        else {
            bail!(
                "{}: a labels CSV needs an img_name column and a label column or attribute columns",
                args.labels.display()
            );
        };
        let base = args
            .images
            .clone()
            .unwrap_or_else(|| args.labels.parent().unwrap_or(Path::new(".")).to_path_buf());
        for (line, r) in &table.records {
            let Some(n) = r.get(name) else { continue };
            let field = |c: Option<usize>| {
                c.and_then(|c| r.get(c))
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
            };
            let mut attributes = [None; 11];
            for (k, c) in attribute_columns.iter().enumerate() {
                if let Some(v) = field(*c) {
                    attributes[k] = Some(ATTRIBUTES[k].value_index(v).with_context(|| {
                        format!(
                            "{} line {line}: {} has no value \"{v}\"",
                            args.labels.display(),
                            ATTRIBUTES[k].name
                        )
                    })?);
                }
            }
            out.push(Labelled {
                path: base.join(n),
                class: field(label).map(str::to_string),
                attributes,
            });
        }
    }
    if out.is_empty() {
        bail!("{}: no labelled images found", args.labels.display());
    }
    Ok(out)
}

pub fn run(args: FitArgs) -> Result<()> {
    let pairs = labelled(&args)?;
    let names: Vec<String> = pairs.iter().filter_map(|p| p.class.clone()).collect();
    let (classes, types) = classes_of(&names);
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    let mut cells = Vec::new();
    for Labelled {
        path,
        class,
        attributes,
    } in &pairs
    {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        let image = wbc_core::preprocess::decode(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let a = block_on(analyzer.analyse(&image, || 0.0))
            .with_context(|| path.display().to_string())?;
        cells.push(LabelledCell {
            inputs: interpretable_inputs(&a.prediction.concepts(), &a.morphometry),
            features: a.features,
            shipped: a.prediction.cell_type,
            shipped_attributes: a.prediction.attributes,
            label: class.as_ref().and_then(|c| class_index(&classes, c)),
            attributes: *attributes,
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
    for a in &profile.attributes {
        eprintln!(
            "{}: {} cells labelled; shipped {:.1}%, corrected {:.1}% (cross-validated){}",
            a.attribute,
            a.shipped_accuracy.of,
            100.0 * a.shipped_accuracy.rate(),
            100.0 * a.adapted_accuracy.rate(),
            if a.used {
                "; used"
            } else {
                "; not used (no gain)"
            }
        );
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
