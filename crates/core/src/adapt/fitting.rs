//! A whole profile's fit from the user's labelled cells, as one plan of small steps: the
//! cross-validation folds of each model, then each model on every cell. `wbc fit` runs it to
//! the end; the page runs a few steps per task, so fitting never holds the page.
//!
//! The attribute corrections come first: a question is then fitted on the attribute
//! probabilities as the page will show them (corrected where a correction is used).

use super::{
    argmax, fold_of, offsets, Accuracy, AttributeFit, Correction, Descent, Familiar, Linear,
    Networks, Penalty, Profile, Question, ADAPTATION_L2, ATTRIBUTE_L2, INTERPRETABLE_L1,
    ITERATIONS, PROFILE_FORMAT,
};
use crate::{ATTRIBUTES, CELL_TYPES};
use std::collections::VecDeque;

/// What a fit needs of one analysed, labelled cell.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledCell {
    /// The encoder's pooled features (L2-normalised).
    pub features: Vec<f32>,
    /// The shipped cell-type answer (what the page answers).
    pub shipped: Vec<f32>,
    /// The shipped attribute probabilities ([`ATTRIBUTES`] order); may be empty when no
    /// attribute of the cell is labelled.
    pub shipped_attributes: Vec<Vec<f32>>,
    /// [`super::interpretable_inputs`]: the attribute probabilities and measurements.
    pub inputs: Vec<f32>,
    /// Index into the fit's classes; `None` when the user gave only attribute values.
    pub label: Option<usize>,
    /// The user's value of each attribute (index into its values), where given.
    pub attributes: [Option<usize>; 11],
}

impl LabelledCell {
    /// A cell with a class label and no attribute labels.
    pub fn of_class(features: Vec<f32>, shipped: Vec<f32>, inputs: Vec<f32>, label: usize) -> Self {
        Self {
            features,
            shipped,
            shipped_attributes: Vec::new(),
            inputs,
            label: Some(label),
            attributes: [None; 11],
        }
    }
}

/// The classes for a set of label names: the five cell types in their own order when every
/// name is one of them (in any case), which makes a cell-type adaptation; otherwise the
/// names sorted, the user's own question. Returns the classes and whether they are the types.
pub fn classes_of(names: &[String]) -> (Vec<String>, bool) {
    let type_of = |n: &str| {
        CELL_TYPES
            .iter()
            .position(|t| t.eq_ignore_ascii_case(n.trim()))
    };
    if !names.is_empty() && names.iter().all(|n| type_of(n).is_some()) {
        return (CELL_TYPES.iter().map(|t| t.to_string()).collect(), true);
    }
    let mut classes: Vec<String> = names.iter().map(|n| n.trim().to_string()).collect();
    classes.sort();
    classes.dedup();
    (classes, false)
}

/// The index of label `name` among `classes` (case and spaces aside).
pub fn class_index(classes: &[String], name: &str) -> Option<usize> {
    classes
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name.trim()))
}

/// The models a profile holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Model {
    /// The shipped cell type corrected for this microscope.
    Correction,
    /// The user's question on the attribute probabilities and measurements (L1).
    Interpretable,
    /// The user's question on the encoder's features.
    Probe,
    /// The shipped probabilities of attribute `k` corrected from the user's values.
    Attribute(usize),
}

/// Models a plan can hold: the three above and one per attribute.
const MODELS: usize = 3 + 11;

impl Model {
    fn index(self) -> usize {
        match self {
            Model::Correction => 0,
            Model::Interpretable => 1,
            Model::Probe => 2,
            Model::Attribute(k) => 3 + k,
        }
    }

    /// The label a cell carries for this model.
    fn label(self, cell: &LabelledCell) -> Option<usize> {
        match self {
            Model::Attribute(k) => cell.attributes[k],
            _ => cell.label,
        }
    }
}

/// One fit of the plan: on `train`, scored on `test` (empty: the model kept).
struct Task {
    model: Model,
    train: Vec<usize>,
    test: Vec<usize>,
}

