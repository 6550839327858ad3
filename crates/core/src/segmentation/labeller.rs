//! The classical stain-based labeller: turns an RGB cell image into a label map with the six
//! WBCAtt+ labels, without any learned model.
//!
//! The method, per image (all thresholds are chosen per image, so stain and exposure
//! differences between slides are absorbed):
//! 1. light smoothing, then the background colour = mean of the brightest pixels;
//! 2. foreground = pixels far (Otsu) from the background colour;
//! 3. "violet" score = `(B − G) + ½·(R_bg − R)`: chromatin absorbs red and green, so nuclei
//!    (and platelets, basophil granules) are dark and blue-shifted, while red cells are pink
//!    (B ≈ G) and cytoplasm is pale; dark-violet pixels = score above Otsu within the
//!    foreground, bluish (B > R, which drops dark but orange-red eosinophil granules), and
//!    connected to a core above a stricter threshold (hysteresis);
//! 4. the central white cell's nucleus = the dark component nearest the image centre plus
//!    nearby lobes;
//! 5. a per-image Gaussian colour classifier (background / cytoplasm / red cell / nucleus),
//!    seeded from the geometry (a ring around the nucleus is cytoplasm, foreground far away is
//!    red cells) and refined twice, labels every pixel;
//! 6. the cell = cytoplasm-coloured pixels connected to the nucleus, opened, closed, holes
//!    filled and limited to a star-shaped region around the nucleus (cells are compact);
//! 7. vacuoles = bright round holes inside the cytoplasm; red cells = red-cell-coloured
//!    components with their central pallor filled; platelets = small dark components away
//!    from the cell. A second white cell is left as "other".
//!
//! Sizes are expressed for the 360×360 PBC crop and scaled with the shorter image side.

use super::labels::{CYTOPLASM, NUCLEUS, OTHER, PLATELET, RED_CELL, VACUOLE};
use crate::mask::{close, components, dilate, edt_sq, fill_holes, open, otsu, otsu3, remove_small};
use image::{GrayImage, Luma, RgbImage};

/// Label every pixel of a cell image with one of the [`NUM_LABELS`](super::NUM_LABELS) label ids.
///
/// Works on any size; images smaller than 16×16 get an all-[`OTHER`] map. Deterministic.
pub fn segment(img: &RgbImage) -> GrayImage {
    let (w32, h32) = img.dimensions();
    let mut out = GrayImage::new(w32, h32);
    if w32 < 16 || h32 < 16 {
        return out;
    }
    let labels = Labeller::new(img).run();
    for (p, &l) in out.pixels_mut().zip(&labels) {
        *p = Luma([l]);
    }
    out
}

/// How far (px at 360) the labeller looks for lobes of the central nucleus.
pub(super) const LABELLER_LOBE_REACH: f32 = 22.0;

/// Smallest area (px² at 360) of a dark component taken for another white cell's nucleus.
pub(super) const OTHER_NUCLEUS_AREA: f32 = 1500.0;

/// Colour classes of the per-image classifier.
const C_BG: usize = 0;
const C_CYTO: usize = 1;
const C_RBC: usize = 2;
const C_NUC: usize = 3;

/// Features per pixel for the classifier: smoothed R, G, B and local texture.
const D: usize = 4;
type Feat = [f32; D];

/// A Gaussian model of the pixel features with full covariance.
#[derive(Debug, Clone, Copy)]
struct Gauss {
    mean: Feat,
    /// Lower-triangular Cholesky factor of the covariance.
    chol: [[f64; D]; D],
    log_det: f32,
}

