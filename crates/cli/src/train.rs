//! `wbc train`: multi-task training of the attribute network from scratch, with per-epoch
//! checkpoints (weights, optimizer state, history) so an interrupted run resumes.

use crate::cache::{self, PixelCache};
use crate::checkpoint::RunFolder;
use crate::epochs::{record_best, train_epochs, Schedule};
use crate::rng::Rng;
use crate::scoring::{self, SplitScores};
use anyhow::{Context, Result};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::AdamWConfig;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{activation::log_softmax, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use wbc_core::dataset::{self, LabelledCell};
use wbc_core::{preprocess, ATTRIBUTES, CELL_TYPES};
use wbc_nets::{AttributeNet, AttributeNetConfig};

#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct TrainArgs {
    /// Folder holding pbc/ and wbcatt/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Run folder: checkpoints, history and the best weights go here.
    #[arg(long, default_value = "runs/attribute_net")]
    pub out: PathBuf,
    /// Where decoded, resized images are cached between runs.
    #[arg(long, default_value = "target/wbc-cache")]
    pub cache: PathBuf,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate (AdamW, 1 warm-up epoch, cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Use only the first N cells of each split (pipeline tests).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Train the tiny architecture (pipeline tests) at this input size.
    #[arg(long)]
    pub tiny: Option<usize>,
    /// Start afresh even if the run folder holds a checkpoint.
    #[arg(long)]
    pub restart: bool,
    /// Input side in pixels for the standard network [default: 112].
    #[arg(long)]
    #[serde(default)]
    pub input_size: Option<usize>,
    /// Start from these weights (a burnpack of a finished run, e.g.
    /// runs/attribute_net/best.bpk) instead of random ones. The network ends in global
    /// pooling, so weights learnt at one input size carry over to a larger one: a second,
    /// sharper stage of training.
    #[arg(long)]
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Augmentation for cells from other microscopes, after the front end has corrected
    /// scale and stain: the residual errors of that correction (zoom 0.85–1.18×, lamp ±8%
    /// per channel, stain density ×0.8–1.25 with ±8% per channel) plus blur and noise.
    #[arg(long)]
    #[serde(default)]
    pub any_microscope: bool,
    /// With --init: also fit the starting network's own answers on the plain image
    /// (self-distillation, weighted this much against the labels' loss). The augmented
    /// student learns to give the clean teacher's answer, so heavy augmentation teaches
    /// invariance without unlearning what the network knew about PBC.
    #[arg(long)]
    #[serde(default)]
    pub distil: Option<f32>,
}

/// What the run folder remembers between epochs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub args: TrainArgs,
    pub config: AttributeNetConfig,
    /// Epochs finished.
    pub epoch: usize,
    pub best_epoch: usize,
    pub best_val_attribute_f1: f64,
    pub history: Vec<EpochLog>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub seconds: f64,
    pub images_per_second: f64,
    pub val: SplitScores,
}

/// Split cells and their pixel cache.
pub struct Split {
    pub cells: Vec<LabelledCell>,
    pub pixels: PixelCache,
}

pub fn load_split(
    data: &std::path::Path,
    cache_dir: &std::path::Path,
    split: &str,
    size: usize,
    limit: Option<usize>,
) -> Result<Split> {
    let mut cells = dataset::read_csv(&dataset::split_csv(data, split))?;
    if let Some(n) = limit {
        cells.truncate(n);
    }
    let pixels = cache::load_or_build(data, cache_dir, split, &cells, size)?;
    Ok(Split { cells, pixels })
}

/// Class weights ∝ 1/√frequency (mean 1), so rare values (e.g. vacuoles) count in the loss
/// without swamping it; macro-F1 rewards getting rare values right.
fn class_weights(cells: &[LabelledCell]) -> Vec<Vec<f32>> {
    let mut groups: Vec<Vec<f32>> = ATTRIBUTES
        .iter()
        .map(|a| vec![0.0; a.values.len()])
        .collect();
    groups.push(vec![0.0; CELL_TYPES.len()]);
    for c in cells {
        for (k, &v) in c.attributes.iter().enumerate() {
            groups[k][v] += 1.0;
        }
        groups[11][c.cell_type] += 1.0;
    }
    groups
        .into_iter()
        .map(|counts| {
            let w: Vec<f32> = counts.iter().map(|&n| 1.0 / (n.max(1.0)).sqrt()).collect();
            let mean = w.iter().sum::<f32>() / w.len() as f32;
            w.into_iter().map(|x| x / mean).collect()
        })
        .collect()
}

