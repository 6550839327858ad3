//! A whole profile's fit from the user's labelled cells, as one plan of small steps: the
//! cross-validation folds of each model, then each model on every cell. `wbc fit` runs it to
//! the end; the page runs a few steps per task, so fitting never holds the page.

use super::{
    argmax, fold_of, offsets, Accuracy, Correction, Descent, Familiar, Linear, Networks, Penalty,
    Profile, Question, ADAPTATION_L2, INTERPRETABLE_L1, ITERATIONS, PROFILE_FORMAT,
};
use crate::CELL_TYPES;
use std::collections::VecDeque;

/// What a fit needs of one analysed, labelled cell.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledCell {
    /// The encoder's pooled features (L2-normalised).
    pub features: Vec<f32>,
    /// The shipped cell-type answer (what the page answers).
    pub shipped: Vec<f32>,
    /// [`super::interpretable_inputs`]: the attribute probabilities and measurements.
    pub inputs: Vec<f32>,
    /// Index into the fit's classes.
    pub label: usize,
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
}

impl Model {
    fn index(self) -> usize {
        self as usize
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
    right: [usize; 3],
    kept: [Option<Linear>; 3],
    steps_total: usize,
    steps_done: usize,
}

/// Folds of the cross-validation that every score here is from.
pub const FOLDS: usize = 5;

impl Fitting {
    /// Plan the fit of `cells` (labels index `classes`; `types`: the classes are the five cell
    /// types, see [`classes_of`]). Refused, with the reason, when it cannot say anything.
    pub fn new(
        cells: Vec<LabelledCell>,
        classes: Vec<String>,
        types: bool,
    ) -> Result<Self, String> {
        let mut counts = vec![0usize; classes.len()];
        for c in &cells {
            match counts.get_mut(c.label) {
                Some(n) => *n += 1,
                None => return Err(format!("a label outside the {} classes", classes.len())),
            }
        }
        let seen = counts.iter().filter(|&&n| n > 0).count();
        if seen < 2 {
            return Err(format!(
                "label cells of at least two {} first ({} labelled so far)",
                if types { "types" } else { "classes" },
                cells.len()
            ));
        }
        let labels: Vec<usize> = cells.iter().map(|c| c.label).collect();
        let (fold, folds) = fold_of(&labels, FOLDS);
        let models: &[Model] = if types {
            &[Model::Correction]
        } else {
            &[Model::Interpretable, Model::Probe]
        };
        let mut tasks = VecDeque::new();
        for &model in models {
            for f in 0..folds {
                let test: Vec<usize> = (0..cells.len()).filter(|&i| fold[i] == f).collect();
                if test.is_empty() {
                    continue;
                }
                let train = (0..cells.len()).filter(|&i| fold[i] != f).collect();
                tasks.push_back(Task { model, train, test });
            }
            let all = (0..cells.len()).collect();
            tasks.push_back(Task {
                model,
                train: all,
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
            right: [0; 3],
            kept: [None, None, None],
            steps_total,
            steps_done: 0,
        })
    }

    fn penalty(model: Model) -> Penalty {
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
        }
    }

    fn input(&self, model: Model, i: usize) -> &[f32] {
        match model {
            Model::Interpretable => &self.cells[i].inputs,
            Model::Correction | Model::Probe => &self.cells[i].features,
        }
    }

    fn descent(&self, task: &Task) -> Descent {
        let x: Vec<&[f32]> = task
            .train
            .iter()
            .map(|&i| self.input(task.model, i))
            .collect();
        let y: Vec<usize> = task.train.iter().map(|&i| self.cells[i].label).collect();
        let o: Vec<Vec<f32>> = task
            .train
            .iter()
            .map(|&i| offsets(&self.cells[i].shipped))
            .collect();
        let o = (task.model == Model::Correction).then_some(o.as_slice());
        Descent::new(
            &x,
            &y,
            o,
            self.classes.len(),
            Self::penalty(task.model),
            ITERATIONS,
        )
    }

    /// The class a fitted model gives cell `i`.
    fn answer(&self, model: Model, fit: &Linear, i: usize) -> usize {
        let x = self.input(model, i);
        match model {
            Model::Correction => {
                let c = Correction {
                    linear: fit.clone(),
                    penalty: Self::penalty(model),
                };
                argmax(&c.probabilities(x, &self.cells[i].shipped))
            }
            _ => argmax(&fit.logits(x)),
        }
    }

    /// Take up to `steps` steps of the plan; `true` once it is all done.
    pub fn advance(&mut self, steps: usize) -> bool {
        let mut left = steps;
        while left > 0 {
            let Some((task, mut descent)) = self.running.take().or_else(|| {
                let task = self.tasks.pop_front()?;
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
                self.right[m] += task
                    .test
                    .iter()
                    .filter(|&&i| self.answer(task.model, &fit, i) == self.cells[i].label)
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
        let n = self.cells.len();
        let counts = (0..self.classes.len())
            .map(|c| self.cells.iter().filter(|x| x.label == c).count())
            .collect();
        let [correction, interpretable, probe] = self.kept;
        let linear = |l: Option<Linear>| l.unwrap_or_else(|| Linear::zero(0, 0));
        let mut profile = Profile {
            format: PROFILE_FORMAT,
            classes: self.classes,
            counts,
            date,
            networks,
            adaptation: None,
            shipped_accuracy: None,
            adapted_accuracy: None,
            familiar: None,
            question: None,
        };
        if self.types {
            let shipped = self
                .cells
                .iter()
                .filter(|c| argmax(&c.shipped) == c.label)
                .count();
            profile.adaptation = Some(Correction {
                linear: linear(correction),
                penalty: Self::penalty(Model::Correction),
            });
            profile.shipped_accuracy = Some(Accuracy::new(shipped, n));
            profile.adapted_accuracy = Some(Accuracy::new(self.right[0], n));
            let features: Vec<&[f32]> = self.cells.iter().map(|c| c.features.as_slice()).collect();
            let labels: Vec<usize> = self.cells.iter().map(|c| c.label).collect();
            profile.familiar = Some(Familiar::fit(&features, &labels, profile.classes.len()));
        } else {
            profile.question = Some(Question {
                interpretable: linear(interpretable),
                probe: linear(probe),
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
                LabelledCell {
                    features,
                    shipped: vec![0.6, 0.4],
                    inputs,
                    label,
                }
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
        let labels: Vec<usize> = cells().iter().map(|c| c.label).collect();
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
        let one: Vec<LabelledCell> = cells().into_iter().filter(|c| c.label == 0).collect();
        assert!(Fitting::new(one, classes, false)
            .err()
            .unwrap()
            .contains("at least two"));
    }
}
