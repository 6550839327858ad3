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

mod familiar;
pub mod fitting;
mod linear;

pub use familiar::{Familiar, REACH};
pub use linear::{Descent, Linear, Penalty};

use crate::logistic::softmax;
use serde::{Deserialize, Serialize};

/// Iterations of every fit here: enough to converge on normalised features (checked by the
/// tests), few enough to fit 200 cells in the page in well under a second.
pub const ITERATIONS: usize = 300;

/// The correction's L2 strength, chosen by `wbc adapt-eval` on Chula's held-back series at
/// k = 5 among 0, 3e-5, 1e-4, 3e-4 and 1e-3 (89.2% there with the fourth encoder run, 3e-5
/// 89.1%; BENCHMARKS.md): what `wbc fit` and the page use. At 0 the fit is held near the
/// shipped answer by its [`ITERATIONS`] steps from no correction alone.
pub const ADAPTATION_L2: f32 = 0.0;

/// The attribute corrections' L2 strength (the same pull toward the shipped probabilities as
/// the cell type's), chosen by `wbc attribute-adapt-eval` on PBC val cells (0.003 with the
/// fourth encoder run; BENCHMARKS.md).
pub const ATTRIBUTE_L2: f32 = 0.003;

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
    /// true class. The fit starts from no correction and stops after [`ITERATIONS`] steps,
    /// which holds it near the shipped answer even at `l2` = 0; [`ADAPTATION_L2`] is the
    /// strength `wbc adapt-eval` chose.
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
    let (fold, folds) = fold_of(labels, folds);
    let mut right = 0;
    for f in 0..folds {
        let test: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        if test.is_empty() {
            continue;
        }
        let train: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let answers = fit_and_answer(&train, &test);
        right += test
            .iter()
            .zip(&answers)
            .filter(|(&i, &a)| labels[i] == a)
            .count();
    }
    Accuracy::new(right, n)
}

/// Each cell's fold for [`cross_validate`] (and the page's fit), and how many folds.
pub(crate) fn fold_of(labels: &[usize], folds: usize) -> (Vec<usize>, usize) {
    let n = labels.len();
    let folds = folds.clamp(2, n.max(2));
    let mut fold = vec![0usize; n];
    let mut dealt = 0usize;
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    for c in 0..classes {
        for (i, _) in labels.iter().enumerate().filter(|(_, &l)| l == c) {
            fold[i] = dealt % folds;
            dealt += 1;
        }
    }
    (fold, folds)
}

/// The index of the largest value.
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Without labels: the class priors of a batch of cells from one microscope, re-estimated by
/// EM from the shipped answers (Saerens, Latinne and Decaestecker 2002): the answers were
/// made for `train_priors` (how often each type was among the training cells); the batch's
/// own mix may differ (a slide of neutrophils). Returns the batch's priors.
pub fn batch_priors(answers: &[Vec<f32>], train_priors: &[f32], iterations: usize) -> Vec<f32> {
    let k = train_priors.len();
    let mut priors = train_priors.to_vec();
    for _ in 0..iterations {
        let mut sum = vec![0.0f32; k];
        for p in answers {
            let q = reweighted(p, train_priors, &priors);
            for (s, q) in sum.iter_mut().zip(q) {
                *s += q;
            }
        }
        let n = answers.len().max(1) as f32;
        priors = sum.iter().map(|s| (s / n).max(1e-6)).collect();
    }
    priors
}

/// A shipped answer made for `train_priors`, moved to a batch whose priors are `priors`.
pub fn reweighted(p: &[f32], train_priors: &[f32], priors: &[f32]) -> Vec<f32> {
    let mut q: Vec<f32> = p
        .iter()
        .zip(train_priors.iter().zip(priors))
        .map(|(p, (t, b))| p * b / t.max(1e-6))
        .collect();
    let s: f32 = q.iter().sum();
    if s > 0.0 {
        q.iter_mut().for_each(|v| *v /= s);
    }
    q
}