/// A profile being fitted (see the module's notes).
pub struct Fitting {
    cells: Vec<LabelledCell>,
    classes: Vec<String>,
    types: bool,
    tasks: VecDeque<Task>,
    running: Option<(Task, Descent)>,
    /// Per model ([`Model::index`]): cells answered right in cross-validation, and the kept fit.
    right: [usize; MODELS],
    kept: [Option<Linear>; MODELS],
    /// Per attribute: labelled cells the correction got right that the shipped answer got
    /// wrong in cross-validation, and the other way round.
    fixed: [usize; 11],
    broken: [usize; 11],
    /// Whether the question's inputs carry the attribute corrections yet.
    inputs_corrected: bool,
    attribute_l2: f32,
    steps_total: usize,
    steps_done: usize,
}

/// Folds of the cross-validation that every score here is from.
pub const FOLDS: usize = 5;

impl Fitting {
    /// Plan the fit of `cells` (labels index `classes`; `types`: the classes are the five cell
    /// types, see [`classes_of`]). The classes are fitted when cells of at least two are
    /// labelled, an attribute when cells of at least two of its values are. Refused, with the
    /// reason, when nothing can be fitted.
    pub fn new(
        cells: Vec<LabelledCell>,
        classes: Vec<String>,
        types: bool,
    ) -> Result<Self, String> {
        let mut counts = vec![0usize; classes.len()];
        for c in &cells {
            if let Some(l) = c.label {
                match counts.get_mut(l) {
                    Some(n) => *n += 1,
                    None => return Err(format!("a label outside the {} classes", classes.len())),
                }
            }
            for (k, v) in c.attributes.iter().enumerate() {
                if v.is_some_and(|v| v >= ATTRIBUTES[k].values.len()) {
                    return Err(format!("a value outside {}'s values", ATTRIBUTES[k].title));
                }
                if v.is_some() && c.shipped_attributes.len() != ATTRIBUTES.len() {
                    return Err(
                        "a cell with attribute labels but no attribute probabilities".into(),
                    );
                }
            }
        }
        let classes_seen = counts.iter().filter(|&&n| n > 0).count();
        let mut models: Vec<Model> = (0..ATTRIBUTES.len())
            .filter(|&k| {
                let mut seen: Vec<usize> = cells.iter().filter_map(|c| c.attributes[k]).collect();
                seen.sort_unstable();
                seen.dedup();
                seen.len() >= 2
            })
            .map(Model::Attribute)
            .collect();
        if classes_seen >= 2 {
            if types {
                models.push(Model::Correction);
            } else {
                models.extend([Model::Interpretable, Model::Probe]);
            }
        }
        if models.is_empty() {
            let labelled = cells.iter().filter(|c| c.label.is_some()).count();
            return Err(format!(
                "label cells of at least two {} first ({labelled} labelled so far), or give an attribute's value on cells of two values",
                if types { "types" } else { "classes" },
            ));
        }
        let mut tasks = VecDeque::new();
        for &model in &models {
            let of: Vec<usize> = (0..cells.len())
                .filter(|&i| model.label(&cells[i]).is_some())
                .collect();
            let labels: Vec<usize> = of.iter().filter_map(|&i| model.label(&cells[i])).collect();
            let (fold, folds) = fold_of(&labels, FOLDS);
            for f in 0..folds {
                let test: Vec<usize> = (0..of.len())
                    .filter(|&j| fold[j] == f)
                    .map(|j| of[j])
                    .collect();
                if test.is_empty() {
                    continue;
                }
                let train = (0..of.len())
                    .filter(|&j| fold[j] != f)
                    .map(|j| of[j])
                    .collect();
                tasks.push_back(Task { model, train, test });
            }
            tasks.push_back(Task {
                model,
                train: of,
                test: Vec::new(),
            });
        }
        let steps_total = tasks.len() * ITERATIONS;
        Ok(Self {
            cells,
            classes,
            types,
            tasks,
            running: None,
            right: [0; MODELS],
            kept: Default::default(),
            fixed: [0; 11],
            broken: [0; 11],
            inputs_corrected: false,
            attribute_l2: ATTRIBUTE_L2,
            steps_total,
            steps_done: 0,
        })
    }

