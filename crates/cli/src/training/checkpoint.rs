//! The run folder every trainer shares: `last.bpk` and `optimizer.bpk` after each epoch,
//! `best.bpk` when val improved, and `state.json` (the trainer's own record), so an
//! interrupted run resumes where it stopped.

use crate::data::PbcArgs;
use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The options every trainer shares: the data, the seed, the pipeline tests' tiny network
/// and whether to start afresh.
#[derive(clap::Args, Debug, Clone, Serialize, Deserialize)]
pub struct RunArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    #[serde(flatten)]
    pub pbc: PbcArgs,
    /// Seeds the shuffles and augmentation draws (and the initial weights' order of use).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Train the tiny architecture at this input size, from scratch (pipeline tests).
    #[arg(long)]
    pub tiny: Option<usize>,
    /// Start afresh even if the run folder holds a checkpoint.
    #[arg(long)]
    pub restart: bool,
}

/// How a run walks through its data.
pub struct Schedule {
    /// Training cells a pass.
    pub cells: usize,
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    pub seed: u64,
    /// Each epoch's augmentation draws come from `seed × this + epoch` (a constant per
    /// trainer, kept so earlier runs reproduce).
    pub augmentation_stream: u64,
    /// Start afresh even if the run folder holds a run of the same network.
    pub restart: bool,
}

/// One finished epoch, for the trainer's validation and record.
pub struct EpochDone {
    /// 1-based.
    pub epoch: usize,
    pub train_loss: f64,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl EpochDone {
    /// Print the epoch's line: its number, training loss, the trainer's val `summary` and time.
    pub fn report(&self, summary: &str) {
        eprintln!(
            "epoch {:>3}: loss {:.3}  {summary}  ({:.0} s)",
            self.epoch, self.train_loss, self.seconds
        );
    }
}

impl RunArgs {
    /// The schedule of a run over `cells` training cells: `(epochs, batch, peak lr)` and the
    /// trainer's augmentation stream (see [`Schedule`]).
    pub fn schedule(
        &self,
        cells: usize,
        (epochs, batch, lr): (usize, usize, f64),
        augmentation_stream: u64,
    ) -> Schedule {
        Schedule {
            cells,
            epochs,
            batch,
            lr,
            seed: self.seed,
            augmentation_stream,
            restart: self.restart,
        }
    }
}

pub struct RunFolder(PathBuf);

/// What a trainer's run folder remembers between epochs (`state.json`): the invocation, the
/// network, how far it got, its best val score and each epoch's log. A saved run is resumed
/// when it trained the same network (`config`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState<A, C, V> {
    pub args: A,
    pub config: C,
    /// Epochs finished.
    pub epoch: usize,
    pub best_epoch: usize,
    /// The val score epochs are selected on (mean attribute macro-F1, or mIoU for the
    /// segmentation network; scores are percentages, so a fresh run starts below any). Runs
    /// saved before the three trainers shared this record named it after the score.
    #[serde(alias = "best_val_attribute_f1", alias = "best_val_miou")]
    pub best_val: f64,
    pub history: Vec<EpochLog<V>>,
}

/// One epoch in a run's history: its training loss and time, and the val scores `V`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog<V> {
    pub epoch: usize,
    pub train_loss: f64,
    pub seconds: f64,
    #[serde(default)]
    pub images_per_second: f64,
    pub val: V,
}

impl<A, C, V> RunState<A, C, V>
where
    A: Clone + Serialize + DeserializeOwned,
    C: PartialEq + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// The line a finished run ends with.
    pub fn summary(&self, score: &str) -> String {
        format!(
            "best epoch {} (val {score} {:.2})",
            self.best_epoch, self.best_val
        )
    }

    /// A run that has done nothing yet.
    pub fn fresh(args: A, config: C) -> Self {
        Self {
            args,
            config,
            epoch: 0,
            best_epoch: 0,
            best_val: -1.0,
            history: vec![],
        }
    }

    /// Record a finished epoch (its val `score`, the one epochs are selected on, and its
    /// scores `val`) and save it with the weights; `best.bpk` follows when the score beats
    /// every earlier epoch.
    pub fn end_epoch<M: ModuleSnapshot>(
        &mut self,
        folder: &RunFolder,
        (model, optim): (&M, &ModuleOptimizer),
        done: &EpochDone,
        score: f64,
        val: V,
    ) -> Result<()> {
        let improved = score > self.best_val;
        if improved {
            self.best_val = score;
            self.best_epoch = done.epoch;
        }
        self.epoch = done.epoch;
        self.history.push(EpochLog {
            epoch: done.epoch,
            train_loss: done.train_loss,
            seconds: done.seconds,
            images_per_second: done.images_per_second,
            val,
        });
        folder.save_epoch(model, optim, improved, self)
    }
}

impl RunFolder {
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self(dir.to_path_buf()))
    }

    /// The saved state when the folder holds a run that `same_run` accepts (unless
    /// `restart`), with its last weights loaded into `model` and its optimizer state returned.
    pub fn resume<S: DeserializeOwned, M: ModuleSnapshot>(
        &self,
        restart: bool,
        same_run: impl Fn(&S) -> bool,
        model: &mut M,
        optim: ModuleOptimizer,
    ) -> Result<(Option<S>, ModuleOptimizer)> {
        let state_file = self.0.join("state.json");
        if restart || !state_file.exists() {
            return Ok((None, optim));
        }
        let saved: S = serde_json::from_slice(&std::fs::read(&state_file)?)?;
        if !same_run(&saved) {
            return Ok((None, optim));
        }
        model
            .load_from(&mut BurnpackStore::from_file(self.0.join("last.bpk")))
            .context("loading last.bpk to resume")?;
        let optim = optim
            .load(self.0.join("optimizer.bpk"))
            .context("loading optimizer.bpk to resume")?;
        Ok((Some(saved), optim))
    }

    /// The saved run when there is one to resume (its weights loaded into `model`, its
    /// optimizer state returned, this invocation's arguments kept), otherwise `fresh`.
    pub fn resume_or_start<A, C, V, M: ModuleSnapshot>(
        &self,
        restart: bool,
        fresh: RunState<A, C, V>,
        model: &mut M,
        optim: ModuleOptimizer,
    ) -> Result<(RunState<A, C, V>, ModuleOptimizer)>
    where
        A: Clone + Serialize + DeserializeOwned,
        C: PartialEq + Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        let same_network = |s: &RunState<A, C, V>| s.config == fresh.config;
        let (saved, optim) = self.resume(restart, same_network, model, optim)?;
        let state = match saved {
            Some(saved) => {
                eprintln!("resuming after epoch {}", saved.epoch);
                RunState {
                    args: fresh.args,
                    ..saved
                }
            }
            None => fresh,
        };
        Ok((state, optim))
    }

    /// Write one finished epoch: weights, optimizer state, the best weights when `improved`,
    /// then the state (last, so a state never names an epoch whose weights are missing).
    fn save_epoch<S: Serialize, M: ModuleSnapshot>(
        &self,
        model: &M,
        optim: &ModuleOptimizer,
        improved: bool,
        state: &S,
    ) -> Result<()> {
        let last = self.0.join("last.bpk");
        model
            .save_into(&mut BurnpackStore::from_file(&last).overwrite(true))
            .context("saving last.bpk")?;
        optim
            .save(self.0.join("optimizer.bpk"))
            .context("saving optimizer state")?;
        if improved {
            std::fs::copy(&last, self.0.join("best.bpk"))?;
        }
        std::fs::write(self.0.join("state.json"), serde_json::to_vec_pretty(state)?)?;
        Ok(())
    }
}
