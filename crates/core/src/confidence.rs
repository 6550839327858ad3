//! How far to trust an answer: calibrated probabilities (temperature scaling) and a
//! familiarity check that says when an image is unlike the training images (Mahalanobis
//! distance of the pooled features to PBC train, how much the front end had to correct the
//! look, and how far the scale was from PBC's). All of it is fitted on PBC (train for the
//! feature distribution, val for temperatures and thresholds) by `wbc calibrate`.

use crate::front_end::{FrontEndReference, FrontEndSettings};
use serde::{Deserialize, Serialize};

/// The calibration card and the feature distribution it was fitted with.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    pub card: CalibrationCard,
    pub features: FeatureDistribution,
}

impl Calibration {
    /// From the bytes of `calibration.json` and `calibration.bin`.
    pub fn from_bytes(card: &[u8], bin: &[u8]) -> Result<Self, String> {
        let card: CalibrationCard =
            serde_json::from_slice(card).map_err(|e| format!("calibration.json: {e}"))?;
        let features = FeatureDistribution::from_bytes(bin, card.feature_dim)?;
        if card.feature_group == 0 {
            return Err("calibration.json: feature_group must be at least 1".into());
        }
        Ok(Self { card, features })
    }
}

/// The thresholds and temperatures of `models/calibration.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCard {
    /// PBC's look and scale, which the front end corrects towards.
    pub reference: FrontEndReference,
    /// The front-end steps the pipeline runs unless told otherwise (chosen on PBC val and
    /// its synthetic shifts).
    pub default_settings: FrontEndSettings,
    /// One temperature per softmax group: the 11 attributes then the cell type. Logits are
    /// divided by it before the softmax (1 = unchanged; above 1 = less sure).
    pub temperatures: Vec<f32>,
    /// Mahalanobis distance of the pooled features above which a cell is unfamiliar.
    pub feature_threshold: f32,
    /// Front-end look correction ([`crate::front_end::Restain::strength`]) above which a
    /// cell is unfamiliar.
    pub look_threshold: f32,
    /// |ln scale factor| above which a cell is unfamiliar.
    pub scale_threshold: f32,
    /// Length of the feature vector the distribution was fitted on.
    pub feature_dim: usize,
    /// The pooled features are averaged in consecutive groups of this many before the
    /// distance ([`grouped`]): 1,280 encoder features become 256, so the shipped precision
    /// matrix stays 256² (0.26 MB, not 6.6 MB). 1 on cards from before.
    #[serde(default = "one")]
    pub feature_group: usize,
    /// How likely the cell type is wrong, from the answer's own certainty and how unlike the
    /// training images the cell is ([`DoubtModel`]); `None` on cards from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doubt: Option<DoubtModel>,
    /// How the numbers were obtained, and what they gave on val and test.
    #[serde(default)]
    pub record: serde_json::Value,
}

fn one() -> usize {
    1
}

/// `features` averaged in consecutive groups of `group` (unchanged when `group` is 1).
pub fn grouped(features: &[f32], group: usize) -> Vec<f32> {
    if group <= 1 {
        return features.to_vec();
    }
    features
        .chunks(group)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect()
}

/// What the doubt model reads of one cell, in this order: the image network's calibrated
/// cell-type probabilities give 1 − top probability and 1 − (top − second); then the feature
/// distance over its threshold (log), the front end's look correction and the scale offset.
pub const DOUBT_INPUTS: [&str; 5] = [
    "1 - top type probability",
    "1 - margin to the second type",
    "ln(1 + feature distance)",
    "look correction strength",
    "|ln scale factor|",
];

/// The doubt model's inputs for one cell (see [`DOUBT_INPUTS`]).
pub fn doubt_inputs(
    type_probs: &[f32],
    feature_distance: f32,
    look_strength: f32,
    scale_offset: f32,
) -> [f32; 5] {
    let mut sorted = type_probs.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let top = sorted.first().copied().unwrap_or(0.0);
    let second = sorted.get(1).copied().unwrap_or(0.0);
    let distance = if feature_distance.is_finite() {
        feature_distance.max(0.0).ln_1p()
    } else {
        10.0
    };
    [
        1.0 - top,
        1.0 - (top - second),
        distance,
        look_strength.min(5.0),
        scale_offset.min(5.0),
    ]
}

