//! Counterfactual images (the paper's §5.3, without a generative model): a cell's square
//! edited so one attribute takes another value, each edit guided by the cell's label map and
//! deterministic, so the page can say exactly what was changed.
//!
//! - [`Edit::Size`]: the white cell scaled about its centre; red cells and plasma kept, the
//!   place it left filled with the plasma's colour.
//! - [`Edit::Nucleus`]: the nucleus scaled about its centre inside the cell (the N:C ratio),
//!   the cell's outline kept: along each ray from the nucleus's centre a grown nucleus squeezes
//!   the cytoplasm against the outline, and a shrunk one leaves a gap painted with the cell's
//!   own cytoplasm (its pixels, scattered and smoothed); nothing outside the cell moves.
//! - [`Edit::Ring`]: the N:C ratio the other way: the cytoplasm's ring widened or narrowed
//!   (the cell's outline scaled about the nucleus), the nucleus kept.
//! - [`Edit::Cytoplasm`]: the cytoplasm's stain scaled channel by channel so its mean optical
//!   density moves towards a target (cells with the wanted colour, measured on PBC train),
//!   texture kept.
//! - [`Edit::Vacuoles`]: pale round holes added in the cytoplasm, or the vacuoles filled.
//!
//! Nucleus shape and chromatin are not edited: no such local rule makes a convincing lobe.

use crate::segmentation::{is_white_cell, CYTOPLASM, NUCLEUS, OTHER, VACUOLE};
use image::{GrayImage, Rgb, RgbImage};
use serde::{Deserialize, Serialize};

/// The page's size and nucleus sliders, in length: from a monocyte shrunk to a small
/// lymphocyte's size to a small lymphocyte grown to a monocyte's (7 against 12–20 µm), in
/// steps of [`SLIDER_STEP`]. The range was chosen on val (`wbc counterfactual-images --split
/// val`: BENCHMARKS.md, "Show me").
pub const SLIDER_RANGE: (f32, f32) = (0.5, 2.0);
/// The sliders' step.
pub const SLIDER_STEP: f32 = 0.05;

/// One edit of a cell's square.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Edit {
    /// The white cell scaled by `factor` (in length) about its centre.
    Size { factor: f32 },
    /// The nucleus scaled by `factor` (in length) about its centre, within the cell.
    Nucleus { factor: f32 },
    /// The cytoplasm's ring scaled: the cell's outline scaled by `factor` about the nucleus's
    /// centre, the nucleus kept (the N:C ratio the other way round).
    Ring { factor: f32 },
    /// The cytoplasm's mean optical density moved `strength` times the way to `target` (1:
    /// there; more: beyond, along the same line).
    Cytoplasm { target: [f32; 3], strength: f32 },
    /// `add` pale round vacuoles in the cytoplasm, or fill the ones there.
    Vacuoles { add: bool },
}

/// The cytoplasm's mean optical density of PBC train cells labelled with each cytoplasm
/// colour and each granule colour (`None` for a value without cells): the targets of
/// [`Edit::Cytoplasm`]. `wbc counterfactual-images` measures them into
/// `models/edit_stains.json`, which the page reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetStains {
    pub cytoplasm_colour: Vec<Option<[f32; 3]>>,
    pub granule_colour: Vec<Option<[f32; 3]>>,
    /// How they were measured (command, commit, date).
    #[serde(default)]
    pub measured: String,
    /// How often the attribute network followed each kind of edit on PBC test cells, in %
    /// (the same run's report), for the page to say beside its "show me".
    #[serde(default)]
    pub followed: Vec<(String, f64)>,
    /// The same over the edits WBCAtt supports (the value asked shown in at least
    /// [`RARE_WITH_TYPE`] of the training cells of the cell's type): (kind, edits, %).
    #[serde(default)]
    pub followed_supported: Vec<(String, usize, f64)>,
    /// How many PBC train cells of each type carry each value of each attribute
    /// (`[type][attribute][value]`, WBCAtt's labels). Where an edit asks for a value WBCAtt
    /// hardly shows with the cell's type (an eosinophil with a high N:C ratio: 1 of 1,876),
    /// the network has had nothing to learn it from and reads the attribute with the type;
    /// the page says so beside the edit.
    #[serde(default)]
    pub by_type: Vec<Vec<Vec<u32>>>,
}

