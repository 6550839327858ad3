//! `wbc predict`: one JSON object per image per line, with the CSV label spellings.

use crate::models;
use anyhow::Result;
use burn::tensor::Device;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use wbc_core::metrics::argmax;
use wbc_core::{preprocess, ATTRIBUTES, CELL_TYPES};
use wbc_nets::predict::predict;
use wbc_nets::CellPrediction;

#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Image files or folders (JPEG, PNG, BMP, TIFF); folders are read recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Model stem (reads <stem>.bpk and <stem>.json).
    #[arg(long, default_value = "models/attribute_net")]
    pub model: PathBuf,
    /// The concept-bottleneck model; its output is printed as "cbm" when the file exists.
    #[arg(long, default_value = "models/cbm.json")]
    pub cbm: PathBuf,
    /// Intervene on the CBM: set an attribute to a value (repeatable), e.g.
    /// --set granule_colour=purple --set granule_type=coarse. Prints "cbm_intervened".
    #[arg(long = "set", value_parser = crate::cbm::parse_setting)]
    pub set: Vec<(usize, usize)>,
    /// Cells per network call. Prints the network's milliseconds per cell at the end: the
    /// measurement behind the worker's choice of one cell per call (BENCHMARKS.md).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
}

const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "JPG"];

/// Files under the given paths: folders expanded (sorted), image extensions only; explicit
/// files are always kept, so a wrong file yields an error line rather than silence.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                if e.is_dir() {
                    out.extend(expand(&[e]));
                } else if e
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_lowercase().as_str()))
                {
                    out.push(e);
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn named(labels: &[&str], probs: &[f32]) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .zip(probs)
        .map(|(l, p)| (l.to_string(), json!(p)))
        .collect();
    json!({"value": labels[argmax(probs)], "probabilities": map})
}

fn labelled(probs: &[f32]) -> Value {
    let v = named(&CELL_TYPES, probs);
    json!({"label": v["value"], "probabilities": v["probabilities"]})
}

/// The JSON object of one prediction (without the path).
pub fn prediction_json(p: &CellPrediction) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("cell_type".into(), labelled(&p.cell_type));
    let attrs: Map<String, Value> = ATTRIBUTES
        .iter()
        .zip(&p.attributes)
        .map(|(a, probs)| (a.name.to_string(), named(a.values, probs)))
        .collect();
    obj.insert("attributes".into(), Value::Object(attrs));
    obj
}

pub fn read_input(path: &Path, size: usize) -> Result<Vec<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    preprocess::input_from_bytes(&bytes, size).map_err(|e| e.to_string())
}

pub fn run(args: PredictArgs) -> Result<()> {
    let device = Device::flex();
    let (net, card) = models::load(&args.model, &device)?;
    let cbm = if args.cbm.exists() || !args.set.is_empty() {
        Some(crate::cbm::load(&args.cbm)?)
    } else {
        None
    };
    // Each file's read error, or `None` when its input joined `readable`.
    let mut readable = Vec::new();
    let inputs: Vec<(PathBuf, Option<String>)> = expand(&args.paths)
        .into_iter()
        .map(|p| match read_input(&p, card.input_size) {
            Ok(input) => {
                readable.push(input);
                (p, None)
            }
            Err(e) => (p, Some(e)),
        })
        .collect();
    // The network on the readable inputs, `--batch` at a time (timed apart from decoding).
    let started = std::time::Instant::now();
    let mut predictions = Vec::with_capacity(readable.len());
    for chunk in readable.chunks(args.batch.max(1)) {
        predictions.extend(predict(&net, chunk, card.input_size, &device)?);
    }
    if !readable.is_empty() {
        eprintln!(
            "attribute network: {:.1} ms per cell at {} cell(s) per call ({} cells)",
            started.elapsed().as_secs_f64() * 1e3 / readable.len() as f64,
            args.batch.max(1),
            readable.len()
        );
    }
    let mut predictions = predictions.into_iter();
    for (path, error) in inputs {
        let mut obj = Map::new();
        obj.insert("path".into(), json!(path.display().to_string()));
        let result = match error {
            Some(e) => Err(e),
            None => Ok(predictions
                .next()
                .expect("one prediction per readable input")),
        };
        match result {
            Ok(p) => {
                obj.extend(prediction_json(&p));
                if let Some(cbm) = &cbm {
                    let concepts = p.concepts();
                    obj.insert("cbm".into(), labelled(&cbm.probabilities(&concepts)));
                    if !args.set.is_empty() {
                        let edited = args.set.iter().fold(concepts, |acc, &(k, v)| {
                            wbc_core::cbm::intervene(&acc, k, v)
                        });
                        obj.insert(
                            "cbm_intervened".into(),
                            labelled(&cbm.probabilities(&edited)),
                        );
                    }
                }
            }
            Err(e) => {
                obj.insert("error".into(), json!(e));
            }
        }
        println!("{}", Value::Object(obj));
    }
    Ok(())
}
