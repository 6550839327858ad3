//! `wbc samples`: the built-in sample cells the page offers a newcomer ("try sample cells").
//! Real PBC cells from the official test split (never trained on), balanced over the five
//! types and chosen to show as many attribute values as possible, centre-cropped and
//! re-encoded small (the only dataset images the repository holds), with their WBCAtt labels
//! and a README naming them and their licence.

use anyhow::{Context, Result};
use image::codecs::jpeg::JpegEncoder;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use wbc_core::dataset::{self, LabelledCell};
use wbc_core::{preprocess, ATTRIBUTES, CELL_TYPES};
use wbc_lab::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct SamplesArgs {
    /// Folder holding pbc/ and wbcatt/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Where the cells, labels.csv, index.json and README.md go (served with the page).
    #[arg(long, default_value = "public/samples")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 10)]
    pub per_type: usize,
    /// Side of the re-encoded square (PBC's centre crop is 360 px).
    #[arg(long, default_value_t = 256)]
    pub side: u32,
    #[arg(long, default_value_t = 85)]
    pub quality: u8,
}

/// Per type, greedily the cell that shows the most (attribute, value) pairs not yet shown
/// among that type's picks; ties go to a fixed shuffle, so the choice is reproducible.
fn choose(cells: &[LabelledCell], per_type: usize) -> Vec<&LabelledCell> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    Rng::new(2024).shuffle(&mut order);
    let mut picked = Vec::new();
    for t in 0..CELL_TYPES.len() {
        let pool: Vec<&LabelledCell> = order
            .iter()
            .map(|&i| &cells[i])
            .filter(|c| c.cell_type == t)
            .collect();
        let mut shown: BTreeSet<(usize, usize)> = BTreeSet::new();
        let mut taken: BTreeSet<usize> = BTreeSet::new();
        for _ in 0..per_type.min(pool.len()) {
            let new = |c: &LabelledCell| {
                c.attributes
                    .iter()
                    .enumerate()
                    .filter(|&(k, &v)| !shown.contains(&(k, v)))
                    .count()
            };
            let best = (0..pool.len())
                .filter(|i| !taken.contains(i))
                .max_by_key(|&i| (new(pool[i]), std::cmp::Reverse(i)))
                .expect("pool not exhausted");
            taken.insert(best);
            shown.extend(pool[best].attributes.iter().copied().enumerate());
            picked.push(pool[best]);
        }
    }
    picked
}

/// The head of the samples' NOTICE.txt; WBCAtt's licence text follows it.
const NOTICE: &str = "The sample cells in this folder
===============================