/// The share of a type's training cells below which a value counts as one WBCAtt hardly
/// shows with that type (fixed at a round 5%, not chosen on results).
pub const RARE_WITH_TYPE: f64 = 0.05;

impl TargetStains {
    /// [`with_type`] on this file's counts.
    pub fn with_type(&self, cell_type: usize, k: usize, v: usize) -> Option<WithType> {
        with_type(&self.by_type, cell_type, k, v)
    }

    /// Which attribute a restaining edit aims at, and which value: the target is one of the
    /// measured stains (the page's buttons and the report copy them from here).
    pub fn colour_target(&self, target: &[f32; 3]) -> Option<(&'static str, usize)> {
        let find = |list: &[Option<[f32; 3]>]| list.iter().position(|t| t.as_ref() == Some(target));
        find(&self.cytoplasm_colour)
            .map(|v| ("cytoplasm_colour", v))
            .or_else(|| find(&self.granule_colour).map(|v| ("granule_colour", v)))
    }
}

/// How many PBC train cells of one type carry one attribute value, of how many of that type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WithType {
    pub cells: u32,
    pub of: u32,
}

impl WithType {
    pub fn share(&self) -> f64 {
        self.cells as f64 / self.of.max(1) as f64
    }

    /// WBCAtt hardly shows the value with the type ([`RARE_WITH_TYPE`]).
    pub fn rare(&self) -> bool {
        self.share() < RARE_WITH_TYPE
    }
}

/// Value `v` of attribute `k` among the cells of type `cell_type` in counts made by
/// [`counts_by_type`] (`None` without counts or cells of that type).
pub fn with_type(
    counts: &[Vec<Vec<u32>>],
    cell_type: usize,
    k: usize,
    v: usize,
) -> Option<WithType> {
    let values = counts.get(cell_type)?.get(k)?;
    let of: u32 = values.iter().sum();
    (of > 0).then_some(WithType {
        cells: *values.get(v)?,
        of,
    })
}

/// The counts of [`TargetStains::by_type`] from labelled cells.
pub fn counts_by_type(cells: &[crate::dataset::LabelledCell]) -> Vec<Vec<Vec<u32>>> {
    let mut out: Vec<Vec<Vec<u32>>> = (0..crate::CELL_TYPES.len())
        .map(|_| {
            crate::ATTRIBUTES
                .iter()
                .map(|a| vec![0; a.values.len()])
                .collect()
        })
        .collect();
    for c in cells {
        for (k, &v) in c.attributes.iter().enumerate() {
            out[c.cell_type][k][v] += 1;
        }
    }
    out
}

/// Optical density of one 8-bit channel (Beer–Lambert: stain adds).
pub fn density(v: u8) -> f32 {
    -((v as f32 + 1.0) / 256.0).ln()
}

fn from_density(d: f32) -> u8 {
    (256.0 * (-d).exp() - 1.0).round().clamp(0.0, 255.0) as u8
}

/// The mean optical density of the pixels labelled `label` (`None` when there are none).
pub fn mean_density(image: &RgbImage, labels: &GrayImage, label: u8) -> Option<[f32; 3]> {
    let mut sum = [0.0f64; 3];
    let mut n = 0usize;
    for (p, l) in image.pixels().zip(labels.pixels()) {
        if l.0[0] == label {
            for c in 0..3 {
                sum[c] += density(p.0[c]) as f64;
            }
            n += 1;
        }
    }
    (n > 0).then(|| sum.map(|s| (s / n as f64) as f32))
}

/// The mean colour of the pixels labelled `label`, or `fallback`.
fn mean_colour(image: &RgbImage, labels: &GrayImage, label: u8, fallback: [u8; 3]) -> [u8; 3] {
    mean_density(image, labels, label).map_or(fallback, |d| d.map(from_density))
}

