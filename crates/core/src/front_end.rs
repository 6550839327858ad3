//! The front end: brings a single-cell image from any microscope to the look and the scale of
//! the PBC images the networks were trained on, before either network sees it.
//!
//! - *Look* ([`Look`], [`restain`]): the slide's background (the brightest pixels) and its
//!   darkest chromatin (the darkest pixels) are measured. White balance divides by the
//!   background so it becomes PBC's background (von Kries); stain normalisation then scales
//!   each channel's optical density (Beer–Lambert: light through a stain is
//!   `background · exp(−density)`) so the darkest chromatin gets PBC's density. Both anchors
//!   exist on every Romanowsky-stained smear whatever else is in the frame, so the correction
//!   does not depend on how much of the frame the white cell fills (a whole-image colour
//!   statistic, as in Reinhard's method, would pull a cell that fills the frame towards the
//!   colour of PBC's red cells).
//! - *Scale* ([`estimate_scale`], [`resample`]): red cells are the ruler where they are seen
//!   (their diameter varies little between people); otherwise the white cell's own diameter
//!   only bounds the scale, since white cells differ in size by type and cell size is one of
//!   the attributes. The image is resampled so the cells appear at PBC's scale and centred on
//!   a PBC-sized square, padded with background where the image was a tight crop.

use crate::mask::{components, edt_sq};
use crate::morphometry::Morphometry;
use crate::segmentation::RED_CELL;
use image::{imageops, GrayImage, Rgb, RgbImage};
use serde::{Deserialize, Serialize};

/// The densest a channel's density correction may make the stain (and 1/this the palest):
/// beyond it the darkest pixels are not chromatin (an empty or blank image).
pub const MAX_DENSITY_GAIN: f32 = 3.0;
/// Fraction of the pixels, darkest first, that stand for the chromatin. A PBC nucleus covers
/// about 3–8% of the 360² crop; a cell filling the frame covers more, so the darkest 1% are
/// nucleus in both.
const DARK_FRACTION: f32 = 0.01;
/// Luminance percentiles whose pixels stand for the background (brightest, highlights cut).
const BACKGROUND_PERCENTILES: (f32, f32) = (0.85, 0.98);

/// Which front-end steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontEndSettings {
    /// Divide by the background colour so the slide looks like PBC's.
    pub white_balance: bool,
    /// Scale each channel's optical density so the chromatin has PBC's stain density
    /// (white-balances too: densities are measured against the background).
    pub stain: bool,
    /// Resample so the cells appear at PBC's magnification.
    pub scale: bool,
}

impl FrontEndSettings {
    /// The plain centre crop, as before the front end existed.
    pub const OFF: Self = Self {
        white_balance: false,
        stain: false,
        scale: false,
    };
    /// Every step.
    pub const ALL: Self = Self {
        white_balance: true,
        stain: true,
        scale: true,
    };

    /// Whether the colours are corrected (the stain step white-balances too).
    pub fn recolours(&self) -> bool {
        self.white_balance || self.stain
    }
}

/// PBC's look and scale: what the front end corrects towards (measured on PBC train by
/// `wbc calibrate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontEndReference {
    pub look: Look,
    pub scale: ScaleReference,
}

/// The two colour anchors of an image, RGB in 0..1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// Median colour of the brightest pixels: the slide where nothing lies on it.
    pub background: [f32; 3],
    /// Optical density per channel of the darkest pixels relative to the background
    /// (`−ln(colour / background)`): the chromatin.
    pub dark_density: [f32; 3],
}

