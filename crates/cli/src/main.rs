//! `wbc`: the command-line side of WBC Explorer. It trains and evaluates the networks the
//! browser runs, on the PBC images and WBCAtt labels, and runs them on any cell images.
#![forbid(unsafe_code)]

mod cache;
mod eval;
mod rng;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wbc",
    version,
    about = "Train, evaluate and run the WBC Explorer models on white-blood-cell images.\n\nData defaults to ../shared/data (PBC images under pbc/, WBCAtt labels under wbcatt/)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the attribute network on the official train split, selecting epochs on val.
    /// Interrupted runs resume from the run folder's last checkpoint.
    Train(train::TrainArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train(args) => {
            let state = train::run(args)?;
            eprintln!(
                "best epoch {} (val attribute macro-F1 {:.2})",
                state.best_epoch, state.best_val_attribute_f1
            );
        }
    }
    Ok(())
}
