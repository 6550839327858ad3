//! `wbc index`, `wbc counterfactual` and `wbc counterfactual-report`: reference sets of cells
//! with their attribute probabilities and features, retrieval of real cells like a query but
//! with requested attribute values (ranking in wbc-core::counterfactual), and how often the
//! retrieved cell is of another type when the request crosses a class boundary.

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use serde_json::json;
use std::path::{Path, PathBuf};
use wbc_core::cbm::{intervene, Cbm};
use wbc_core::counterfactual::{rank, IndexEntry, ReferenceIndex, Requests};
use wbc_core::metrics::argmax;
use wbc_core::{preprocess, ATTRIBUTES, CELL_TYPES};
use wbc_lab::cards;
use wbc_lab::data::{expand, read_input};
use wbc_nets::predict::predict_with_features;
use wbc_nets::CellPrediction;

/// Side of the thumbnails written next to an index.
const THUMBNAIL_SIDE: u32 = 96;

#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    /// Image files or folders of cells (not needed with --split).
    pub paths: Vec<PathBuf>,
    /// Index a split of the PBC/WBCAtt data instead (train, val or test).
    #[arg(long)]
    pub split: Option<String>,
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// The index file to write (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write a small JPEG of each cell under thumbs/ next to the index (for the
    /// browser, which shows them).
    #[arg(long)]
    pub thumbnails: bool,
    /// Index at most this many cells (evenly spread over the input).
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value = "models/attribute_net")]
    pub model: PathBuf,
    #[arg(long, default_value = "models/cbm.json")]
    pub cbm: PathBuf,
    /// Where the cells come from and their licence, shown with them in the page; for the
    /// PBC folders (and --split) the PBC dataset's credit is used when none is given.
    #[arg(long)]
    pub credit: Option<String>,
}

/// The PBC dataset's credit (CC BY 4.0 asks for it wherever its images are shown).
pub const PBC_CREDIT: &str = "PBC dataset: Acevedo et al., Data in Brief 30 (2020), CC BY 4.0";

fn cbm_label(cbm: Option<&Cbm>, concepts: &[f32]) -> Option<String> {
    cbm.map(|c| CELL_TYPES[argmax(&c.probabilities(concepts))].to_string())
}

fn entry(path: String, p: &CellPrediction, features: Vec<f32>, cbm: Option<&Cbm>) -> IndexEntry {
    let concepts = p.concepts();
    IndexEntry {
        path,
        thumbnail: None,
        cbm_type: cbm_label(cbm, &concepts),
        // Three decimals keep the file small; rankings do not change at that precision.
        concepts: concepts
            .iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect(),
        features: features
            .iter()
            .map(|x| (x * 1000.0).round() / 1000.0)
            .collect(),
        cell_type: CELL_TYPES[argmax(&p.cell_type)].to_string(),
    }
}

fn spread<T>(items: Vec<T>, limit: Option<usize>) -> Vec<T> {
    match limit {
        Some(n) if n < items.len() => {
            let step = items.len() as f64 / n as f64;
            let keep: std::collections::BTreeSet<usize> =
                (0..n).map(|i| (i as f64 * step) as usize).collect();
            items
                .into_iter()
                .enumerate()
                .filter(|(i, _)| keep.contains(i))
                .map(|(_, x)| x)
                .collect()
        }
        _ => items,
    }
}