/// The measurements the interpretable classifier sees beside the 31 attribute probabilities,
/// each scaled to about 0–1.
pub const MEASURES: [&str; 4] = [
    "N:C area ratio (measured)",
    "cell size in red cells ÷ 3 (measured)",
    "nucleus lobes ÷ 5 (measured)",
    "vacuole fraction (measured)",
];

/// The interpretable classifier's inputs for a cell: its 31 attribute probabilities, then
/// [`MEASURES`] (0 where the segmentation could not measure).
pub fn interpretable_inputs(concepts: &[f32], m: &crate::morphometry::Morphometry) -> Vec<f32> {
    let mut x = concepts.to_vec();
    x.push(m.nc_ratio.unwrap_or(0.0));
    x.push(m.cell_to_red_cell.unwrap_or(0.0) / 3.0);
    x.push(m.nucleus_lobes as f32 / 5.0);
    x.push(m.vacuole_fraction);
    x
}

/// The name of each interpretable input ("nucleus shape: unsegmented-band", …).
pub fn interpretable_names() -> Vec<String> {
    let mut names: Vec<String> = crate::ATTRIBUTES
        .iter()
        .flat_map(|a| a.values.iter().map(move |v| format!("{}: {v}", a.title)))
        .collect();
    names.extend(MEASURES.iter().map(|m| m.to_string()));
    names
}

/// How hard the interpretable classifier is held to few inputs (L1), fixed before any data
/// was seen: strong enough that a question is answered by a handful of attribute values.
pub const INTERPRETABLE_L1: f32 = 0.005;

/// The user's own question fitted two ways ([`fitting::Fitting`]), with each one's cross-validated
/// accuracy: what interpretability costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// On the attribute probabilities and the measurements ([`interpretable_names`]), L1.
    pub interpretable: Linear,
    /// On the encoder's pooled features (a black box).
    pub probe: Linear,
    pub interpretable_accuracy: Accuracy,
    pub probe_accuracy: Accuracy,
}

impl Question {
    /// The interpretable model's inputs by weight, largest first: (name, weight towards
    /// class 1 over class 0 for two classes, else the largest spread across classes).
    pub fn top_inputs(&self, n: usize) -> Vec<(String, f32)> {
        let names = interpretable_names();
        let w = &self.interpretable.weights;
        let mut ranked: Vec<(String, f32)> = names
            .into_iter()
            .enumerate()
            .map(|(j, name)| {
                let column: Vec<f32> = w
                    .iter()
                    .map(|row| row.get(j).copied().unwrap_or(0.0))
                    .collect();
                let spread = if column.len() == 2 {
                    column[1] - column[0]
                } else {
                    column.iter().copied().fold(f32::MIN, f32::max)
                        - column.iter().copied().fold(f32::MAX, f32::min)
                };
                (name, spread)
            })
            .filter(|(_, s)| *s != 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        ranked.truncate(n);
        ranked
    }
}

/// The version of the profile file's format.
pub const PROFILE_FORMAT: u32 = 1;

/// Which networks a profile was fitted on (their weights' SHA-256): its features and
/// probabilities mean nothing to other ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networks {
    pub attribute_net: String,
    pub seg_net: String,
}

/// What was fitted, to keep and share: one small JSON file, applied the same natively
/// (`wbc analyse --profile`) and in the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub format: u32,
    /// The classes in label order, and how many labelled cells each had.
    pub classes: Vec<String>,
    pub counts: Vec<usize>,
    pub date: String,
    pub networks: Networks,
    /// When the classes are the five cell types: the shipped answer corrected for this
    /// microscope, with the shipped and corrected cross-validated accuracies.
    pub adaptation: Option<Correction>,
    pub shipped_accuracy: Option<Accuracy>,
    pub adapted_accuracy: Option<Accuracy>,
    /// With it: the labelled cells of each type, so cells like them are no longer "unlike
    /// the training images" (absent from profiles made before it).
    #[serde(default)]
    pub familiar: Option<Familiar>,
    /// Otherwise: the user's own question.
    pub question: Option<Question>,
    /// The attributes the user gave values for, each corrected like the cell type (absent
    /// from profiles made before them).
    #[serde(default)]
    pub attributes: Vec<AttributeFit>,
}