    fn penalty(&self, model: Model) -> Penalty {
        match model {
            Model::Correction => Penalty {
                l2: ADAPTATION_L2,
                l1: 0.0,
            },
            Model::Interpretable => Penalty {
                l2: 0.0,
                l1: INTERPRETABLE_L1,
            },
            Model::Probe => Penalty { l2: 0.0, l1: 0.0 },
            Model::Attribute(_) => Penalty {
                l2: self.attribute_l2,
                l1: 0.0,
            },
        }
    }

    /// The shipped probabilities a model corrects (its offsets), if it corrects any.
    fn shipped(&self, model: Model, i: usize) -> Option<&[f32]> {
        match model {
            Model::Correction => Some(&self.cells[i].shipped),
            Model::Attribute(k) => Some(&self.cells[i].shipped_attributes[k]),
            Model::Interpretable | Model::Probe => None,
        }
    }

    fn input(&self, model: Model, i: usize) -> &[f32] {
        match model {
            Model::Interpretable => &self.cells[i].inputs,
            Model::Correction | Model::Probe | Model::Attribute(_) => &self.cells[i].features,
        }
    }

    fn descent(&self, task: &Task) -> Descent {
        let x: Vec<&[f32]> = task
            .train
            .iter()
            .map(|&i| self.input(task.model, i))
            .collect();
        let y: Vec<usize> = task
            .train
            .iter()
            .filter_map(|&i| task.model.label(&self.cells[i]))
            .collect();
        let o: Option<Vec<Vec<f32>>> = task
            .train
            .iter()
            .map(|&i| self.shipped(task.model, i).map(offsets))
            .collect();
        let classes = match task.model {
            Model::Attribute(k) => ATTRIBUTES[k].values.len(),
            _ => self.classes.len(),
        };
        Descent::new(
            &x,
            &y,
            o.as_deref(),
            classes,
            self.penalty(task.model),
            ITERATIONS,
        )
    }

    /// Another strength for the attribute corrections than [`ATTRIBUTE_L2`] (for choosing it).
    pub fn with_attribute_l2(mut self, l2: f32) -> Self {
        self.attribute_l2 = l2;
        self
    }

    /// Whether attribute `k`'s correction changes what the page shows: only when, in
    /// cross-validation, it fixed clearly more labelled cells than it broke (a sign test at
    /// about 95%: fixed − broken ≥ 1.96 √(fixed + broken), and at least 2). A few labels
    /// that agree with the network, or disagree at random, leave the attribute as shipped.
    fn attribute_used(&self, k: usize) -> bool {
        let (f, b) = (self.fixed[k] as f64, self.broken[k] as f64);
        f - b >= 2.0 && f - b >= 1.96 * (f + b).sqrt()
    }

    fn attribute_shipped_right(&self, k: usize) -> usize {
        self.cells
            .iter()
            .filter(|c| c.attributes[k].is_some_and(|v| argmax(&c.shipped_attributes[k]) == v))
            .count()
    }

    /// The question's inputs with the used attribute corrections (the first 31 inputs are
    /// the attribute probabilities), once, before the question's first fit.
    fn correct_inputs(&mut self) {
        if self.inputs_corrected {
            return;
        }
        self.inputs_corrected = true;
        for k in 0..ATTRIBUTES.len() {
            let Some(fit) = self.kept[Model::Attribute(k).index()].clone() else {
                continue;
            };
            if !self.attribute_used(k) {
                continue;
            }
            let offset = crate::schema::attribute_offset(k);
            let correction = Correction {
                linear: fit,
                penalty: self.penalty(Model::Attribute(k)),
            };
            for c in &mut self.cells {
                if c.shipped_attributes.len() != ATTRIBUTES.len() || c.inputs.len() < offset {
                    continue;
                }
                let p = correction.probabilities(&c.features, &c.shipped_attributes[k]);
                c.inputs[offset..offset + p.len()].copy_from_slice(&p);
            }
        }
    }

