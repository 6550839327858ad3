//! The one epoch loop of the three trainers (`train`, `train-seg`, `train-structure`): a
//! shuffled pass over the training cells in batches, AdamW under a warm-up + cosine
//! schedule, a progress bar, and after each epoch the trainer's own validation and
//! checkpoint. Epochs a resumed run has done are skipped with their shuffles drawn, so a
//! resumed run sees the same batches as an uninterrupted one.

use crate::cache;
use crate::rng::Rng;
use anyhow::Result;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use std::time::Instant;

/// How a run walks through its data.
pub struct Schedule {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub seed: u64,
    /// Each epoch's augmentation draws come from `seed × this + epoch` (a constant per
    /// trainer, kept so earlier runs reproduce).
    pub augmentation_stream: u64,
}

/// One finished epoch, for the trainer's validation and record.
pub struct EpochDone {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub seconds: f64,
}

/// Whether `score` beats the best so far; if so it becomes the best, at `epoch`.
pub fn record_best(score: f64, best: &mut f64, best_epoch: &mut usize, epoch: usize) -> bool {
    let improved = score > *best;
    if improved {
        *best = score;
        *best_epoch = epoch;
    }
    improved
}

/// Learning rate at `step`: a one-epoch linear warm-up, then cosine decay to ~0.
pub fn lr_at(step: usize, steps_per_epoch: usize, total: usize, peak: f64) -> f64 {
    let warm = steps_per_epoch;
    if step < warm {
        peak * (step + 1) as f64 / warm as f64
    } else {
        let t = (step - warm) as f64 / (total - warm).max(1) as f64;
        peak * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()) + 1e-6
    }
}

/// Train `model` over the epochs after the first `done`, `cells` training cells a pass.
/// `batch_loss` makes one batch's loss from the cell indices (drawing augmentations from the
/// epoch's stream); `end_epoch` validates, records and saves. Returns the trained model.
pub fn train_epochs<M: Module>(
    mut model: M,
    optim: &mut ModuleOptimizer,
    done: usize,
    cells: usize,
    s: &Schedule,
    mut batch_loss: impl FnMut(&M, &[usize], &mut Rng) -> Tensor<1>,
    mut end_epoch: impl FnMut(&M, &ModuleOptimizer, EpochDone) -> Result<()>,
) -> Result<M> {
    let steps_per_epoch = cells.div_ceil(s.batch);
    let total_steps = steps_per_epoch * s.epochs;
    let mut rng = Rng::new(s.seed);
    let mut order: Vec<usize> = (0..cells).collect();
    for epoch in 0..s.epochs {
        rng.shuffle(&mut order);
        if epoch < done {
            continue;
        }
        let mut aug_rng = Rng::new(
            s.seed
                .wrapping_mul(s.augmentation_stream)
                .wrapping_add(epoch as u64),
        );
        let start = Instant::now();
        let bar = cache::progress(cells as u64, &format!("epoch {}/{}", epoch + 1, s.epochs));
        let mut loss_sum = 0.0;
        for (step_in_epoch, batch) in order.chunks(s.batch).enumerate() {
            let step = epoch * steps_per_epoch + step_in_epoch;
            let loss = batch_loss(&model, batch, &mut aug_rng);
            loss_sum += loss.clone().into_scalar::<f32>() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(
                lr_at(step, steps_per_epoch, total_steps, s.lr),
                model,
                grads,
            );
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        end_epoch(
            &model,
            optim,
            EpochDone {
                epoch: epoch + 1,
                train_loss: loss_sum / steps_per_epoch as f64,
                seconds: start.elapsed().as_secs_f64(),
            },
        )?;
    }
    Ok(model)
}