/// The centre of the pixels `inside` marks.
fn centroid(labels: &GrayImage, inside: impl Fn(u8) -> bool) -> Option<(f32, f32)> {
    let (mut x, mut y, mut n) = (0.0f64, 0.0f64, 0usize);
    for (px, py, l) in labels.enumerate_pixels() {
        if inside(l.0[0]) {
            x += px as f64;
            y += py as f64;
            n += 1;
        }
    }
    (n > 0).then(|| ((x / n as f64) as f32, (y / n as f64) as f32))
}

/// Bilinear sample of `image` at (x, y), clamped to the edges.
fn sample(image: &RgbImage, x: f32, y: f32) -> [u8; 3] {
    let (w, h) = image.dimensions();
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |x, y| image.get_pixel(x, y).0.map(|v| v as f32);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    [0, 1, 2].map(|i| {
        let top = a[i] * (1.0 - fx) + b[i] * fx;
        let bottom = c[i] * (1.0 - fx) + d[i] * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    })
}

/// The label at (x, y) (nearest pixel), `OTHER` outside the square.
fn label_at(labels: &GrayImage, x: f32, y: f32) -> u8 {
    let (w, h) = labels.dimensions();
    let (xi, yi) = (x.round(), y.round());
    if xi < 0.0 || yi < 0.0 || xi >= w as f32 || yi >= h as f32 {
        return OTHER;
    }
    labels.get_pixel(xi as u32, yi as u32).0[0]
}

/// Apply `edit` to a cell's square (`labels`: its label map, resized to the square when its
/// size differs). A map without
/// a white cell (or without the region an edit needs) leaves the image as it is.
pub fn apply(image: &RgbImage, labels: &GrayImage, edit: &Edit) -> RgbImage {
    // The map at the image's own size (a square shown larger than the map is drawn at).
    let resized;
    let labels = if labels.dimensions() == image.dimensions() {
        labels
    } else {
        let (w, h) = image.dimensions();
        resized = image::imageops::resize(labels, w, h, image::imageops::FilterType::Nearest);
        &resized
    };
    let mut out = image.clone();
    match *edit {
        Edit::Size { factor } => {
            let Some((cx, cy)) = centroid(labels, is_white_cell) else {
                return out;
            };
            let plasma = mean_colour(image, labels, OTHER, [230, 220, 220]);
            for (x, y, l) in labels.enumerate_pixels() {
                if is_white_cell(l.0[0]) {
                    out.put_pixel(x, y, Rgb(plasma));
                }
            }
            for (x, y, p) in out.enumerate_pixels_mut() {
                let sx = cx + (x as f32 - cx) / factor;
                let sy = cy + (y as f32 - cy) / factor;
                if is_white_cell(label_at(labels, sx, sy)) {
                    *p = Rgb(sample(image, sx, sy));
                }
            }
        }
        Edit::Nucleus { factor } => {
            let Some((cx, cy)) = centroid(labels, |l| l == NUCLEUS) else {
                return out;
            };
            let rays = Rays::measure(labels, (cx, cy));
            let mut gap = Vec::new();
            for (x, y, l) in labels.enumerate_pixels() {
                if !is_white_cell(l.0[0]) {
                    continue;
                }
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                let r = dx.hypot(dy);
                if r < 1e-3 {
                    continue;
                }
                let (rn, rc) = rays.at(dy.atan2(dx));
                match radial_source(r, rn, rc, factor) {
                    Some(from) => {
                        let k = from / r;
                        out.put_pixel(x, y, Rgb(sample(image, cx + dx * k, cy + dy * k)));
                    }
                    None => gap.push((x, y)),
                }
            }
            fill_with_cytoplasm(image, labels, &mut out, &gap);
        }
        Edit::Ring { factor } => {
            let Some((cx, cy)) = centroid(labels, |l| l == NUCLEUS) else {
                return out;
            };
            let plasma = mean_colour(image, labels, OTHER, [230, 220, 220]);
            for (x, y, l) in labels.enumerate_pixels() {
                if matches!(l.0[0], CYTOPLASM | VACUOLE) {
                    out.put_pixel(x, y, Rgb(plasma));
                }
            }
            for (x, y, p) in out.enumerate_pixels_mut() {
                if labels.get_pixel(x, y).0[0] == NUCLEUS {
                    continue;
                }
                let sx = cx + (x as f32 - cx) / factor;
                let sy = cy + (y as f32 - cy) / factor;
                if matches!(label_at(labels, sx, sy), CYTOPLASM | VACUOLE | NUCLEUS) {
                    // Inside the scaled outline: cytoplasm, sampled where it was (from the
                    // nearest cytoplasm when the scaled point falls on the nucleus).
                    let (qx, qy) = if label_at(labels, sx, sy) == NUCLEUS {
                        (x as f32, y as f32)
                    } else {
                        (sx, sy)
                    };
                    if matches!(label_at(labels, qx, qy), CYTOPLASM | VACUOLE) {
                        *p = Rgb(sample(image, qx, qy));
                    }
                }
            }
        }
        Edit::Cytoplasm { target, strength } => {
            let Some(now) = mean_density(image, labels, CYTOPLASM) else {
                return out;
            };
            // Each channel's stain scaled (Beer–Lambert: density is stain amount), so the
            // mean reaches the target at strength 1 and texture and clear pixels keep their
            // proportions; never below a quarter or above four times the stain there was.
            let scale = [0, 1, 2]
                .map(|c| (1.0 + strength * (target[c] / now[c].max(1e-3) - 1.0)).clamp(0.25, 4.0));
            for (p, l) in out.pixels_mut().zip(labels.pixels()) {
                if l.0[0] == CYTOPLASM {
                    for c in 0..3 {
                        p.0[c] = from_density(density(p.0[c]) * scale[c]);
                    }
                }
            }
        }
        Edit::Vacuoles { add: false } => {
            let cytoplasm = mean_colour(image, labels, CYTOPLASM, [200, 170, 200]);
            for (x, y, l) in labels.enumerate_pixels() {
                if l.0[0] == VACUOLE {
                    out.put_pixel(x, y, Rgb(cytoplasm));
                }
            }
        }
        Edit::Vacuoles { add: true } => add_vacuoles(image, labels, &mut out),
    }
    out
}

