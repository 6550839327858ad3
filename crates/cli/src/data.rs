//! The data the commands read: the PBC splits with their WBCAtt labels, decoded once into flat
//! pixel caches (centre crop, resize) so later epochs and runs skip JPEG decoding, the bootstrap
//! label maps beside them, image files named on the command line, and the progress bar.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use wbc_core::dataset::{self, LabelledCell};
use wbc_core::preprocess;

/// The PBC images and WBCAtt labels a command reads, where their decoded copies are cached, and
/// how many cells of each split it uses: the same three options on every command that reads
/// the official split.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PbcArgs {
    /// Folder holding pbc/ and wbcatt/.
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Where decoded, resized images and label maps are cached between runs.
    #[arg(long, default_value = "target/wbc-cache")]
    pub cache: PathBuf,
    /// Use only the first N cells of each split (pipeline tests).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl PbcArgs {
    /// A split's cells and their pixels at `size`.
    pub fn split(&self, split: &str, size: usize) -> Result<Split> {
        load_split(&self.data, &self.cache, split, size, self.limit)
    }

    /// A split's cells, pixels and bootstrap label maps (from `masks`) at `size`.
    pub fn split_with_labels(
        &self,
        masks: &Path,
        split: &str,
        size: usize,
    ) -> Result<(Split, LabelCache)> {
        split_with_labels(&self.data, masks, &self.cache, split, size, self.limit)
    }
}

/// RGB pixels (HWC, `size`×`size`) of every cell of a split, in CSV order.
pub struct PixelCache {
    pub size: usize,
    pub pixels: Vec<u8>,
}

impl PixelCache {
    /// The cells' network inputs (normalised, channels first), `n` cells at a time, each
    /// batch with the indices of its cells.
    pub fn input_batches(
        &self,
        n: usize,
    ) -> impl Iterator<Item = (std::ops::Range<usize>, Vec<Vec<f32>>)> + '_ {
        (0..self.len()).step_by(n).map(move |start| {
            let cells = start..(start + n).min(self.len());
            let inputs = cells
                .clone()
                .map(|i| preprocess::normalize(self.cell(i), self.size))
                .collect();
            (cells, inputs)
        })
    }
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

/// Split cells and their pixel cache.
pub struct Split {
    pub cells: Vec<LabelledCell>,
    pub pixels: PixelCache,
}

pub fn load_split(
    data: &std::path::Path,
    cache_dir: &std::path::Path,
    split: &str,
    size: usize,
    limit: Option<usize>,
) -> Result<Split> {
    let mut cells = dataset::read_csv(&dataset::split_csv(data, split))?;
    if let Some(n) = limit {
        cells.truncate(n);
    }
    let pixels = load_or_build(data, cache_dir, split, &cells, size)?;
    Ok(Split { cells, pixels })
}

pub fn split_with_labels(
    data: &Path,
    masks: &Path,
    cache_dir: &Path,
    split: &str,
    size: usize,
    limit: Option<usize>,
) -> Result<(Split, LabelCache)> {
    let s = load_split(data, cache_dir, split, size, limit)?;
    let labels = load_or_build_labels(masks, cache_dir, split, &s.cells, size)?;
    Ok((s, labels))
}

pub const IMAGE_EXTENSIONS: [&str; 7] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff", "JPG"];

