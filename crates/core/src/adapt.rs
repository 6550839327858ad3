//! Fitting the models to a user's own labelled cells (the same code natively in `wbc fit` and
//! `wbc adapt-eval`, and in the page).
//!
//! - [`Correction`]: the cell-type answer adapted to one microscope. Its logits are the
//!   shipped answer's log-probabilities plus a linear correction on the encoder's pooled
//!   features, `ln p + W·f + b`, fitted with an L2 penalty on `W` and `b`: with no labels the
//!   correction is zero and the answer is the shipped one, and three labelled cells can only
//!   pull it a little way ("pulled toward the shipped head").
//! - [`Linear`]: a plain multinomial logistic regression for the user's own question (any
//!   classes): on the 31 attribute probabilities and the measurements (interpretable, L1) or on
//!   the encoder's features (the black-box probe, L2).
//! - [`cross_validate`]: accuracy on cells the fit did not see, with a 95% interval.

use crate::logistic::{logits, softmax};
use serde::{Deserialize, Serialize};

/// A linear map to class logits: `weights[class]·x + biases[class]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub weights: Vec<Vec<f32>>,
    pub biases: Vec<f32>,
}

impl Linear {
    /// Zero weights and biases: `classes` rows over `inputs` inputs.
    pub fn zero(classes: usize, inputs: usize) -> Self {
        Self {
            weights: vec![vec![0.0; inputs]; classes],
            biases: vec![0.0; classes],
        }
    }

    pub fn logits(&self, x: &[f32]) -> Vec<f32> {
        logits(&self.weights, &self.biases, x)
    }

    /// Class probabilities for `x`.
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        let mut z = self.logits(x);
        softmax(&mut z);
        z
    }

    /// Fit on `(x, class)` pairs with `offsets` added to every logit (the shipped answer's
    /// log-probabilities, or none): the mean cross-entropy plus `l2`/2·Σw² (biases too, so a
    /// class seen in few cells cannot run away) and `l1`·Σ|w|, by proximal gradient descent
    /// with momentum. Deterministic.
    pub fn fit(
        x: &[&[f32]],
        y: &[usize],
        offsets: Option<&[Vec<f32>]>,
        classes: usize,
        penalty: Penalty,
        iterations: usize,
    ) -> Self {
        let d = x.first().map_or(0, |v| v.len());
        let n = x.len().max(1) as f32;
        let norm = x
            .iter()
            .map(|v| v.iter().map(|a| a * a).sum::<f32>())
            .fold(0.0f32, f32::max);
        // The loss gradient is Lipschitz with L ≤ ½(‖x‖² + 1) + l2: 1/L is a safe step.
        let step = 1.0 / (0.5 * (norm + 1.0) + penalty.l2);
        let mut now = Self::zero(classes, d);
        let mut before = now.clone();
        let mut t = 1.0f32;
        for _ in 0..iterations {
            let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            let momentum = (t - 1.0) / t_next;
            let ahead = now.towards(&before, momentum);
            let mut grad = Self::zero(classes, d);
            for (i, (xi, &yi)) in x.iter().zip(y).enumerate() {
                let mut p = ahead.logits(xi);
                if let Some(o) = offsets {
                    for (p, o) in p.iter_mut().zip(&o[i]) {
                        *p += o;
                    }
                }
                softmax(&mut p);
                for c in 0..classes {
                    let g = (p[c] - if c == yi { 1.0 } else { 0.0 }) / n;
                    grad.biases[c] += g;
                    for (gw, v) in grad.weights[c].iter_mut().zip(xi.iter()) {
                        *gw += g * v;
                    }
                }
            }
            before = std::mem::replace(&mut now, ahead.clone());
            for c in 0..classes {
                for (w, (a, g)) in now.weights[c]
                    .iter_mut()
                    .zip(ahead.weights[c].iter().zip(&grad.weights[c]))
                {
                    let u = a - step * (g + penalty.l2 * a);
                    // Soft-thresholding: the L1 proximal step.
                    *w = u.signum() * (u.abs() - step * penalty.l1).max(0.0);
                }
                let a = ahead.biases[c];
                now.biases[c] = a - step * (grad.biases[c] + penalty.l2 * a);
            }
            t = t_next;
        }
        now
    }

    /// `self + m·(self − other)`, the look-ahead point of the momentum step.
    fn towards(&self, other: &Self, m: f32) -> Self {
        let mix = |a: &[f32], b: &[f32]| -> Vec<f32> {
            a.iter().zip(b).map(|(a, b)| a + m * (a - b)).collect()
        };
        Self {
            weights: self
                .weights
                .iter()
                .zip(&other.weights)
                .map(|(a, b)| mix(a, b))
                .collect(),
            biases: mix(&self.biases, &other.biases),
        }
    }
}

/// How hard a fit is held back: `l2`/2·Σw² and `l1`·Σ|w|.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Penalty {
    pub l2: f32,
    pub l1: f32,
}

/// Iterations of every fit here: enough to converge on normalised features (checked by the
/// tests), few enough to fit 200 cells in the page in well under a second.
pub const ITERATIONS: usize = 300;

/// The shipped cell-type answer corrected for one microscope (see the module's notes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub linear: Linear,
    pub penalty: Penalty,
}

/// The offset a shipped answer gives the correction: its log-probabilities (floored, so a
/// zero cannot make a class impossible to learn).
pub fn offsets(shipped: &[f32]) -> Vec<f32> {
    shipped.iter().map(|p| p.max(1e-4).ln()).collect()
}