/// A random label-preserving change of a training input: a symmetry of the square (flips,
/// 90° turns), a shift of a few pixels and ±4% brightness/contrast. Hue is left alone:
/// colours are labels. The same draw moves a label map with its image.
pub struct Augmentation {
    /// For each output pixel, the source pixel (row-major index).
    source: Vec<usize>,
    /// Per-channel gain (equal for the attribute network: colours are labels there).
    gain: [f32; 3],
    bias: f32,
    /// Per-channel optical-density scale (1 = unchanged): the pixel is raised to this power.
    density: [f32; 3],
    /// Box-blur passes (3×3) after the colour change: 0 = sharp.
    blur: usize,
    /// Standard deviation of added Gaussian-like noise (0..1 scale).
    noise: f32,
    /// Seed of the noise.
    noise_seed: u64,
}

/// How strongly [`Augmentation::draw_shifted`] imitates another microscope.
struct MicroscopeShift {
    /// Zoom between 1/zoom and zoom.
    zoom: f32,
    /// Lamp gain per channel: centre ± spread.
    lamp: (f32, f32),
    /// Stain density between 1/density and density…
    density: f32,
    /// …and each channel ± this share on top (a hue change).
    hue: f32,
    /// Samples in ten that are blurred, and up to how many box passes.
    blur_in_10: usize,
    blur_passes: usize,
    /// Samples in ten with noise, and its σ: centre ± spread.
    noise_in_10: usize,
    noise: (f32, f32),
    /// Turn by any angle, not only by quarter turns (the corners show background).
    rotate: bool,
}

impl MicroscopeShift {
    const SEGMENTATION: Self = Self {
        zoom: 2.0,
        lamp: (0.9, 0.2),
        density: 1.6,
        hue: 0.25,
        blur_in_10: 4,
        blur_passes: 3,
        noise_in_10: 4,
        noise: (0.02, 0.02),
        rotate: true,
    };
    /// The front end's residual errors and more: its scale step is off by default, and
    /// the external sets showed cells 1.5–2× PBC's size and softer focus (upsampled
    /// 120 px images), so zoom 0.7–1.4× and blur in half the samples. Colour changes stay
    /// small: cytoplasm and granule colour are labels.
    const ATTRIBUTES: Self = Self {
        zoom: 1.4,
        lamp: (1.0, 0.08),
        density: 1.3,
        hue: 0.08,
        blur_in_10: 5,
        blur_passes: 3,
        noise_in_10: 3,
        noise: (0.02, 0.01),
        rotate: true,
    };
}

/// Marks an output pixel that falls outside the source image (zoomed out): it gets the
/// image's background colour and the label "other".
const OUTSIDE: usize = usize::MAX;

impl Augmentation {
    pub fn draw(size: usize, rng: &mut Rng) -> Self {
        let (turn, flip, shift, gain, bias) = Self::draw_common(size, rng);
        Self::build(size, turn, flip, shift, (1.0, 0.0), [gain; 3], bias, false)
    }

    /// For the segmentation network, which must also work on other microscopes and stains:
    /// on top of [`Augmentation::draw`], a zoom of 0.8–1.25× about the centre and ±10% per
    /// colour channel (a stain tint). With `stain_jitter`, also the stain's strength: by
    /// Beer–Lambert a pixel's transmitted light is exp(−optical density), so scaling the
    /// density by `k` raises the pixel to the power `k` (×0.67–1.5, each channel ±15% more,
    /// which also shifts the hue a little), and zoom widens to 0.7–1.43×. None of these
    /// changes which pixel is nucleus or cytoplasm.
    pub fn draw_for_segmentation(size: usize, stain_jitter: bool, rng: &mut Rng) -> Self {
        let (turn, flip, shift, gain, bias) = Self::draw_common(size, rng);
        let zoom_range: f32 = if stain_jitter { 1.43 } else { 1.25 };
        let zoom = zoom_range.powf(rng.symmetric());
        let tint = [(); 3].map(|_| gain * (1.0 + 0.1 * rng.symmetric()));
        let mut aug = Self::build(size, turn, flip, shift, (zoom, 0.0), tint, bias, false);
        if stain_jitter {
            let strength = 1.5f32.powf(rng.symmetric());
            aug.density = [(); 3].map(|_| strength * (1.0 + 0.15 * rng.symmetric()));
        }
        aug
    }

