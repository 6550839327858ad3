//! `wbc analyse`: the cell pipeline the page runs (crop once, attribute network, segmentation
//! network, tidying, morphometry, measurement checks), natively. One JSON object per image
//! per line, with what the page shows; the like-for-like native peer of the browser in
//! `cargo xtask bench`.

use super::prediction_json;
use anyhow::Result;
use burn::tensor::Device;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;
use wbc_core::adapt::{interpretable_inputs, Profile};
use wbc_core::cbm::Cbm;
use wbc_core::{preprocess, table};
use wbc_lab::cards;
use wbc_lab::data::{expand, read_image_file, FailureArgs};
use wbc_nets::block_on;

#[derive(clap::Args, Debug)]
pub struct AnalyseArgs {
    /// Image files or folders (JPEG, PNG, BMP, TIFF); folders are read recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub pipeline: cards::PipelineArgs,
    /// Turn stain normalisation off (the page's toggle).
    #[arg(long)]
    pub no_stain: bool,
    /// Also write the analyser's table (as the page exports it): CSV, or JSON when the name
    /// ends in .json. The first 13 CSV columns are WBCAtt's.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The concept-bottleneck model for the table's CBM column (skipped when missing).
    #[arg(long, default_value = "models/cbm.json")]
    pub cbm: PathBuf,
    /// A profile fitted on your own labelled cells (`wbc fit`, or exported by the page): the
    /// cell type adapted to your microscope, or your own question answered for each cell.
    /// A profile for other network versions is refused.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Also print each cell's pooled encoder features (what the familiarity check, the doubt
    /// model and a profile read), for studies such as `bench/doubt_features.py`.
    #[arg(long)]
    pub features: bool,
    #[command(flatten)]
    pub failures: FailureArgs,
}