    /// The class a fitted model gives cell `i`.
    fn answer(&self, model: Model, fit: &Linear, i: usize) -> usize {
        let x = self.input(model, i);
        match self.shipped(model, i) {
            Some(shipped) => {
                let c = Correction {
                    linear: fit.clone(),
                    penalty: self.penalty(model),
                };
                argmax(&c.probabilities(x, shipped))
            }
            None => argmax(&fit.logits(x)),
        }
    }

    /// Take up to `steps` steps of the plan; `true` once it is all done.
    pub fn advance(&mut self, steps: usize) -> bool {
        let mut left = steps;
        while left > 0 {
            let Some((task, mut descent)) = self.running.take().or_else(|| {
                let task = self.tasks.pop_front()?;
                if task.model == Model::Interpretable {
                    self.correct_inputs();
                }
                let descent = self.descent(&task);
                Some((task, descent))
            }) else {
                return true;
            };
            while left > 0 && descent.step() {
                left -= 1;
                self.steps_done += 1;
            }
            if descent.left() > 0 {
                self.running = Some((task, descent));
                return false;
            }
            // The step that finished the descent counts too.
            left = left.saturating_sub(1);
            self.steps_done += 1;
            let fit = descent.fitted();
            let m = task.model.index();
            if task.test.is_empty() {
                self.kept[m] = Some(fit);
            } else {
                if let Model::Attribute(k) = task.model {
                    for &i in &task.test {
                        let truth = self.cells[i].attributes[k];
                        let shipped = Some(argmax(&self.cells[i].shipped_attributes[k])) == truth;
                        let corrected = Some(self.answer(task.model, &fit, i)) == truth;
                        self.fixed[k] += usize::from(corrected && !shipped);
                        self.broken[k] += usize::from(shipped && !corrected);
                    }
                }
                self.right[m] += task
                    .test
                    .iter()
                    .filter(|&&i| {
                        Some(self.answer(task.model, &fit, i)) == task.model.label(&self.cells[i])
                    })
                    .count();
            }
        }
        self.running.is_none() && self.tasks.is_empty()
    }

    /// How much of the plan is done, 0–1.
    pub fn progress(&self) -> f32 {
        self.steps_done.min(self.steps_total) as f32 / self.steps_total.max(1) as f32
    }

    /// The profile, once [`Fitting::advance`] has said the plan is done.
    pub fn profile(self, networks: Networks, date: String) -> Profile {
        let counts = (0..self.classes.len())
            .map(|c| self.cells.iter().filter(|x| x.label == Some(c)).count())
            .collect();
        let attributes = (0..ATTRIBUTES.len())
            .filter_map(|k| {
                let fit = self.kept[Model::Attribute(k).index()].clone()?;
                let of = self
                    .cells
                    .iter()
                    .filter(|c| c.attributes[k].is_some())
                    .count();
                Some(AttributeFit {
                    attribute: ATTRIBUTES[k].name.to_string(),
                    counts: (0..ATTRIBUTES[k].values.len())
                        .map(|v| {
                            self.cells
                                .iter()
                                .filter(|c| c.attributes[k] == Some(v))
                                .count()
                        })
                        .collect(),
                    correction: Correction {
                        linear: fit,
                        penalty: self.penalty(Model::Attribute(k)),
                    },
                    shipped_accuracy: Accuracy::new(self.attribute_shipped_right(k), of),
                    adapted_accuracy: Accuracy::new(self.right[Model::Attribute(k).index()], of),
                    used: self.attribute_used(k),
                })
            })
            .collect();
        let labelled: Vec<&LabelledCell> =
            self.cells.iter().filter(|c| c.label.is_some()).collect();
        let n = labelled.len();
        let mut profile = Profile {
            format: PROFILE_FORMAT,
            classes: self.classes.clone(),
            counts,
            date,
            networks,
            adaptation: None,
            shipped_accuracy: None,
            adapted_accuracy: None,
            familiar: None,
            question: None,
            attributes,
        };
        let kept = |m: Model| self.kept[m.index()].clone();
        if self.types {
            if let Some(correction) = kept(Model::Correction) {
                let shipped = labelled
                    .iter()
                    .filter(|c| Some(argmax(&c.shipped)) == c.label)
                    .count();
                profile.adaptation = Some(Correction {
                    linear: correction,
                    penalty: self.penalty(Model::Correction),
                });
                profile.shipped_accuracy = Some(Accuracy::new(shipped, n));
                profile.adapted_accuracy = Some(Accuracy::new(self.right[0], n));
                let features: Vec<&[f32]> =
                    labelled.iter().map(|c| c.features.as_slice()).collect();
                let labels: Vec<usize> = labelled.iter().filter_map(|c| c.label).collect();
                profile.familiar = Some(Familiar::fit(&features, &labels, profile.classes.len()));
            }
        } else if let (Some(interpretable), Some(probe)) =
            (kept(Model::Interpretable), kept(Model::Probe))
        {
            profile.question = Some(Question {
                interpretable,
                probe,
                interpretable_accuracy: Accuracy::new(self.right[1], n),
                probe_accuracy: Accuracy::new(self.right[2], n),
            });
        }
        profile
    }

