//! `wbc cbm`: fit the concept-bottleneck model on the attribute network's train-split
//! predictions, choose the L1 strength on val, report on test next to the direct image
//! classifier, check that interventions move it the way a haematologist would, and export
//! `models/cbm.json`.

use super::parse_setting;
use anyhow::{Context, Result};
use burn::tensor::Device;
use serde_json::json;
use std::path::PathBuf;
use wbc_core::cbm::{intervene, Cbm};
use wbc_core::metrics::{argmax, Confusion};
use wbc_core::schema::cell_type_index;
use wbc_core::CELL_TYPES;
use wbc_lab::cards;
use wbc_lab::cards::CbmFile;
use wbc_lab::data::PbcArgs;
use wbc_lab::data::PixelCache;
use wbc_lab::scoring::predict_cache;

#[derive(clap::Args, Debug)]
pub struct CbmArgs {
    /// Where the PBC images and WBCAtt labels are, and how many cells to use.
    #[command(flatten)]
    pub pbc: PbcArgs,
    /// Attribute model whose predicted probabilities are the CBM's inputs.
    #[arg(long, default_value = "models/attribute_net")]
    pub model: PathBuf,
    #[arg(long, default_value = "models/cbm.json")]
    pub out: PathBuf,
    /// Proximal-gradient iterations per fit.
    #[arg(long, default_value_t = 600)]
    pub iterations: usize,
}

fn concepts(
    net: &wbc_nets::AttributeNet,
    cache: &PixelCache,
) -> Result<(Vec<Vec<f32>>, Vec<usize>)> {
    let preds = predict_cache(net, cache, &Device::flex())?;
    Ok((
        preds.iter().map(|p| p.concepts()).collect(),
        preds.iter().map(|p| argmax(&p.cell_type)).collect(),
    ))
}

fn confusion(cbm: &Cbm, x: &[Vec<f32>], y: &[usize]) -> Confusion {
    let mut c = Confusion::new(CELL_TYPES.len());
    for (xi, &yi) in x.iter().zip(y) {
        c.add(yi, argmax(&cbm.probabilities(xi)));
    }
    c
}

/// Share (%) of cells of `class` whose CBM label, after `settings`, is `target` (or, with
/// `target` None, is anything but `class`).
fn shift(
    cbm: &Cbm,
    x: &[Vec<f32>],
    y: &[usize],
    class: usize,
    settings: &[(usize, usize)],
    target: Option<usize>,
) -> (f64, usize) {
    let mut moved = 0;
    let mut n = 0;
    for (xi, &yi) in x.iter().zip(y) {
        if yi != class {
            continue;
        }
        n += 1;
        let edited = settings
            .iter()
            .fold(xi.clone(), |acc, &(k, v)| intervene(&acc, k, v));
        let label = argmax(&cbm.probabilities(&edited));
        if target.map_or(label != class, |t| label == t) {
            moved += 1;
        }
    }
    (100.0 * moved as f64 / n.max(1) as f64, n)
}

pub fn run(args: CbmArgs) -> Result<()> {
    let device = Device::flex();
    let (net, card) = cards::attribute_net(&args.model, &device)?;
    let size = card.input_size;
    let split = |name: &str| -> Result<(Vec<Vec<f32>>, Vec<usize>, Vec<usize>)> {
        let s = args.pbc.split(name, size)?;
        let (x, direct) = concepts(&net, &s.pixels)?;
        Ok((x, s.cells.iter().map(|c| c.cell_type).collect(), direct))
    };
    let (xtr, ytr, _) = split("train")?;
    let (xva, yva, _) = split("val")?;
    let (xte, yte, direct_te) = split("test")?;

    let mut search = Vec::new();
    let mut best: Option<(f64, Cbm)> = None;
    for l1 in [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] {
        let cbm = Cbm::fit(&xtr, &ytr, l1, args.iterations);
        let val = confusion(&cbm, &xva, &yva);
        eprintln!(
            "l1 {l1:<7} val accuracy {:.2}  macro-F1 {:.2}  non-zero weights {}",
            val.accuracy(),
            val.macro_f1(),
            cbm.nonzero_weights()
        );
        search.push(json!({"l1": l1, "val_accuracy": val.accuracy(), "val_macro_f1": val.macro_f1(), "nonzero_weights": cbm.nonzero_weights()}));
        // Best val macro-F1; on a tie the sparser (larger L1, later) model is easier to read.
        if best.as_ref().is_none_or(|(f1, _)| val.macro_f1() >= *f1) {
            best = Some((val.macro_f1(), cbm));
        }
    }
    let (_, cbm) = best.context("no fit")?;
    let test = confusion(&cbm, &xte, &yte);
    let mut direct = Confusion::new(CELL_TYPES.len());
    for (&t, &p) in yte.iter().zip(&direct_te) {
        direct.add(t, p);
    }
    let idx = |c: &str| cell_type_index(c).expect("cell type");
    let set = |s: &str| parse_setting(s).map_err(anyhow::Error::msg);
    let shift = |from, to: &[(usize, usize)], into| shift(&cbm, &xte, &yte, from, to, into);
    let (neut_to_baso, n_neut) = shift(
        idx("Neutrophil"),
        &[set("granule_colour=purple")?, set("granule_type=coarse")?],
        Some(idx("Basophil")),
    );
    let (lymph_away, n_lymph) = shift(
        idx("Lymphocyte"),
        &[set("nuclear_cytoplasmic_ratio=low")?, set("cell_size=big")?],
        None,
    );
    let (eos_from_neut, _) = shift(
        idx("Neutrophil"),
        &[set("granule_colour=red")?, set("granule_type=round")?],
        Some(idx("Eosinophil")),
    );
    println!("CBM (L1 {}): test accuracy {:.2}, macro-F1 {:.2}; direct image classifier: accuracy {:.2}, macro-F1 {:.2}", cbm.l1, test.accuracy(), test.macro_f1(), direct.accuracy(), direct.macro_f1());
    println!("test neutrophils called Basophil after granules → purple + coarse: {neut_to_baso:.1}% of {n_neut}");
    println!(
        "test neutrophils called Eosinophil after granules → red + round: {eos_from_neut:.1}%"
    );
    println!("test lymphocytes moved away from Lymphocyte after N:C → low + size → big: {lymph_away:.1}% of {n_lymph}");
    let file = CbmFile {
        cbm,
        metrics: json!({
            "inputs": "31 attribute probabilities predicted by models/attribute_net (train predictions for fitting)",
            "l1_search_on_val": search,
            "test": {"accuracy": test.accuracy(), "macro_f1": test.macro_f1(), "confusion": test.counts},
            "direct_image_classifier_test": {"accuracy": direct.accuracy(), "macro_f1": direct.macro_f1()},
            "interventions_test": {
                "neutrophils_to_basophil_with_purple_coarse_granules_pct": neut_to_baso,
                "neutrophils_to_eosinophil_with_red_round_granules_pct": eos_from_neut,
                "lymphocytes_leaving_lymphocyte_with_low_nc_big_cell_pct": lymph_away,
            },
        }),
        commands: json!({"fit": format!("wbc cbm --model {} --out {}", args.model.display(), args.out.display())}),
    };
    std::fs::write(&args.out, serde_json::to_vec_pretty(&file)?)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
