//! Measurements from the segmentation checked against the learned attributes they explain.
//! Each rule is "measurement > threshold ⇒ the attribute has its positive value", with the
//! threshold chosen on val by `wbc export-seg` and stored, with its test scores, in the
//! segmentation model card: the page and the CLI read the same numbers, none is typed in here.

use crate::morphometry::Morphometry;
use crate::prediction::CellPrediction;
use serde::{Deserialize, Serialize};

/// Which measurement a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Measure {
    /// Nucleus area / cell area.
    NcRatio,
    /// Cell diameter in red-cell diameters.
    CellToRedCell,
    /// Number of nucleus lobes.
    NucleusLobes,
    /// Vacuole area / cell area.
    VacuoleFraction,
}

impl Measure {
    /// The measurement's value on a cell, when it can be taken.
    pub fn read(self, m: &Morphometry) -> Option<f64> {
        match self {
            Measure::NcRatio => m.nc_ratio.map(f64::from),
            Measure::CellToRedCell => m.cell_to_red_cell.map(f64::from),
            Measure::NucleusLobes => Some(m.nucleus_lobes as f64),
            Measure::VacuoleFraction => Some(m.vacuole_fraction as f64),
        }
    }

    /// Every measurement a rule can read, in the order the page lists them.
    pub const ALL: [Measure; 4] = [
        Measure::NcRatio,
        Measure::CellToRedCell,
        Measure::NucleusLobes,
        Measure::VacuoleFraction,
    ];

    /// The attribute this measurement explains (CSV column name).
    pub fn attribute(self) -> &'static str {
        RULES.iter().find(|r| r.1 == self).map_or("", |r| r.2)
    }

    /// A value of this measurement as the user reads it (fractions as percentages, so a
    /// small vacuole area does not print as 0.00).
    pub fn format(self, value: f64) -> String {
        match self {
            Measure::VacuoleFraction => format!("{:.2}% of the cell", 100.0 * value),
            Measure::NucleusLobes => format!("{value:.1}"),
            Measure::NcRatio | Measure::CellToRedCell => format!("{value:.2}"),
        }
    }
}

/// One measurement-vs-attribute rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub measure: Measure,
    /// The attribute it explains (CSV column name).
    pub attribute: String,
    /// The attribute values the rule calls positive.
    pub positive: Vec<String>,
    /// Words for "measurement above the threshold" and "below it".
    pub above: String,
    pub below: String,
    /// Positive when the measurement is above this (chosen on val).
    pub threshold: f64,
    /// How well the measurement separates the attribute on the test split (AUC, %).
    pub test_auc: f64,
    /// Balanced accuracy (%) of the rule on the test split.
    pub test_balanced_accuracy: f64,
}

/// A rule is trusted to raise a disagreement only when its measurement separates the
/// attribute well on the test split; a weaker one is shown without notes.
pub const TRUSTED_AUC: f64 = 80.0;

/// Card key, measure, attribute, positive values, words for above and below.
type RuleSpec = (
    &'static str,
    Measure,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

/// The rules, and the card key each one's numbers are stored under.
const RULES: [RuleSpec; 4] = [
    (
        "nc_area_ratio_vs_nuclear_cytoplasmic_ratio_high",
        Measure::NcRatio,
        "nuclear_cytoplasmic_ratio",
        &["high"],
        "the nucleus fills much of the segmented cell",
        "the nucleus is a small part of the segmented cell",
    ),
    (
        "diameter_over_red_cell_vs_cell_size_big",
        Measure::CellToRedCell,
        "cell_size",
        &["big"],
        "clearly larger than the red cells",
        "about red-cell size",
    ),
    (
        "nucleus_lobes_vs_nucleus_shape_segmented",
        Measure::NucleusLobes,
        "nucleus_shape",
        &["segmented-bilobed", "segmented-multilobed"],
        "the nucleus is in separate pieces",
        "the nucleus is in one piece",
    ),
    (
        "vacuole_fraction_vs_cytoplasm_vacuole_yes",
        Measure::VacuoleFraction,
        "cytoplasm_vacuole",
        &["yes"],
        "vacuole-like holes were found",
        "few or no vacuole-like holes were found",
    ),
];

/// Where a measurement and a learned attribute disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    pub measure: Measure,
    /// What to tell the user.
    pub note: String,
}

