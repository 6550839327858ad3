//! Cell type from what the segmentation measures: the nucleus's shape and lobes, the
//! nucleus-to-cell ratio, the cell's size in red-cell units, and the optical densities of
//! nucleus and cytoplasm relative to the slide's own background. A haematologist's first
//! reading of a cell, and a second opinion beside the attribute network's: every feature is
//! free of the magnification and of the lamp, so it may hold on microscopes whose look the
//! network never saw. A multinomial logistic regression on standardised features, fitted by
//! `wbc measured-type` on PBC train and chosen on val (models/measured_type.json).

use crate::logistic;
use crate::mask::components;
use crate::metrics::argmax;
use crate::morphometry::Morphometry;
use crate::segmentation::{CYTOPLASM, NUCLEUS, OTHER, VACUOLE};
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

/// Names of the features, in order.
pub const FEATURE_NAMES: [&str; NUM_FEATURES] = [
    "nucleus/cell area",
    "nucleus lobes (to 4)",
    "nucleus solidity",
    "nucleus elongation",
    "nucleus outline (perimeter²/4πA)",
    "cell solidity",
    "cell elongation",
    "cell diameter / red-cell diameter (log)",
    "red cells seen",
    "nucleus density (sum of 3 channels)",
    "cytoplasm density / nucleus density",
    "nucleus red share of density",
    "nucleus green share",
    "cytoplasm red share",
    "cytoplasm green share",
    "cytoplasm unevenness (sd/mean)",
    "nucleus unevenness (sd/mean)",
    "cytoplasm dark share (as dense as the nucleus)",
];

pub const NUM_FEATURES: usize = 18;

/// The fitted model, as stored in `models/measured_type.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredTypeModel {
    pub features: Vec<String>,
    pub classes: Vec<String>,
    /// Train mean and standard deviation of each feature (features are standardised).
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// `weights[class][feature]`, on standardised features.
    pub weights: Vec<Vec<f32>>,
    pub biases: Vec<f32>,
    pub l1: f32,
}

impl MeasuredTypeModel {
    /// Fit on raw feature vectors (standardised here) and class indices.
    pub fn fit(
        x: &[[f32; NUM_FEATURES]],
        y: &[usize],
        classes: &[&str],
        l1: f32,
        iterations: usize,
    ) -> Self {
        let n = x.len().max(1) as f32;
        let mean: Vec<f32> = (0..NUM_FEATURES)
            .map(|j| x.iter().map(|r| r[j]).sum::<f32>() / n)
            .collect();
        let std: Vec<f32> = (0..NUM_FEATURES)
            .map(|j| {
                let v = x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f32>() / n;
                v.sqrt().max(1e-6)
            })
            .collect();
        let mut model = MeasuredTypeModel {
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
            mean,
            std,
            weights: vec![],
            biases: vec![],
            l1,
        };
        let z: Vec<Vec<f32>> = x.iter().map(|r| model.standardise(r)).collect();
        let (w, b) = logistic::fit(&z, y, classes.len(), l1, iterations, None);
        model.weights = w;
        model.biases = b;
        model
    }

    /// Standardised features, clamped to ±6 sd so one wild measurement cannot decide alone.
    fn standardise(&self, x: &[f32; NUM_FEATURES]) -> Vec<f32> {
        x.iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(v, (m, s))| ((v - m) / s).clamp(-6.0, 6.0))
            .collect()
    }

    /// Class probabilities.
    pub fn probabilities(&self, x: &[f32; NUM_FEATURES]) -> Vec<f32> {
        let mut z = logistic::logits(&self.weights, &self.biases, &self.standardise(x));
        logistic::softmax(&mut z);
        z
    }
}

/// How the measured type joins the attribute network's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Joining {
    /// The network's answer alone.
    Network,
    /// The measured type alone.
    Measured,
    /// The network's, but the measured type for cells the familiarity check flags.
    MeasuredWhenUnfamiliar,
    /// Both probabilities multiplied (renormalised): each must agree to be sure.
    Product,
    /// The network's, but the product for flagged cells.
    ProductWhenUnfamiliar,
}