    /// For a segmentation network that must work on any microscope, before or after the
    /// front end: zoom 0.5–2× (zoomed out, the frame is padded with the image's background),
    /// a lamp colour per channel (0.7–1.1: yellow, grey or blue backgrounds as well as PBC's
    /// pink), stain density ×0.6–1.6 with each channel ±25% (hue), and in some samples blur
    /// (1–3 box passes, 40%) and noise (σ up to 0.04, 40%). None of these changes which pixel
    /// is nucleus or cytoplasm.
    pub fn draw_for_any_microscope(size: usize, rng: &mut Rng) -> Self {
        Self::draw_shifted(size, &MicroscopeShift::SEGMENTATION, rng)
    }

    /// For the attribute network behind the front end (see `TrainArgs::any_microscope`).
    /// Colours are labels here (cytoplasm and granule colour), so the colour changes stay
    /// within what the front end leaves uncorrected.
    pub fn draw_for_attributes_any(size: usize, rng: &mut Rng) -> Self {
        Self::draw_shifted(size, &MicroscopeShift::ATTRIBUTES, rng)
    }

    fn draw_shifted(size: usize, m: &MicroscopeShift, rng: &mut Rng) -> Self {
        let (turn, flip, shift, _, bias) = Self::draw_common(size, rng);
        let zoom = m.zoom.powf(rng.symmetric());
        let lamp = [(); 3].map(|_| m.lamp.0 + m.lamp.1 * rng.symmetric());
        let angle = if m.rotate {
            std::f32::consts::FRAC_PI_4 * rng.symmetric()
        } else {
            0.0
        };
        let mut aug = Self::build(size, turn, flip, shift, (zoom, angle), lamp, bias, true);
        let strength = m.density.powf(rng.symmetric());
        aug.density = [(); 3].map(|_| strength * (1.0 + m.hue * rng.symmetric()));
        if rng.below(10) < m.blur_in_10 {
            aug.blur = 1 + rng.below(m.blur_passes);
        }
        if rng.below(10) < m.noise_in_10 {
            aug.noise = m.noise.0 + m.noise.1 * rng.symmetric();
        }
        aug.noise_seed = rng.next_u64();
        aug
    }

    fn draw_common(size: usize, rng: &mut Rng) -> (usize, bool, (isize, isize), f32, f32) {
        let turn = rng.below(4);
        let flip = rng.below(2) == 1;
        let max_shift = (size / 20) as isize;
        let shift = (
            rng.below(2 * max_shift as usize + 1) as isize - max_shift,
            rng.below(2 * max_shift as usize + 1) as isize - max_shift,
        );
        let gain = 1.0 + 0.04 * rng.symmetric();
        let bias = 0.04 * rng.symmetric();
        (turn, flip, shift, gain, bias)
    }

    fn build(
        size: usize,
        turn: usize,
        flip: bool,
        (dy, dx): (isize, isize),
        (zoom, angle): (f32, f32),
        gain: [f32; 3],
        bias: f32,
        pad: bool,
    ) -> Self {
        let n = size as isize;
        let centre = (n - 1) as f32 / 2.0;
        let (sin, cos) = angle.sin_cos();
        // Nearest source pixel of an output pixel under a zoom and a turn (by `angle`,
        // within ±45°: the quarter turns below do the rest) about the centre.
        let unzoom = |y: isize, x: isize| -> (isize, isize) {
            if zoom == 1.0 && angle == 0.0 {
                return (y, x);
            }
            let (v, u) = ((y as f32 - centre) / zoom, (x as f32 - centre) / zoom);
            (
                (centre + cos * v - sin * u).round() as isize,
                (centre + sin * v + cos * u).round() as isize,
            )
        };
        let mut source = Vec::with_capacity(size * size);
        for y in 0..n {
            for x in 0..n {
                let (y, x) = unzoom(y, x);
                let (mut a, mut b) = match turn {
                    0 => (y, x),
                    1 => (x, n - 1 - y),
                    2 => (n - 1 - y, n - 1 - x),
                    _ => (n - 1 - x, y),
                };
                if flip {
                    b = n - 1 - b;
                }
                a += dy;
                b += dx;
                // Zoomed out beyond the image: background when padding (as another
                // microscope's wider field would show), else the edge pixel.
                if pad && (a < 0 || b < 0 || a >= n || b >= n) {
                    source.push(OUTSIDE);
                    continue;
                }
                source.push((a.clamp(0, n - 1) * n + b.clamp(0, n - 1)) as usize);
            }
        }
        Self {
            source,
            gain,
            bias,
            density: [1.0; 3],
            blur: 0,
            noise: 0.0,
            noise_seed: 0,
        }
    }