/// A logistic model of "the cell type is wrong", fitted by `wbc calibrate` on cells whose
/// truth is known and whose look varies (PBC val, shifted copies of it, Chula's held-back
/// series): the warning flags a cell when its score passes `threshold`, so it speaks when an
/// answer is likely wrong, not whenever a cell comes from another microscope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoubtModel {
    /// Inputs are standardised as (x − mean) / scale before the weights.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Score (0–1) above which a cell carries the warning.
    pub threshold: f32,
}

impl DoubtModel {
    /// The probability (0–1) that the answer is wrong, as the model estimates it.
    pub fn score(&self, inputs: &[f32]) -> f32 {
        let z: f32 = inputs
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| w * (x - m) / s.max(1e-6))
            .sum::<f32>()
            + self.bias;
        1.0 / (1.0 + (-z).exp())
    }

    /// Fit by gradient descent on the log loss (L2 penalty `l2`), each row weighted.
    pub fn fit(rows: &[[f32; 5]], wrong: &[bool], weight: &[f32], l2: f32) -> Self {
        Self::fit_using(rows, wrong, weight, l2, [true; 5])
    }

    /// [`DoubtModel::fit`] on the inputs `used` marks only: the others keep a weight of
    /// exactly 0, so the model ignores them wherever it runs (the card's format stays).
    pub fn fit_using(
        rows: &[[f32; 5]],
        wrong: &[bool],
        weight: &[f32],
        l2: f32,
        used: [bool; 5],
    ) -> Self {
        let d = DOUBT_INPUTS.len();
        let total: f32 = weight.iter().sum::<f32>().max(1e-6);
        let mut mean = vec![0f32; d];
        for (r, w) in rows.iter().zip(weight) {
            for k in 0..d {
                mean[k] += w * r[k] / total;
            }
        }
        let mut scale = vec![0f32; d];
        for (r, w) in rows.iter().zip(weight) {
            for k in 0..d {
                scale[k] += w * (r[k] - mean[k]).powi(2) / total;
            }
        }
        let scale: Vec<f32> = scale.iter().map(|v| v.sqrt().max(1e-3)).collect();
        let z: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| {
                (0..d)
                    .map(|k| {
                        if used[k] {
                            (r[k] - mean[k]) / scale[k]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect();
        let (mut weights, mut bias) = (vec![0f32; d], 0f32);
        for _ in 0..3000 {
            let (mut gw, mut gb) = (vec![0f32; d], 0f32);
            for ((x, &y), &w) in z.iter().zip(wrong).zip(weight) {
                let logit: f32 = x.iter().zip(&weights).map(|(a, b)| a * b).sum::<f32>() + bias;
                let err = w * (1.0 / (1.0 + (-logit).exp()) - y as u8 as f32) / total;
                for k in 0..d {
                    gw[k] += err * x[k];
                }
                gb += err;
            }
            for k in 0..d {
                weights[k] -= 0.5 * (gw[k] + l2 * weights[k]);
            }
            bias -= 0.5 * gb;
        }
        Self {
            mean,
            scale,
            weights,
            bias,
            threshold: 0.5,
        }
    }
}

/// Area under the ROC curve of `score` for telling `positive` rows from the rest (ties count
/// half): 1 separates perfectly, 0.5 is chance.
pub fn auroc(score: &[f32], positive: &[bool]) -> f64 {
    let pos: Vec<f32> = score
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f32> = score
        .iter()
        .zip(positive)
        .filter(|(_, &p)| !p)
        .map(|(s, _)| *s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0f64;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// Mean and precision (inverse covariance) of the training features: `calibration.bin`
/// holds `dim` f32 of mean, then `dim²` f32 of precision, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureDistribution {
    pub mean: Vec<f32>,
    pub precision: Vec<f32>,
}

/// Share of the average variance mixed into the covariance (Ledoit–Wolf style shrinkage), so
/// directions the training set barely spans do not make every new image look infinitely far.
pub const SHRINKAGE: f64 = 0.1;

impl FeatureDistribution {
    /// Fit mean and shrunk covariance to `rows` (each of the same length) and invert it.
    pub fn fit(rows: &[Vec<f32>]) -> Option<Self> {
        let n = rows.len();
        let d = rows.first()?.len();
        if n < 2 || d == 0 {
            return None;
        }
        let mut mean = vec![0f64; d];
        for r in rows {
            for (m, &x) in mean.iter_mut().zip(r) {
                *m += x as f64 / n as f64;
            }
        }
        let mut cov = vec![0f64; d * d];
        for r in rows {
            let c: Vec<f64> = r.iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect();
            for i in 0..d {
                let ci = c[i];
                for j in i..d {
                    cov[i * d + j] += ci * c[j];
                }
            }
        }
        let mut trace = 0.0;
        for i in 0..d {
            for j in i..d {
                let v = cov[i * d + j] / (n - 1) as f64;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
            trace += cov[i * d + i];
        }
        let floor = (trace / d as f64).max(1e-12);
        for v in cov.iter_mut() {
            *v *= 1.0 - SHRINKAGE;
        }
        for i in 0..d {
            cov[i * d + i] += SHRINKAGE * floor;
        }
        let precision = invert_spd(&cov, d)?;
        Some(Self {
            mean: mean.iter().map(|&v| v as f32).collect(),
            precision: precision.iter().map(|&v| v as f32).collect(),
        })
    }

    /// Mahalanobis distance of one feature vector: of the length fitted, or a whole multiple
    /// of it (then averaged in groups first, as [`grouped`] does).
    pub fn distance(&self, x: &[f32]) -> f32 {
        let d = self.mean.len();
        let x = match x.len() {
            n if n != d && d > 0 && n % d == 0 => grouped(x, n / d),
            _ => x.to_vec(),
        };
        let c: Vec<f32> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        let mut sum = 0f64;
        for i in 0..d {
            let row = &self.precision[i * d..(i + 1) * d];
            let dot: f32 = row.iter().zip(&c).map(|(p, v)| p * v).sum();
            sum += (c[i] * dot) as f64;
        }
        sum.max(0.0).sqrt() as f32
    }

    /// The `calibration.bin` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.mean
            .iter()
            .chain(&self.precision)
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    /// Read `calibration.bin` for features of length `dim`.
    pub fn from_bytes(bytes: &[u8], dim: usize) -> Result<Self, String> {
        let want = 4 * (dim + dim * dim);
        if bytes.len() != want {
            return Err(format!(
                "calibration.bin has {} bytes; {want} expected for {dim} features",
                bytes.len()
            ));
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Self {
            mean: values[..dim].to_vec(),
            precision: values[dim..].to_vec(),
        })
    }
}

/// Inverse of a symmetric positive-definite matrix by Cholesky decomposition.
fn invert_spd(a: &[f64], d: usize) -> Option<Vec<f64>> {
    // a = L Lᵀ
    let mut l = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= l[i * d + k] * l[j * d + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * d + i] = s.sqrt();
            } else {
                l[i * d + j] = s / l[j * d + j];
            }
        }
    }
    // L⁻¹ by forward substitution, then a⁻¹ = L⁻ᵀ L⁻¹.
    let mut inv_l = vec![0f64; d * d];
    for col in 0..d {
        for i in col..d {
            let mut s = if i == col { 1.0 } else { 0.0 };
            for k in col..i {
                s -= l[i * d + k] * inv_l[k * d + col];
            }
            inv_l[i * d + col] = s / l[i * d + i];
        }
    }
    let mut out = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (i.max(j)..d)
                .map(|k| inv_l[k * d + i] * inv_l[k * d + j])
                .sum();
            out[i * d + j] = s;
            out[j * d + i] = s;
        }
    }
    Some(out)
}