/// One attribute's probabilities corrected from the user's own values of it ("the nucleus
/// is indented"): `ln p + W·f + b` on the encoder's features, as [`Correction`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeFit {
    /// The attribute's name (`crate::ATTRIBUTES`).
    pub attribute: String,
    /// Labelled cells per value.
    pub counts: Vec<usize>,
    pub correction: Correction,
    /// Cross-validated accuracy on the labelled cells: shipped, corrected.
    pub shipped_accuracy: Accuracy,
    pub adapted_accuracy: Accuracy,
    /// Whether the correction changes what the page shows: only when, in cross-validation,
    /// it fixed clearly more of the labelled cells than it broke (see `fitting`).
    pub used: bool,
}

impl Profile {
    /// A cell under a cell-type profile: its corrected type probabilities and its
    /// familiarity, without "unlike the training images" when the cell is like the labelled
    /// cells of the type it is now given. `None` for a question profile.
    pub fn adapt_type(
        &self,
        features: &[f32],
        shipped: &[f32],
        familiarity: Option<&crate::confidence::Familiarity>,
    ) -> Option<(Vec<f32>, Option<crate::confidence::Familiarity>)> {
        let correction = self.adaptation.as_ref()?;
        let p = correction.probabilities(features, shipped);
        let known = self
            .familiar
            .as_ref()
            .is_some_and(|f| f.knows(features, argmax(&p), REACH));
        let familiarity = familiarity.cloned().map(|mut f| {
            if known {
                f.reasons.retain(|r| !r.is_unlike_training());
            }
            f
        });
        Some((p, familiarity))
    }

    /// A cell's attribute probabilities ([`crate::ATTRIBUTES`] order) with the profile's
    /// used attribute corrections; the others as shipped.
    pub fn adapt_attributes(&self, features: &[f32], shipped: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let mut out = shipped.to_vec();
        for fit in self.attributes.iter().filter(|a| a.used) {
            let Some((k, a)) = crate::schema::attribute(&fit.attribute) else {
                continue;
            };
            if out.get(k).is_some_and(|p| p.len() == a.values.len()) {
                out[k] = fit.correction.probabilities(features, &shipped[k]);
            }
        }
        out
    }

    /// A question profile's answer for a cell (its attribute probabilities and
    /// measurements): the interpretable classifier's class and probability, as the page's
    /// table and `wbc analyse --profile` give it. `None` for a cell-type profile.
    pub fn answer_question(
        &self,
        concepts: &[f32],
        morphometry: &crate::morphometry::Morphometry,
    ) -> Option<(String, f32)> {
        let q = self.question.as_ref()?;
        let p = q
            .interpretable
            .probabilities(&interpretable_inputs(concepts, morphometry));
        let i = argmax(&p);
        Some((self.classes.get(i)?.clone(), p[i]))
    }