// The covariance, its Cholesky factor and the triangular solve index several arrays by the
// same row and column, as the formulas do; iterators would hide that.
#[allow(clippy::needless_range_loop)]
impl Gauss {
    /// Fit to the pixels `idx` of `feat`; `None` with too few pixels to estimate a covariance.
    fn fit(feat: &[Feat], idx: impl Iterator<Item = usize> + Clone) -> Option<Gauss> {
        let mut n = 0f64;
        let mut mean = [0f64; D];
        for i in idx.clone() {
            n += 1.0;
            for (m, &f) in mean.iter_mut().zip(&feat[i]) {
                *m += f as f64;
            }
        }
        if n < 20.0 {
            return None;
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut cov = [[0f64; D]; D];
        for i in idx {
            let mut d = [0f64; D];
            for k in 0..D {
                d[k] = feat[i][k] as f64 - mean[k];
            }
            for a in 0..D {
                for b in 0..=a {
                    cov[a][b] += d[a] * d[b];
                }
            }
        }
        for a in 0..D {
            for b in 0..=a {
                cov[a][b] /= n;
                cov[b][a] = cov[a][b];
            }
            // A floor on the variance keeps flat classes (e.g. a clean background) from
            // becoming infinitely sharp.
            cov[a][a] += 16.0;
        }
        let mut l = [[0f64; D]; D];
        for a in 0..D {
            for b in 0..=a {
                let mut sum = cov[a][b];
                for k in 0..b {
                    sum -= l[a][k] * l[b][k];
                }
                if a == b {
                    if sum <= 0.0 || !sum.is_finite() {
                        return None;
                    }
                    l[a][a] = sum.sqrt();
                } else {
                    l[a][b] = sum / l[b][b];
                }
            }
        }
        let log_det = 2.0 * (0..D).map(|k| l[k][k].ln()).sum::<f64>();
        Some(Gauss {
            mean: mean.map(|m| m as f32),
            chol: l,
            log_det: log_det as f32,
        })
    }

    /// Negative log-likelihood up to a constant (smaller = more likely).
    fn cost(&self, f: &Feat) -> f32 {
        // Solve L y = (f - mean); the Mahalanobis distance is |y|².
        let mut y = [0f64; D];
        let mut m = 0f64;
        for a in 0..D {
            let mut v = (f[a] - self.mean[a]) as f64;
            for k in 0..a {
                v -= self.chol[a][k] * y[k];
            }
            y[a] = v / self.chol[a][a];
            m += y[a] * y[a];
        }
        0.5 * (m as f32 + self.log_det)
    }
}

/// Working state of one labelling run.
struct Labeller {
    w: usize,
    h: usize,
    /// Size scale relative to the 360-pixel PBC crop.
    s: f32,
    /// Smoothed colour per pixel.
    rgb: Vec<[f32; 3]>,
    /// Classifier features per pixel: smoothed colour and texture.
    feat: Vec<Feat>,
}

impl Labeller {
    fn new(img: &RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let s = w.min(h) as f32 / 360.0;
        let raw: Vec<[f32; 3]> = img
            .pixels()
            .map(|p| [p.0[0] as f32, p.0[1] as f32, p.0[2] as f32])
            .collect();
        // A 3×3 box blur: granules and JPEG noise otherwise fragment every mask.
        let rgb = box_blur(&raw, w, h, 1);
        // Texture = local standard deviation of the green channel over 5×5: granular
        // neutrophil and eosinophil cytoplasm is rough where red cells of a similar pink are
        // smooth. Scaled ×3 so that its spread is comparable with the colour channels'.
        let sq: Vec<[f32; 3]> = raw.iter().map(|c| [c[1], c[1] * c[1], 0.0]).collect();
        let local = box_blur(&sq, w, h, 2);
        let feat = rgb
            .iter()
            .zip(&local)
            .map(|(c, l)| {
                let var = (l[1] - l[0] * l[0]).max(0.0);
                [c[0], c[1], c[2], 3.0 * var.sqrt()]
            })
            .collect();
        Labeller { w, h, s, rgb, feat }
    }

    /// Area in pixels of a size given for the 360×360 crop.
    fn area(&self, a360: f32) -> usize {
        (a360 * self.s * self.s).round().max(1.0) as usize
    }

