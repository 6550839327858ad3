//! Decode each PBC image once (centre crop, resize) and keep the pixels in a flat cache file,
//! so later epochs and runs skip JPEG decoding.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use wbc_core::dataset::LabelledCell;
use wbc_core::preprocess;

/// RGB pixels (HWC, `size`×`size`) of every cell of a split, in CSV order.
pub struct PixelCache {
    pub size: usize,
    pub pixels: Vec<u8>,
}

impl PixelCache {
    pub fn len(&self) -> usize {
        self.pixels.len() / self.stride()
    }
    pub fn stride(&self) -> usize {
        self.size * self.size * 3
    }
    pub fn cell(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.stride()..(i + 1) * self.stride()]
    }
}

/// Progress bar with ETA in the project's style.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Load the cache for `cells` or build it from the images under `<data>/pbc`.
/// The cache key is the split name, the image size and the cell count.
pub fn load_or_build(
    data: &Path,
    cache_dir: &Path,
    key: &str,
    cells: &[LabelledCell],
    size: usize,
) -> Result<PixelCache> {
    let file: PathBuf = cache_dir.join(format!("{key}-{size}px-{}.rgb", cells.len()));
    let stride = size * size * 3;
    if let Ok(pixels) = std::fs::read(&file) {
        if pixels.len() == stride * cells.len() {
            return Ok(PixelCache { size, pixels });
        }
    }
    std::fs::create_dir_all(cache_dir)?;
    let bar = progress(cells.len() as u64, key);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = cells.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = cells
            .chunks(chunk)
            .map(|part| {
                let bar = bar.clone();
                s.spawn(move || -> Result<Vec<u8>> {
                    let mut out = Vec::with_capacity(part.len() * stride);
                    for cell in part {
                        let path = data.join("pbc").join(&cell.path);
                        let bytes = std::fs::read(&path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        let img = preprocess::decode(&bytes)
                            .with_context(|| format!("decoding {}", path.display()))?;
                        out.extend(preprocess::cell_pixels(&img, size));
                        bar.inc(1);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("decoder thread"))
            .collect()
    });
    bar.finish();
    let mut pixels = Vec::with_capacity(stride * cells.len());
    for p in parts {
        pixels.extend(p?);
    }
    if pixels.len() != stride * cells.len() {
        bail!("cache size mismatch");
    }
    std::fs::write(&file, &pixels)?;
    Ok(PixelCache { size, pixels })
}

/// Bootstrap label maps (`size`×`size`, one byte per pixel) of every cell of a split, in CSV
/// order, resized (nearest) from the 360×360 maps `wbc masks` writes.
pub struct LabelCache {
    pub size: usize,
    pub labels: Vec<u8>,
}

impl LabelCache {
    pub fn cell(&self, i: usize) -> &[u8] {
        let n = self.size * self.size;
        &self.labels[i * n..(i + 1) * n]
    }
}

pub fn load_or_build_labels(
    masks: &Path,
    cache_dir: &Path,
    key: &str,
    cells: &[LabelledCell],
    size: usize,
) -> Result<LabelCache> {
    let file = cache_dir.join(format!("labels-{key}-{size}px-{}.u8", cells.len()));
    let n = size * size;
    if let Ok(labels) = std::fs::read(&file) {
        if labels.len() == n * cells.len() {
            return Ok(LabelCache { size, labels });
        }
    }
    std::fs::create_dir_all(cache_dir)?;
    let bar = progress(cells.len() as u64, &format!("{key} masks"));
    let mut labels = Vec::with_capacity(n * cells.len());
    for cell in cells {
        let path = masks.join(cell.img_name.replace(".jpg", ".png"));
        let map = image::open(&path)
            .with_context(|| {
                format!(
                    "reading bootstrap mask {} (run `wbc masks` first)",
                    path.display()
                )
            })?
            .to_luma8();
        let small = image::imageops::resize(
            &map,
            size as u32,
            size as u32,
            image::imageops::FilterType::Nearest,
        );
        labels.extend(small.into_raw());
        bar.inc(1);
    }
    bar.finish();
    std::fs::write(&file, &labels)?;
    Ok(LabelCache { size, labels })
}