/// Files under the given paths: folders expanded (sorted), image extensions only; explicit
/// files are always kept, so a wrong file yields an error line rather than silence.
pub fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            entries.sort();
            for e in entries {
                if e.is_dir() {
                    out.extend(expand(&[e]));
                } else if e
                    .extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_lowercase().as_str()))
                {
                    out.push(e);
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// An input file's bytes, refusing a file over the decoder's size limit from its length,
/// before reading it (a multi-gigabyte file is not read into memory to be refused).
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > preprocess::MAX_FILE_BYTES as u64 {
        return Err(
            preprocess::InputError::FileTooLarge((len / (1024 * 1024)) as usize).to_string(),
        );
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

pub fn read_input(path: &Path, size: usize) -> Result<Vec<f32>, String> {
    let bytes = read_image_file(path)?;
    preprocess::input_from_bytes(&bytes, size).map_err(|e| e.to_string())
}

/// `--fail-on-error`, shared by the commands that write one JSON line per input: every input
/// gets its line (a result or an "error"), and the exit status says whether any failed only
/// when asked, so a batch with a few bad files is still a successful run by default.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct FailureArgs {
    /// Exit with a non-zero status when any input could not be analysed.
    #[arg(long)]
    pub fail_on_error: bool,
}

impl FailureArgs {
    /// Report the failures on stderr, and fail when asked to.
    pub fn finish(&self, failures: usize, inputs: usize) -> Result<()> {
        if failures > 0 {
            eprintln!(
                "{failures} of {inputs} input(s) could not be analysed (see their \"error\" lines)"
            );
            if self.fail_on_error {
                bail!("--fail-on-error: {failures} of {inputs} input(s) failed");
            }
        }
        Ok(())
    }
}

/// One cell of the Chula set (`../shared/data/chula`): its image and cell type (index into
/// `CELL_TYPES`).
#[derive(Debug, Clone)]
pub struct ChulaCell {
    pub path: PathBuf,
    pub cell_type: usize,
    pub series: String,
}

/// The Chula cells of Chula's held-back series (`held_back`) or of its training series. The
/// split is by series, never by image (frames of a series show the same cells): per cell type,
/// the series sorted by name, every third from the second (at least one), as
/// `train/finetune_encoder.py` holds them back.
pub fn chula_cells(data: &Path, held_back: bool) -> Result<Vec<ChulaCell>> {
    let dir = data.join("chula");
    let text = std::fs::read_to_string(dir.join("labels.csv"))
        .with_context(|| format!("{}/labels.csv", dir.display()))?;
    let table =
        wbc_core::csv_text::read(&text).map_err(|e| anyhow::anyhow!("chula/labels.csv: {e}"))?;
    let column = |name: &str| {
        table
            .column(name)
            .with_context(|| format!("chula/labels.csv has no {name} column"))
    };
    let (file_col, type_col, series_col) =
        (column("file")?, column("cell_type")?, column("series")?);
    let mut cells = Vec::new();
    for (line, fields) in &table.records {
        let field = |c: usize| fields.get(c).map(String::as_str);
        let (Some(file), Some(kind), Some(series)) =
            (field(file_col), field(type_col), field(series_col))
        else {
            bail!("chula/labels.csv line {line}: a short line");
        };
        let cell_type = wbc_core::CELL_TYPES
            .iter()
            .position(|t| *t == kind)
            .with_context(|| format!("chula/labels.csv: unknown type {kind}"))?;
        cells.push(ChulaCell {
            path: dir.join("images").join(file),
            cell_type,
            series: series.to_string(),
        });
    }
    let mut held = std::collections::BTreeSet::new();
    for t in 0..wbc_core::CELL_TYPES.len() {
        let series: std::collections::BTreeSet<&str> = cells
            .iter()
            .filter(|c| c.cell_type == t)
            .map(|c| c.series.as_str())
            .collect();
        let ordered: Vec<&str> = series.into_iter().collect();
        let mut picked: Vec<&str> = ordered.iter().skip(1).step_by(3).copied().collect();
        if picked.is_empty() {
            picked.extend(ordered.first());
        }
        held.extend(picked.into_iter().map(String::from));
    }
    Ok(cells
        .into_iter()
        .filter(|c| held.contains(&c.series) == held_back)
        .collect())
}

/// One image of an external set.
pub struct ExternalCell {
    pub name: String,
    pub image: image::RgbImage,
    /// The hand-drawn mask (0 background, 128 cytoplasm, 255 nucleus).
    pub truth: image::GrayImage,
    pub cell_type: usize,
}

/// Read a set: `images/NNN.png`, `masks/NNN.png`, `labels.csv` (image id, class 1–5:
/// neutrophil, lymphocyte, monocyte, eosinophil, basophil).
pub fn external_set(dir: &Path, limit: Option<usize>) -> Result<Vec<ExternalCell>> {
    use wbc_core::dataset::EXTERNAL_CLASSES as CLASSES;
    let csv = dir.join("labels.csv");
    let text = std::fs::read_to_string(&csv).with_context(|| {
        format!(
            "{} (the external sets live in ../shared/data)",
            csv.display()
        )
    })?;
    let table =
        wbc_core::csv_text::read(&text).map_err(|e| anyhow::anyhow!("{}: {e}", csv.display()))?;
    let mut cells = Vec::new();
    for (line, fields) in &table.records {
        let (Some(id), Some(class)) = (fields.first(), fields.get(1)) else {
            anyhow::bail!("{} line {line}: fewer than two fields", csv.display());
        };
        let id: usize = id.trim().parse()?;
        let class: usize = class.trim().parse()?;
        let name = CLASSES
            .get(class.wrapping_sub(1))
            .with_context(|| format!("{}: class {class}", csv.display()))?;
        let file = format!("{id:03}.png");
        let image = image::open(dir.join("images").join(&file))
            .with_context(|| format!("{} image {file}", dir.display()))?
            .to_rgb8();
        let truth = image::open(dir.join("masks").join(&file))
            .with_context(|| format!("{} mask {file}", dir.display()))?
            .to_luma8();
        cells.push(ExternalCell {
            name: file,
            image,
            truth,
            cell_type: wbc_core::CELL_TYPES.iter().position(|t| t == name).unwrap(),
        });
        if limit.is_some_and(|n| cells.len() >= n) {
            break;
        }
    }
    Ok(cells)
}