    fn run(&self) -> Vec<u8> {
        let (w, h, s) = (self.w, self.h, self.s);
        let n = w * h;
        let mut labels = vec![OTHER; n];

        // 1. Background colour: mean of the brightest 10 % (background is the palest stuff on
        //    a smear; red-cell pallor is close to it, which does no harm).
        let bright: Vec<f32> = self.rgb.iter().map(|c| c[0] + c[1] + c[2]).collect();
        let cut = quantile(&bright, 0.90);
        let mut bg = [0f32; 3];
        let mut cnt = 0f32;
        for (c, &b) in self.rgb.iter().zip(&bright) {
            if b >= cut {
                for k in 0..3 {
                    bg[k] += c[k];
                }
                cnt += 1.0;
            }
        }
        bg.iter_mut().for_each(|v| *v /= cnt.max(1.0));

        // 2. Foreground = far from the background colour.
        let dist: Vec<f32> = self
            .rgb
            .iter()
            .map(|c| {
                ((c[0] - bg[0]).powi(2) + (c[1] - bg[1]).powi(2) + (c[2] - bg[2]).powi(2)).sqrt()
            })
            .collect();
        // Three classes (background / red cells and cytoplasm / nuclei): a two-class split
        // puts pale red cells with the background when the nucleus is very dark.
        let t_fg = otsu3(dist.iter().copied()).map_or(f32::INFINITY, |t| t.0);
        let fg: Vec<bool> = dist.iter().map(|&d| d > t_fg).collect();

        // 3. Dark-violet score and its per-image threshold among the foreground.
        let violet: Vec<f32> = self
            .rgb
            .iter()
            .map(|c| (c[2] - c[1]) + 0.5 * (bg[0] - c[0]))
            .collect();
        // Chromatin is blue-violet (B > R); red cells and eosinophil granules are red-orange
        // (R > B). Hysteresis: a strict threshold (Otsu among bluish foreground pixels only,
        // so the many red cells cannot pull it down into eosinophil granules) finds sure
        // chromatin, and a loose one (Otsu over all foreground) grows it into paler chromatin.
        let is_bluish = |i: usize| self.rgb[i][2] > self.rgb[i][0];
        let bluish: Vec<bool> = (0..n).map(|i| fg[i] && is_bluish(i)).collect();
        let values = |pool: &[bool]| {
            violet
                .iter()
                .zip(pool)
                .filter(|(_, &f)| f)
                .map(|(&v, _)| v)
                .collect::<Vec<f32>>()
        };
        // The loose threshold is taken among clearly stained pixels (two-class split of the
        // background distance): the pale fringe admitted by the three-class split above
        // would drag it down into violet cytoplasm.
        let t_fg2 = otsu(dist.iter().copied()).unwrap_or(t_fg).max(t_fg);
        let stained: Vec<bool> = dist.iter().map(|&d| d > t_fg2).collect();
        let t_low = otsu(values(&stained).into_iter()).unwrap_or(f32::INFINITY);
        let t_high = if bluish.iter().filter(|&&b| b).count() >= self.area(300.0) {
            otsu(values(&bluish).into_iter()).map_or(t_low, |t| t.max(t_low))
        } else {
            t_low
        };
        let weak: Vec<bool> = (0..n).map(|i| violet[i] > t_low && is_bluish(i)).collect();
        let (wid, wcomps) = components(&weak, w, h, true);
        let mut has_strong = vec![false; wcomps.len()];
        for i in 0..n {
            if wid[i] > 0 && violet[i] > t_high {
                has_strong[wid[i] as usize - 1] = true;
            }
        }
        let dark: Vec<bool> = wid
            .iter()
            .map(|&id| id > 0 && has_strong[id as usize - 1])
            .collect();
        let dark = open(&dark, w, h, 1.5 * s);

        // 4. The central nucleus and its lobes.
        let nucleus = self.central_nucleus(&dark);
        let Some(nucleus) = nucleus else {
            return labels;
        };

        // 5. Per-image colour classes.
        let class = self.classify(&fg, &dark, &nucleus);

        // 6. The cell.
        let cell = self.cell_region(&class, &nucleus);

        // 6b. Second look at the nucleus inside the cell only: basophilic (blue-violet)
        //     cytoplasm of lymphocytes and monocytes can pass the image-wide threshold, but
        //     within the cell the chromatin is the darker mode. Only a refinement that keeps
        //     most of the nucleus is accepted, so that a nucleus with pale and dense
        //     chromatin is not split in two.
        let t_cell = otsu(
            violet
                .iter()
                .zip(&cell)
                .filter(|(_, &c)| c)
                .map(|(&v, _)| v),
        );
        let nucleus = match t_cell.filter(|&t| t > t_low) {
            Some(t) => {
                let core: Vec<bool> = (0..n).map(|i| nucleus[i] && violet[i] > t).collect();
                let core = open(&core, w, h, 1.5 * s);
                let core = remove_small(&core, w, h, self.area(150.0));
                let core = fill_holes(&core, w, h, self.area(400.0));
                let a_core = core.iter().filter(|&&c| c).count();
                let a_nuc = nucleus.iter().filter(|&&c| c).count();
                if a_core * 10 >= a_nuc * 6 {
                    core
                } else {
                    nucleus
                }
            }
            None => nucleus,
        };

        // 7. Vacuoles: background-coloured blobs inside the cytoplasm, small and round.
        let vac_cand: Vec<bool> = (0..n)
            .map(|i| cell[i] && !nucleus[i] && class[i] == C_BG && dist[i] < 0.8 * t_fg)
            .collect();
        let vac_cand = open(&vac_cand, w, h, 1.0 * s);
        let (vid, vcomps) = components(&vac_cand, w, h, true);
        let vac_ok: Vec<bool> = vcomps
            .iter()
            .map(|c| {
                let bw = (c.bbox[2] - c.bbox[0] + 1) as f32;
                let bh = (c.bbox[3] - c.bbox[1] + 1) as f32;
                let fill = c.area as f32 / (bw * bh);
                c.area >= self.area(12.0)
                    && c.area <= self.area(900.0)
                    && fill > 0.45
                    && bw.max(bh) < 2.5 * bw.min(bh)
            })
            .collect();

        for i in 0..n {
            if nucleus[i] {
                labels[i] = NUCLEUS;
            } else if cell[i] {
                labels[i] = if vid[i] > 0 && vac_ok[vid[i] as usize - 1] {
                    VACUOLE
                } else {
                    CYTOPLASM
                };
            }
        }

        // 8. Red cells: red-cell-coloured pixels outside the cell, pallor filled, specks
        //    dropped; the neighbourhood of another white cell's nucleus is left as "other".
        let others = self.other_nuclei(&dark, &nucleus);
        let near_other = dilate(&others, w, h, 12.0 * s);
        let rbc: Vec<bool> = (0..n)
            .map(|i| class[i] == C_RBC && !cell[i] && !dark[i])
            .collect();
        let rbc = open(&rbc, w, h, 2.0 * s);
        let rbc = fill_holes(&rbc, w, h, self.area(3000.0));
        let rbc = remove_small(&rbc, w, h, self.area(400.0));
        for i in 0..n {
            if rbc[i] && !cell[i] && !near_other[i] {
                labels[i] = RED_CELL;
            }
        }

        // 9. Platelets: small dark-violet blobs away from the cell and from other nuclei.
        let around_cell = dilate(&cell, w, h, 3.0 * s);
        let (pid, pcomps) = components(&dark, w, h, true);
        let plt_ok: Vec<bool> = pcomps
            .iter()
            .map(|c| c.area >= self.area(25.0) && c.area <= self.area(1500.0))
            .collect();
        let plt: Vec<bool> = (0..n)
            .map(|i| pid[i] > 0 && plt_ok[pid[i] as usize - 1] && !around_cell[i] && !others[i])
            .collect();
        // The granulomere is darker than the rim: grow a little into foreground.
        let plt_grown = dilate(&plt, w, h, 1.5 * s);
        for i in 0..n {
            if plt_grown[i] && (fg[i] || plt[i]) && !cell[i] {
                labels[i] = PLATELET;
            }
        }
        labels
    }