Images: 50 cells of the PBC dataset (A. Acevedo, A. Merino, S. Alférez, Á. Molina, L. Boldú,
J. Rodellar, \"A dataset of microscopic peripheral blood cell images for development of automatic
recognition systems\", Data in Brief 30, 2020; Mendeley Data snkd93bnjr), licensed CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). Changed: cropped, resized, re-encoded as JPEG.

Labels (labels.csv): the WBCAtt attribute labels (S. Tsutsui, W. Pang, B. Wen, \"WBCAtt: A White
Blood Cell Dataset Annotated with Detailed Morphological Attributes\", NeurIPS 2023 Datasets and
Benchmarks), under the MIT licence below, as published with the labels.

";

pub fn run(args: SamplesArgs) -> Result<()> {
    let cells = dataset::read_csv(&dataset::split_csv(&args.data, "test"))?;
    let picked = choose(&cells, args.per_type);
    std::fs::create_dir_all(&args.out)?;
    let mut labels: Vec<Vec<String>> = vec![std::iter::once("img_name")
        .chain(std::iter::once("label"))
        .chain(ATTRIBUTES.iter().map(|a| a.name))
        .chain(std::iter::once("path"))
        .map(String::from)
        .collect()];
    let mut names = Vec::new();
    let mut bytes_total = 0;
    for c in &picked {
        let path = args.data.join("pbc").join(&c.path);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let img = preprocess::decode(&bytes)?;
        let square = preprocess::center_square(&img);
        let small = image::imageops::resize(
            &square,
            args.side,
            args.side,
            image::imageops::FilterType::Lanczos3,
        );
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, args.quality).encode_image(&small)?;
        bytes_total += jpeg.len();
        std::fs::write(args.out.join(&c.img_name), &jpeg)?;
        let mut row = vec![c.img_name.clone(), CELL_TYPES[c.cell_type].to_string()];
        row.extend(
            ATTRIBUTES
                .iter()
                .enumerate()
                .map(|(k, a)| a.values[c.attributes[k]].to_string()),
        );
        row.push(c.img_name.clone());
        labels.push(row);
        names.push(c.img_name.clone());
    }
    std::fs::write(
        args.out.join("labels.csv"),
        wbc_core::csv_text::write(&labels),
    )?;
    // The credits and the labels' MIT notice travel with the cells (served with the page).
    let mit = args.data.join("wbcatt/LICENSE");
    let mit =
        std::fs::read_to_string(&mit).with_context(|| format!("reading {}", mit.display()))?;
    std::fs::write(args.out.join("NOTICE.txt"), format!("{NOTICE}{mit}"))?;
    std::fs::write(
        args.out.join("index.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "cells": names,
            "labels": "labels.csv",
            "licence": "PBC images: CC BY 4.0 (Acevedo et al. 2020); labels: WBCAtt, MIT",
        }))?,
    )?;
    let mut readme = format!(
        "# Sample cells\n\n\
         {n} real white blood cells that the page offers as \"try sample cells\", so a newcomer or a \
         presenter without their own images can use every feature. Made by \
         `wbc samples --per-type {per} --side {side} --quality {q}` (do not edit by hand).\n\n\
         - **Which**: {per} cells of each of the five types from the official WBCAtt **test** split \
         (never trained on), each type's cells chosen greedily to show as many attribute values as \
         possible, ties broken by a fixed shuffle.\n\
         - **How**: PBC's 360×360 centre crop resized to {side}×{side} and re-encoded as JPEG \
         quality {q} ({kb} KB in all); these are the only dataset images the repository holds.\n\
         - `labels.csv`: their WBCAtt labels in WBCAtt's own format (load it in the analyser's \
         dataset view); `index.json`: the list the page reads.\n\n\
         ## Attribution\n\n\
         Images: PBC dataset, Acevedo, Merino, Alférez et al., \"A dataset of microscopic peripheral \
         blood cell images for development of automatic recognition systems\", Data in Brief 30, \
         2020; Mendeley Data snkd93bnjr; licence **CC BY 4.0** \
         (https://creativecommons.org/licenses/by/4.0/). Changes: cropped, resized, re-encoded.\n\
         Labels: WBCAtt (Tsutsui, Pang, He, Wen), MIT licence.\n\n\
         ## Cells\n\n| file | type |\n| --- | --- |\n",
        n = picked.len(),
        per = args.per_type,
        side = args.side,
        q = args.quality,
        kb = bytes_total / 1024,
    );
    for c in &picked {
        writeln!(readme, "| {} | {} |", c.img_name, CELL_TYPES[c.cell_type])?;
    }
    std::fs::write(args.out.join("README.md"), readme)?;
    eprintln!(
        "{} cells, {} KB, into {}",
        picked.len(),
        bytes_total / 1024,
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_is_balanced_and_covers_values() {
        let cells: Vec<LabelledCell> = (0..100)
            .map(|i| LabelledCell {
                img_name: format!("c{i}.jpg"),
                path: String::new(),
                cell_type: i % 5,
                attributes: [i / 5 % 2, 0, i / 10 % 6, 0, 0, 0, 0, 0, 0, 0, 0],
            })
            .collect();
        let picked = choose(&cells, 4);
        assert_eq!(picked.len(), 20);
        for t in 0..5 {
            let of_type: Vec<_> = picked.iter().filter(|c| c.cell_type == t).collect();
            assert_eq!(of_type.len(), 4);
            // Both cell sizes appear among the first two of each type.
            assert_ne!(of_type[0].attributes[0], of_type[1].attributes[0]);
        }
    }
}