    /// Read a profile for these networks; a broken file, another format or other networks
    /// are refused with a message that says which.
    pub fn read(text: &str, networks: &Networks) -> Result<Self, String> {
        let p: Profile =
            serde_json::from_str(text).map_err(|e| format!("not a WBC Explorer profile: {e}"))?;
        if p.format != PROFILE_FORMAT {
            return Err(format!(
                "a profile of format {} (this version reads format {PROFILE_FORMAT})",
                p.format
            ));
        }
        if p.networks != *networks {
            return Err("this profile was fitted on other network versions: its numbers do not apply to these networks; fit it again from its labelled cells".into());
        }
        if p.classes.len() != p.counts.len()
            || (p.adaptation.is_none() && p.question.is_none() && p.attributes.is_empty())
        {
            return Err("the profile is incomplete".into());
        }
        if let Some(a) = p.attributes.iter().find(|a| {
            crate::schema::attribute(&a.attribute)
                .is_none_or(|(_, s)| s.values.len() != a.counts.len())
        }) {
            return Err(format!(
                "the profile corrects an attribute this version does not know ({})",
                a.attribute
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::fitting::{Fitting, LabelledCell};
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

    /// A cell like the labelled cells of the type it is given loses "unlike the training
    /// images" (and keeps its other warnings); one unlike them keeps it.
    #[test]
    fn a_type_profile_knows_cells_like_the_labelled_ones() {
        use crate::confidence::{Caution, Familiarity};
        let data = cells(20);
        let labelled: Vec<LabelledCell> = data
            .iter()
            .map(|(f, s, c)| LabelledCell::of_class(f.clone(), s.clone(), Vec::new(), *c))
            .collect();
        let networks = Networks {
            attribute_net: "a".into(),
            seg_net: "s".into(),
        };
        let profile = Fitting::new(labelled, vec!["a".into(), "b".into()], true)
            .unwrap()
            .run(networks, "d".into());
        let warned = Familiarity {
            feature_distance: 9.0,
            look_strength: 0.0,
            scale_offset: 0.0,
            doubt: None,
            reasons: vec![Caution::Features, Caution::Doubt],
        };
        let (p, f) = profile
            .adapt_type(&data[1].0, &data[1].1, Some(&warned))
            .unwrap();
        assert_eq!(argmax(&p), 1);
        assert_eq!(f.unwrap().reasons, vec![Caution::Doubt]);
        let stranger = [1.0f32, 0.0, 0.0];
        let (_, f) = profile
            .adapt_type(&stranger, &data[1].1, Some(&warned))
            .unwrap();
        assert_eq!(f.unwrap().reasons, warned.reasons);
    }

    #[test]
    fn a_profile_for_other_networks_or_broken_is_refused() {
        let networks = Networks {
            attribute_net: "a".into(),
            seg_net: "s".into(),
        };
        let profile = Profile {
            format: PROFILE_FORMAT,
            classes: vec!["band".into(), "segmented".into()],
            counts: vec![3, 3],
            date: "2026-12-03".into(),
            networks: networks.clone(),
            adaptation: Some(Correction::fit(&[], 2, 0.0)),
            shipped_accuracy: None,
            adapted_accuracy: None,
            familiar: None,
            question: None,
            attributes: Vec::new(),
        };
        let text = serde_json::to_string(&profile).unwrap();
        assert_eq!(Profile::read(&text, &networks).unwrap(), profile);
        let other = Networks {
            attribute_net: "b".into(),
            ..networks.clone()
        };
        assert!(Profile::read(&text, &other)
            .unwrap_err()
            .contains("other network versions"));
        assert!(Profile::read("{", &networks)
            .unwrap_err()
            .contains("not a WBC Explorer profile"));
        let newer = text.replace("\"format\":1", "\"format\":9");
        assert!(Profile::read(&newer, &networks)
            .unwrap_err()
            .contains("format 9"));
    }

    #[test]
    fn batch_priors_find_a_slide_of_one_type() {
        // Answers made for equal priors, on a batch that is 90% class 0: each answer leans
        // only a little towards the truth.
        let answers: Vec<Vec<f32>> = (0..100)
            .map(|i| {
                if i % 10 == 0 {
                    vec![0.4, 0.6]
                } else {
                    vec![0.6, 0.4]
                }
            })
            .collect();
        let priors = batch_priors(&answers, &[0.5, 0.5], 100);
        assert!(priors[0] > 0.85, "{priors:?}");
        let q = reweighted(&[0.45, 0.55], &[0.5, 0.5], &priors);
        assert!(q[0] > 0.5, "{q:?}");
    }

    #[test]
    fn interpretable_inputs_have_a_name_each() {
        let m = crate::morphometry::Morphometry::default();
        let x = interpretable_inputs(&vec![0.5; 31], &m);
        assert_eq!(x.len(), interpretable_names().len());
        assert!(interpretable_names()[4].contains(":"));
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