pub fn index(args: IndexArgs) -> Result<()> {
    let device = Device::flex();
    let (net, card) = cards::attribute_net(&args.model, &device)?;
    let cbm = wbc_lab::cards::cbm_if_present(&args.cbm)?;
    let size = card.input_size;
    let files: Vec<PathBuf> = match &args.split {
        Some(split) => {
            let cells =
                wbc_core::dataset::read_csv(&wbc_core::dataset::split_csv(&args.data, split))?;
            cells
                .iter()
                .map(|c| args.data.join("pbc").join(&c.path))
                .collect()
        }
        None if args.paths.is_empty() => bail!("give image files or folders, or --split"),
        None => expand(&args.paths),
    };
    let files = spread(files, args.limit);
    let dir = args.out.parent().unwrap_or(Path::new(".")).to_path_buf();
    if args.thumbnails {
        std::fs::create_dir_all(dir.join("thumbs"))?;
    }
    let bar = wbc_lab::data::progress(files.len() as u64, "index");
    let mut entries = Vec::with_capacity(files.len());
    for chunk in files.chunks(32) {
        let mut inputs = Vec::new();
        let mut kept = Vec::new();
        for path in chunk {
            match std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| preprocess::decode(&b).map_err(|e| e.to_string()))
            {
                Ok(img) => {
                    let square = preprocess::center_square(&img);
                    inputs.push(preprocess::normalize(
                        &preprocess::cell_pixels(&square, size),
                        size,
                    ));
                    kept.push((path, square));
                }
                Err(e) => eprintln!("{}: skipped ({e})", path.display()),
            }
            bar.inc(1);
        }
        if inputs.is_empty() {
            continue;
        }
        for ((path, square), (p, f)) in kept
            .into_iter()
            .zip(predict_with_features(&net, &inputs, size, &device)?)
        {
            let mut e = entry(path.display().to_string(), &p, f, cbm.as_ref());
            if args.thumbnails {
                let name = format!("thumbs/{:05}.jpg", entries.len());
                let small = image::imageops::resize(
                    &square,
                    THUMBNAIL_SIDE,
                    THUMBNAIL_SIDE,
                    image::imageops::FilterType::Triangle,
                );
                small.save(dir.join(&name))?;
                e.thumbnail = Some(name);
            }
            entries.push(e);
        }
    }
    bar.finish_and_clear();
    let from_pbc = args.split.is_some()
        || args
            .paths
            .iter()
            .any(|p| p.to_string_lossy().contains("PBC_dataset"));
    let index = ReferenceIndex {
        model: format!("{} ({})", card.name, card.commit),
        credit: args
            .credit
            .clone()
            .or_else(|| from_pbc.then(|| PBC_CREDIT.to_string())),
        entries,
    };
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec(&index)?)?;
    eprintln!(
        "indexed {} cells into {}",
        index.entries.len(),
        args.out.display()
    );
    Ok(())
}

pub fn read_index(path: &Path) -> Result<ReferenceIndex> {
    serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))
}

#[derive(clap::Args, Debug)]
pub struct CounterfactualArgs {
    /// The query cell image.
    pub path: PathBuf,
    /// Requested attribute values (repeatable), e.g. --set granule_colour=purple.
    #[arg(long = "set", value_parser = super::parse_setting, required = true)]
    pub set: Vec<(usize, usize)>,
    /// A reference index built by `wbc index`.
    #[arg(long)]
    pub index: PathBuf,
    /// How many matches to print.
    #[arg(short, default_value_t = 5)]
    pub k: usize,
    #[arg(long, default_value = "models/attribute_net")]
    pub model: PathBuf,
    #[arg(long, default_value = "models/cbm.json")]
    pub cbm: PathBuf,
}