    /// The whole plan at once (natively: `wbc fit`).
    pub fn run(mut self, networks: Networks, date: String) -> Profile {
        while !self.advance(ITERATIONS) {}
        self.profile(networks, date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapt::cross_validate;

    fn networks() -> Networks {
        Networks {
            attribute_net: "a".into(),
            seg_net: "s".into(),
        }
    }

    /// Two classes along two feature directions, 30 cells.
    fn cells() -> Vec<LabelledCell> {
        (0..30)
            .map(|i| {
                let label = i % 2;
                let mut features = vec![0.0f32; 64];
                features[label] = 1.0;
                features[2 + i % 7] = 0.3;
                let mut inputs = vec![0.1f32; 35];
                inputs[3 + label] = 0.9;
                LabelledCell::of_class(features, vec![0.6, 0.4], inputs, label)
            })
            .collect()
    }

    /// Steps in small slices give the same profile as the whole plan at once, and the
    /// cross-validated score is `cross_validate`'s.
    #[test]
    fn a_fit_in_slices_is_the_fit_at_once() {
        let classes = vec!["band".to_string(), "segmented".to_string()];
        let whole = Fitting::new(cells(), classes.clone(), false)
            .unwrap()
            .run(networks(), "d".into());
        let mut sliced = Fitting::new(cells(), classes, false).unwrap();
        let mut slices = 0;
        while !sliced.advance(7) {
            slices += 1;
            assert!(sliced.progress() < 1.0);
        }
        assert!(slices > 100);
        assert_eq!(sliced.profile(networks(), "d".into()), whole);
        let q = whole.question.unwrap();
        let labels: Vec<usize> = cells().iter().filter_map(|c| c.label).collect();
        let x: Vec<Vec<f32>> = cells().into_iter().map(|c| c.features).collect();
        let expected = cross_validate(&labels, FOLDS, |train, test| {
            let xs: Vec<&[f32]> = train.iter().map(|&i| x[i].as_slice()).collect();
            let ys: Vec<usize> = train.iter().map(|&i| labels[i]).collect();
            let m = Linear::fit(&xs, &ys, None, 2, Penalty { l2: 0.0, l1: 0.0 }, ITERATIONS);
            test.iter().map(|&i| argmax(&m.logits(&x[i]))).collect()
        });
        assert_eq!(q.probe_accuracy, expected);
        assert_eq!(q.probe_accuracy.right, 30);
    }

    #[test]
    fn the_five_types_make_an_adaptation_and_other_names_a_question() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (classes, types) = classes_of(&names(&["Monocyte", "neutrophil "]));
        assert!(types);
        assert_eq!(classes.len(), 5);
        assert_eq!(class_index(&classes, "monocyte"), Some(3));
        let (classes, types) = classes_of(&names(&["segmented", "band", "band"]));
        assert!(!types);
        assert_eq!(classes, names(&["band", "segmented"]));
        // One class says nothing.
        let one: Vec<LabelledCell> = cells().into_iter().filter(|c| c.label == Some(0)).collect();
        assert!(Fitting::new(one, classes, false)
            .err()
            .unwrap()
            .contains("at least two"));
    }

    /// Cells whose nucleus shape (attribute 2) the shipped network always reads as its first
    /// value while the user says the second for cells along feature 1: only those labels,
    /// no classes.
    fn attribute_cells() -> Vec<LabelledCell> {
        let k = 2;
        (0..30)
            .map(|i| {
                let value = i % 2;
                let mut features = vec![0.0f32; 16];
                features[value] = 1.0;
                features[2 + i % 5] = 0.3;
                let shipped_attributes: Vec<Vec<f32>> = ATTRIBUTES
                    .iter()
                    .map(|a| {
                        let mut p = vec![0.1 / (a.values.len() - 1) as f32; a.values.len()];
                        p[0] = 0.9;
                        p
                    })
                    .collect();
                let mut attributes = [None; 11];
                attributes[k] = Some(value);
                LabelledCell {
                    features,
                    shipped: vec![0.2; 5],
                    shipped_attributes,
                    inputs: vec![0.0; 35],
                    label: None,
                    attributes,
                }
            })
            .collect()
    }

    /// An attribute's values alone make a profile that corrects that attribute (and no
    /// other), with its cross-validated gain; one value alone makes nothing.
    #[test]
    fn attribute_values_alone_correct_that_attribute() {
        let cells = attribute_cells();
        let profile = Fitting::new(cells.clone(), Vec::new(), false)
            .unwrap()
            .run(networks(), "d".into());
        assert!(profile.adaptation.is_none() && profile.question.is_none());
        assert_eq!(profile.attributes.len(), 1);
        let fit = &profile.attributes[0];
        assert_eq!(fit.attribute, ATTRIBUTES[2].name);
        assert_eq!(fit.counts[..2], [15, 15]);
        assert_eq!(fit.shipped_accuracy.right, 15);
        assert!(fit.adapted_accuracy.right >= 28 && fit.used, "{fit:?}");
        let c = &cells[1];
        let adapted = profile.adapt_attributes(&c.features, &c.shipped_attributes);
        assert_eq!(argmax(&adapted[2]), 1);
        assert_eq!(adapted[3], c.shipped_attributes[3]);
        // Read back as a profile.
        let text = serde_json::to_string(&profile).unwrap();
        assert_eq!(Profile::read(&text, &networks()).unwrap(), profile);
        // One value only: nothing to fit.
        let one: Vec<LabelledCell> = cells
            .into_iter()
            .filter(|c| c.attributes[2] == Some(0))
            .collect();
        assert!(Fitting::new(one, Vec::new(), false).is_err());
    }

    /// With a question too, the question is fitted on the corrected attribute probabilities.
    #[test]
    fn a_question_sees_the_corrected_attributes() {
        let mut cells = attribute_cells();
        let offset = crate::schema::attribute_offset(2);
        for (i, c) in cells.iter_mut().enumerate() {
            c.label = Some(i % 2);
            c.inputs = c.shipped_attributes.concat();
            c.inputs.extend([0.0; 4]);
        }
        let classes = vec!["a".to_string(), "b".to_string()];
        let profile = Fitting::new(cells.clone(), classes, false)
            .unwrap()
            .run(networks(), "d".into());
        let q = profile.question.as_ref().unwrap();
        // The shipped inputs are the same for every cell; only the corrected nucleus shape
        // tells the classes apart.
        assert!(q.interpretable_accuracy.right >= 28, "{q:?}");
        let top = &q.top_inputs(1)[0].0;
        assert!(top.starts_with(ATTRIBUTES[2].title), "{top}");
        assert!(offset > 0);
    }
}