/// The temperature (from a log-spaced grid, 0.25–16) that minimises the mean negative
/// log-likelihood of `targets` under `softmax(logits / T)`. `logits` holds one row per cell.
pub fn fit_temperature(logits: &[Vec<f32>], targets: &[usize]) -> f32 {
    let nll = |t: f32| -> f64 {
        logits
            .iter()
            .zip(targets)
            .map(|(row, &y)| {
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let z: f64 = row.iter().map(|&v| (((v - m) / t) as f64).exp()).sum();
                z.ln() - ((row[y] - m) / t) as f64
            })
            .sum::<f64>()
            / logits.len().max(1) as f64
    };
    (0..=160)
        .map(|i| 0.25f32 * 64f32.powf(i as f32 / 160.0))
        .min_by(|&a, &b| nll(a).total_cmp(&nll(b)))
        .unwrap_or(1.0)
}

/// The value below which `q` (0..1) of `values` lie.
pub fn quantile(values: &[f32], q: f32) -> f32 {
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    if v.is_empty() {
        return f32::NAN;
    }
    let i = ((v.len() - 1) as f32 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Why a cell's results carry a warning: it is unlike the training images (features, look,
/// scale), or the two opinions on its type differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Caution {
    /// The networks' features lie far from every PBC training cell.
    Features,
    /// The colours had to be corrected far more than any PBC image needs.
    Look,
    /// The magnification is far from PBC's.
    Scale,
    /// The measured type is sure of another type than the image network's (the card of
    /// `wbc measured-type` says how sure). The cell may look familiar and still be misread.
    OpinionsDiffer,
    /// The doubt model ([`DoubtModel`]) finds the answer likely wrong.
    Doubt,
}

impl Caution {
    pub fn describe(self) -> &'static str {
        match self {
            Caution::Features => "the networks see features unlike any training cell",
            Caution::Look => "its colours are far from the training images' stain",
            Caution::Scale => "its magnification is far from the training images'",
            Caution::OpinionsDiffer => {
                "the image network and the measured shape and density disagree on its type"
            }
            Caution::Doubt => {
                "the networks are unsure of it, as they were on cells they often misread"
            }
        }
    }

    /// Whether this reason says the image is unlike the training images.
    pub fn is_unlike_training(self) -> bool {
        !matches!(self, Caution::OpinionsDiffer | Caution::Doubt)
    }
}

