//! A linear map to class logits ([`Linear`]) and its fit: proximal gradient descent with
//! momentum (FISTA, [`Descent`]), one step at a time, so the page can spread a fit over short
//! tasks and never hold the main thread.
//!
//! With an L2 penalty alone and fewer cells than inputs (the encoder's 1,280 features, a
//! few hundred labelled cells) it runs in the cells' own space: every gradient is a
//! combination of the cells' inputs and the fit starts from zero, so the weights stay
//! `W = A·X` and one step costs `n²` instead of `n·d` per class. The same fit, up to
//! rounding (tested against the plain one).

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
    /// with momentum ([`Descent`], which the page runs a few steps at a time). Deterministic.
    pub fn fit(
        x: &[&[f32]],
        y: &[usize],
        offsets: Option<&[Vec<f32>]>,
        classes: usize,
        penalty: Penalty,
        iterations: usize,
    ) -> Self {
        Descent::new(x, y, offsets, classes, penalty, iterations).run()
    }

    /// `self + m·(self − other)`, the look-ahead point of the momentum step.
    pub(crate) fn towards(&self, other: &Self, m: f32) -> Self {
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

/// One fit in progress.
pub struct Descent {
    design: Design,
    y: Vec<usize>,
    offsets: Option<Vec<Vec<f32>>>,
    classes: usize,
    penalty: Penalty,
    step: f32,
    now: Linear,
    before: Linear,
    t: f32,
    left: usize,
}

/// What the parameters weigh.
enum Design {
    /// The inputs: row `i` is cell `i`'s input.
    Inputs(Vec<Vec<f32>>),
    /// The cells: row `i` of `kernel` is `x_i·x_j` for every `j`; `x` turns the cells'
    /// weights back into the inputs' at the end.
    Cells {
        kernel: Vec<Vec<f32>>,
        x: Vec<Vec<f32>>,
    },
}

impl Design {
    fn row(&self, i: usize) -> &[f32] {
        match self {
            Design::Inputs(x) => &x[i],
            Design::Cells { kernel, .. } => &kernel[i],
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

impl Descent {
    /// A fit of `iterations` steps on `(x, class)` pairs (see [`Linear::fit`]).
    pub fn new(
        x: &[&[f32]],
        y: &[usize],
        offsets: Option<&[Vec<f32>]>,
        classes: usize,
        penalty: Penalty,
        iterations: usize,
    ) -> Self {
        let n = x.len();
        let d = x.first().map_or(0, |v| v.len());
        let norm = x.iter().map(|v| dot(v, v)).fold(0.0f32, f32::max);
        // The loss gradient is Lipschitz with L ≤ ½(‖x‖² + 1) + l2: 1/L is a safe step.
        let step = 1.0 / (0.5 * (norm + 1.0) + penalty.l2);
        let design = if penalty.l1 == 0.0 && n < d {
            let mut kernel = vec![vec![0.0f32; n]; n];
            for i in 0..n {
                for j in 0..=i {
                    let k = dot(x[i], x[j]);
                    kernel[i][j] = k;
                    kernel[j][i] = k;
                }
            }
            Design::Cells {
                kernel,
                x: x.iter().map(|v| v.to_vec()).collect(),
            }
        } else {
            Design::Inputs(x.iter().map(|v| v.to_vec()).collect())
        };
        let width = match &design {
            Design::Inputs(_) => d,
            Design::Cells { .. } => n,
        };
        let zero = Linear::zero(classes, width);
        Self {
            design,
            y: y.to_vec(),
            offsets: offsets.map(<[Vec<f32>]>::to_vec),
            classes,
            penalty,
            step,
            before: zero.clone(),
            now: zero,
            t: 1.0,
            left: iterations,
        }
    }

    /// Steps still to take.
    pub fn left(&self) -> usize {
        self.left
    }

    /// Take one step; `false` once every step is taken.
    pub fn step(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        let classes = self.classes;
        let n = self.y.len().max(1) as f32;
        let t_next = (1.0 + (1.0 + 4.0 * self.t * self.t).sqrt()) / 2.0;
        let momentum = (self.t - 1.0) / t_next;
        let ahead = self.now.towards(&self.before, momentum);
        let width = ahead.weights.first().map_or(0, Vec::len);
        let mut grad = Linear::zero(classes, width);
        for (i, &yi) in self.y.iter().enumerate() {
            let row = self.design.row(i);
            let mut p = ahead.logits(row);
            if let Some(o) = &self.offsets {
                for (p, o) in p.iter_mut().zip(&o[i]) {
                    *p += o;
                }
            }
            softmax(&mut p);
            for c in 0..classes {
                let g = (p[c] - if c == yi { 1.0 } else { 0.0 }) / n;
                grad.biases[c] += g;
                match &self.design {
                    Design::Inputs(_) => {
                        for (gw, v) in grad.weights[c].iter_mut().zip(row) {
                            *gw += g * v;
                        }
                    }
                    // In the cells' space the gradient Σᵢ gᵢ·xᵢ is the weight gᵢ on cell i.
                    Design::Cells { .. } => grad.weights[c][i] += g,
                }
            }
        }
        let (step, l1, l2) = (self.step, self.penalty.l1, self.penalty.l2);
        self.before = std::mem::replace(&mut self.now, ahead.clone());
        for c in 0..classes {
            for (w, (a, g)) in self.now.weights[c]
                .iter_mut()
                .zip(ahead.weights[c].iter().zip(&grad.weights[c]))
            {
                let u = a - step * (g + l2 * a);
                // Soft-thresholding: the L1 proximal step (zero in the cells' space).
                *w = u.signum() * (u.abs() - step * l1).max(0.0);
            }
            let a = ahead.biases[c];
            self.now.biases[c] = a - step * (grad.biases[c] + l2 * a);
        }
        self.t = t_next;
        self.left > 0
    }

    /// The fitted map (over the inputs), after the steps taken so far.
    pub fn fitted(&self) -> Linear {
        match &self.design {
            Design::Inputs(_) => self.now.clone(),
            Design::Cells { x, .. } => {
                let d = x.first().map_or(0, Vec::len);
                let weights = self
                    .now
                    .weights
                    .iter()
                    .map(|a| {
                        let mut w = vec![0.0f32; d];
                        for (ai, xi) in a.iter().zip(x) {
                            for (w, v) in w.iter_mut().zip(xi) {
                                *w += ai * v;
                            }
                        }
                        w
                    })
                    .collect();
                Linear {
                    weights,
                    biases: self.now.biases.clone(),
                }
            }
        }
    }

    /// Take every step left and return the fit.
    pub fn run(mut self) -> Linear {
        while self.step() {}
        self.fitted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fit in the cells' space is the plain fit: forced both ways on the same data.
    #[test]
    fn the_cells_space_gives_the_same_fit() {
        let (n, d) = (12, 40);
        let x: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                (0..d)
                    .map(|j| {
                        ((i * 7 + j * 3) as f32 * 0.37).sin() * 0.2
                            + if j == i % 3 { 0.5 } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let o: Vec<Vec<f32>> = (0..n).map(|i| vec![0.1 * i as f32, 0.0, -0.2]).collect();
        let xs: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
        let penalty = Penalty { l2: 1e-2, l1: 0.0 };
        let cells = Descent::new(&xs, &y, Some(&o), 3, penalty, 200);
        assert!(matches!(cells.design, Design::Cells { .. }));
        let dual = cells.run();
        let mut plain = Descent::new(&xs, &y, Some(&o), 3, penalty, 200);
        plain.design = Design::Inputs(x.clone());
        plain.now = Linear::zero(3, d);
        plain.before = Linear::zero(3, d);
        let primal = plain.run();
        for (a, b) in dual
            .weights
            .iter()
            .flatten()
            .zip(primal.weights.iter().flatten())
        {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        for (a, b) in dual.biases.iter().zip(&primal.biases) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