    /// The nucleus of the central cell: [`central_nucleus`], with pale chromatin gaps filled.
    fn central_nucleus(&self, dark: &[bool]) -> Option<Vec<bool>> {
        let nuc = central_nucleus(dark, self.w, self.h, LABELLER_LOBE_REACH)?;
        // Pale chromatin gaps inside the nucleus are still nucleus.
        Some(fill_holes(&nuc, self.w, self.h, self.area(400.0)))
    }

    /// Large dark components other than the central nucleus: nuclei of other white cells.
    fn other_nuclei(&self, dark: &[bool], nucleus: &[bool]) -> Vec<bool> {
        let (ids, comps) = components(dark, self.w, self.h, true);
        let big = self.area(OTHER_NUCLEUS_AREA);
        ids.iter()
            .zip(nucleus)
            .map(|(&id, &n)| !n && id > 0 && comps[id as usize - 1].area > big)
            .collect()
    }

    /// Per-pixel colour class from Gaussian models seeded by geometry and refined twice.
    fn classify(&self, fg: &[bool], dark: &[bool], nucleus: &[bool]) -> Vec<usize> {
        let (w, h, s) = (self.w, self.h, self.s);
        let n = w * h;
        let dn = edt_sq(nucleus, w, h);
        // Seeds: cytoplasm = foreground ring right around the nucleus; red cells = foreground
        // far from it; background = not foreground.
        let ring_out = (10.0 * s).powi(2);
        let far = (70.0 * s).powi(2);
        let mut class: Vec<usize> = (0..n)
            .map(|i| {
                if nucleus[i] {
                    C_NUC
                } else if !fg[i] {
                    C_BG
                } else if dark[i] {
                    // Dark but not the nucleus: platelets, other nuclei.
                    usize::MAX
                } else if dn[i] <= ring_out {
                    C_CYTO
                } else if dn[i] >= far {
                    C_RBC
                } else {
                    usize::MAX
                }
            })
            .collect();
        for iter in 0..3 {
            let fit = |c: usize| Gauss::fit(&self.feat, (0..n).filter(|&i| class[i] == c));
            let models = [fit(C_BG), fit(C_CYTO), fit(C_RBC), fit(C_NUC)];
            let mut next = vec![C_BG; n];
            for i in 0..n {
                let mut best = (f32::INFINITY, C_BG);
                // Spatial prior (in nats): red cells rarely lie right against the nucleus,
                // cytoplasm rarely lies far from it.
                let d = dn[i].sqrt() / s;
                let prior = [
                    0.0,
                    ((d - 50.0) / 15.0).max(0.0),
                    3.0 * (1.0 - d / 25.0).max(0.0),
                    0.0,
                ];
                for (c, m) in models.iter().enumerate() {
                    if let Some(m) = m {
                        let cost = m.cost(&self.feat[i]) + prior[c];
                        if cost < best.0 {
                            best = (cost, c);
                        }
                    }
                }
                next[i] = best.1;
            }
            if iter == 2 {
                return next;
            }
            // Refine: cytoplasm statistics from the current cell, red cells from outside it.
            let cell = self.cell_region(&next, nucleus);
            for i in 0..n {
                class[i] = match next[i] {
                    C_CYTO if !cell[i] => usize::MAX,
                    C_RBC if cell[i] => usize::MAX,
                    C_NUC if !nucleus[i] => usize::MAX,
                    c => c,
                };
                if nucleus[i] {
                    class[i] = C_NUC;
                }
            }
        }
        class
    }