/// The rules read from a segmentation card's `metrics.morphometry_vs_wbcatt.<segmenter>`
/// (`network` or `classical_labeller`). Rules the card does not hold are left out.
pub fn rules_from_card(metrics: &serde_json::Value, segmenter: &str) -> Vec<Rule> {
    let table = &metrics["morphometry_vs_wbcatt"][segmenter];
    RULES
        .iter()
        .filter_map(|&(key, measure, attribute, positive, above, below)| {
            let entry = &table[key];
            Some(Rule {
                measure,
                attribute: attribute.to_string(),
                positive: positive.iter().map(|s| s.to_string()).collect(),
                above: above.to_string(),
                below: below.to_string(),
                threshold: entry["threshold_from_val"].as_f64()?,
                test_auc: entry["test_auc"].as_f64()?,
                test_balanced_accuracy: entry["test_balanced_accuracy"].as_f64()?,
            })
        })
        .collect()
}

impl Rule {
    /// Whether this rule is trusted to raise disagreements (see [`TRUSTED_AUC`]).
    pub fn trusted(&self) -> bool {
        self.test_auc >= TRUSTED_AUC
    }

    /// The disagreement between the measurement and the predicted attribute value, if any.
    pub fn check(&self, m: &Morphometry, p: &CellPrediction) -> Option<Disagreement> {
        if !self.trusted() {
            return None;
        }
        let value = self.measure.read(m)?;
        let predicted = p.value_of(&self.attribute)?;
        let measured_positive = value > self.threshold;
        let predicted_positive = self.positive.iter().any(|v| v == predicted);
        (measured_positive != predicted_positive).then(|| Disagreement {
            measure: self.measure,
            note: format!(
                "{} ({} {} the val-chosen threshold {}), yet the model says {predicted}",
                if measured_positive {
                    &self.above
                } else {
                    &self.below
                },
                self.measure.format(value),
                if measured_positive {
                    "above"
                } else {
                    "at or below"
                },
                self.measure.format(self.threshold)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::HEAD_WIDTH;

    fn card() -> serde_json::Value {
        serde_json::json!({"morphometry_vs_wbcatt": {"network": {
            "nc_area_ratio_vs_nuclear_cytoplasmic_ratio_high": {"threshold_from_val": 0.57, "test_auc": 96.0, "test_balanced_accuracy": 92.0},
            "nucleus_lobes_vs_nucleus_shape_segmented": {"threshold_from_val": 1.0, "test_auc": 67.8, "test_balanced_accuracy": 67.0},
        }}})
    }

    fn cell(nc_ratio: f32, lobes: usize) -> Morphometry {
        Morphometry {
            nucleus_area: 1,
            cytoplasm_area: 1,
            vacuole_area: 0,
            cell_area: 2,
            nc_ratio: Some(nc_ratio),
            cell_diameter: 10.0,
            red_cell_diameter: None,
            cell_to_red_cell: None,
            nucleus_lobes: lobes,
            vacuole_count: 0,
            vacuole_fraction: 0.0,
            platelet_count: 0,
            red_cell_count: 0,
        }
    }

    #[test]
    fn thresholds_come_from_the_card_and_weak_rules_stay_quiet() {
        let rules = rules_from_card(&card(), "network");
        assert_eq!(rules.len(), 2, "only the rules the card holds");
        let nc = &rules[0];
        assert_eq!(nc.threshold, 0.57);
        // N:C "low" is value 0 of nuclear_cytoplasmic_ratio: a neutral logit row says "low".
        let low = CellPrediction::from_logits(&[0.0; HEAD_WIDTH]);
        assert_eq!(low.value_of("nuclear_cytoplasmic_ratio"), Some("low"));
        assert!(nc.check(&cell(0.80, 1), &low).is_some());
        assert!(nc.check(&cell(0.50, 1), &low).is_none());
        // The lobe rule (AUC 67.8) never raises a note, however far off.
        assert!(!rules[1].trusted());
        assert!(rules[1].check(&cell(0.5, 5), &low).is_none());
        assert!(rules_from_card(&card(), "classical_labeller").is_empty());
    }
}