/// Where a point at radius `r` from the nucleus's centre is taken from when the nucleus (reaching
/// `rn` along this ray, the cell `rc`) is scaled by `factor` and the cell's outline kept; `None`
/// in the place a shrunk nucleus left (filled by [`fill_with_cytoplasm`]). Inside the new
/// nucleus: the scaling itself. A grown nucleus squeezes the cytoplasm evenly between it and
/// the outline (it stops 2 px short of the outline, so a ring always shows). A shrunk one
/// leaves the ring as it was, from a pixel beyond the old edge (whose rim blends into the
/// nucleus). Stretching a thin ring inwards, or mirroring it, drew radial streaks.
fn radial_source(r: f32, rn: f32, rc: f32, factor: f32) -> Option<f32> {
    if rn <= 0.0 || rc <= rn || r >= rc {
        return Some(r);
    }
    let new_rn = (rn * factor).min(rc - 2.0).max(1.0);
    if r <= new_rn {
        return Some(r * rn / new_rn);
    }
    if new_rn >= rn {
        return Some(rn + (r - new_rn) * (rc - rn) / (rc - new_rn));
    }
    (r >= rn + 1.0).then_some(r)
}

/// Paint `gap` with the cell's own cytoplasm: each pixel takes the colour of a cytoplasm pixel
/// picked by a fixed hash of its position, from the ring's core (2 px inside both its edges,
/// where no nucleus or plasma blends in), then a 3×3 mean over the gap smooths the grain to
/// the cytoplasm's. A ring too thin to have a core gives its mean colour.
fn fill_with_cytoplasm(
    image: &RgbImage,
    labels: &GrayImage,
    out: &mut RgbImage,
    gap: &[(u32, u32)],
) {
    if gap.is_empty() {
        return;
    }
    let inside = |x: i64, y: i64| {
        x >= 0 && y >= 0 && matches!(label_at(labels, x as f32, y as f32), CYTOPLASM | VACUOLE)
    };
    let core: Vec<[u8; 3]> = labels
        .enumerate_pixels()
        .filter(|(x, y, l)| {
            let (x, y) = (*x as i64, *y as i64);
            l.0[0] == CYTOPLASM
                && [
                    (-2, 0),
                    (2, 0),
                    (0, -2),
                    (0, 2),
                    (-2, -2),
                    (2, 2),
                    (-2, 2),
                    (2, -2),
                ]
                .iter()
                .all(|(dx, dy)| inside(x + dx, y + dy))
        })
        .map(|(x, y, _)| image.get_pixel(x, y).0)
        .collect();
    let flat = mean_colour(image, labels, CYTOPLASM, [200, 170, 200]);
    for &(x, y) in gap {
        let colour = if core.len() >= 20 {
            let h = (x.wrapping_mul(73_856_093) ^ y.wrapping_mul(19_349_663))
                .wrapping_mul(2_654_435_761);
            core[(h >> 7) as usize % core.len()]
        } else {
            flat
        };
        out.put_pixel(x, y, Rgb(colour));
    }
    let grain = out.clone();
    let (w, h) = out.dimensions();
    for &(x, y) in gap {
        let mut sum = [0u32; 3];
        let mut n = 0;
        for yy in y.saturating_sub(1)..=(y + 1).min(h - 1) {
            for xx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                let p = grain.get_pixel(xx, yy).0;
                for c in 0..3 {
                    sum[c] += p[c] as u32;
                }
                n += 1;
            }
        }
        out.put_pixel(x, y, Rgb(sum.map(|s| (s / n) as u8)));
    }
}

