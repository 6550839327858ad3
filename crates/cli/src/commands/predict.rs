//! `wbc predict`: one JSON object per image per line, with the CSV label spellings.

use super::{labelled, prediction_json};
use anyhow::Result;
use burn::tensor::Device;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use wbc_lab::cards;
use wbc_lab::data::{expand, read_input, FailureArgs};
use wbc_nets::predict::predict;

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
    #[arg(long = "set", value_parser = super::parse_setting)]
    pub set: Vec<(usize, usize)>,
    /// Cells per network call. Prints the network's milliseconds per cell at the end: the
    /// measurement behind the worker's choice of one cell per call (BENCHMARKS.md).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[command(flatten)]
    pub failures: FailureArgs,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let device = Device::flex();
    let (net, card) = cards::attribute_net(&args.model, &device)?;
    let cbm = if args.cbm.exists() || !args.set.is_empty() {
        Some(wbc_lab::cards::cbm(&args.cbm)?)
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
    let (total, mut failures) = (inputs.len(), 0);
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
                failures += 1;
                obj.insert("error".into(), json!(e));
            }
        }
        println!("{}", Value::Object(obj));
    }
    args.failures.finish(failures, total)
}
