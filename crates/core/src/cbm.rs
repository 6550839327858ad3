//! The concept-bottleneck model (CBM): a multinomial logistic regression that predicts the cell
//! type from the 31 attribute probabilities only. Small enough to read: a 5 × 31 weight matrix.
//! The maths lives here once, for the CLI (fitting, interventions) and the browser
//! (explanations, live what-ifs).

use crate::logistic;
use crate::schema::{ATTRIBUTES, CELL_TYPES};
use serde::{Deserialize, Serialize};

/// A fitted CBM, as stored in `models/cbm.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cbm {
    /// `attribute:value` names of the 31 inputs, in schema order.
    pub attribute_values: Vec<String>,
    /// The 5 cell types, in output order.
    pub classes: Vec<String>,
    /// `weights[class][input]`.
    pub weights: Vec<Vec<f32>>,
    /// One bias per class.
    pub biases: Vec<f32>,
    /// L1 strength the model was fitted with.
    pub l1: f32,
}

/// The 31 `attribute:value` input names.
pub fn input_names() -> Vec<String> {
    ATTRIBUTES
        .iter()
        .flat_map(|a| a.values.iter().map(move |v| format!("{}:{}", a.name, v)))
        .collect()
}

pub use crate::schema::attribute_offset;

/// Replace attribute `k`'s probabilities by a one-hot on `value`: a human intervention.
pub fn intervene(concepts: &[f32], k: usize, value: usize) -> Vec<f32> {
    let mut out = concepts.to_vec();
    let off = attribute_offset(k);
    for v in 0..ATTRIBUTES[k].values.len() {
        out[off + v] = if v == value { 1.0 } else { 0.0 };
    }
    out
}

impl Cbm {
    /// Logits of each class.
    pub fn logits(&self, concepts: &[f32]) -> Vec<f32> {
        logistic::logits(&self.weights, &self.biases, concepts)
    }

    /// Class probabilities for a 31-wide concept vector.
    pub fn probabilities(&self, concepts: &[f32]) -> Vec<f32> {
        let mut z = self.logits(concepts);
        logistic::softmax(&mut z);
        z
    }

    /// Contribution of each input to `class`'s logit (weight × probability): what pushed the
    /// cell toward (positive) or away from (negative) that class.
    pub fn contributions(&self, concepts: &[f32], class: usize) -> Vec<f32> {
        self.weights[class]
            .iter()
            .zip(concepts)
            .map(|(w, x)| w * x)
            .collect()
    }

    /// Number of non-zero weights (sparsity from the L1 penalty).
    pub fn nonzero_weights(&self) -> usize {
        self.weights.iter().flatten().filter(|w| **w != 0.0).count()
    }

    /// Fit on concept vectors (see [`crate::logistic::fit`]). Deterministic: same data, same
    /// model.
    pub fn fit(x: &[Vec<f32>], y: &[usize], l1: f32, iterations: usize) -> Cbm {
        // Inputs are 31 probabilities in [0, 1]: squared norm at most 31.
        let bound = Some(crate::schema::NUM_ATTRIBUTE_VALUES as f32);
        let (weights, biases) = logistic::fit(x, y, CELL_TYPES.len(), l1, iterations, bound);
        Cbm {
            attribute_values: input_names(),
            classes: CELL_TYPES.iter().map(|c| c.to_string()).collect(),
            weights,
            biases,
            l1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::NUM_ATTRIBUTE_VALUES;

    /// Concepts with purple coarse granules mean "basophil", pink small granules "neutrophil".
    fn toy() -> (Vec<Vec<f32>>, Vec<usize>) {
        let gt = 8; // granule_type
        let gc = 9; // granule_colour
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..40 {
            let base = vec![0.5; NUM_ATTRIBUTE_VALUES];
            if i % 2 == 0 {
                x.push(intervene(&intervene(&base, gt, 2), gc, 2));
                y.push(0);
            } else {
                x.push(intervene(&intervene(&base, gt, 0), gc, 0));
                y.push(4);
            }
        }
        (x, y)
    }

    #[test]
    fn learns_granules_and_interventions_flip_the_class() {
        let (x, y) = toy();
        let cbm = Cbm::fit(&x, &y, 1e-3, 500);
        assert_eq!(cbm.weights.len(), 5);
        assert_eq!(cbm.weights[0].len(), 31);
        let neut = &x[1];
        let p = cbm.probabilities(neut);
        assert!(p[4] > 0.9, "{p:?}");
        let after = intervene(&intervene(neut, 8, 2), 9, 2);
        let q = cbm.probabilities(&after);
        assert!(q[0] > 0.9, "{q:?}");
        // Contributions explain the logit: they sum to logit − bias.
        let c = cbm.contributions(neut, 4);
        let z = cbm.logits(neut);
        assert!((c.iter().sum::<f32>() + cbm.biases[4] - z[4]).abs() < 1e-4);
    }

    #[test]
    fn strong_l1_gives_sparse_weights() {
        let (x, y) = toy();
        let dense = Cbm::fit(&x, &y, 0.0, 300);
        let sparse = Cbm::fit(&x, &y, 0.05, 300);
        assert!(sparse.nonzero_weights() < dense.nonzero_weights());
        assert_eq!(
            input_names()[attribute_offset(9) + 2],
            "granule_colour:purple"
        );
    }
}