impl Joining {
    pub const ALL: [Joining; 5] = [
        Joining::Network,
        Joining::Measured,
        Joining::MeasuredWhenUnfamiliar,
        Joining::Product,
        Joining::ProductWhenUnfamiliar,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Joining::Network => "the attribute network alone",
            Joining::Measured => "the measured type alone",
            Joining::MeasuredWhenUnfamiliar => {
                "the network; the measured type for unfamiliar cells"
            }
            Joining::Product => "the product of both",
            Joining::ProductWhenUnfamiliar => {
                "the network; the product of both for unfamiliar cells"
            }
        }
    }

    /// Whether this joining takes the measured type into a cell's answer.
    pub fn uses_measured(self, unfamiliar: bool) -> bool {
        match self {
            Joining::Network => false,
            Joining::Measured | Joining::Product => true,
            Joining::MeasuredWhenUnfamiliar | Joining::ProductWhenUnfamiliar => unfamiliar,
        }
    }

    /// The joined cell-type probabilities from the network's and the measured type's
    /// (`None`: no cell measured, the network's stand).
    pub fn join(self, network: &[f32], measured: Option<&[f32]>, unfamiliar: bool) -> Vec<f32> {
        let Some(measured) = measured.filter(|_| self.uses_measured(unfamiliar)) else {
            return network.to_vec();
        };
        match self {
            Joining::Measured | Joining::MeasuredWhenUnfamiliar => measured.to_vec(),
            _ => {
                let p: Vec<f32> = network.iter().zip(measured).map(|(a, b)| a * b).collect();
                let s: f32 = p.iter().sum();
                if s > 0.0 {
                    p.iter().map(|v| v / s).collect()
                } else {
                    network.to_vec()
                }
            }
        }
    }
}

/// `models/measured_type.json`: the model, how it joins the network, and how both were chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MeasuredTypeCard {
    pub model: MeasuredTypeModel,
    pub joining: Joining,
    /// A cell gets a warning when the measured type names another type than the network
    /// with at least this probability (`None`: never). Chosen on val so that few PBC cells
    /// are warned, since two opinions that differ are a sign the answer may be wrong even on
    /// a cell that looks familiar.
    #[serde(default)]
    pub warn_when_sure_of_another: Option<f32>,
    #[serde(default)]
    pub record: serde_json::Value,
}

/// The two opinions on one cell's type, and how the cell's answer was made from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredTypeAnswer {
    /// The attribute network's own cell-type probabilities (from the image).
    pub network: Vec<f32>,
    /// The measured type's probabilities (from the segmentation's measurements).
    pub measured: Vec<f32>,
    /// How they became the cell's answer (`CellPrediction::cell_type`).
    pub joining: Joining,
    /// Whether the joining used the measured type for this cell (for the "…for unfamiliar
    /// cells" joinings, only flagged cells).
    pub used: bool,
}

impl MeasuredTypeAnswer {
    /// The measured type names another type than the network, with at least probability `at`.
    pub fn differs(&self, at: f32) -> bool {
        let m = argmax(&self.measured);
        m != argmax(&self.network) && self.measured[m] >= at
    }

    /// How the answer was joined, in a reader's words.
    pub fn joining_text(&self) -> &'static str {
        match self.joining {
            Joining::Product | Joining::ProductWhenUnfamiliar => {
                "both probabilities multiplied, so each must agree to be sure"
            }
            Joining::Measured | Joining::MeasuredWhenUnfamiliar => {
                "the measured type, as the cell looks unlike the training images"
            }
            Joining::Network => "the network alone",
        }
    }
}

impl MeasuredTypeCard {
    /// Both opinions and the joined probabilities; `None` when the cell could not be measured.
    pub fn answer(
        &self,
        network: &[f32],
        features: Option<&[f32; NUM_FEATURES]>,
        unfamiliar: bool,
    ) -> Option<(MeasuredTypeAnswer, Vec<f32>)> {
        let measured = self.model.probabilities(features?);
        let joined = self.joining.join(network, Some(&measured), unfamiliar);
        let answer = MeasuredTypeAnswer {
            network: network.to_vec(),
            measured,
            joining: self.joining,
            used: self.joining.uses_measured(unfamiliar),
        };
        Some((answer, joined))
    }

    /// Whether the two opinions differ enough for a warning (the card's threshold).
    pub fn warns(&self, answer: &MeasuredTypeAnswer) -> bool {
        self.warn_when_sure_of_another
            .is_some_and(|at| answer.differs(at))
    }
}