    /// Normalised CHW input from HWC pixels.
    pub fn image(&self, hwc: &[u8]) -> Vec<f32> {
        let plane = self.source.len();
        let side = (plane as f64).sqrt() as usize;
        // Only a zoomed-out view needs the background colour.
        let fill = if self.source.contains(&OUTSIDE) {
            let img = image::RgbImage::from_raw(side as u32, side as u32, hwc.to_vec())
                .expect("square HWC pixels");
            wbc_core::front_end::measure_look(&img).background
        } else {
            [1.0; 3]
        };
        let mut out = vec![0.0; 3 * plane];
        for (dst, &src) in self.source.iter().enumerate() {
            for c in 0..3 {
                let mut v = if src == OUTSIDE {
                    fill[c]
                } else {
                    hwc[src * 3 + c] as f32 / 255.0
                };
                if self.density[c] != 1.0 {
                    v = v.max(1.0 / 255.0).powf(self.density[c]);
                }
                out[c * plane + dst] = v * self.gain[c] + self.bias;
            }
        }
        for _ in 0..self.blur {
            for c in 0..3 {
                box_blur(&mut out[c * plane..(c + 1) * plane], side);
            }
        }
        if self.noise > 0.0 {
            let mut rng = Rng::new(self.noise_seed);
            for v in out.iter_mut() {
                // Sum of three uniforms: close enough to Gaussian, σ = noise.
                let u = rng.symmetric() + rng.symmetric() + rng.symmetric();
                *v += u * self.noise;
            }
        }
        for c in 0..3 {
            for v in &mut out[c * plane..(c + 1) * plane] {
                *v = (*v - preprocess::MEAN[c]) / preprocess::STD[c];
            }
        }
        out
    }

    /// The label map moved the same way (no photometric change).
    pub fn labels<'a>(&'a self, labels: &'a [u8]) -> impl Iterator<Item = u8> + 'a {
        self.source
            .iter()
            .map(move |&src| if src == OUTSIDE { 0 } else { labels[src] })
    }
}

/// One 3×3 box-blur pass over a square plane (edges use the pixels that exist).
fn box_blur(plane: &mut [f32], side: usize) {
    let src = plane.to_vec();
    for y in 0..side {
        for x in 0..side {
            let (mut sum, mut n) = (0.0, 0.0);
            for yy in y.saturating_sub(1)..(y + 2).min(side) {
                for xx in x.saturating_sub(1)..(x + 2).min(side) {
                    sum += src[yy * side + xx];
                    n += 1.0;
                }
            }
            plane[y * side + x] = sum / n;
        }
    }
}

/// One augmented training input (see [`Augmentation`]).
pub fn augment(hwc: &[u8], size: usize, rng: &mut Rng) -> Vec<f32> {
    Augmentation::draw(size, rng).image(hwc)
}

/// Sum of the 12 weighted cross-entropies (11 attributes, cell type) of a batch.
pub fn multitask_loss(
    losses: &[CrossEntropyLoss],
    logits: Tensor<2>,
    batch: &[usize],
    cells: &[LabelledCell],
    device: &Device,
) -> Tensor<1> {
    sum_over_groups(|g, offset, n| {
        let targets: Vec<i64> = batch
            .iter()
            .map(|&i| {
                let c = &cells[i];
                (if g < 11 { c.attributes[g] } else { c.cell_type }) as i64
            })
            .collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch.len()]), device);
        losses[g].forward(logits.clone().narrow(1, offset, n), targets)
    })
}