/// How far the nucleus and the white cell reach from the nucleus's centre in each direction
/// (the outermost point of each along 180 rays, smoothed over neighbours so the warp has no
/// seams).
struct Rays {
    nucleus: Vec<f32>,
    cell: Vec<f32>,
}

impl Rays {
    const BINS: usize = 180;

    fn measure(labels: &GrayImage, (cx, cy): (f32, f32)) -> Self {
        let mut nucleus = vec![0.0f32; Self::BINS];
        let mut cell = vec![0.0f32; Self::BINS];
        let reach = labels.width().max(labels.height()) as f32 * 1.5;
        for b in 0..Self::BINS {
            // Along the bin's middle ray in half-pixel steps: the outermost nucleus and
            // white-cell points (a lobe beyond a gap still counts).
            let angle = (b as f32 + 0.5) / Self::BINS as f32 * std::f32::consts::TAU;
            let (dx, dy) = (angle.cos(), angle.sin());
            let mut r = 0.0;
            while r < reach {
                let l = label_at(labels, cx + r * dx, cy + r * dy);
                if is_white_cell(l) {
                    cell[b] = r + 0.5;
                    if l == NUCLEUS {
                        nucleus[b] = r + 0.5;
                    }
                }
                r += 0.5;
            }
        }
        let smooth = |v: &[f32]| -> Vec<f32> {
            let n = v.len();
            (0..n)
                .map(|i| (0..5).map(|j| v[(i + n + j - 2) % n]).sum::<f32>() / 5.0)
                .collect()
        };
        Rays {
            nucleus: smooth(&nucleus),
            cell: smooth(&cell),
        }
    }

    /// (nucleus, cell) reach along `angle`, interpolated between bins.
    fn at(&self, angle: f32) -> (f32, f32) {
        let t = (angle / std::f32::consts::TAU).rem_euclid(1.0) * Self::BINS as f32 - 0.5;
        let i = t.floor();
        let f = t - i;
        let n = Self::BINS as isize;
        let a = (i as isize).rem_euclid(n) as usize;
        let b = (a + 1) % Self::BINS;
        let mix = |v: &[f32]| v[a] * (1.0 - f) + v[b] * f;
        (mix(&self.nucleus), mix(&self.cell))
    }
}