    /// The white cell: cytoplasm-class pixels connected to the nucleus, cleaned and made
    /// compact.
    fn cell_region(&self, class: &[usize], nucleus: &[bool]) -> Vec<bool> {
        let (w, h, s) = (self.w, self.h, self.s);
        let n = w * h;
        let cand: Vec<bool> = (0..n).map(|i| nucleus[i] || class[i] == C_CYTO).collect();
        // Opening cuts thin bridges to touching red cells that share the cytoplasm colour.
        let cand = open(&cand, w, h, 3.0 * s);
        let (ids, comps) = components(&cand, w, h, true);
        let mut touch = vec![false; comps.len()];
        for i in 0..n {
            if nucleus[i] && ids[i] > 0 {
                touch[ids[i] as usize - 1] = true;
            }
        }
        let cell: Vec<bool> = (0..n)
            .map(|i| nucleus[i] || (ids[i] > 0 && touch[ids[i] as usize - 1]))
            .collect();
        let cell = close(&cell, w, h, 4.0 * s);
        let cell = fill_holes(&cell, w, h, n);
        star_regularise(&cell, nucleus, w, h)
    }
}

/// The nucleus of the central cell among the components of `dark`: of the large ones, the one
/// nearest the image centre, plus the lobes (components of some size) close to it, added
/// transitively, with their centroid not too far from the main one so that a neighbouring
/// cell's nucleus is not swallowed. Shared by the labeller and [`tidy_cell`](super::tidy_cell),
/// so a network's map gets the same notion of "the central cell" as the labels it learned from.
pub(super) fn central_nucleus(
    dark: &[bool],
    w: usize,
    h: usize,
    reach360: f32,
) -> Option<Vec<bool>> {
    let s = w.min(h) as f32 / 360.0;
    let area = |a360: f32| (a360 * s * s).round().max(1.0) as usize;
    let (ids, comps) = components(dark, w, h, true);
    if comps.is_empty() {
        return None;
    }
    // Closest pixel of each component to the image centre.
    let (ccx, ccy) = (w as f32 / 2.0, h as f32 / 2.0);
    let mut near = vec![f32::INFINITY; comps.len()];
    for (i, &id) in ids.iter().enumerate() {
        if id > 0 {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let d = ((x - ccx).powi(2) + (y - ccy).powi(2)).sqrt();
            let k = id as usize - 1;
            near[k] = near[k].min(d);
        }
    }
    let big = area(600.0);
    let largest = comps.iter().map(|c| c.area).max().unwrap_or(0);
    // Prefer big components; a small one only when nothing big exists.
    let min_area = if largest >= big { big } else { largest };
    let main = (0..comps.len())
        .filter(|&k| comps[k].area >= min_area)
        .min_by(|&a, &b| {
            near[a]
                .partial_cmp(&near[b])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(comps[b].area.cmp(&comps[a].area))
        })?;
    let mut keep = vec![false; comps.len()];
    keep[main] = true;
    // Add lobes transitively: components within `reach` of the kept set, with their
    // centroid not too far from the main one (so a neighbouring cell is not swallowed).
    let reach = reach360 * s;
    let spread = 110.0 * s;
    let lobe_min = area(150.0);
    loop {
        let kept: Vec<bool> = ids
            .iter()
            .map(|&id| id > 0 && keep[id as usize - 1])
            .collect();
        let d = edt_sq(&kept, w, h);
        let mut close_to = vec![f32::INFINITY; comps.len()];
        for (i, &id) in ids.iter().enumerate() {
            if id > 0 {
                let k = id as usize - 1;
                close_to[k] = close_to[k].min(d[i]);
            }
        }
        let mut added = false;
        for k in 0..comps.len() {
            let c = &comps[k];
            let m = &comps[main];
            if !keep[k]
                && c.area >= lobe_min
                && close_to[k] <= reach * reach
                && ((c.cx - m.cx).powi(2) + (c.cy - m.cy).powi(2)).sqrt() <= spread
            {
                keep[k] = true;
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    Some(
        ids.iter()
            .map(|&id| id > 0 && keep[id as usize - 1])
            .collect(),
    )
}

/// Make the cell star-shaped around the nucleus centroid with a smooth boundary: cast rays,
/// take the first exit of the mask on each ray, median-filter the radii over angle (drops
/// spikes into touching red cells and notches), and keep mask ∩ star ∪ nucleus.
pub(super) fn star_regularise(cell: &[bool], nucleus: &[bool], w: usize, h: usize) -> Vec<bool> {
    let (mut sx, mut sy, mut cnt) = (0f64, 0f64, 0f64);
    for (i, &m) in nucleus.iter().enumerate() {
        if m {
            sx += (i % w) as f64;
            sy += (i / w) as f64;
            cnt += 1.0;
        }
    }
    if cnt == 0.0 {
        return cell.to_vec();
    }
    let (cx, cy) = ((sx / cnt) as f32, (sy / cnt) as f32);
    const RAYS: usize = 180;
    let max_r = (w.max(h) as f32) * 1.5;
    let mut radius = [0f32; RAYS];
    for (k, r_out) in radius.iter_mut().enumerate() {
        let a = k as f32 * std::f32::consts::TAU / RAYS as f32;
        let (dx, dy) = (a.cos(), a.sin());
        let mut r = 0f32;
        let mut last_in = 0f32;
        let mut seen_in = false;
        while r < max_r {
            let (x, y) = ((cx + dx * r).round(), (cy + dy * r).round());
            if x < 0.0 || y < 0.0 || x >= w as f32 || y >= h as f32 {
                break;
            }
            let i = y as usize * w + x as usize;
            if cell[i] {
                last_in = r;
                seen_in = true;
            } else if seen_in {
                break;
            }
            r += 0.5;
        }
        *r_out = last_in;
    }
    // Circular median over ±7 rays (±14°).
    const HALF: usize = 7;
    let mut smooth = [0f32; RAYS];
    let mut win = Vec::with_capacity(2 * HALF + 1);
    for k in 0..RAYS {
        win.clear();
        for j in 0..=2 * HALF {
            win.push(radius[(k + RAYS + j - HALF) % RAYS]);
        }
        win.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        // Allow a little more than the median so real bumps of the outline survive.
        smooth[k] = win[HALF].max(radius[k].min(win[HALF] * 1.08 + 2.0));
    }
    (0..w * h)
        .map(|i| {
            if nucleus[i] {
                return true;
            }
            if !cell[i] {
                return false;
            }
            let (x, y) = ((i % w) as f32 - cx, (i / w) as f32 - cy);
            let a = y.atan2(x).rem_euclid(std::f32::consts::TAU);
            let k = ((a / std::f32::consts::TAU * RAYS as f32).round() as usize) % RAYS;
            (x * x + y * y).sqrt() <= smooth[k] + 1.0
        })
        .collect()
}

/// Separable box blur of radius `r` with clamped edges.
fn box_blur(src: &[[f32; 3]], w: usize, h: usize, r: usize) -> Vec<[f32; 3]> {
    let mut tmp = vec![[0f32; 3]; w * h];
    let norm = 1.0 / (2 * r + 1) as f32;
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for d in 0..=2 * r {
                let xx = (x + d).saturating_sub(r).min(w - 1);
                let p = src[y * w + xx];
                for k in 0..3 {
                    acc[k] += p[k];
                }
            }
            tmp[y * w + x] = acc.map(|v| v * norm);
        }
    }
    let mut out = vec![[0f32; 3]; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0f32; 3];
            for d in 0..=2 * r {
                let yy = (y + d).saturating_sub(r).min(h - 1);
                let p = tmp[yy * w + x];
                for k in 0..3 {
                    acc[k] += p[k];
                }
            }
            out[y * w + x] = acc.map(|v| v * norm);
        }
    }
    out
}