/// Luminance (Rec. 601) of an RGB pixel in 0..255.
fn luminance(p: &Rgb<u8>) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// Measure an image's [`Look`].
pub fn measure_look(img: &RgbImage) -> Look {
    // A 256-bin luminance histogram ranks pixels without sorting them all.
    let mut hist = [0usize; 256];
    for p in img.pixels() {
        hist[luminance(p).round().clamp(0.0, 255.0) as usize] += 1;
    }
    let total = (img.width() * img.height()) as usize;
    let bin_at = |fraction: f32| -> usize {
        let target = (fraction * total as f32).ceil() as usize;
        let mut acc = 0;
        for (b, &n) in hist.iter().enumerate() {
            acc += n;
            if acc >= target.max(1) {
                return b;
            }
        }
        255
    };
    let (lo, hi) = (
        bin_at(BACKGROUND_PERCENTILES.0),
        bin_at(BACKGROUND_PERCENTILES.1),
    );
    let dark_bin = bin_at(DARK_FRACTION);
    let mut bright: [Vec<u8>; 3] = Default::default();
    let mut dark_sum = [0f64; 3];
    let mut dark_n = 0usize;
    for p in img.pixels() {
        let b = luminance(p).round().clamp(0.0, 255.0) as usize;
        if b >= lo && b <= hi {
            for c in 0..3 {
                bright[c].push(p[c]);
            }
        }
        if b <= dark_bin {
            for c in 0..3 {
                dark_sum[c] += p[c] as f64;
            }
            dark_n += 1;
        }
    }
    let background = [0, 1, 2].map(|c| {
        let v = &mut bright[c];
        if v.is_empty() {
            return 1.0;
        }
        let m = v.len() / 2;
        let (_, median, _) = v.select_nth_unstable(m);
        (*median as f32 / 255.0).max(1.0 / 255.0)
    });
    let dark_density = [0, 1, 2].map(|c| {
        let mean = (dark_sum[c] / dark_n.max(1) as f64) as f32 / 255.0;
        density(mean, background[c])
    });
    Look {
        background,
        dark_density,
    }
}

/// Optical density of a channel value against its background (never negative).
fn density(value: f32, background: f32) -> f32 {
    (background / value.max(0.5 / 255.0)).ln().max(0.0)
}

/// How the front end changes an image's look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Restain {
    /// Per-channel factor applied to colour / background (white balance).
    pub white_balance: [f32; 3],
    /// Per-channel factor applied to the optical density (1 = stain unchanged).
    pub density_gain: [f32; 3],
}

impl Restain {
    /// No change.
    pub const IDENTITY: Self = Self {
        white_balance: [1.0; 3],
        density_gain: [1.0; 3],
    };

    /// The correction bringing `from` to `to`: white balance always, stain density when `stain`.
    pub fn between(from: &Look, to: &Look, stain: bool) -> Self {
        let white_balance = [0, 1, 2].map(|c| to.background[c] / from.background[c]);
        let density_gain = [0, 1, 2].map(|c| {
            if !stain || from.dark_density[c] < 1e-3 {
                1.0
            } else {
                (to.dark_density[c] / from.dark_density[c])
                    .clamp(1.0 / MAX_DENSITY_GAIN, MAX_DENSITY_GAIN)
            }
        });
        Self {
            white_balance,
            density_gain,
        }
    }

    /// How far from "no change" this correction is: the largest absolute log factor over the
    /// channels (0 = identity; ln 2 ≈ 0.69 = some channel doubled or halved). A large value
    /// says the image looks unlike PBC.
    pub fn strength(&self) -> f32 {
        self.white_balance
            .iter()
            .chain(&self.density_gain)
            .map(|f| f.ln().abs())
            .fold(0.0, f32::max)
    }

    /// Apply to an image: `out = to_bg · exp(−gain · density)` per channel, where density is
    /// measured against the image's own background.
    pub fn apply(&self, img: &RgbImage, from: &Look) -> RgbImage {
        // One lookup table per channel: 256 values in, 256 out.
        let lut: [[u8; 256]; 3] = [0, 1, 2].map(|c| {
            let bg = from.background[c];
            let to_bg = bg * self.white_balance[c];
            let gain = self.density_gain[c];
            let mut t = [0u8; 256];
            for (v, out) in t.iter_mut().enumerate() {
                let x = (v as f32 / 255.0).max(0.5 / 255.0);
                // Brighter than the background (glare) keeps its ratio to it.
                let ratio = x / bg;
                let y = if ratio >= 1.0 {
                    to_bg * ratio
                } else {
                    to_bg * ratio.powf(gain)
                };
                *out = (y * 255.0).round().clamp(0.0, 255.0) as u8;
            }
            t
        });
        let mut out = img.clone();
        for p in out.pixels_mut() {
            for c in 0..3 {
                p[c] = lut[c][p[c] as usize];
            }
        }
        out
    }
}

/// Bring an image's look to `reference` (white balance; stain density too when `stain`).
/// Returns the corrected image and the correction applied.
pub fn restain(img: &RgbImage, reference: &Look, stain: bool) -> (RgbImage, Restain) {
    let look = measure_look(img);
    let correction = Restain::between(&look, reference, stain);
    (correction.apply(img, &look), correction)
}

