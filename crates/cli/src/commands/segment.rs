//! `wbc segment` and `wbc masks`: label maps of any cell images (the classical labeller over the
//! whole image, or the cell pipeline's segmentation network on its centre square), and the
//! pipeline's classical stage over the whole PBC set as training labels for the network.

use anyhow::{Context, Result};
use image::{imageops, GrayImage, RgbImage};
use serde_json::json;
use std::path::{Path, PathBuf};
use wbc_core::dataset::{self, SPLITS};
use wbc_core::segmentation::{self, SHOW_CELL_LABELS};
use wbc_core::{morphometry, preprocess};
use wbc_lab::data::progress;
use wbc_lab::data::{expand, read_image_file, FailureArgs};
use wbc_nets::{block_on, Segmenter};

/// The labeller is tuned at PBC scale (360 px crops): work at a short side of 360 px.
const WORK_SIDE: u32 = 360;

#[derive(clap::Args, Debug)]
pub struct SegmentArgs {
    /// Image files or folders (JPEG, PNG, BMP, TIFF).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Output folder: <stem>.png label maps (0 other, 1 cytoplasm, 2 nucleus, 3 platelet,
    /// 4 red blood cell, 5 vacuole) at each input's own width and height.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write <stem>_overlay.png, the labels drawn over the image.
    #[arg(long)]
    pub overlay: bool,
    /// Segment with this segmentation network (<stem>.bpk + card, e.g. models/seg_net)
    /// instead of the classical labeller. It sees the centre square of each image; outside
    /// that square the map says "other".
    #[arg(long)]
    pub network: Option<PathBuf>,
    /// Also write one contact sheet of all overlays (5 per row) to this PNG file.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    #[command(flatten)]
    pub failures: FailureArgs,
}

/// Side of one tile in a contact sheet.
const TILE: u32 = 180;

/// Label map of an image at its own size.
pub fn label_image(img: &RgbImage) -> GrayImage {
    let (w, h) = img.dimensions();
    let scale = WORK_SIDE as f32 / w.min(h) as f32;
    if (scale - 1.0).abs() < 0.02 {
        return segmentation::segment(img);
    }
    let (sw, sh) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = imageops::resize(img, sw, sh, imageops::FilterType::Triangle);
    let labels = segmentation::segment(&small);
    imageops::resize(&labels, w, h, imageops::FilterType::Nearest)
}

pub fn segment(args: SegmentArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let device = burn::tensor::Device::flex();
    let network = match &args.network {
        Some(stem) => {
            let (net, card) = wbc_lab::cards::seg_net(stem, &device)?;
            Some(Segmenter::Network {
                net,
                size: card.input_size,
            })
        }
        None => None,
    };
    let mut failures = 0;
    let mut tiles = Vec::new();
    let inputs = expand(&args.paths);
    // Output stems already written: a second "cell" (cell.jpg after cell.png) keeps its
    // extension in its output name instead of overwriting the first.
    let mut written = std::collections::HashSet::new();
    for path in &inputs {
        let result = (|| -> Result<()> {
            let bytes = read_image_file(path).map_err(anyhow::Error::msg)?;
            let img = preprocess::decode(&bytes)?;
            let labels = match &network {
                Some(segmenter) => block_on(segmenter.label_image(&img, &device))?,
                None => label_image(&img),
            };
            let mut stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            if !written.insert(stem.clone()) {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                stem = name.unwrap_or(stem);
            }
            labels.save(args.out.join(format!("{stem}.png")))?;
            if args.overlay || args.sheet.is_some() {
                let drawn = segmentation::overlay(&img, &labels, 0.45, &SHOW_CELL_LABELS)?;
                if args.overlay {
                    drawn.save(args.out.join(format!("{stem}_overlay.png")))?;
                }
                if args.sheet.is_some() {
                    tiles.push(imageops::resize(
                        &drawn,
                        TILE,
                        TILE,
                        imageops::FilterType::Triangle,
                    ));
                }
            }
            let m = morphometry::measure(&labels);
            println!(
                "{}",
                json!({"path": path.display().to_string(), "morphometry": m})
            );
            Ok(())
        })();
        if let Err(e) = result {
            failures += 1;
            println!(
                "{}",
                json!({"path": path.display().to_string(), "error": format!("{e:#}")})
            );
        }
    }
    if let Some(sheet) = &args.sheet {
        let cols = 5u32;
        let rows = (tiles.len() as u32).div_ceil(cols).max(1);
        let mut out = image::RgbaImage::new(cols * TILE, rows * TILE);
        for (i, t) in tiles.iter().enumerate() {
            let (x, y) = ((i as u32 % cols) * TILE, (i as u32 / cols) * TILE);
            imageops::replace(&mut out, t, x as i64, y as i64);
        }
        out.save(sheet)?;
        eprintln!(
            "contact sheet of {} overlays: {}",
            tiles.len(),
            sheet.display()
        );
    }
    args.failures.finish(failures, inputs.len())
}

