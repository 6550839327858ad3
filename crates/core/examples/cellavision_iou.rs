//! Score the bootstrap labeller against the hand-drawn masks of cellavision100 (an external
//! set: a different stain and scale from PBC, used only as a sanity check).
//!
//! ```text
//! cargo run --release -p wbc-core --example cellavision_iou -- [../shared/data] [sheet.png]
//! ```
//! Masks: grey < 64 background (red cells included), 64..=191 cytoplasm, >= 192 nucleus.
//! Prediction: nucleus = nucleus; whole cell = nucleus ∪ cytoplasm ∪ vacuole.
//! With a second argument, also writes a contact sheet (image, overlay, truth) there.

use image::{imageops, RgbImage};
use std::path::PathBuf;
use std::time::Instant;
use wbc_core::segmentation;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().unwrap_or_else(|| "../shared/data".into()));
    let sheet_path = args.next().map(PathBuf::from);
    let dir = data.join("cellavision100");
    let (mut sum_n, mut sum_c, mut ms, mut count) = (0.0, 0.0, 0.0, 0usize);
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    let tile = 150u32;
    let mut sheet = RgbImage::new(10 * 3 * tile, 10 * tile);
    for id in 1..=100 {
        let name = format!("{id:03}.png");
        let img_path = dir.join("images").join(&name);
        let mask_path = dir.join("masks").join(&name);
        let img = image::open(&img_path)
            .map_err(|e| format!("{}: {e}", img_path.display()))?
            .to_rgb8();
        let truth = image::open(&mask_path)
            .map_err(|e| format!("{}: {e}", mask_path.display()))?
            .to_luma8();
        if truth.dimensions() != img.dimensions() {
            return Err(format!("{name}: mask and image sizes differ"));
        }
        let start = Instant::now();
        let labels = segmentation::segment(&img);
        ms += start.elapsed().as_secs_f64() * 1000.0;
        let (n, c) = segmentation::cellavision_iou(&labels, &truth);
        sum_n += n;
        sum_c += c;
        count += 1;
        rows.push((name, n, c));
        if sheet_path.is_some() {
            let over = segmentation::overlay(&img, &labels, 0.45, &segmentation::SHOW_CELL_LABELS)
                .map_err(|e| e.to_string())?;
            let over = image::DynamicImage::ImageRgba8(over).to_rgb8();
            let truth_rgb = image::DynamicImage::ImageLuma8(truth.clone()).to_rgb8();
            let k = (id - 1) as u32;
            let (x, y) = ((k % 10) * 3 * tile, (k / 10) * tile);
            for (j, im) in [&img, &over, &truth_rgb].into_iter().enumerate() {
                let small = imageops::resize(im, tile, tile, imageops::FilterType::Triangle);
                imageops::replace(&mut sheet, &small, (x + j as u32 * tile) as i64, y as i64);
            }
        }
    }
    rows.sort_by(|a, b| a.2.partial_cmp(&b.2).unwrap_or(std::cmp::Ordering::Equal));
    println!("worst whole-cell IoU:");
    for (name, n, c) in rows.iter().take(8) {
        println!("  {name}: nucleus {:.1}  cell {:.1}", n, c);
    }
    println!(
        "cellavision100: {count} images, mean nucleus IoU {:.2}, mean whole-cell IoU {:.2}, {:.1} ms per image",
        sum_n / count as f64,
        sum_c / count as f64,
        ms / count as f64
    );
    if let Some(p) = sheet_path {
        sheet.save(&p).map_err(|e| e.to_string())?;
        println!("wrote {}", p.display());
    }
    Ok(())
}