/// The familiarity check's numbers for one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Familiarity {
    /// Mahalanobis distance of the pooled features to PBC train.
    pub feature_distance: f32,
    /// How strongly the front end corrected the look (0 = not at all).
    pub look_strength: f32,
    /// |ln| of the scale factor (0 = PBC's scale).
    pub scale_offset: f32,
    /// The doubt model's score (0–1, higher = the answer is more likely wrong); `None`
    /// without a doubt model.
    #[serde(default)]
    pub doubt: Option<f32>,
    /// The reasons for a warning; empty when there is none.
    pub reasons: Vec<Caution>,
}

impl Familiarity {
    /// Judge one cell against the card's thresholds and doubt model (`type_probs`: the image
    /// network's calibrated cell-type probabilities).
    pub fn judge(
        card: &CalibrationCard,
        feature_distance: f32,
        look_strength: f32,
        scale_factor: f32,
        type_probs: &[f32],
    ) -> Self {
        let scale_offset = scale_factor.ln().abs();
        let doubt = card.doubt.as_ref().map(|m| {
            m.score(&doubt_inputs(
                type_probs,
                feature_distance,
                look_strength,
                scale_offset,
            ))
        });
        let mut reasons = Vec::new();
        if feature_distance > card.feature_threshold || !feature_distance.is_finite() {
            reasons.push(Caution::Features);
        }
        if look_strength > card.look_threshold {
            reasons.push(Caution::Look);
        }
        if scale_offset > card.scale_threshold {
            reasons.push(Caution::Scale);
        }
        if let (Some(score), Some(model)) = (doubt, &card.doubt) {
            if score > model.threshold {
                reasons.push(Caution::Doubt);
            }
        }
        Self {
            feature_distance,
            look_strength,
            scale_offset,
            doubt,
            reasons,
        }
    }

    /// Unlike the training images (what the "…when unfamiliar" joinings of the measured type
    /// go by).
    pub fn is_unfamiliar(&self) -> bool {
        self.reasons.iter().any(|r| r.is_unlike_training())
    }

    /// Whether the results carry a warning, for any reason.
    pub fn is_flagged(&self) -> bool {
        !self.reasons.is_empty()
    }

    /// The two opinions on the cell's type differ: add that reason to the warning.
    pub fn add_opinions_differ(&mut self) {
        if !self.reasons.contains(&Caution::OpinionsDiffer) {
            self.reasons.push(Caution::OpinionsDiffer);
        }
    }

    /// The warning the page and the tables show, when there is one.
    pub fn warning(&self) -> Option<String> {
        Caution::warning(&self.reasons)
    }
}