/// Up to five pale round holes (radius 5 px at PBC's scale) where the cytoplasm surrounds
/// them entirely, spread round the cell on a fixed pattern (deterministic).
fn add_vacuoles(image: &RgbImage, labels: &GrayImage, out: &mut RgbImage) {
    const RADIUS: f32 = 5.0;
    let Some((cx, cy)) = centroid(labels, is_white_cell) else {
        return;
    };
    let plasma = mean_colour(image, labels, OTHER, [230, 220, 220]);
    let fits = |x: f32, y: f32| {
        let r = RADIUS + 1.0;
        (0..16).all(|i| {
            let a = i as f32 * std::f32::consts::TAU / 16.0;
            label_at(labels, x + r * a.cos(), y + r * a.sin()) == CYTOPLASM
        }) && label_at(labels, x, y) == CYTOPLASM
    };
    let mut placed: Vec<(f32, f32)> = Vec::new();
    // Rings of candidate centres around the cell's centre, every 20°.
    'rings: for ring in 1..40 {
        let d = ring as f32 * 3.0;
        for step in 0..18 {
            let a = step as f32 * std::f32::consts::TAU / 18.0 + ring as f32 * 0.37;
            let (x, y) = (cx + d * a.cos(), cy + d * a.sin());
            let apart = placed
                .iter()
                .all(|(px, py)| (px - x).hypot(py - y) > 4.0 * RADIUS);
            if apart && fits(x, y) {
                placed.push((x, y));
                if placed.len() == 5 {
                    break 'rings;
                }
            }
        }
    }
    for (vx, vy) in placed {
        let (x0, y0) = (
            (vx - RADIUS - 1.0).max(0.0) as u32,
            (vy - RADIUS - 1.0).max(0.0) as u32,
        );
        for y in y0..(vy + RADIUS + 2.0) as u32 {
            for x in x0..(vx + RADIUS + 2.0) as u32 {
                if x >= out.width() || y >= out.height() {
                    continue;
                }
                let d = (x as f32 - vx).hypot(y as f32 - vy);
                // Pale inside, a soft rim.
                let a = ((RADIUS + 0.5 - d) / 1.5).clamp(0.0, 1.0) * 0.85;
                if a > 0.0 {
                    let p = out.get_pixel_mut(x, y);
                    for c in 0..3 {
                        p.0[c] = (p.0[c] as f32 * (1.0 - a) + plasma[c] as f32 * a).round() as u8;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 60² square: plasma, a cell of radius 27 with a nucleus of radius 10 at its centre.
    fn cell() -> (RgbImage, GrayImage) {
        let mut img = RgbImage::from_pixel(60, 60, Rgb([235, 225, 225]));
        let mut lab = GrayImage::new(60, 60);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let d = (x as f32 - 30.0).hypot(y as f32 - 30.0);
            if d < 10.0 {
                *p = Rgb([90, 50, 120]);
                lab.put_pixel(x, y, image::Luma([NUCLEUS]));
            } else if d < 27.0 {
                *p = Rgb([200, 170, 210]);
                lab.put_pixel(x, y, image::Luma([CYTOPLASM]));
            }
        }
        (img, lab)
    }

    fn count(img: &RgbImage, colour: [u8; 3]) -> usize {
        img.pixels().filter(|p| p.0 == colour).count()
    }

    #[test]
    fn the_cell_and_the_nucleus_grow_and_shrink_as_asked() {
        let (img, lab) = cell();
        let nucleus = count(&img, [90, 50, 120]);
        let big = apply(&img, &lab, &Edit::Nucleus { factor: 1.3 });
        let small = apply(&img, &lab, &Edit::Nucleus { factor: 0.7 });
        let grown = count(&big, [90, 50, 120]);
        // The area grows by 1.3² = 1.69, less the blended rim the exact colour misses.
        assert!(grown as f32 > 1.4 * nucleus as f32, "{nucleus} → {grown}");
        assert!((count(&small, [90, 50, 120]) as f32) < 0.6 * nucleus as f32);
        let plasma = count(&img, [235, 225, 225]);
        let shrunk = apply(&img, &lab, &Edit::Size { factor: 0.7 });
        assert!(count(&shrunk, [235, 225, 225]) > plasma + 300);
    }

    #[test]
    fn the_nucleus_edit_keeps_the_outline_and_fills_with_the_cells_own_cytoplasm() {
        let (img, lab) = cell();
        for factor in [0.6, 1.4] {
            let out = apply(&img, &lab, &Edit::Nucleus { factor });
            for ((a, b), l) in out.pixels().zip(img.pixels()).zip(lab.pixels()) {
                if !is_white_cell(l.0[0]) {
                    assert_eq!(a, b, "outside the cell nothing moves");
                }
            }
            // Every pixel is the nucleus's or the cytoplasm's colour, or a blend on the two
            // seams (the new nucleus's edge, the outline): the place the nucleus left is
            // cytoplasm, not a new colour.
            for (x, y, p) in out.enumerate_pixels() {
                let d = (x as f32 - 30.0).hypot(y as f32 - 30.0);
                let seam = (d - 10.0 * factor).abs() < 2.0 || (d - 27.0).abs() < 2.0;
                let pure = [[90, 50, 120], [200, 170, 210], [235, 225, 225]].contains(&p.0);
                assert!(pure || seam, "{:?} at distance {d} (×{factor})", p.0);
            }
        }
        // The nucleus at ×0.6 of a radius-10 disc, centre kept.
        let small = apply(&img, &lab, &Edit::Nucleus { factor: 0.6 });
        assert_eq!(small.get_pixel(30, 30).0, [90, 50, 120]);
        assert_eq!(small.get_pixel(30, 38).0, [200, 170, 210]);
        // Grown past the outline it stops short of it: a ring of cytoplasm stays.
        let huge = apply(&img, &lab, &Edit::Nucleus { factor: 4.0 });
        assert_eq!(huge.get_pixel(30, 56).0, [200, 170, 210]);
    }

    #[test]
    fn a_narrower_ring_keeps_the_nucleus_and_loses_cytoplasm() {
        let (img, lab) = cell();
        let (nucleus, cytoplasm) = (count(&img, [90, 50, 120]), count(&img, [200, 170, 210]));
        let narrow = apply(&img, &lab, &Edit::Ring { factor: 0.7 });
        assert_eq!(count(&narrow, [90, 50, 120]), nucleus);
        let left = count(&narrow, [200, 170, 210]);
        assert!(
            (left as f32) < 0.75 * cytoplasm as f32,
            "{cytoplasm} → {left}"
        );
        let wide = apply(&img, &lab, &Edit::Ring { factor: 1.1 });
        assert!(count(&wide, [200, 170, 210]) > cytoplasm);
    }

    #[test]
    fn the_cytoplasm_takes_the_target_stain_and_nothing_else_changes() {
        let (img, lab) = cell();
        let target = [0.9, 0.5, 0.2];
        let out = apply(
            &img,
            &lab,
            &Edit::Cytoplasm {
                target,
                strength: 1.0,
            },
        );
        let got = mean_density(&out, &lab, CYTOPLASM).unwrap();
        for c in 0..3 {
            assert!((got[c] - target[c]).abs() < 0.02, "{got:?}");
        }
        assert_eq!(
            mean_density(&out, &lab, NUCLEUS),
            mean_density(&img, &lab, NUCLEUS)
        );
    }

    #[test]
    fn vacuoles_are_added_inside_the_cytoplasm_only() {
        let (img, lab) = cell();
        let out = apply(&img, &lab, &Edit::Vacuoles { add: true });
        let changed: Vec<u8> = out
            .pixels()
            .zip(img.pixels())
            .zip(lab.pixels())
            .filter(|((a, b), _)| a != b)
            .map(|(_, l)| l.0[0])
            .collect();
        assert!(changed.len() > 50);
        assert!(changed.iter().all(|&l| l == CYTOPLASM));
    }
}