/// What PBC cells measure at PBC's own scale (lengths in pixels of the 360² crop), measured
/// on PBC train by the segmenter the pipeline uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaleReference {
    /// Median red-cell diameter.
    pub red_cell_diameter: f32,
    /// 5th and 95th percentiles of the white cell's equivalent diameter.
    pub white_cell_diameter: (f32, f32),
}

/// Which ruler gave the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScaleSource {
    /// The median diameter of whole red cells.
    RedCells,
    /// The white cell's diameter, outside the range PBC's white cells span.
    WhiteCell,
    /// The white cell lies within PBC's range and no red cell is seen: the pixels are taken
    /// at face value.
    Unchanged,
    /// No cell was found to measure.
    NoCell,
}

/// The estimated magnification of an image relative to PBC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScaleEstimate {
    /// Image pixels per PBC pixel: 2 means cells appear twice as large as in PBC.
    pub factor: f32,
    pub source: ScaleSource,
}

/// Fewest whole red cells that make a ruler.
const MIN_RED_CELLS: usize = 2;
/// Red-cell diameter over white-cell diameter for red cells to count as a ruler: a white cell
/// is one to three red cells across (haematology texts: red cell 7–8 µm, white cells
/// 7–20 µm), with room for segmentation error.
const RED_TO_WHITE: (f32, f32) = (0.3, 1.2);
/// Factors are kept within this range: beyond it the measurement is more likely wrong than
/// the microscope that different.
pub const FACTOR_RANGE: (f32, f32) = (0.25, 4.0);

/// Diameters (px of `labels`) of the whole red cells of a label map: twice the largest
/// inscribed circle of each red-cell component whose circle does not touch the border, so
/// two touching red cells still measure as one red cell each, and a cut one is not counted.
pub fn red_cell_diameters(labels: &GrayImage) -> Vec<f32> {
    let (w, h) = (labels.width() as usize, labels.height() as usize);
    let red: Vec<bool> = labels.as_raw().iter().map(|&l| l == RED_CELL).collect();
    let outside: Vec<bool> = red.iter().map(|&r| !r).collect();
    let dist = edt_sq(&outside, w, h);
    let (ids, comps) = components(&red, w, h, true);
    let mut best = vec![(0f32, 0usize); comps.len()];
    for (i, &id) in ids.iter().enumerate() {
        if id > 0 && dist[i] > best[id as usize - 1].0 {
            best[id as usize - 1] = (dist[i], i);
        }
    }
    let min_radius = 8.0 * w.min(h) as f32 / 360.0;
    best.iter()
        .filter_map(|&(d2, i)| {
            let r = d2.sqrt();
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let inside = x >= r && y >= r && x + r < w as f32 && y + r < h as f32;
            (r >= min_radius && inside).then_some(2.0 * r)
        })
        .collect()
}

/// Estimate the scale of a square crop of `side` pixels from its label map (any size) and the
/// map's measurements.
pub fn estimate_scale(
    labels: &GrayImage,
    measured: &Morphometry,
    side: u32,
    reference: &ScaleReference,
) -> ScaleEstimate {
    let to_image = side as f32 / labels.width() as f32;
    let mut reds = red_cell_diameters(labels);
    let clamp = |f: f32| f.clamp(FACTOR_RANGE.0, FACTOR_RANGE.1);
    if reds.len() >= MIN_RED_CELLS {
        reds.sort_by(f32::total_cmp);
        let median = reds[reds.len() / 2];
        // A white cell spans one to three red-cell diameters. Red "cells" much smaller than
        // that are fragments (red cells cut by a tight crop, pale rings): not a ruler.
        let plausible = measured.cell_area == 0
            || (RED_TO_WHITE.0..=RED_TO_WHITE.1).contains(&(median / measured.cell_diameter));
        if plausible {
            return ScaleEstimate {
                factor: clamp(median * to_image / reference.red_cell_diameter),
                source: ScaleSource::RedCells,
            };
        }
    }
    if measured.cell_area == 0 {
        return ScaleEstimate {
            factor: 1.0,
            source: ScaleSource::NoCell,
        };
    }
    let cell = measured.cell_diameter * to_image;
    let (lo, hi) = reference.white_cell_diameter;
    let target = cell.clamp(lo, hi);
    if target == cell {
        ScaleEstimate {
            factor: 1.0,
            source: ScaleSource::Unchanged,
        }
    } else {
        ScaleEstimate {
            factor: clamp(cell / target),
            source: ScaleSource::WhiteCell,
        }
    }
}

