//! The one epoch loop of the three trainers (`train`, `train-seg`, `train-structure`): resume
//! the run folder's run, then shuffled passes over the training cells in batches, AdamW under
//! a warm-up + cosine schedule, a progress bar, and after each epoch the trainer's own
//! validation, the record and the checkpoint. Epochs a resumed run has done are skipped with
//! their shuffles drawn, so a resumed run sees the same batches as an uninterrupted one.

use super::checkpoint::{EpochDone, RunFolder, RunState, Schedule};
use crate::data;
use crate::rng::Rng;
use anyhow::Result;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::ModuleSnapshot;
use burn::tensor::Tensor;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Instant;

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

/// Train `model` to the schedule's last epoch: resume the folder's run when it trained the
/// same network (else start from `fresh`), then for each remaining epoch make each batch's
/// loss with `batch_loss` (from the cell indices, drawing augmentations from the epoch's
/// stream), step AdamW, and let `validate` score the epoch on val (returning the score epochs
/// are selected on and the scores to record). Returns the run's record.
pub fn train_run<A, C, V, M>(
    folder: &RunFolder,
    fresh: RunState<A, C, V>,
    (mut model, optim): (M, ModuleOptimizer),
    s: &Schedule,
    mut batch_loss: impl FnMut(&M, &[usize], &mut Rng) -> Tensor<1>,
    mut validate: impl FnMut(&M, &EpochDone) -> Result<(f64, V)>,
) -> Result<RunState<A, C, V>>
where
    A: Clone + Serialize + DeserializeOwned,
    C: PartialEq + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
    M: Module + ModuleSnapshot,
{
    let (mut state, mut optim) = folder.resume_or_start(s.restart, fresh, &mut model, optim)?;
    let cells = s.cells;
    let steps_per_epoch = cells.div_ceil(s.batch);
    let total_steps = steps_per_epoch * s.epochs;
    let mut rng = Rng::new(s.seed);
    let mut order: Vec<usize> = (0..cells).collect();
    for epoch in 0..s.epochs {
        rng.shuffle(&mut order);
        if epoch < state.epoch {
            continue;
        }
        let mut aug_rng = Rng::new(
            s.seed
                .wrapping_mul(s.augmentation_stream)
                .wrapping_add(epoch as u64),
        );
        let start = Instant::now();
        let bar = data::progress(cells as u64, &format!("epoch {}/{}", epoch + 1, s.epochs));
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
        let seconds = start.elapsed().as_secs_f64();
        let done = EpochDone {
            epoch: epoch + 1,
            train_loss: loss_sum / steps_per_epoch as f64,
            seconds,
            images_per_second: cells as f64 / seconds,
        };
        let (score, val) = validate(&model, &done)?;
        state.end_epoch(folder, (&model, &optim), &done, score, val)?;
    }
    Ok(state)
}
