//! Classification metrics the paper reports: accuracy, per-class and macro precision, recall
//! and F1 from a confusion matrix.

use serde::{Deserialize, Serialize};

/// A confusion matrix: `counts[truth][prediction]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Row = true class, column = predicted class.
    pub counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Precision (%).
    pub precision: f64,
    /// Recall (%).
    pub recall: f64,
    /// F1 (%).
    pub f1: f64,
    /// Number of true examples of the class.
    pub support: u64,
}

impl Confusion {
    /// An empty matrix over `n` classes.
    pub fn new(n: usize) -> Self {
        Self {
            counts: vec![vec![0; n]; n],
        }
    }

    /// Record one example.
    pub fn add(&mut self, truth: usize, prediction: usize) {
        self.counts[truth][prediction] += 1;
    }

    /// Number of examples recorded.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Accuracy (%).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        100.0 * correct as f64 / self.total().max(1) as f64
    }

    /// Intersection over union of every class (%), as segmentation is scored when each pixel
    /// is one example; `None` for a class that is neither present nor predicted.
    pub fn iou_per_class(&self) -> Vec<Option<f64>> {
        let n = self.counts.len();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c];
                let union = self.counts[c].iter().sum::<u64>()
                    + (0..n).map(|t| self.counts[t][c]).sum::<u64>()
                    - tp;
                (union > 0).then(|| 100.0 * tp as f64 / union as f64)
            })
            .collect()
    }

    /// Add another matrix of the same classes.
    pub fn merge(&mut self, other: &Confusion) {
        for (row, o) in self.counts.iter_mut().zip(&other.counts) {
            for (a, b) in row.iter_mut().zip(o) {
                *a += b;
            }
        }
    }

    /// Scores of every class. A class with no predictions has precision 0, as scikit-learn's
    /// `zero_division=0` (the paper's tool) does.
    pub fn per_class(&self) -> Vec<ClassScores> {
        let n = self.counts.len();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let support: u64 = self.counts[c].iter().sum();
                let predicted: u64 = (0..n).map(|t| self.counts[t][c]).sum();
                let precision = if predicted > 0 {
                    tp / predicted as f64
                } else {
                    0.0
                };
                let recall = if support > 0 {
                    tp / support as f64
                } else {
                    0.0
                };
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    precision: 100.0 * precision,
                    recall: 100.0 * recall,
                    f1: 100.0 * f1,
                    support,
                }
            })
            .collect()
    }

    /// Macro averages (precision, recall, F1) over the classes that occur in the truth or the
    /// predictions, as scikit-learn does with its default labels.
    pub fn macro_scores(&self) -> (f64, f64, f64) {
        let n = self.counts.len();
        let scores = self.per_class();
        let present: Vec<usize> = (0..n)
            .filter(|&c| scores[c].support > 0 || (0..n).any(|t| self.counts[t][c] > 0))
            .collect();
        let k = present.len().max(1) as f64;
        let avg =
            |f: fn(&ClassScores) -> f64| present.iter().map(|&c| f(&scores[c])).sum::<f64>() / k;
        (avg(|s| s.precision), avg(|s| s.recall), avg(|s| s.f1))
    }

    /// Macro F1 (%).
    pub fn macro_f1(&self) -> f64 {
        self.macro_scores().2
    }
}

/// Index of the largest value (first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Mean and half-width of a 95% confidence interval (Student t) of a few runs.
pub fn mean_ci95(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return (mean, f64::NAN);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    // t quantiles (0.975) for 1..=9 degrees of freedom.
    const T: [f64; 9] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
    ];
    let t = T.get(n - 2).copied().unwrap_or(1.96);
    (mean, t * (var / n as f64).sqrt())
}

/// Area under the ROC curve (%): the chance that a random positive scores above a random
/// negative, ties counting half. `None` without both classes.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann–Whitney U from average ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if positive[k] {
                rank_sum += rank;
            }
        }
        i = j + 1;
    }
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    Some(100.0 * (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// The threshold `t` for the rule `score > t ⇒ positive` with the best balanced accuracy.
pub fn best_threshold(scores: &[f64], positive: &[bool]) -> f64 {
    let mut candidates: Vec<f64> = scores.to_vec();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    let mut best = (f64::MIN, candidates.first().copied().unwrap_or(0.0));
    for &t in &candidates {
        let b = balanced_accuracy(scores, positive, t);
        if b > best.0 {
            best = (b, t);
        }
    }
    best.1
}

/// Mean of the recall on positives and on negatives (%) of the rule `score > t`.
pub fn balanced_accuracy(scores: &[f64], positive: &[bool], t: f64) -> f64 {
    let (mut tp, mut np, mut tn, mut nn) = (0.0, 0.0, 0.0, 0.0);
    for (&s, &p) in scores.iter().zip(positive) {
        if p {
            np += 1.0;
            tp += (s > t) as u8 as f64;
        } else {
            nn += 1.0;
            tn += (s <= t) as u8 as f64;
        }
    }
    50.0 * (tp / f64::max(np, 1.0) + tn / f64::max(nn, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_scores() {
        // truth/pred pairs: class 0 recall 2/3, class 1 recall 1/1, class 2 recall 1/2.
        let mut c = Confusion::new(3);
        for (t, p) in [(0, 0), (0, 0), (0, 1), (1, 1), (2, 2), (2, 0)] {
            c.add(t, p);
        }
        assert!((c.accuracy() - 66.6667).abs() < 1e-3);
        let s = c.per_class();
        assert!((s[0].precision - 66.6667).abs() < 1e-3);
        assert!((s[1].precision - 50.0).abs() < 1e-9);
        assert!((s[2].recall - 50.0).abs() < 1e-9);
        let f1_0 = 2.0 * (2.0 / 3.0) * (2.0 / 3.0) / (4.0 / 3.0);
        let f1_1 = 2.0 * 0.5 / 1.5;
        let f1_2 = 2.0 * 0.5 / 1.5;
        assert!((c.macro_f1() - 100.0 * (f1_0 + f1_1 + f1_2) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn absent_classes_do_not_count_in_macro() {
        let mut c = Confusion::new(4);
        c.add(0, 0);
        c.add(1, 1);
        assert_eq!(c.macro_f1(), 100.0);
    }

    #[test]
    fn ci_of_three_seeds() {
        let (m, h) = mean_ci95(&[90.0, 91.0, 92.0]);
        assert!((m - 91.0).abs() < 1e-12);
        assert!((h - 4.303 * (1.0f64 / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(argmax(&[0.1, 0.7, 0.2]), 1);
    }

    #[test]
    fn iou_counts_pixels_of_both_masks() {
        let mut c = Confusion::new(3);
        // class 1: 2 hits, 1 missed (predicted 0), 1 false alarm (truth 0).
        for (t, p) in [(1, 1), (1, 1), (1, 0), (0, 1), (0, 0)] {
            c.add(t, p);
        }
        let iou = c.iou_per_class();
        assert!((iou[1].unwrap() - 50.0).abs() < 1e-9);
        assert!((iou[0].unwrap() - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(iou[2], None);
    }

    #[test]
    fn auc_and_threshold() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let positive = [false, false, true, true];
        // 3 of the 4 positive/negative pairs are ordered right.
        assert!((auc(&scores, &positive).unwrap() - 75.0).abs() < 1e-9);
        assert_eq!(auc(&[1.0, 1.0], &[true, false]), Some(50.0));
        assert_eq!(auc(&[1.0], &[true]), None);
        let t = best_threshold(&scores, &positive);
        assert!((balanced_accuracy(&scores, &positive, t) - 75.0).abs() < 1e-9);
    }
}