impl Correction {
    /// Fit on labelled cells: each cell's features, the shipped type probabilities and its
    /// true class.
    pub fn fit(cells: &[(&[f32], &[f32], usize)], classes: usize, l2: f32) -> Self {
        let x: Vec<&[f32]> = cells.iter().map(|c| c.0).collect();
        let y: Vec<usize> = cells.iter().map(|c| c.2).collect();
        let o: Vec<Vec<f32>> = cells.iter().map(|c| offsets(c.1)).collect();
        let penalty = Penalty { l2, l1: 0.0 };
        Self {
            linear: Linear::fit(&x, &y, Some(&o), classes, penalty, ITERATIONS),
            penalty,
        }
    }

    /// The corrected type probabilities of a cell.
    pub fn probabilities(&self, features: &[f32], shipped: &[f32]) -> Vec<f32> {
        let mut z = self.linear.logits(features);
        for (z, o) in z.iter_mut().zip(offsets(shipped)) {
            *z += o;
        }
        softmax(&mut z);
        z
    }
}

/// Cells right of those scored, with the 95% Wilson interval of the accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub right: usize,
    pub of: usize,
    pub low: f64,
    pub high: f64,
}

impl Accuracy {
    pub fn new(right: usize, of: usize) -> Self {
        let (low, high) = crate::audit::wilson(right, of);
        Self {
            right,
            of,
            low,
            high,
        }
    }

    pub fn rate(&self) -> f64 {
        self.right as f64 / self.of.max(1) as f64
    }
}

/// Accuracy of a fit on cells it did not see: `folds`-fold cross-validation (leave-one-out
/// when there are fewer cells than folds), the cells dealt to folds in turn within each class
/// so every fold holds every class it can. `fit_and_answer(train, test)` fits on the `train`
/// indices and returns the predicted class of each `test` index.
pub fn cross_validate(
    labels: &[usize],
    folds: usize,
    mut fit_and_answer: impl FnMut(&[usize], &[usize]) -> Vec<usize>,
) -> Accuracy {
    let n = labels.len();
    let folds = folds.clamp(2, n.max(2));
    let mut fold_of = vec![0usize; n];
    let mut dealt = 0usize;
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    for c in 0..classes {
        for (i, _) in labels.iter().enumerate().filter(|(_, &l)| l == c) {
            fold_of[i] = dealt % folds;
            dealt += 1;
        }
    }
    let mut right = 0;
    for f in 0..folds {
        let test: Vec<usize> = (0..n).filter(|&i| fold_of[i] == f).collect();
        if test.is_empty() {
            continue;
        }
        let train: Vec<usize> = (0..n).filter(|&i| fold_of[i] != f).collect();
        let answers = fit_and_answer(&train, &test);
        right += test
            .iter()
            .zip(&answers)
            .filter(|(&i, &a)| labels[i] == a)
            .count();
    }
    Accuracy::new(right, n)
}

/// The index of the largest value.
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit-length features of two classes along two directions, with the shipped answer
    /// always wrong for class 1 (a microscope the network misreads).
    fn cells(n: usize) -> Vec<(Vec<f32>, Vec<f32>, usize)> {
        (0..n)
            .map(|i| {
                let class = i % 2;
                let wobble = (i as f32 * 0.37).sin() * 0.2;
                let mut f = vec![wobble, 0.0, 0.0];
                f[1 + class] = 1.0;
                let norm = f.iter().map(|v| v * v).sum::<f32>().sqrt();
                let f: Vec<f32> = f.iter().map(|v| v / norm).collect();
                (f, vec![0.9, 0.1], class)
            })
            .collect()
    }

    #[test]
    fn no_labels_leave_the_shipped_answer_and_labels_correct_it() {
        let data = cells(20);
        let none = Correction::fit(&[], 2, 0.1);
        let p = none.probabilities(&data[1].0, &data[1].1);
        assert!((p[0] - 0.9).abs() < 1e-4, "{p:?}");
        let labelled: Vec<(&[f32], &[f32], usize)> = data
            .iter()
            .map(|(f, s, c)| (f.as_slice(), s.as_slice(), *c))
            .collect();
        let fitted = Correction::fit(&labelled, 2, 0.01);
        for (f, s, c) in &data {
            assert_eq!(argmax(&fitted.probabilities(f, s)), *c);
        }
        // A strong pull keeps it near the shipped answer.
        let held = Correction::fit(&labelled[..2], 2, 100.0);
        let p = held.probabilities(&data[1].0, &data[1].1);
        assert!(p[0] > 0.8, "{p:?}");
    }

    #[test]
    fn cross_validation_scores_unseen_cells_in_every_class() {
        let labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 2];
        let mut seen = vec![0; labels.len()];
        let acc = cross_validate(&labels, 3, |train, test| {
            for &i in test {
                seen[i] += 1;
                assert!(!train.contains(&i));
            }
            test.iter().map(|&i| labels[i]).collect()
        });
        assert!(seen.iter().all(|&s| s == 1));
        assert_eq!((acc.right, acc.of), (10, 10));
        assert!(acc.low > 0.6 && acc.high > 0.99, "{acc:?}");
    }

    #[test]
    fn an_l1_fit_keeps_only_the_inputs_that_matter() {
        // Class = sign of input 0; inputs 1..4 are noise.
        let x: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let s = if i % 2 == 0 { 1.0 } else { -1.0 };
                vec![s, (i as f32 * 1.3).sin(), (i as f32 * 2.1).cos(), 0.3]
            })
            .collect();
        let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let xs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
        let m = Linear::fit(&xs, &y, None, 2, Penalty { l2: 0.0, l1: 0.02 }, ITERATIONS);
        let w0 = (m.weights[0][0] - m.weights[1][0]).abs();
        let rest: f32 = (1..4)
            .map(|j| (m.weights[0][j] - m.weights[1][j]).abs())
            .sum();
        assert!(w0 > 1.0 && rest < 0.2 * w0, "{m:?}");
    }
}
