//! Label a sample of PBC images with the bootstrap labeller and write a contact sheet: each
//! tile is the 360×360 crop next to its overlay.
//!
//! ```text
//! cargo run --release -p wbc-core --example pbc_contact_sheet -- \
//!     [--data ../shared/data] [--split val] [--step 400] [--offset 0] [--max 64] \
//!     [--tile 180] [--cols 4] [--out target/contact_sheet.png] [--only SNE_]
//! ```

use image::{imageops, RgbImage};
use std::path::PathBuf;
use std::time::Instant;
use wbc_core::{dataset, morphometry, preprocess, segmentation};

struct Args {
    data: PathBuf,
    split: String,
    step: usize,
    offset: usize,
    max: usize,
    tile: u32,
    cols: u32,
    out: PathBuf,
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data: PathBuf::from("../shared/data"),
        split: "val".into(),
        step: 400,
        offset: 0,
        max: 64,
        tile: 180,
        cols: 4,
        out: PathBuf::from("target/contact_sheet.png"),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--data" => a.data = value.into(),
            "--split" => a.split = value,
            "--step" => a.step = num(&value)?.max(1),
            "--offset" => a.offset = num(&value)?,
            "--max" => a.max = num(&value)?,
            "--tile" => a.tile = num(&value)?.clamp(32, 1024) as u32,
            "--cols" => a.cols = num(&value)?.clamp(1, 32) as u32,
            "--out" => a.out = value.into(),
            "--only" => a.only = Some(value),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn main() -> Result<(), String> {
    let args = parse_args()?;
    let cells = dataset::read_csv(&dataset::split_csv(&args.data, &args.split))
        .map_err(|e| e.to_string())?;
    let picked: Vec<_> = cells
        .iter()
        .filter(|c| {
            args.only
                .as_ref()
                .is_none_or(|o| c.img_name.contains(o.as_str()))
        })
        .skip(args.offset)
        .step_by(args.step)
        .take(args.max)
        .collect();
    if picked.is_empty() {
        return Err("no images selected".into());
    }
    let t = args.tile;
    let rows = (picked.len() as u32).div_ceil(args.cols);
    let mut sheet = RgbImage::from_pixel(
        2 * t * args.cols + 4 * args.cols,
        rows * (t + 4),
        image::Rgb([40, 40, 40]),
    );
    let mut total_ms = 0.0;
    for (k, cell) in picked.iter().enumerate() {
        let path = args.data.join("pbc").join(&cell.path);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let img = preprocess::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        let img = preprocess::center_square(&img);
        let start = Instant::now();
        let labels = segmentation::segment(&img);
        total_ms += start.elapsed().as_secs_f64() * 1000.0;
        let over = segmentation::overlay(&img, &labels, 0.45, &segmentation::SHOW_CELL_LABELS)
            .map_err(|e| e.to_string())?;
        let over = image::DynamicImage::ImageRgba8(over).to_rgb8();
        let m = morphometry::measure(&labels);
        println!(
            "{k:3} {:<28} {:<11} nc={:.2} d={:.0}px d/rbc={} lobes={} vac={} plt={}",
            cell.img_name,
            wbc_core::CELL_TYPES[cell.cell_type],
            m.nc_ratio.unwrap_or(0.0),
            m.cell_diameter,
            m.cell_to_red_cell.map_or("-".into(), |r| format!("{r:.2}")),
            m.nucleus_lobes,
            m.vacuole_count,
            m.platelet_count
        );
        let (col, row) = (k as u32 % args.cols, k as u32 / args.cols);
        let (x, y) = (col * (2 * t + 4), row * (t + 4));
        let small = |im: &RgbImage| imageops::resize(im, t, t, imageops::FilterType::Triangle);
        imageops::replace(&mut sheet, &small(&img), x as i64, y as i64);
        imageops::replace(&mut sheet, &small(&over), (x + t) as i64, y as i64);
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    sheet.save(&args.out).map_err(|e| e.to_string())?;
    println!(
        "{} images, {:.1} ms per image; wrote {}",
        picked.len(),
        total_ms / picked.len() as f64,
        args.out.display()
    );
    Ok(())
}