/// Sum of `loss(group, offset, width)` over the 12 softmax groups of the head (11
/// attributes, then the cell type).
fn sum_over_groups(mut loss: impl FnMut(usize, usize, usize) -> Tensor<1>) -> Tensor<1> {
    let widths = ATTRIBUTES
        .iter()
        .map(|a| a.values.len())
        .chain([CELL_TYPES.len()]);
    let mut offset = 0;
    let mut total: Option<Tensor<1>> = None;
    for (g, n) in widths.enumerate() {
        let l = loss(g, offset, n);
        total = Some(match total {
            Some(acc) => acc + l,
            None => l,
        });
        offset += n;
    }
    total.expect("at least one group")
}

/// Cross-entropy of each softmax group against soft targets (the teacher's probabilities,
/// `[batch, HEAD_WIDTH]`), summed over the 12 groups as [`multitask_loss`] is.
pub fn distillation_loss(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    sum_over_groups(|_, offset, n| {
        let log_p = log_softmax(logits.clone().narrow(1, offset, n), 1);
        (targets.clone().narrow(1, offset, n) * log_p)
            .sum_dim(1)
            .mean()
            .neg()
    })
}

/// The teacher's probabilities for every cell of a cache, flattened to `HEAD_WIDTH` a cell.
fn teacher_targets(teacher: &AttributeNet, pixels: &PixelCache) -> Result<Vec<f32>> {
    let preds = scoring::predict_cache(teacher, pixels, &Device::flex())?;
    Ok(preds
        .iter()
        .flat_map(|p| p.attributes.iter().flatten().chain(&p.cell_type).copied())
        .collect())
}

/// One weighted cross-entropy per softmax group (see [`class_weights`]).
pub fn group_losses(cells: &[LabelledCell], device: &Device) -> Vec<CrossEntropyLoss> {
    class_weights(cells)
        .iter()
        .map(|w| {
            CrossEntropyLossConfig::new()
                .with_weights(Some(w.clone()))
                .init(device)
        })
        .collect()
}