impl Caution {
    /// The warning these reasons give, in words (`None` without any): the text depends on the
    /// reasons alone, so whatever keeps them (the table's rows) can say it again.
    pub fn warning(reasons: &[Caution]) -> Option<String> {
        let unlike: Vec<&str> = reasons
            .iter()
            .filter(|r| r.is_unlike_training())
            .map(|r| r.describe())
            .collect();
        let doubts: Vec<&str> = [Caution::Doubt, Caution::OpinionsDiffer]
            .into_iter()
            .filter(|r| reasons.contains(r))
            .map(|r| r.describe())
            .collect();
        match (unlike.is_empty(), doubts.is_empty()) {
            (true, true) => None,
            (true, false) => Some(format!(
                "The cell type is in doubt ({}): treat these results with caution.",
                doubts.join("; ")
            )),
            (false, _) => Some(format!(
                "Unlike the training images ({}): treat these results with caution.{}",
                unlike.join("; "),
                if doubts.is_empty() {
                    String::new()
                } else {
                    format!(" The cell type is also in doubt: {}.", doubts.join("; "))
                }
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    #[test]
    fn mahalanobis_separates_a_far_point_and_survives_the_round_trip() {
        let mut s = 7;
        // Correlated 2-D cloud plus 3 near-constant dimensions.
        let rows: Vec<Vec<f32>> = (0..500)
            .map(|_| {
                let a = lcg(&mut s);
                let b = lcg(&mut s) * 0.1;
                vec![a, a + b, 0.01 * lcg(&mut s), 0.0, 1.0]
            })
            .collect();
        let dist = FeatureDistribution::fit(&rows).unwrap();
        let inside: Vec<f32> = rows.iter().map(|r| dist.distance(r)).collect();
        let q95 = quantile(&inside, 0.95);
        // Along the cloud: familiar; across it (against the correlation): far.
        assert!(dist.distance(&[0.3, 0.3, 0.0, 0.0, 1.0]) < q95);
        assert!(dist.distance(&[0.3, -0.3, 0.0, 0.0, 1.0]) > 3.0 * q95);
        let back = FeatureDistribution::from_bytes(&dist.to_bytes(), 5).unwrap();
        assert_eq!(back, dist);
        assert!(FeatureDistribution::from_bytes(&[0; 12], 5).is_err());
    }

    #[test]
    fn temperature_softens_overconfident_logits() {
        // Logits that always say 99.9% for the top class, which is right 70% of the time.
        let logits: Vec<Vec<f32>> = (0..100).map(|_| vec![7.0, 0.0]).collect();
        let targets: Vec<usize> = (0..100).map(|i| usize::from(i % 10 >= 7)).collect();
        let t = fit_temperature(&logits, &targets);
        let p = 1.0 / (1.0 + (-7.0 / t).exp());
        assert!((p - 0.7).abs() < 0.03, "T = {t}, p = {p}");
        // Well-calibrated logits keep a temperature near 1.
        let logits: Vec<Vec<f32>> = (0..100).map(|_| vec![(0.7f32 / 0.3).ln(), 0.0]).collect();
        let t = fit_temperature(&logits, &targets);
        assert!((t - 1.0).abs() < 0.05, "T = {t}");
    }

    /// A card with fixed thresholds (features 10, look 0.5, scale 0.7) and `doubt`.
    fn test_card(doubt: Option<DoubtModel>) -> CalibrationCard {
        CalibrationCard {
            reference: FrontEndReference {
                look: crate::front_end::Look {
                    background: [0.9; 3],
                    dark_density: [1.0; 3],
                },
                scale: crate::front_end::ScaleReference {
                    red_cell_diameter: 78.0,
                    white_cell_diameter: (70.0, 120.0),
                },
            },
            default_settings: FrontEndSettings::ALL,
            temperatures: vec![1.0; 12],
            feature_threshold: 10.0,
            look_threshold: 0.5,
            scale_threshold: 0.7,
            feature_dim: 4,
            feature_group: 1,
            doubt,
            record: serde_json::Value::Null,
        }
    }

    #[test]
    fn judge_names_each_reason() {
        let card = test_card(None);
        let probs = [0.9, 0.05, 0.05, 0.0, 0.0];
        assert!(!Familiarity::judge(&card, 5.0, 0.1, 1.2, &probs).is_unfamiliar());
        let f = Familiarity::judge(&card, 12.0, 0.9, 0.3, &probs);
        assert_eq!(
            f.reasons,
            vec![Caution::Features, Caution::Look, Caution::Scale]
        );
        assert!(f
            .warning()
            .unwrap()
            .contains("treat these results with caution"));
        assert!(Familiarity::judge(&card, f32::NAN, 0.0, 1.0, &probs).is_unfamiliar());

        // Differing opinions warn without making the cell unfamiliar (which would change how
        // the measured type joins the answer).
        let mut g = Familiarity::judge(&card, 5.0, 0.1, 1.2, &probs);
        assert!(!g.is_flagged() && g.warning().is_none());
        g.add_opinions_differ();
        g.add_opinions_differ();
        assert!(g.is_flagged() && !g.is_unfamiliar());
        assert_eq!(g.reasons, vec![Caution::OpinionsDiffer]);
        assert!(g
            .warning()
            .unwrap()
            .starts_with("The cell type is in doubt"));
        let mut f = f;
        f.add_opinions_differ();
        let w = f.warning().unwrap();
        assert!(w.starts_with("Unlike the training images") && w.contains("also in doubt"));
    }

    /// The doubt model learns that unsure answers are the wrong ones, its score ranks them
    /// (AUROC), and a card with it warns an unsure cell without calling it unfamiliar.
    #[test]
    fn doubt_model_flags_unsure_answers() {
        let mut s = 11;
        let (mut rows, mut wrong) = (Vec::new(), Vec::new());
        for i in 0..400 {
            let top = 0.5 + 0.5 * (lcg(&mut s) + 0.5);
            // Wrong more often the less sure the answer.
            let is_wrong = (lcg(&mut s) + 0.5) < (1.0 - top) * 1.6;
            rows.push([
                1.0 - top,
                1.0 - (2.0 * top - 1.0),
                0.3,
                0.1 * (i % 3) as f32,
                0.0,
            ]);
            wrong.push(is_wrong);
        }
        let model = DoubtModel::fit(&rows, &wrong, &vec![1.0; rows.len()], 0.01);
        assert!(model.weights[0] > 0.0, "{model:?}");
        // Fitted on some inputs only, the others weigh nothing at all.
        let certainty = DoubtModel::fit_using(
            &rows,
            &wrong,
            &vec![1.0; rows.len()],
            0.01,
            [true, true, false, false, false],
        );
        assert!(certainty.weights[0] > 0.0, "{certainty:?}");
        assert_eq!(&certainty.weights[2..], &[0.0; 3]);
        let scores: Vec<f32> = rows.iter().map(|r| model.score(r)).collect();
        assert!(auroc(&scores, &wrong) > 0.7);
        assert_eq!(auroc(&[0.9, 0.1], &[true, false]), 1.0);
        assert_eq!(auroc(&[0.5, 0.5], &[true, false]), 0.5);

        let mut card = test_card(Some(model));
        card.doubt.as_mut().unwrap().threshold = 0.5;
        let sure = Familiarity::judge(&card, 5.0, 0.1, 1.0, &[0.99, 0.01, 0.0, 0.0, 0.0]);
        let unsure = Familiarity::judge(&card, 5.0, 0.1, 1.0, &[0.4, 0.35, 0.25, 0.0, 0.0]);
        assert!(sure.doubt.unwrap() < unsure.doubt.unwrap());
        assert!(!sure.is_flagged(), "{sure:?}");
        assert!(unsure.is_flagged() && !unsure.is_unfamiliar(), "{unsure:?}");
        assert!(unsure
            .warning()
            .unwrap()
            .starts_with("The cell type is in doubt"));
    }

    #[test]
    fn grouped_features_average_and_the_distance_groups_them() {
        assert_eq!(grouped(&[1.0, 3.0, 5.0, 7.0], 2), vec![2.0, 6.0]);
        let rows: Vec<Vec<f32>> = (0..50)
            .map(|i| vec![(i % 7) as f32, (i % 5) as f32])
            .collect();
        let dist = FeatureDistribution::fit(&rows).unwrap();
        let x = [2.0, 4.0, 1.0, 3.0];
        assert_eq!(dist.distance(&x), dist.distance(&grouped(&x, 2)));
    }
}