/// The `q` quantile (0..=1) of `values` (nearest rank).
fn quantile(values: &[f32], q: f32) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f32 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, kth, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *kth
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    const BG: [u8; 3] = [240, 228, 212];
    const PINK: [u8; 3] = [214, 148, 168];
    const LIGHT_BLUE: [u8; 3] = [180, 190, 226];
    const VIOLET: [u8; 3] = [105, 55, 150];

    /// A drawn smear: pale background, pink red cells, a light-blue cell with a violet nucleus
    /// in the centre and one platelet, with deterministic pixel noise. Returns the image and
    /// the drawn truth (label ids).
    fn drawn_smear(side: u32) -> (RgbImage, Vec<u8>) {
        let k = side as f32 / 360.0;
        let c = side as f32 / 2.0;
        let rbcs = [
            (50.0, 50.0),
            (300.0, 60.0),
            (60.0, 300.0),
            (310.0, 290.0),
            (180.0, 320.0),
            (40.0, 180.0),
        ];
        let mut img = RgbImage::new(side, side);
        let mut truth = vec![OTHER; (side * side) as usize];
        for y in 0..side {
            for x in 0..side {
                let (fx, fy) = (x as f32, y as f32);
                let inside = |cx: f32, cy: f32, r: f32| {
                    (fx - cx * k).powi(2) + (fy - cy * k).powi(2) <= (r * k).powi(2)
                };
                let (mut col, mut lab) = (BG, OTHER);
                if rbcs.iter().any(|&(cx, cy)| inside(cx, cy, 38.0)) {
                    (col, lab) = (PINK, RED_CELL);
                }
                if inside(290.0, 180.0, 6.0) {
                    (col, lab) = (VIOLET, PLATELET);
                }
                if (fx - c).powi(2) + (fy - c).powi(2) <= (62.0 * k).powi(2) {
                    (col, lab) = (LIGHT_BLUE, CYTOPLASM);
                }
                // An off-centre nucleus, as in most real cells.
                if inside(170.0, 175.0, 36.0) {
                    (col, lab) = (VIOLET, NUCLEUS);
                }
                let noise = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 11) as i32 - 5;
                let px = col.map(|v| (v as i32 + noise).clamp(0, 255) as u8);
                img.put_pixel(x, y, Rgb(px));
                truth[(y * side + x) as usize] = lab;
            }
        }
        (img, truth)
    }

    fn iou(pred: &GrayImage, truth: &[u8], set: &[u8]) -> f64 {
        let (mut inter, mut union) = (0u64, 0u64);
        for (&p, &t) in pred.as_raw().iter().zip(truth) {
            let (a, b) = (set.contains(&p), set.contains(&t));
            inter += (a && b) as u64;
            union += (a || b) as u64;
        }
        inter as f64 / union.max(1) as f64
    }

    #[test]
    fn drawn_cell_is_labelled_at_both_scales() {
        for side in [360, 300] {
            let (img, truth) = drawn_smear(side);
            let labels = segment(&img);
            assert_eq!(labels.dimensions(), (side, side));
            let nuc = iou(&labels, &truth, &[NUCLEUS]);
            let cell = iou(&labels, &truth, &[NUCLEUS, CYTOPLASM, VACUOLE]);
            let rbc = iou(&labels, &truth, &[RED_CELL]);
            assert!(nuc > 0.9, "side {side}: nucleus IoU {nuc:.3}");
            assert!(cell > 0.9, "side {side}: cell IoU {cell:.3}");
            assert!(rbc > 0.85, "side {side}: red-cell IoU {rbc:.3}");
            assert!(
                labels.as_raw().contains(&PLATELET),
                "side {side}: platelet missed"
            );
            // Deterministic.
            assert_eq!(segment(&img), labels);
        }
    }

    #[test]
    fn degenerate_images_do_not_panic() {
        assert!(segment(&RgbImage::new(0, 0)).is_empty());
        assert!(segment(&RgbImage::new(5, 3))
            .pixels()
            .all(|p| p.0[0] == OTHER));
        // Flat images: no nucleus to find.
        let flat = RgbImage::from_pixel(64, 48, Rgb(BG));
        assert!(segment(&flat).pixels().all(|p| p.0[0] == OTHER));
        let black = RgbImage::new(40, 90);
        assert_eq!(segment(&black).dimensions(), (40, 90));
    }
}