#[derive(clap::Args, Debug)]
pub struct MasksArgs {
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Output folder (outside git): <img_name>.png label maps of the 360×360 centre crops.
    #[arg(long, default_value = "target/wbc-masks")]
    pub out: PathBuf,
    /// Only the first N cells of each split.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Label every PBC cell of the three splits (centre crop 360×360), with a check against the
/// WBCAtt labels: cells labelled without vacuoles should have no vacuole pixels left.
pub fn masks(args: MasksArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let mut cells = Vec::new();
    for split in SPLITS {
        let mut c = dataset::read_csv(&dataset::split_csv(&args.data, split))?;
        if let Some(n) = args.limit {
            c.truncate(n);
        }
        cells.extend(c);
    }
    let bar = progress(cells.len() as u64, "masks");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let vacuole_no =
        wbc_core::schema::attribute("cytoplasm_vacuole").map(|(k, a)| (k, a.value_index("no")));
    let counts: Vec<Result<(usize, usize)>> = std::thread::scope(|s| {
        cells
            .chunks(cells.len().div_ceil(threads).max(1))
            .map(|part| {
                let bar = bar.clone();
                let out: &Path = &args.out;
                let data: &Path = &args.data;
                s.spawn(move || -> Result<(usize, usize)> {
                    let labeller = Segmenter::Classical {
                        reason: "bootstrap labels come from the classical labeller".into(),
                    };
                    let device = burn::tensor::Device::flex();
                    let (mut no_vac, mut no_vac_with_pixels) = (0, 0);
                    for cell in part {
                        let path = data.join("pbc").join(&cell.path);
                        let img = preprocess::decode(&std::fs::read(&path)?)
                            .with_context(|| path.display().to_string())?;
                        // The pipeline's classical stage on the centre square (at PBC's own
                        // scale it labels the square as it is).
                        let square = preprocess::center_square(&img);
                        let labels = block_on(labeller.label_square(
                            &square,
                            None,
                            square.width(),
                            &device,
                        ))?;
                        if let Some((k, Some(no))) = vacuole_no {
                            if cell.attributes[k] == no {
                                no_vac += 1;
                                if labels.pixels().any(|p| p.0[0] == segmentation::VACUOLE) {
                                    no_vac_with_pixels += 1;
                                }
                            }
                        }
                        labels.save(out.join(cell.img_name.replace(".jpg", ".png")))?;
                        bar.inc(1);
                    }
                    Ok((no_vac, no_vac_with_pixels))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().expect("labeller thread"))
            .collect()
    });
    bar.finish();
    let (mut a, mut b) = (0, 0);
    for c in counts {
        let (x, y) = c?;
        a += x;
        b += y;
    }
    println!(
        "{} label maps written to {}",
        cells.len(),
        args.out.display()
    );
    println!(
        "cells labelled 'no vacuole' that still have vacuole pixels: {b} of {a} ({:.1}%)",
        100.0 * b as f64 / a.max(1) as f64
    );
    Ok(())
}
