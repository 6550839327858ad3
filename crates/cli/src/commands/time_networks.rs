//! `wbc time-networks`: the two networks alone, as the peer benchmark times them (one forward
//! pass each on a fixed input, output read back), natively on flex: the first run and the warm
//! median and p90, as one JSON line, beside native onnxruntime on the same architectures.
//! With `--per-layer`, each layer's warm median instead, one JSON line per layer (the per-layer
//! profile beside onnxruntime's, `bench/peer/layers.py`).

use anyhow::Result;
use burn::tensor::Device;
use serde_json::json;
use std::time::Instant;
use wbc_lab::cards;
use wbc_nets::{block_on, Analyzer};

#[derive(clap::Args, Debug)]
pub struct TimeNetworksArgs {
    #[command(flatten)]
    pub pipeline: cards::PipelineArgs,
    /// Cells per forward pass.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Warm runs.
    #[arg(long, default_value_t = 30)]
    pub runs: usize,
    /// Time each layer (the device synchronised after each) instead of whole passes.
    #[arg(long)]
    pub per_layer: bool,
}

/// Median and 90th percentile of `runs` (ms).
fn quantiles(mut runs: Vec<f64>) -> serde_json::Value {
    runs.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| runs[((runs.len() - 1) as f64 * q).round() as usize];
    json!({"median_ms": at(0.5), "p90_ms": at(0.9), "runs": runs.len()})
}

pub fn run(args: TimeNetworksArgs) -> Result<()> {
    let device = Device::flex();
    let analyzer = args.pipeline.load(&device)?;
    let clock = Instant::now();
    let now = || clock.elapsed().as_secs_f64() * 1e3;
    if args.per_layer {
        return per_layer(&analyzer, &args, now);
    }
    let first = block_on(analyzer.time_networks(args.batch, now))?;
    let (mut attribute, mut segmentation) = (Vec::new(), Vec::new());
    for _ in 0..args.runs.max(1) {
        let (a, s) = block_on(analyzer.time_networks(args.batch, now))?;
        attribute.push(a);
        segmentation.push(s);
    }
    println!(
        "{}",
        json!({
            "engine": "burn flex (native)",
            "batch": args.batch,
            "first_ms": {"attribute_net": first.0, "seg_net": first.1},
            "attribute_net": quantiles(attribute),
            "seg_net": quantiles(segmentation),
        })
    );
    Ok(())
}

/// One JSON line per layer: its network, name, output shape and warm median / p90 (ms) over
/// the runs, after one run that is not counted.
fn per_layer(analyzer: &Analyzer, args: &TimeNetworksArgs, now: impl Fn() -> f64) -> Result<()> {
    let first = analyzer.profile_layers(args.batch, &now);
    let mut laps: Vec<Vec<f64>> = vec![Vec::new(); first.len()];
    for _ in 0..args.runs.max(1) {
        for (lap, layer) in laps
            .iter_mut()
            .zip(analyzer.profile_layers(args.batch, &now))
        {
            lap.push(layer.ms);
        }
    }
    for (layer, runs) in first.into_iter().zip(laps) {
        let mut line = quantiles(runs);
        line["engine"] = json!("burn flex (native)");
        line["batch"] = json!(args.batch);
        line["network"] = json!(layer.network);
        line["layer"] = json!(layer.layer);
        line["output"] = json!(layer.output);
        println!("{line}");
    }
    Ok(())
}