/// Where a square's content came from: the rectangle `crop` of the image (x, y, w, h) fills
/// the rectangle `dest` of a `side`² square. Label maps of the square map back to the image
/// through it ([`Placement::labels_to_image`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub crop: [u32; 4],
    pub dest: [u32; 4],
    pub side: u32,
}

impl Placement {
    /// The plain centre crop of a `w`×`h` image, stretched over a `side`² square.
    pub fn centre_square(w: u32, h: u32, side: u32) -> Self {
        let s = w.min(h);
        Self {
            crop: [(w - s) / 2, (h - s) / 2, s, s],
            dest: [0, 0, side, side],
            side,
        }
    }

    /// The placement of [`resample`]: the image scaled by `1 / factor`, centred on a `side`²
    /// square.
    pub fn resampled(w: u32, h: u32, factor: f32, side: u32) -> Self {
        // Only the part that lands on the square is resized.
        let span = ((side as f32 * factor).ceil() as u32).max(1);
        let (cw, ch) = (w.min(span), h.min(span));
        let (nw, nh) = (
            ((cw as f32 / factor).round() as u32).clamp(1, side),
            ((ch as f32 / factor).round() as u32).clamp(1, side),
        );
        Self {
            crop: [(w - cw) / 2, (h - ch) / 2, cw, ch],
            dest: [(side - nw) / 2, (side - nh) / 2, nw, nh],
            side,
        }
    }

    /// A label map of the square (any side; `OTHER` = 0 where the image is not shown) as a
    /// map of the whole `w`×`h` image, nearest neighbour.
    pub fn labels_to_image(&self, labels: &GrayImage, w: u32, h: u32) -> GrayImage {
        let k = labels.width() as f32 / self.side as f32;
        let [cx, cy, cw, ch] = self.crop;
        let [dx, dy, dw, dh] = self.dest;
        GrayImage::from_fn(w, h, |x, y| {
            if x < cx || y < cy || x >= cx + cw || y >= cy + ch {
                return image::Luma([0]);
            }
            let sx = dx as f32 + ((x - cx) as f32 + 0.5) * dw as f32 / cw as f32;
            let sy = dy as f32 + ((y - cy) as f32 + 0.5) * dh as f32 / ch as f32;
            let (lx, ly) = ((sx * k) as u32, (sy * k) as u32);
            image::Luma([labels
                .get_pixel(lx.min(labels.width() - 1), ly.min(labels.height() - 1))
                .0[0]])
        })
    }
}

/// The image resampled by `1 / factor` and centred on a `side`² square, padded with `fill`
/// where the image does not reach (a tight crop) and cut where it is larger.
pub fn resample(img: &RgbImage, factor: f32, side: u32, fill: Rgb<u8>) -> (RgbImage, Placement) {
    let (w, h) = img.dimensions();
    let placement = Placement::resampled(w, h, factor, side);
    let [cx, cy, cw, ch] = placement.crop;
    let [dx, dy, nw, nh] = placement.dest;
    let crop = imageops::crop_imm(img, cx, cy, cw, ch).to_image();
    let scaled = if (nw, nh) == (cw, ch) {
        crop
    } else {
        imageops::resize(&crop, nw, nh, imageops::FilterType::Triangle)
    };
    let mut out = RgbImage::from_pixel(side, side, fill);
    imageops::replace(&mut out, &scaled, dx as i64, dy as i64);
    (out, placement)
}

