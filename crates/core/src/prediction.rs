//! The networks' answer for one cell as plain numbers: probabilities per attribute value and
//! per cell type. It lives here, not beside the networks, so the page and its messages can
//! carry it without depending on Burn.

use crate::schema::{ATTRIBUTES, CELL_TYPES, HEAD_WIDTH};
use serde::{Deserialize, Serialize};

/// Probabilities per attribute value and per cell type, in schema order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellPrediction {
    /// One probability vector per attribute ([`ATTRIBUTES`] order).
    pub attributes: Vec<Vec<f32>>,
    /// Probabilities of the 5 cell types ([`CELL_TYPES`] order).
    pub cell_type: Vec<f32>,
}

impl CellPrediction {
    /// Split one row of [`HEAD_WIDTH`] logits into softmaxed groups.
    pub fn from_logits(row: &[f32]) -> Self {
        Self::from_logits_tempered(row, &[])
    }

    /// As [`CellPrediction::from_logits`], each group's logits divided by its temperature
    /// first (11 attributes then the cell type; missing temperatures count as 1).
    pub fn from_logits_tempered(row: &[f32], temperatures: &[f32]) -> Self {
        assert_eq!(row.len(), HEAD_WIDTH);
        let t = |g: usize| temperatures.get(g).copied().unwrap_or(1.0).max(1e-3);
        let tempered = |x: &[f32], g: usize| -> Vec<f32> {
            softmax(&x.iter().map(|v| v / t(g)).collect::<Vec<_>>())
        };
        let mut offset = 0;
        let mut attributes = Vec::with_capacity(ATTRIBUTES.len());
        for (g, a) in ATTRIBUTES.iter().enumerate() {
            attributes.push(tempered(&row[offset..offset + a.values.len()], g));
            offset += a.values.len();
        }
        let cell_type = tempered(&row[offset..offset + CELL_TYPES.len()], ATTRIBUTES.len());
        Self {
            attributes,
            cell_type,
        }
    }

    /// The mean of several predictions of one cell (e.g. of its symmetric views).
    pub fn average(views: &[CellPrediction]) -> Self {
        let n = views.len().max(1) as f32;
        let mean = |get: &dyn Fn(&CellPrediction) -> &Vec<f32>| -> Vec<f32> {
            let mut acc = vec![0.0; get(&views[0]).len()];
            for v in views {
                for (a, x) in acc.iter_mut().zip(get(v)) {
                    *a += x / n;
                }
            }
            acc
        };
        Self {
            attributes: (0..views[0].attributes.len())
                .map(|k| mean(&|v: &CellPrediction| &v.attributes[k]))
                .collect(),
            cell_type: mean(&|v: &CellPrediction| &v.cell_type),
        }
    }

    /// The 31 attribute probabilities concatenated: the concept vector the CBM reads.
    pub fn concepts(&self) -> Vec<f32> {
        self.attributes.iter().flatten().copied().collect()
    }

    /// The predicted (most probable) value of the attribute named `name`.
    pub fn value_of(&self, name: &str) -> Option<&'static str> {
        let (k, a) = crate::schema::attribute(name)?;
        Some(a.values[crate::metrics::argmax(&self.attributes[k])])
    }
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_sum_to_one() {
        let row: Vec<f32> = (0..HEAD_WIDTH).map(|i| (i as f32 * 0.37).sin()).collect();
        let p = CellPrediction::from_logits(&row);
        assert_eq!(p.attributes.len(), 11);
        assert_eq!(p.concepts().len(), 31);
        for g in p.attributes.iter().chain(std::iter::once(&p.cell_type)) {
            assert!((g.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn value_of_names_the_most_probable_value() {
        let mut row = vec![0.0; HEAD_WIDTH];
        // cell_size: big, small → make "small" win.
        row[1] = 3.0;
        let p = CellPrediction::from_logits(&row);
        assert_eq!(p.value_of("cell_size"), Some("small"));
        assert_eq!(p.value_of("no_such_attribute"), None);
    }
}