/// Second moments of a region: `sqrt(λ_min / λ_max)` (1 for a disc, near 0 for a rod).
fn roundness(points: &[(f32, f32)]) -> f32 {
    let n = points.len().max(1) as f32;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &(x, y) in points {
        sxx += (x - mx) * (x - mx) / n;
        syy += (y - my) * (y - my) / n;
        sxy += (x - mx) * (y - my) / n;
    }
    let tr = sxx + syy;
    let det = sxx * syy - sxy * sxy;
    let disc = (tr * tr / 4.0 - det).max(0.0).sqrt();
    let (hi, lo) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(0.0));
    if hi <= 0.0 {
        1.0
    } else {
        (lo / hi).sqrt()
    }
}

/// Area of the convex hull of a region's pixels (each pixel a unit square).
fn hull_area(points: &[(f32, f32)]) -> f32 {
    // The hull of the pixels' corners: each pixel centre spread to its 4 corners, which only
    // the extreme pixels of each row need.
    let mut rows: std::collections::BTreeMap<i32, (f32, f32)> = Default::default();
    for &(x, y) in points {
        let e = rows.entry(y as i32).or_insert((x, x));
        e.0 = e.0.min(x);
        e.1 = e.1.max(x);
    }
    let mut corners: Vec<(f32, f32)> = Vec::with_capacity(rows.len() * 4);
    for (&y, &(lo, hi)) in &rows {
        let y = y as f32;
        corners.extend([
            (lo - 0.5, y - 0.5),
            (lo - 0.5, y + 0.5),
            (hi + 0.5, y - 0.5),
            (hi + 0.5, y + 0.5),
        ]);
    }
    corners.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    corners.dedup();
    if corners.len() < 3 {
        return points.len() as f32;
    }
    // Andrew's monotone chain.
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f32, f32)> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let it: Box<dyn Iterator<Item = &(f32, f32)>> = if pass == 0 {
            Box::new(corners.iter())
        } else {
            Box::new(corners.iter().rev())
        };
        for &p in it {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    let area: f32 = (0..hull.len())
        .map(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    (area / 2.0).abs()
}

/// Pixels of the largest 8-connected region of `mask`, as (x, y).
fn largest_region(mask: &[bool], w: usize, h: usize) -> Vec<(f32, f32)> {
    let (ids, parts) = components(mask, w, h, true);
    let Some(best) = parts
        .iter()
        .enumerate()
        .max_by_key(|(_, c)| c.area)
        .map(|(i, _)| i)
    else {
        return Vec::new();
    };
    ids.iter()
        .enumerate()
        .filter(|(_, &id)| id == best as u32 + 1)
        .map(|(i, _)| ((i % w) as f32, (i / w) as f32))
        .collect()
}

/// Pixels of `mask` with a 4-neighbour outside it (the outline).
fn outline_length(mask: &[bool], w: usize, h: usize) -> usize {
    (0..w * h)
        .filter(|&i| {
            mask[i] && {
                let (x, y) = (i % w, i / w);
                x == 0
                    || y == 0
                    || x + 1 == w
                    || y + 1 == h
                    || !mask[i - 1]
                    || !mask[i + 1]
                    || !mask[i - w]
                    || !mask[i + w]
            }
        })
        .count()
}

/// The features of one cell: `square` is the image the networks saw (any size; it is sampled
/// at the label map's pixels), `labels` its label map and `m` that map's morphometry. `None`
/// when the map holds no nucleus or no cytoplasm to measure.
pub fn features(
    square: &RgbImage,
    labels: &GrayImage,
    m: &Morphometry,
) -> Option<[f32; NUM_FEATURES]> {
    let (w, h) = (labels.width() as usize, labels.height() as usize);
    if m.nucleus_area == 0 || m.cytoplasm_area == 0 || w == 0 || h == 0 {
        return None;
    }
    let px = labels.as_raw();
    let (sw, sh) = square.dimensions();
    let colour = |i: usize| {
        let (x, y) = (i % w, i / w);
        let sx = ((x as f32 + 0.5) * sw as f32 / w as f32) as u32;
        let sy = ((y as f32 + 0.5) * sh as f32 / h as f32) as u32;
        square.get_pixel(sx.min(sw - 1), sy.min(sh - 1)).0
    };
    // The slide's background: the median of the pixels labelled neither cell nor red cell.
    let mut bg = [0f32; 3];
    for (c, b) in bg.iter_mut().enumerate() {
        let mut v: Vec<u8> = (0..w * h)
            .filter(|&i| px[i] == OTHER)
            .map(|i| colour(i)[c])
            .collect();
        if v.is_empty() {
            *b = 255.0;
            continue;
        }
        let mid = v.len() / 2;
        *b = *v.select_nth_unstable(mid).1 as f32;
    }
    let density = |i: usize| -> [f32; 3] {
        let p = colour(i);
        [0, 1, 2].map(|c| (bg[c].max(1.0) / (p[c] as f32).max(1.0)).ln().max(0.0))
    };
    // Mean density per channel, and the spread of the summed density relative to its mean.
    let stats = |label: &dyn Fn(u8) -> bool| {
        let d: Vec<[f32; 3]> = (0..w * h).filter(|&i| label(px[i])).map(density).collect();
        let n = d.len().max(1) as f32;
        let mean = [0, 1, 2].map(|c| d.iter().map(|v| v[c]).sum::<f32>() / n);
        let total: Vec<f32> = d.iter().map(|v| v.iter().sum()).collect();
        let mt = total.iter().sum::<f32>() / n;
        let sd = (total.iter().map(|t| (t - mt).powi(2)).sum::<f32>() / n).sqrt();
        (mean, sd / mt.max(1e-3), total)
    };
    let (nuc, nuc_uneven, nuc_total) = stats(&|l| l == NUCLEUS);
    let (cyt, cyt_uneven, cyt_total) = stats(&|l| l == CYTOPLASM);
    let sum = |v: [f32; 3]| v.iter().sum::<f32>().max(1e-3);
    let mut sorted = nuc_total.clone();
    sorted.sort_by(f32::total_cmp);
    let nuc_median = sorted[sorted.len() / 2];
    let dark = cyt_total.iter().filter(|&&t| t >= nuc_median).count() as f32
        / cyt_total.len().max(1) as f32;

    let nucleus_mask: Vec<bool> = px.iter().map(|&l| l == NUCLEUS).collect();
    let cell_mask: Vec<bool> = px
        .iter()
        .map(|&l| matches!(l, NUCLEUS | CYTOPLASM | VACUOLE))
        .collect();
    let nucleus_points: Vec<(f32, f32)> = (0..w * h)
        .filter(|&i| nucleus_mask[i])
        .map(|i| ((i % w) as f32, (i / w) as f32))
        .collect();
    let cell_points = largest_region(&cell_mask, w, h);
    let nucleus_area = nucleus_points.len() as f32;
    let outline = outline_length(&nucleus_mask, w, h) as f32;
    Some([
        m.nc_ratio.unwrap_or(0.0),
        m.nucleus_lobes.min(4) as f32,
        nucleus_area / hull_area(&nucleus_points).max(1.0),
        roundness(&nucleus_points),
        outline * outline / (4.0 * std::f32::consts::PI * nucleus_area),
        cell_points.len() as f32 / hull_area(&cell_points).max(1.0),
        roundness(&cell_points),
        // Without red cells, PBC's typical ratio (a 12 µm cell, 7.5 µm red cells).
        m.cell_to_red_cell.unwrap_or(1.6).ln(),
        m.cell_to_red_cell.is_some() as u8 as f32,
        sum(nuc),
        sum(cyt) / sum(nuc),
        nuc[0] / sum(nuc),
        nuc[1] / sum(nuc),
        cyt[0] / sum(cyt),
        cyt[1] / sum(cyt),
        cyt_uneven,
        nuc_uneven,
        dark,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::morphometry::measure;
    use image::{Luma, Rgb};

    #[test]
    fn differing_opinions_warn_only_when_the_measured_type_is_sure() {
        let answer = |network: [f32; 5], measured: [f32; 5]| MeasuredTypeAnswer {
            network: network.to_vec(),
            measured: measured.to_vec(),
            joining: Joining::Network,
            used: false,
        };
        let same = answer([0.0, 0.9, 0.1, 0.0, 0.0], [0.0, 0.6, 0.4, 0.0, 0.0]);
        let sure_other = answer([0.0, 0.9, 0.1, 0.0, 0.0], [0.0, 0.1, 0.0, 0.8, 0.1]);
        let unsure_other = answer([0.0, 0.9, 0.1, 0.0, 0.0], [0.0, 0.3, 0.0, 0.4, 0.3]);
        assert!(!same.differs(0.0));
        assert!(sure_other.differs(0.5) && sure_other.differs(0.8));
        assert!(!sure_other.differs(0.9));
        assert!(!unsure_other.differs(0.5));
    }

    /// A cell drawn as a disc of cytoplasm around a nucleus of one or two lobes.
    fn cell(lobes: usize, side: u32) -> (RgbImage, GrayImage) {
        let s = side as f32 / 360.0;
        let c = side as f32 / 2.0;
        let mut labels = GrayImage::new(side, side);
        let mut img = RgbImage::from_pixel(side, side, Rgb([235, 225, 215]));
        for (x, y, p) in labels.enumerate_pixels_mut() {
            let (dx, dy) = (x as f32 - c, y as f32 - c);
            let r = (dx * dx + dy * dy).sqrt();
            let in_lobe = |ox: f32| ((dx - ox * s).powi(2) + dy * dy).sqrt() < 28.0 * s;
            let nucleus = match lobes {
                1 => r < 40.0 * s,
                _ => in_lobe(-35.0) || in_lobe(35.0),
            };
            if nucleus {
                *p = Luma([NUCLEUS]);
                img.put_pixel(x, y, Rgb([90, 50, 140]));
            } else if r < 80.0 * s {
                *p = Luma([CYTOPLASM]);
                img.put_pixel(x, y, Rgb([200, 170, 200]));
            }
        }
        (img, labels)
    }

    #[test]
    fn features_are_free_of_the_magnification_and_the_lamp() {
        let (img, labels) = cell(1, 360);
        let a = features(&img, &labels, &measure(&labels)).unwrap();
        // Half the magnification.
        let (small, small_labels) = cell(1, 180);
        let b = features(&small, &small_labels, &measure(&small_labels)).unwrap();
        // A dimmer, bluer lamp: every pixel scaled per channel, the background with it.
        let mut tinted = img.clone();
        for p in tinted.pixels_mut() {
            p.0 = [(p[0] as f32 * 0.85) as u8, (p[1] as f32 * 0.9) as u8, p[2]];
        }
        let c = features(&tinted, &labels, &measure(&labels)).unwrap();
        for j in 0..NUM_FEATURES {
            assert!(
                (a[j] - b[j]).abs() <= 0.08 * a[j].abs().max(0.2),
                "{}: {} vs {} at half size",
                FEATURE_NAMES[j],
                a[j],
                b[j]
            );
            assert!(
                (a[j] - c[j]).abs() <= 0.05 * a[j].abs().max(0.2),
                "{}: {} vs {} under another lamp",
                FEATURE_NAMES[j],
                a[j],
                c[j]
            );
        }
    }

    #[test]
    fn a_round_nucleus_and_a_bilobed_one_differ_where_expected() {
        let (img, labels) = cell(1, 360);
        let round = features(&img, &labels, &measure(&labels)).unwrap();
        let (img, labels) = cell(2, 360);
        let lobed = features(&img, &labels, &measure(&labels)).unwrap();
        assert_eq!(round[1], 1.0);
        assert_eq!(lobed[1], 2.0);
        assert!(round[2] > 0.95, "a disc is convex: solidity {}", round[2]);
        assert!(
            lobed[2] < 0.9,
            "two lobes leave a waist: solidity {}",
            lobed[2]
        );
        assert!(
            round[3] > 0.95 && lobed[3] < 0.6,
            "{} {}",
            round[3],
            lobed[3]
        );
    }

    #[test]
    fn a_model_fitted_on_two_kinds_tells_them_apart() {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (lobes, class) in [(1, 0), (2, 1)] {
            for side in [300, 330, 360, 390] {
                let (img, labels) = cell(lobes, side);
                x.push(features(&img, &labels, &measure(&labels)).unwrap());
                y.push(class);
            }
        }
        let model = MeasuredTypeModel::fit(&x, &y, &["round", "lobed"], 0.0, 300);
        for (xi, &yi) in x.iter().zip(&y) {
            let p = model.probabilities(xi);
            assert!(p[yi] > 0.8, "{p:?} for class {yi}");
        }
        let empty = GrayImage::new(50, 50);
        assert!(features(&RgbImage::new(50, 50), &empty, &measure(&empty)).is_none());
    }
}
