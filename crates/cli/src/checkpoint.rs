//! The run folder every trainer shares: `last.bpk` and `optimizer.bpk` after each epoch,
//! `best.bpk` when val improved, and `state.json` (the trainer's own record), so an
//! interrupted run resumes where it stopped.

use anyhow::{Context, Result};
use burn::optim::ModuleOptimizer;
use burn::store::{BurnpackStore, ModuleSnapshot};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

pub struct RunFolder(PathBuf);

/// A trainer's `state.json` record. A saved run is resumed when it trained the same network.
pub trait RunRecord: Serialize + DeserializeOwned {
    /// Epochs finished.
    fn epoch(&self) -> usize;
    /// Whether `other` trains the same network (so its weights can be resumed).
    fn same_network(&self, other: &Self) -> bool;
    /// The saved record, carrying this invocation's arguments.
    fn resumed_with(self, fresh: &Self) -> Self;
}

/// [`RunRecord`] for a record with `args`, `config` and `epoch` fields.
macro_rules! run_record {
    ($record:ty) => {
        impl $crate::checkpoint::RunRecord for $record {
            fn epoch(&self) -> usize {
                self.epoch
            }
            fn same_network(&self, other: &Self) -> bool {
                self.config == other.config
            }
            fn resumed_with(self, fresh: &Self) -> Self {
                Self {
                    args: fresh.args.clone(),
                    ..self
                }
            }
        }
    };
}
pub(crate) use run_record;

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
    /// optimizer state returned), otherwise `fresh`.
    pub fn resume_or_start<S: RunRecord, M: ModuleSnapshot>(
        &self,
        restart: bool,
        fresh: S,
        model: &mut M,
        optim: ModuleOptimizer,
    ) -> Result<(S, ModuleOptimizer)> {
        let (saved, optim) = self.resume(restart, |s: &S| s.same_network(&fresh), model, optim)?;
        let state = match saved {
            Some(saved) => {
                eprintln!("resuming after epoch {}", saved.epoch());
                saved.resumed_with(&fresh)
            }
            None => fresh,
        };
        Ok((state, optim))
    }

    /// Write one finished epoch: weights, optimizer state, the best weights when `improved`,
    /// then the state (last, so a state never names an epoch whose weights are missing).
    pub fn save_epoch<S: Serialize, M: ModuleSnapshot>(
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
