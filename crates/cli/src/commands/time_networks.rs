//! `wbc time-networks`: the two networks alone, as the peer benchmark times them (one forward
//! pass each on a fixed input, output read back), natively on flex: the first run and the warm
//! median and p90, as one JSON line, beside native onnxruntime on the same architectures.

use anyhow::Result;
use burn::tensor::Device;
use serde_json::json;
use std::time::Instant;
use wbc_lab::cards;
use wbc_nets::block_on;

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