/// Read a profile for these networks, or say why it cannot be used.
fn read_profile(path: &std::path::Path, args: &AnalyseArgs) -> Result<Profile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: the profile could not be read ({e})", path.display()))?;
    Profile::read(&text, &args.pipeline.networks()?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What a profile adds to a cell's line: its attribute corrections (applied to the cell),
/// then the cell type adapted (applied too) or the question's answer.
fn apply_profile(profile: &Profile, cell: &mut wbc_nets::CellAnalysis) -> Value {
    let mut out = serde_json::Map::new();
    let corrected: Vec<&str> = profile
        .attributes
        .iter()
        .filter(|a| a.used)
        .map(|a| a.attribute.as_str())
        .collect();
    if !corrected.is_empty() {
        cell.prediction.attributes =
            profile.adapt_attributes(&cell.features, &cell.prediction.attributes);
        out.insert("corrected_attributes".into(), json!(corrected));
    }
    let shipped = cell.prediction.cell_type.clone();
    if let Some((p, familiarity)) =
        profile.adapt_type(&cell.features, &shipped, cell.familiarity.as_ref())
    {
        cell.prediction.cell_type = p;
        cell.familiarity = familiarity;
        out.insert("adapted_cell_type".into(), json!(true));
        out.insert("shipped_cell_type".into(), super::labelled(&shipped));
    }
    if let Some(q) = &profile.question {
        let names: Vec<&str> = profile.classes.iter().map(String::as_str).collect();
        let inputs = interpretable_inputs(&cell.prediction.concepts(), &cell.morphometry);
        out.insert("question".into(), json!(names));
        out.insert(
            "interpretable".into(),
            super::named(&names, &q.interpretable.probabilities(&inputs)),
        );
        out.insert(
            "probe".into(),
            super::named(&names, &q.probe.probabilities(&cell.features)),
        );
    }
    if out.is_empty() {
        Value::Null
    } else {
        Value::Object(out)
    }
}

pub fn run(args: AnalyseArgs) -> Result<()> {
    let device = Device::flex();
    let t0 = Instant::now();
    let mut analyzer = args.pipeline.load(&device)?;
    if args.no_stain {
        let settings = analyzer.settings();
        analyzer.set_settings(wbc_core::front_end::FrontEndSettings {
            stain: false,
            ..settings
        });
    }
    block_on(analyzer.warm_up())?;
    eprintln!(
        "models loaded and warmed up in {:.0} ms; segmentation by the {}",
        t0.elapsed().as_secs_f64() * 1e3,
        analyzer.segmenter().describe()
    );
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64() * 1e3;
    let profile = match &args.profile {
        Some(p) => Some(read_profile(p, &args)?),
        None => None,
    };
    let cbm: Option<Cbm> = std::fs::read(&args.cbm)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut rows = Vec::new();
    let (mut cells, mut total_ms) = (0usize, 0.0f64);
    let inputs = expand(&args.paths);
    let mut failures = 0;
    for path in &inputs {
        let started = now();
        let result = read_image_file(path)
            .and_then(|bytes| preprocess::decode(&bytes).map_err(|e| e.to_string()))
            .and_then(|img| {
                let decode_ms = now() - started;
                block_on(analyzer.analyse(&img, now))
                    .map(|cell| (cell, decode_ms))
                    .map_err(|e| e.to_string())
            });
        let mut obj = serde_json::Map::new();
        obj.insert("path".into(), json!(path.display().to_string()));
        match result {
            Ok((mut cell, decode_ms)) => {
                if let Some(profile) = &profile {
                    obj.insert("profile".into(), apply_profile(profile, &mut cell));
                }
                obj.extend(prediction_json(&cell.prediction));
                obj.insert("morphometry".into(), json!(cell.morphometry));
                obj.insert("front_end".into(), json!(cell.front_end));
                obj.insert("familiarity".into(), json!(cell.familiarity));
                // The two opinions the cell type joins (with the measured-type card).
                obj.insert(
                    "measured_type".into(),
                    json!(cell.measured_type.as_ref().map(|m| json!({
                        "network": super::labelled(&m.network),
                        "measured": super::labelled(&m.measured),
                        "joining": m.joining,
                        "used": m.used,
                    }))),
                );
                // The doubt score (0–1, higher = the type more likely wrong) beside the warning
                // it may have raised.
                obj.insert(
                    "doubt".into(),
                    json!(cell.familiarity.as_ref().and_then(|f| f.doubt)),
                );
                obj.insert(
                    "warning".into(),
                    json!(cell.familiarity.as_ref().and_then(|f| f.warning())),
                );
                let notes: Vec<String> = analyzer
                    .rules()
                    .iter()
                    .filter_map(|r| r.check(&cell.morphometry, &cell.prediction))
                    .map(|d| d.note)
                    .collect();
                obj.insert("measurement_notes".into(), json!(notes));
                if args.features {
                    obj.insert("features".into(), json!(cell.features));
                }
                let ms = now() - started;
                obj.insert(
                    "timings_ms".into(),
                    json!({
                        "decode": decode_ms,
                        "preprocess": cell.times.preprocess_ms,
                        "attribute_network": cell.times.inference_ms,
                        "segmentation": cell.times.segmentation_ms,
                        "total": ms,
                    }),
                );
                cells += 1;
                total_ms += ms;
                // The question's answer, as the page's table gives it.
                let question = profile.as_ref().and_then(|p| {
                    p.answer_question(&cell.prediction.concepts(), &cell.morphometry)
                });
                let mut row = table::Row::new(
                    path.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    cell.prediction,
                    cbm.as_ref(),
                    Some(cell.morphometry),
                    cell.familiarity.as_ref(),
                );
                row.question = question;
                rows.push(row);
            }
            Err(e) => {
                failures += 1;
                obj.insert("error".into(), json!(e));
            }
        }
        println!("{}", Value::Object(obj));
    }
    if let Some(out) = &args.out {
        let text = if out.extension().is_some_and(|e| e == "json") {
            serde_json::to_string_pretty(&table::to_json(&rows))?
        } else {
            table::to_csv(&rows)
        };
        std::fs::write(out, text)?;
        eprintln!("table of {} cell(s): {}", rows.len(), out.display());
    }
    if cells > 0 {
        eprintln!(
            "{cells} cell(s), {:.1} ms per cell (decode, both networks, tidying, morphometry)",
            total_ms / cells as f64
        );
    }
    args.failures.finish(failures, inputs.len())
}
