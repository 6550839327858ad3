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

#[derive(clap::Args, Debug)]
pub struct TimeTrainingArgs {
    /// The architecture (`plain` is the shipped one; see `AttributeNetConfig::named`).
    #[arg(long, default_value = "plain")]
    pub arch: String,
    /// Input side in pixels: 112 is the first training stage, 160 the second.
    #[arg(long, default_value_t = 112)]
    pub input_size: usize,
    /// Images a step (`wbc train`'s default).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed steps, after two that are not counted.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
}

/// Training steps of the attribute network as `wbc train` takes them (forward, the 12
/// weighted cross-entropies, backward, AdamW), on random images and labels so that only the
/// engine is timed: the step's warm median and p90, and images per second at the median.
/// Its peer is the same step in PyTorch (`bench/peer/native_torch.py`).
pub fn time_training(args: TimeTrainingArgs) -> Result<()> {
    use burn::module::Module;
    use burn::optim::{AdamWConfig, GradientsParams};
    use burn::tensor::{Tensor, TensorData};
    use wbc_core::dataset::LabelledCell;
    use wbc_core::{ATTRIBUTES, CELL_TYPES};
    use wbc_lab::rng::Rng;
    use wbc_lab::training::losses::{group_losses, multitask_loss};

    let config = wbc_nets::AttributeNetConfig::named(&args.arch, args.input_size)
        .ok_or_else(|| anyhow::anyhow!("no architecture named {:?}", args.arch))?;
    let device = Device::flex().autodiff();
    let mut model = config.init(&device);
    let mut optim = AdamWConfig::new().with_weight_decay(1e-4).init();
    let mut rng = Rng::new(1);
    let (b, size) = (args.batch, args.input_size);
    let cells: Vec<LabelledCell> = (0..b)
        .map(|i| LabelledCell {
            img_name: format!("random_{i}"),
            path: String::new(),
            cell_type: rng.below(CELL_TYPES.len()),
            attributes: std::array::from_fn(|k| rng.below(ATTRIBUTES[k].values.len())),
        })
        .collect();
    let batch: Vec<usize> = (0..b).collect();
    let losses = group_losses(&cells, 0.0, &device);
    let pixels: Vec<f32> = (0..b * 3 * size * size).map(|_| rng.symmetric()).collect();
    let mut laps = Vec::new();
    for step in 0..args.steps + 2 {
        let start = Instant::now();
        let images =
            Tensor::<4>::from_data(TensorData::new(pixels.clone(), [b, 3, size, size]), &device);
        let loss = multitask_loss(&losses, model.forward(images), &batch, &cells, &device);
        // As the trainer does: read the loss back (the forward pass is done by then); a
        // step's deferred work is paid by the next step, whose forward needs its weights.
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        if step >= 2 {
            laps.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let q = quantiles(laps);
    let median_s = q["median_ms"].as_f64().unwrap_or(f64::NAN) / 1e3;
    println!(
        "{}",
        json!({
            "engine": "burn flex (native)",
            "network": "attribute_net",
            "arch": args.arch,
            "input_size": size,
            "batch": b,
            "parameters": model.num_params(),
            "step": q,
            "images_per_second": b as f64 / median_s,
            "groups": ATTRIBUTES.iter().map(|a| a.values.len()).chain([CELL_TYPES.len()]).collect::<Vec<_>>(),
        })
    );
    Ok(())
}
