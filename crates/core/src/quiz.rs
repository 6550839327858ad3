//! The quiz: a learner names a labelled cell's type and attribute values, then sees the
//! model's answer and the WBCAtt label beside their own. Learner and model are scored on the
//! same questions (as the WBCAtt paper compares annotators), per question kind, and the score
//! is kept across reloads as JSON.

use crate::audit::Labels;
use crate::metrics::argmax;
use crate::{CellPrediction, ATTRIBUTES};
use serde::{Deserialize, Serialize};

/// What a question asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The cell type only.
    CellType,
    /// One attribute (its index in [`ATTRIBUTES`]).
    Attribute(usize),
    /// The cell type and all 11 attributes.
    All,
}

/// One thing asked: the cell type or an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Target {
    CellType,
    Attribute(usize),
}

impl Target {
    /// What a question in `mode` asks, leaving out what the cell's labels do not say.
    pub fn asked(mode: Mode, truth: &Labels) -> Vec<Target> {
        let all: Vec<Target> = match mode {
            Mode::CellType => vec![Target::CellType],
            Mode::Attribute(k) => vec![Target::Attribute(k)],
            Mode::All => std::iter::once(Target::CellType)
                .chain((0..ATTRIBUTES.len()).map(Target::Attribute))
                .collect(),
        };
        all.into_iter()
            .filter(|t| t.truth(truth).is_some())
            .collect()
    }

    /// Display name: "cell type", or the attribute's title.
    pub fn title(self) -> &'static str {
        match self {
            Target::CellType => "cell type",
            Target::Attribute(k) => ATTRIBUTES[k].title,
        }
    }

    /// The value names to choose from.
    pub fn values(self) -> &'static [&'static str] {
        match self {
            Target::CellType => &crate::CELL_TYPES,
            Target::Attribute(k) => ATTRIBUTES[k].values,
        }
    }

    fn truth(self, labels: &Labels) -> Option<usize> {
        match self {
            Target::CellType => labels.cell_type,
            Target::Attribute(k) => labels.attributes[k],
        }
    }

    fn model(self, p: &CellPrediction) -> usize {
        match self {
            Target::CellType => argmax(&p.cell_type),
            Target::Attribute(k) => argmax(&p.attributes[k]),
        }
    }
}

/// One marked item of an answered question: what the learner chose, what the model says and
/// what the label is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marked {
    pub target: Target,
    pub learner: usize,
    pub model: usize,
    pub truth: usize,
}

impl Marked {
    pub fn learner_right(&self) -> bool {
        self.learner == self.truth
    }
    pub fn model_right(&self) -> bool {
        self.model == self.truth
    }
}

/// Mark an answer: `choices` holds the learner's value for each asked target (in the order
/// of [`Target::asked`]); targets without a choice are skipped.
pub fn mark(
    asked: &[Target],
    choices: &[Option<usize>],
    truth: &Labels,
    model: &CellPrediction,
) -> Vec<Marked> {
    asked
        .iter()
        .zip(choices)
        .filter_map(|(&target, &choice)| {
            Some(Marked {
                target,
                learner: choice?,
                model: target.model(model),
                truth: target.truth(truth)?,
            })
        })
        .collect()
}

/// Right answers out of questions, for the learner and the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub asked: u32,
    pub learner: u32,
    pub model: u32,
}

impl Tally {
    fn add(&mut self, m: &Marked) {
        self.asked += 1;
        self.learner += m.learner_right() as u32;
        self.model += m.model_right() as u32;
    }

    /// Percentages (learner, model); `None` before any question.
    pub fn percent(&self) -> Option<(f64, f64)> {
        (self.asked > 0).then(|| {
            let n = self.asked as f64;
            (
                100.0 * self.learner as f64 / n,
                100.0 * self.model as f64 / n,
            )
        })
    }
}

/// The score kept across reloads: questions answered, and a tally per target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub questions: u32,
    pub cell_type: Tally,
    /// One tally per attribute, in [`ATTRIBUTES`] order.
    pub attributes: Vec<Tally>,
}

impl Score {
    /// Count a marked question.
    pub fn add(&mut self, marked: &[Marked]) {
        if marked.is_empty() {
            return;
        }
        self.questions += 1;
        self.attributes.resize(ATTRIBUTES.len(), Tally::default());
        for m in marked {
            match m.target {
                Target::CellType => self.cell_type.add(m),
                Target::Attribute(k) => self.attributes[k].add(m),
            }
        }
    }

    /// Everything asked so far, type and attributes together.
    pub fn overall(&self) -> Tally {
        self.attributes
            .iter()
            .chain(std::iter::once(&self.cell_type))
            .fold(Tally::default(), |a, t| Tally {
                asked: a.asked + t.asked,
                learner: a.learner + t.learner,
                model: a.model + t.model,
            })
    }

    /// Read a stored score; anything unreadable starts afresh.
    pub fn from_json(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a score serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(cell_type: usize, values: [usize; 11]) -> CellPrediction {
        let one_hot = |n: usize, i: usize| (0..n).map(|j| (j == i) as u8 as f32).collect();
        CellPrediction {
            cell_type: one_hot(5, cell_type),
            attributes: ATTRIBUTES
                .iter()
                .zip(values)
                .map(|(a, v)| one_hot(a.values.len(), v))
                .collect(),
        }
    }

    /// A full round: what is asked follows the mode and the labels; learner and model are
    /// each marked against the label; the score adds up per target and survives JSON.
    #[test]
    fn a_round_is_marked_and_kept() {
        let truth = Labels {
            cell_type: Some(2),
            attributes: [
                Some(0),
                Some(1),
                None,
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(1),
                Some(3),
                Some(3),
                Some(1),
            ],
        };
        assert_eq!(
            Target::asked(Mode::CellType, &truth),
            vec![Target::CellType]
        );
        // Nucleus shape is unlabelled here: not asked.
        assert!(Target::asked(Mode::Attribute(2), &truth).is_empty());
        let all = Target::asked(Mode::All, &truth);
        assert_eq!(all.len(), 11);
        let model = prediction(2, [1, 1, 0, 0, 0, 0, 0, 1, 3, 3, 1]);
        let mut choices = vec![Some(0); all.len()];
        choices[1] = None; // skipped
        let marked = mark(&all, &choices, &truth, &model);
        assert_eq!(marked.len(), 10);
        let learner_right = marked.iter().filter(|m| m.learner_right()).count();
        let model_right = marked.iter().filter(|m| m.model_right()).count();
        // Learner chose value 0 everywhere: right on 4 of the 10 asked (type wrong); the model
        // is wrong only on the skipped cell size.
        assert_eq!((learner_right, model_right), (4, 10));
        let mut score = Score::default();
        score.add(&marked);
        score.add(&mark(&[Target::CellType], &[Some(2)], &truth, &model));
        assert_eq!(score.questions, 2);
        assert_eq!(
            score.cell_type,
            Tally {
                asked: 2,
                learner: 1,
                model: 2
            }
        );
        assert_eq!(score.overall().asked, 11);
        let back = Score::from_json(&score.to_json());
        assert_eq!(back, score);
        assert_eq!(Score::from_json("not json"), Score::default());
    }
}
