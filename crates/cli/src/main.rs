//! `wbc`: the command-line side of WBC Explorer. It trains and evaluates the networks the
//! browser runs, on the PBC images and WBCAtt labels, and runs them on any cell images.
#![forbid(unsafe_code)]

mod commands;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::*;

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
    /// Score a model on a split: per attribute accuracy, macro precision/recall/F1, confusion
    /// matrices, cell-type accuracy, and the human second annotation on re-annotated cells.
    Evaluate(evaluate::EvaluateArgs),
    /// Bring the fine-tuned ImageNet-pretrained encoder (a PyTorch run of
    /// train/finetune_encoder.py) into Burn: test and val scores, f16 weights and the card in
    /// models/.
    ImportEncoder(import_encoder::ImportEncoderArgs),
    /// Write a run's val-selected weights to models/ in half precision, with a model card
    /// holding the test-split metrics, size, FLOPs and the commands that made it.
    Export(evaluate::ExportArgs),
    /// Fit the concept-bottleneck model (cell type from the 31 attribute probabilities only),
    /// L1 strength chosen on val, and write models/cbm.json.
    Cbm(cbm::CbmArgs),
    /// Segment images with the classical bootstrap labeller: a label map per image at its own
    /// size (0 other, 1 cytoplasm, 2 nucleus, 3 platelet, 4 red cell, 5 vacuole), optional
    /// overlays, and the morphometry as JSON lines.
    Segment(segment::SegmentArgs),
    /// Train the segmentation network on the bootstrap label maps of `wbc masks` (train
    /// split), selecting epochs by mean IoU on val. Resumes like `wbc train`.
    TrainSeg(train_seg::TrainSegArgs),
    /// Write the segmentation run's val-selected weights to models/ (f16) with a model card:
    /// test IoU against the bootstrap labels, cellavision100 IoU (network and labeller), and
    /// morphometry against the WBCAtt attributes.
    ExportSeg(seg_export::ExportSegArgs),
    /// Choose on val whether and how the segmentation network's maps are tidied (lobe reach,
    /// waist gain) and write the choice and the sweep into its card (export-seg runs the same
    /// sweep).
    TidySweep(seg_export::TidySweepArgs),
    /// Score a segmentation network on val cells as they are and under synthetic shifts
    /// (rescaled, recoloured, blurred, JPEG) against the bootstrap maps, into its card: the
    /// rule for shipping a network meant for other microscopes.
    SegShifts(seg_export::SegShiftsArgs),
    /// Fine-tune a cell-structure-aware attribute model (one-pass or K-pass; max, attention
    /// or the global control) from the attribute network, on the bootstrap masks.
    TrainStructure(structure::TrainStructureArgs),
    /// Compare structure-aware runs on the test split with bootstrap and predicted masks;
    /// writes models/structure_ablation.json and prints a table.
    Ablation(structure::AblationArgs),
    /// Build a reference index (paths, attribute probabilities, features, cell types) of a
    /// folder of cells or a data split, for counterfactual retrieval here and in the browser.
    Index(counterfactual::IndexArgs),
    /// Real cells like the query but with the requested attribute values, closest first:
    /// one JSON line per match.
    Counterfactual(counterfactual::CounterfactualArgs),
    /// How often the top counterfactual is of another type when the requested change moves
    /// the CBM across a class boundary (every single-attribute change of every query).
    CounterfactualReport(counterfactual::ReportArgs),
    /// The page's "show me" edits (size, N:C, cytoplasm and granule colour, vacuoles) on PBC
    /// test cells, each analysed again: how often the attribute moves as asked, off-target
    /// movement, familiarity, where lymphocytes and monocytes flip; and a contact sheet.
    CounterfactualImages(counterfactual_images::CounterfactualImagesArgs),
    /// Bootstrap segmentation labels for every PBC cell of the official split (outside git).
    Masks(segment::MasksArgs),
    /// Predict cell type and attributes for image files or folders (attribute network only):
    /// one JSON object per line.
    Predict(predict::PredictArgs),
    /// The page's whole cell pipeline on image files or folders: both networks, the label
    /// map's morphometry and the measurement checks, with per-stage timings; one JSON object
    /// per line.
    Analyse(analyse::AnalyseArgs),
    /// Fit the front end's reference (PBC's look and scale), choose its default steps on val
    /// and shifted copies of val, fit temperatures and the familiarity check; writes
    /// models/calibration.{json,bin}.
    Calibrate(calibrate::CalibrateArgs),
    /// Score cell type and segmentation on the external sets (cellavision100, tecom300) with
    /// and without each front-end step; prints a markdown table and writes a JSON report.
    External(external::ExternalArgs),
    /// Score adapting the cell type to another microscope from k of its labelled cells per
    /// type (cellavision100, tecom300, Chula's held-back series): accuracy on the cells not
    /// labelled, 20 draws each; writes models/adaptation.json.
    AdaptEval(adapt_eval::AdaptEvalArgs),
    /// Score correcting the attributes from k cells' attribute values (the page's fit): mean
    /// macro-F1 on the cells not labelled, for WBCAtt's annotators and a second annotator;
    /// writes models/attribute_adaptation.json.
    AttributeAdaptEval(attribute_eval::AttributeEvalArgs),
    /// Fit a profile from your own labelled cells (a folder of class folders, or a labels
    /// CSV): the cell type adapted to your microscope, or your own question answered from the
    /// attributes and by a probe on the encoder's features, each cross-validated.
    Fit(fit::FitArgs),
    /// Fit the measured-type model (cell type from the segmentation's measurements of shape
    /// and density) on train cells and shifted copies, choose how it joins the attribute
    /// network's answer on val and shifted val; writes models/measured_type.json.
    MeasuredType(measured_type::MeasuredTypeArgs),
    /// Write the page's built-in sample cells (public/samples): real PBC test cells, balanced
    /// over the types, re-encoded small, with their WBCAtt labels and attribution.
    Samples(samples::SamplesArgs),
    /// Time the two networks alone (forward pass + readback, no pre- or post-processing), as
    /// the peer benchmark does in the browser: first run, warm median and p90, one JSON line.
    TimeNetworks(time_networks::TimeNetworksArgs),
    /// Time training steps of the attribute network (forward, loss, backward, AdamW) on
    /// random images: warm median and p90 per step and images per second, one JSON line.
    TimeTraining(time_networks::TimeTrainingArgs),
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train(args) => eprintln!("{}", train::run(args)?.summary("attribute macro-F1")),
        Command::TrainSeg(args) => eprintln!("{}", train_seg::run(args)?.summary("mIoU")),
        Command::ExportSeg(args) => seg_export::export(args)?,
        Command::TidySweep(args) => seg_export::tidy_sweep_card(args)?,
        Command::SegShifts(args) => seg_export::seg_shifts_card(args)?,
        Command::TrainStructure(args) => {
            eprintln!("{}", structure::train(args)?.summary("attribute macro-F1"))
        }
        Command::Ablation(args) => structure::ablation(args)?,
        Command::Index(args) => counterfactual::index(args)?,
        Command::Counterfactual(args) => counterfactual::counterfactual(args)?,
        Command::CounterfactualReport(args) => counterfactual::report(args)?,
        Command::CounterfactualImages(args) => counterfactual_images::run(args)?,
        Command::Evaluate(args) => evaluate::evaluate(args)?,
        Command::Export(args) => evaluate::export(args)?,
        Command::ImportEncoder(args) => import_encoder::run(args)?,
        Command::Predict(args) => predict::run(args)?,
        Command::Analyse(args) => analyse::run(args)?,
        Command::Calibrate(args) => calibrate::run(args)?,
        Command::External(args) => external::run(args)?,
        Command::AdaptEval(args) => adapt_eval::run(args)?,
        Command::AttributeAdaptEval(args) => attribute_eval::run(args)?,
        Command::Fit(args) => fit::run(args)?,
        Command::MeasuredType(args) => measured_type::run(args)?,
        Command::Samples(args) => samples::run(args)?,
        Command::TimeNetworks(args) => time_networks::run(args)?,
        Command::TimeTraining(args) => time_networks::time_training(args)?,
        Command::Cbm(args) => cbm::run(args)?,
        Command::Segment(args) => segment::segment(args)?,
        Command::Masks(args) => segment::masks(args)?,
    }
    Ok(())
}