/// The fill colour of a look (its background as bytes).
pub fn background_pixel(look: &Look) -> Rgb<u8> {
    Rgb(look
        .background
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PBC-like field: pinkish background, red cells of diameter `red` on a grid, and a
    /// purple white cell with a dark nucleus in the centre, drawn at `zoom`.
    fn field(side: u32, zoom: f32, red: f32) -> RgbImage {
        let bg = Rgb([235, 215, 205]);
        let mut img = RgbImage::from_pixel(side, side, bg);
        let c = side as f32 / 2.0;
        let step = red * zoom * 1.25;
        for y in 0..side {
            for x in 0..side {
                let (fx, fy) = (x as f32, y as f32);
                let r = ((fx - c).powi(2) + (fy - c).powi(2)).sqrt();
                let px = if r < 22.0 * zoom {
                    Rgb([90, 50, 120])
                } else if r < 45.0 * zoom {
                    Rgb([200, 180, 215])
                } else {
                    // Red cells on a lattice, away from the white cell.
                    let (gx, gy) = ((fx / step).round() * step, (fy / step).round() * step);
                    let d = ((fx - gx).powi(2) + (fy - gy).powi(2)).sqrt();
                    // Whole red cells only: a lattice site near the white cell stays empty.
                    let site = ((gx - c).powi(2) + (gy - c).powi(2)).sqrt();
                    if d < red * zoom / 2.0 && site > 45.0 * zoom + red * zoom * 0.55 {
                        Rgb([215, 150, 150])
                    } else {
                        bg
                    }
                };
                img.put_pixel(x, y, px);
            }
        }
        img
    }

    /// Another microscope's look: a coloured lamp and a paler or stronger stain per channel.
    fn shift_look(img: &RgbImage, lamp: [f32; 3], stain: [f32; 3]) -> RgbImage {
        let bg = [235.0, 215.0, 205.0];
        let mut out = img.clone();
        for p in out.pixels_mut() {
            for c in 0..3 {
                let ratio = p[c] as f32 / bg[c];
                let ratio = if ratio >= 1.0 {
                    ratio
                } else {
                    ratio.powf(stain[c])
                };
                p[c] = (bg[c] * lamp[c] * ratio).round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    #[test]
    fn restain_recovers_lamp_and_stain_within_3_levels() {
        let reference_img = field(360, 1.0, 78.0);
        let reference = measure_look(&reference_img);
        for (lamp, stain) in [
            ([1.0, 1.0, 0.7], [0.6, 0.8, 1.2]),
            ([0.8, 0.9, 1.05], [1.4, 1.0, 0.7]),
            ([1.05, 0.85, 0.9], [1.0, 1.0, 1.0]),
        ] {
            let shifted = shift_look(&reference_img, lamp, stain);
            let (back, correction) = restain(&shifted, &reference, true);
            assert!(correction.strength() > 0.1, "{correction:?}");
            // Nucleus, cytoplasm, red cell and background come back to their colours.
            for (x, y) in [(180, 180), (180, 180 + 35), (10, 10), (49, 49)] {
                let (a, b) = (reference_img.get_pixel(x, y), back.get_pixel(x, y));
                for c in 0..3 {
                    assert!(
                        (a[c] as i32 - b[c] as i32).abs() <= 3,
                        "lamp {lamp:?} stain {stain:?} at ({x},{y}): {a:?} vs {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn white_balance_alone_leaves_stain_density() {
        let reference_img = field(360, 1.0, 78.0);
        let reference = measure_look(&reference_img);
        let shifted = shift_look(&reference_img, [1.0, 1.0, 1.0], [0.6, 0.6, 0.6]);
        let (_, correction) = restain(&shifted, &reference, false);
        assert_eq!(correction.density_gain, [1.0; 3]);
        let (_, correction) = restain(&shifted, &reference, true);
        for g in correction.density_gain {
            assert!((g - 1.0 / 0.6).abs() < 0.1, "{correction:?}");
        }
    }

    #[test]
    fn a_pbc_image_is_left_as_it_is() {
        let img = field(360, 1.0, 78.0);
        let (back, correction) = restain(&img, &measure_look(&img), true);
        assert!(correction.strength() < 1e-3);
        assert_eq!(back, img);
    }

    fn labels_of(img: &RgbImage) -> GrayImage {
        // The test field's colours name its labels.
        GrayImage::from_fn(img.width(), img.height(), |x, y| {
            let p = img.get_pixel(x, y);
            image::Luma([match p.0 {
                [90, 50, 120] => crate::segmentation::NUCLEUS,
                [200, 180, 215] => crate::segmentation::CYTOPLASM,
                [215, 150, 150] => RED_CELL,
                _ => 0,
            }])
        })
    }

    #[test]
    fn scale_is_recovered_from_red_cells_within_5_percent() {
        let reference = ScaleReference {
            red_cell_diameter: 78.0,
            white_cell_diameter: (70.0, 120.0),
        };
        for zoom in [0.5f32, 0.8, 1.0, 1.6, 2.0] {
            let side = (360.0 * zoom.max(1.0)) as u32;
            let img = field(side, zoom, 78.0);
            let labels = labels_of(&img);
            let m = crate::morphometry::measure(&labels);
            let est = estimate_scale(&labels, &m, side, &reference);
            assert_eq!(est.source, ScaleSource::RedCells, "zoom {zoom}");
            assert!(
                (est.factor / zoom - 1.0).abs() < 0.05,
                "zoom {zoom}: estimated {}",
                est.factor
            );
            // Resampled, the white cell has its PBC size again.
            let (back, _) = resample(&img, est.factor, 360, Rgb([235, 215, 205]));
            let m = crate::morphometry::measure(&labels_of(&back));
            let d = m.cell_diameter;
            assert!((d / 90.0 - 1.0).abs() < 0.07, "zoom {zoom}: diameter {d}");
        }
    }

    #[test]
    fn red_fragments_far_smaller_than_the_white_cell_are_no_ruler() {
        let reference = ScaleReference {
            red_cell_diameter: 78.0,
            white_cell_diameter: (70.0, 120.0),
        };
        // Red cells a fifth of the white cell's diameter: fragments, so the white cell
        // (270 px, above the range) sets the scale instead.
        let mut img = field(360, 3.0, 0.0);
        for (cx, cy) in [(15.0f32, 15.0f32), (345.0, 15.0), (15.0, 345.0)] {
            for y in 0..360 {
                for x in 0..360 {
                    if ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() < 12.0 {
                        img.put_pixel(x, y, Rgb([215, 150, 150]));
                    }
                }
            }
        }
        let labels = labels_of(&img);
        let m = crate::morphometry::measure(&labels);
        assert!(red_cell_diameters(&labels).len() >= 2);
        let est = estimate_scale(&labels, &m, 360, &reference);
        assert_eq!(est.source, ScaleSource::WhiteCell, "{est:?}");
    }

    #[test]
    fn without_red_cells_the_white_cell_bounds_the_scale() {
        let reference = ScaleReference {
            red_cell_diameter: 78.0,
            white_cell_diameter: (70.0, 120.0),
        };
        let blank = |zoom: f32| {
            let img = field(360, zoom, 0.0);
            let labels = labels_of(&img);
            let m = crate::morphometry::measure(&labels);
            estimate_scale(&labels, &m, 360, &reference)
        };
        // 90 px lies within PBC's range: taken as it is.
        assert_eq!(blank(1.0).source, ScaleSource::Unchanged);
        // Three times larger (270 px): brought to the top of the range.
        let big = blank(3.0);
        assert_eq!(big.source, ScaleSource::WhiteCell);
        assert!((big.factor - 270.0 / 120.0).abs() < 0.1, "{big:?}");
    }

    #[test]
    fn resample_pads_a_tight_crop_with_background() {
        let img = RgbImage::from_pixel(120, 120, Rgb([10, 20, 30]));
        let (out, placement) = resample(&img, 0.5, 360, Rgb([1, 2, 3]));
        assert_eq!(out.dimensions(), (360, 360));
        assert_eq!(out.get_pixel(0, 0), &Rgb([1, 2, 3]));
        assert_eq!(out.get_pixel(180, 180), &Rgb([10, 20, 30]));
        // 120 px at factor 0.5 spans 240 px.
        assert_eq!(out.get_pixel(61, 180), &Rgb([10, 20, 30]));
        assert_eq!(out.get_pixel(58, 180), &Rgb([1, 2, 3]));
        // A label map of the square maps back onto the image's own pixels.
        let labels = GrayImage::from_fn(360, 360, |x, _| image::Luma([(x >= 180) as u8]));
        let back = placement.labels_to_image(&labels, 120, 120);
        assert_eq!(back.get_pixel(59, 60).0[0], 0);
        assert_eq!(back.get_pixel(60, 60).0[0], 1);
        // A map at another side (the 360² map of a smaller square) scales too.
        let small = Placement::centre_square(120, 130, 360);
        let back = small.labels_to_image(&labels, 120, 130);
        assert_eq!(
            (back.get_pixel(59, 10).0[0], back.get_pixel(60, 10).0[0]),
            (0, 1)
        );
        assert_eq!(back.get_pixel(60, 129).0[0], 0);
        // A large field is cut to the square around its centre.
        let big = RgbImage::from_pixel(1000, 800, Rgb([9, 9, 9]));
        let (out, _) = resample(&big, 1.0, 360, Rgb([1, 2, 3]));
        assert_eq!(out.get_pixel(0, 0), &Rgb([9, 9, 9]));
    }
}