pub fn counterfactual(args: CounterfactualArgs) -> Result<()> {
    let device = Device::flex();
    let (net, card) = cards::attribute_net(&args.model, &device)?;
    let cbm = wbc_lab::cards::cbm_if_present(&args.cbm)?;
    let index = read_index(&args.index)?;
    let input = read_input(&args.path, card.input_size).map_err(anyhow::Error::msg)?;
    let (p, features) = predict_with_features(&net, &[input], card.input_size, &device)?
        .pop()
        .context("no prediction")?;
    let mut requests: Requests = [None; 11];
    for &(k, v) in &args.set {
        requests[k] = Some(v);
    }
    let concepts = p.concepts();
    let edited = args
        .set
        .iter()
        .fold(concepts.clone(), |acc, &(k, v)| intervene(&acc, k, v));
    let ranked = rank(
        (&concepts, &features),
        index
            .entries
            .iter()
            .map(|e| (e.concepts.as_slice(), e.features.as_slice())),
        &requests,
        args.k,
    );
    if ranked.is_empty() {
        eprintln!("no cell in the index has the requested values");
    }
    let requested: serde_json::Map<String, serde_json::Value> = args
        .set
        .iter()
        .map(|&(k, v)| {
            (
                ATTRIBUTES[k].name.to_string(),
                json!(ATTRIBUTES[k].values[v]),
            )
        })
        .collect();
    for (rank, (i, d)) in ranked.into_iter().enumerate() {
        let e = &index.entries[i];
        println!(
            "{}",
            json!({
                "query": args.path.display().to_string(),
                "requested": requested,
                "query_cbm": cbm_label(cbm.as_ref(), &concepts),
                "query_cbm_intervened": cbm_label(cbm.as_ref(), &edited),
                "rank": rank + 1,
                "path": e.path,
                "distance": d,
                "cell_type": e.cell_type,
                "cbm_type": e.cbm_type,
            })
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Reference index (e.g. the train split).
    #[arg(long)]
    pub index: PathBuf,
    /// Query index (e.g. the test split).
    #[arg(long)]
    pub queries: PathBuf,
    #[arg(long, default_value = "models/cbm.json")]
    pub cbm: PathBuf,
    #[arg(long, default_value = "models/counterfactual_report.json")]
    pub out: PathBuf,
}

/// For every query and every single-attribute change to a value it was not predicted to
/// have: does the change move the CBM to another type (a class boundary), and is the top
/// retrieved cell of another type than the query?
pub fn report(args: ReportArgs) -> Result<()> {
    let cbm = wbc_lab::cards::cbm(&args.cbm)?;
    let reference = read_index(&args.index)?;
    let queries = read_index(&args.queries)?;
    let label = |c: &[f32]| argmax(&cbm.probabilities(c));
    let ref_types: Vec<usize> = reference
        .entries
        .iter()
        .map(|e| label(&e.concepts))
        .collect();
    // [crossing?][top match of another type?], and top match = the intervened CBM's type.
    let mut counts = [[0usize; 2]; 2];
    let mut agrees_with_intervened = 0usize;
    let mut no_match = 0usize;
    let bar = wbc_lab::data::progress(queries.entries.len() as u64, "queries");
    for q in &queries.entries {
        let before = label(&q.concepts);
        for (k, a) in ATTRIBUTES.iter().enumerate() {
            let o = wbc_core::cbm::attribute_offset(k);
            let current = argmax(&q.concepts[o..o + a.values.len()]);
            for v in (0..a.values.len()).filter(|&v| v != current) {
                let mut requests: Requests = [None; 11];
                requests[k] = Some(v);
                let after = label(&intervene(&q.concepts, k, v));
                let top = rank(
                    (&q.concepts, &q.features),
                    reference
                        .entries
                        .iter()
                        .map(|e| (e.concepts.as_slice(), e.features.as_slice())),
                    &requests,
                    1,
                );
                let Some(&(i, _)) = top.first() else {
                    no_match += 1;
                    continue;
                };
                let crossing = after != before;
                counts[crossing as usize][(ref_types[i] != before) as usize] += 1;
                if crossing && ref_types[i] == after {
                    agrees_with_intervened += 1;
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let share = |row: [usize; 2]| 100.0 * row[1] as f64 / (row[0] + row[1]).max(1) as f64;
    let crossing_total = counts[1][0] + counts[1][1];
    let report = json!({
        "reference": args.index.display().to_string(),
        "reference_cells": reference.entries.len(),
        "queries": args.queries.display().to_string(),
        "query_cells": queries.entries.len(),
        "changes": "every single-attribute change of a query to a value it was not predicted to have",
        "crossing_changes": crossing_total,
        "top_match_of_another_type_when_crossing_pct": share(counts[1]),
        "top_match_is_the_intervened_cbm_type_when_crossing_pct": 100.0 * agrees_with_intervened as f64 / crossing_total.max(1) as f64,
        "non_crossing_changes": counts[0][0] + counts[0][1],
        "top_match_of_another_type_when_not_crossing_pct": share(counts[0]),
        "changes_without_any_match": no_match,
        "types": "CBM types of query and match (from predicted attributes)",
        "command": format!("cargo run --release -p wbc -- counterfactual-report --index {} --queries {}", args.index.display(), args.queries.display()),
        "commit": cards::git_commit(),
        "date": cards::today(),
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