pub fn run(args: TrainArgs) -> Result<RunState> {
    let folder = RunFolder::create(&args.out)?;
    let config = match args.tiny {
        Some(size) => AttributeNetConfig::tiny(size),
        None => AttributeNetConfig {
            input_size: args.input_size.unwrap_or(wbc_core::preprocess::INPUT_SIZE),
            ..AttributeNetConfig::standard()
        },
    };
    let size = config.input_size;
    let train = load_split(&args.data, &args.cache, "train", size, args.limit)?;
    let val = load_split(&args.data, &args.cache, "val", size, args.limit)?;
    eprintln!(
        "train {} cells, val {} cells, input {size}px",
        train.cells.len(),
        val.cells.len()
    );

    let device = Device::flex().autodiff();
    let mut model: AttributeNet = config.init(&device);
    if let Some(init) = &args.init {
        // A run's f32 checkpoint, or a shipped model's f16 weights (models/*.bpk, whose
        // card beside it says f16): those are widened to f32 as they load.
        let shipped_half = std::fs::read(init.with_extension("json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|card| card["weights_dtype"].as_str().map(|d| d.starts_with("f16")))
            .unwrap_or(false);
        if shipped_half {
            let bytes = std::fs::read(init)
                .with_context(|| format!("reading the starting weights {}", init.display()))?;
            wbc_nets::predict::load_half(&mut model, bytes)
                .with_context(|| format!("loading the starting weights {}", init.display()))?;
        } else {
            model
                .load_from(&mut BurnpackStore::from_file(init))
                .with_context(|| format!("loading the starting weights {}", init.display()))?;
        }
        eprintln!("starting from {}", init.display());
    }
    let teacher = match (args.distil, &args.init) {
        (Some(_), Some(_)) => {
            eprintln!("teacher: the starting network's answers on the plain train images");
            Some(teacher_targets(&model.valid(), &train.pixels)?)
        }
        (Some(_), None) => anyhow::bail!("--distil needs --init (the teacher)"),
        _ => None,
    };
    let optim = AdamWConfig::new()
        .with_weight_decay(args.weight_decay)
        .init();
    let fresh = RunState {
        args: args.clone(),
        config: config.clone(),
        epoch: 0,
        best_epoch: 0,
        best_val_attribute_f1: -1.0,
        history: vec![],
    };
    let (mut state, mut optim) = folder.resume_or_start(args.restart, fresh, &mut model, optim)?;

    let losses = group_losses(&train.cells, &device);
    let schedule = Schedule {
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        augmentation_stream: 1000,
    };
    let done = state.epoch;
    train_epochs(
        model,
        &mut optim,
        done,
        train.cells.len(),
        &schedule,
        |model, batch, aug_rng| {
            let mut inputs = Vec::with_capacity(batch.len() * 3 * size * size);
            for &i in batch {
                let cell = train.pixels.cell(i);
                inputs.extend(if args.any_microscope {
                    Augmentation::draw_for_attributes_any(size, aug_rng).image(cell)
                } else {
                    augment(cell, size, aug_rng)
                });
            }
            let images = Tensor::<4>::from_data(
                TensorData::new(inputs, [batch.len(), 3, size, size]),
                &device,
            );
            let logits = model.forward(images);
            let mut loss = multitask_loss(&losses, logits.clone(), batch, &train.cells, &device);
            if let (Some(weight), Some(targets)) = (args.distil, &teacher) {
                let width = wbc_core::schema::HEAD_WIDTH;
                let rows: Vec<f32> = batch
                    .iter()
                    .flat_map(|&i| targets[i * width..(i + 1) * width].iter().copied())
                    .collect();
                let rows =
                    Tensor::<2>::from_data(TensorData::new(rows, [batch.len(), width]), &device);
                loss = loss + distillation_loss(logits, rows) * weight;
            }
            loss
        },
        |model, optim, done| {
            let preds = scoring::predict_cache(&model.valid(), &val.pixels, &Device::flex())?;
            let val_scores = scoring::score(&val.cells, &preds);
            let log = EpochLog {
                epoch: done.epoch,
                train_loss: done.train_loss,
                seconds: done.seconds,
                images_per_second: train.cells.len() as f64 / done.seconds,
                val: val_scores.clone(),
            };
            eprintln!(
                "epoch {:>3}: loss {:.3}  val attribute macro-F1 {:.2}  cell-type acc {:.2}  ({:.0} s, {:.0} img/s)",
                log.epoch, log.train_loss, val_scores.mean_attribute_macro_f1, val_scores.cell_type_accuracy, done.seconds, log.images_per_second
            );
            let improved = record_best(
                val_scores.mean_attribute_macro_f1,
                &mut state.best_val_attribute_f1,
                &mut state.best_epoch,
                done.epoch,
            );
            state.epoch = done.epoch;
            state.history.push(log);
            folder.save_epoch(model, optim, improved, &state)
        },
    )?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zooming 2× about the centre: the output's corner shows the pixel a quarter of the way
    /// in, its centre stays the centre, and the label map follows the image.
    #[test]
    fn zoom_is_about_the_centre_and_moves_labels_too() {
        let size = 41;
        let aug = Augmentation::build(size, 0, false, (0, 0), (2.0, 0.0), [1.0; 3], 0.0, false);
        assert_eq!(aug.source[0], 10 * size + 10);
        assert_eq!(aug.source[20 * size + 20], 20 * size + 20);
        let labels: Vec<u8> = (0..size * size).map(|i| (i % 251) as u8).collect();
        let moved: Vec<u8> = aug.labels(&labels).collect();
        assert_eq!(moved[0], labels[10 * size + 10]);
        // Zooming out clamps to the border instead of reading outside the image…
        let out = Augmentation::build(size, 1, true, (2, -2), (0.8, 0.0), [1.0; 3], 0.0, false);
        assert!(out.source.iter().all(|&s| s < size * size));
        // …or, padding, shows background labelled "other" there.
        let padded = Augmentation::build(size, 0, false, (0, 0), (0.5, 0.0), [1.0; 3], 0.0, true);
        assert_eq!(padded.source[0], OUTSIDE);
        assert_eq!(padded.source[20 * size + 20], 20 * size + 20);
        // A turn by 45° about the centre: the centre stays, the corners show background.
        let turned = Augmentation::build(size, 0, false, (0, 0), (1.0, 0.785), [1.0; 3], 0.0, true);
        assert_eq!(turned.source[20 * size + 20], 20 * size + 20);
        assert_eq!(turned.source[0], OUTSIDE);
        assert_ne!(turned.source[size], size);
        let moved: Vec<u8> = padded.labels(&vec![2u8; size * size]).collect();
        assert_eq!((moved[0], moved[20 * size + 20]), (0, 2));
        let hwc: Vec<u8> = (0..size * size)
            .flat_map(|i| {
                if i % 7 == 0 {
                    [90, 50, 120]
                } else {
                    [235, 215, 205]
                }
            })
            .collect();
        let img = padded.image(&hwc);
        let back = img[0] * preprocess::STD[0] + preprocess::MEAN[0];
        assert!(
            (back - 235.0 / 255.0).abs() < 0.01,
            "padding is the background, not {back}"
        );
    }

    /// The any-microscope draws stay within their stated ranges.
    #[test]
    fn any_microscope_draws_stay_in_their_ranges() {
        let mut rng = Rng::new(5);
        let (mut padded, mut blurred) = (false, false);
        for _ in 0..50 {
            let a = Augmentation::draw_for_any_microscope(32, &mut rng);
            assert!(
                a.gain.iter().all(|g| (0.7..=1.1).contains(g)),
                "{:?}",
                a.gain
            );
            assert!(a.blur <= 3 && a.noise <= 0.04 + 1e-6);
            padded |= a.source.contains(&OUTSIDE);
            blurred |= a.blur > 0;
            let b = Augmentation::draw_for_attributes_any(32, &mut rng);
            assert!(
                b.gain.iter().all(|g| (0.92..=1.08).contains(g)),
                "{:?}",
                b.gain
            );
            assert!(b.blur <= 3);
        }
        assert!(padded && blurred);
    }

    /// Segmentation draws tint the channels separately, within ±15%.
    #[test]
    fn segmentation_draws_tint_a_little() {
        let mut rng = Rng::new(3);
        let mut tinted = false;
        for _ in 0..20 {
            let aug = Augmentation::draw_for_segmentation(16, false, &mut rng);
            assert!(aug.gain.iter().all(|g| (0.85..=1.15).contains(g)));
            assert_eq!(aug.density, [1.0; 3]);
            tinted |= aug.gain[0] != aug.gain[1];
        }
        assert!(tinted);
    }

    /// Stain jitter scales optical density: white stays white, a stained pixel gets paler
    /// when the density shrinks and darker when it grows, and the scales stay in range.
    #[test]
    fn stain_jitter_scales_optical_density() {
        let mut rng = Rng::new(11);
        let (mut paler, mut darker) = (false, false);
        for _ in 0..40 {
            let aug = Augmentation::draw_for_segmentation(4, true, &mut rng);
            assert!(aug.density.iter().all(|k| (0.56..=1.73).contains(k)));
            paler |= aug.density.iter().all(|&k| k < 1.0);
            darker |= aug.density.iter().all(|&k| k > 1.0);
        }
        assert!(paler && darker);
        let mut aug = Augmentation::build(1, 0, false, (0, 0), (1.0, 0.0), [1.0; 3], 0.0, false);
        let value = |aug: &Augmentation, px: [u8; 3]| {
            let out = aug.image(&px);
            (0..3)
                .map(|c| out[c] * preprocess::STD[c] + preprocess::MEAN[c])
                .collect::<Vec<f32>>()
        };
        aug.density = [0.5; 3];
        assert!(value(&aug, [255; 3]).iter().all(|v| (v - 1.0).abs() < 1e-5));
        let stained = value(&aug, [64, 32, 128]);
        assert!((stained[0] - (64.0f32 / 255.0).sqrt()).abs() < 1e-5);
        assert!(stained
            .iter()
            .zip([64.0, 32.0, 128.0])
            .all(|(v, o)| *v > o / 255.0));
    }

    /// The attribute network's draw keeps colours: one gain for all three channels.
    #[test]
    fn attribute_draws_do_not_tint() {
        let mut rng = Rng::new(5);
        for _ in 0..10 {
            let aug = Augmentation::draw(16, &mut rng);
            assert_eq!(aug.gain[0], aug.gain[1]);
            assert_eq!(aug.gain[1], aug.gain[2]);
        }
    }
}

crate::checkpoint::run_record!(RunState);
