//! The familiarity check learns the user's cells: each labelled type's cells summarised as the
//! direction of their mean feature and how far (cosine distance) the farthest of them lies
//! from it. A cell answered with that type within that reach (times [`REACH`]) is like the
//! user's own labelled cells, so "unlike the training images" no longer applies to it (the
//! other warnings stay).

use serde::{Deserialize, Serialize};

/// How far a type's reach goes, in multiples of its farthest labelled cell's distance: chosen
/// by `wbc adapt-eval` on Chula's held-back series at k = 5 among 0.5, 1, 1.5 and 2, as the
/// widest gap between wrong and right answers still called unlike the training images
/// (BENCHMARKS.md). With the fourth encoder run the rule picked 0.5 (gap 14.9 points against
/// 11.7 at 1), but at 0.5 labelling 5 tecom300 cells per type took the warning off only 7% of
/// the others (page and CLI alike): the check would hardly learn the user's cells, which is
/// what it is for, so 1 stays.
pub const REACH: f32 = 1.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Familiar {
    /// Per class: the labelled cells' mean feature, unit length (empty: no cell labelled).
    pub centroids: Vec<Vec<f32>>,
    /// Per class: the largest cosine distance of its labelled cells from the centroid.
    pub radius: Vec<f32>,
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

fn cosine_distance(a: &[f32], unit_b: &[f32]) -> f32 {
    let a = unit(a);
    1.0 - a.iter().zip(unit_b).map(|(x, y)| x * y).sum::<f32>()
}

impl Familiar {
    /// From labelled cells' features and classes.
    pub fn fit(features: &[&[f32]], labels: &[usize], classes: usize) -> Self {
        let d = features.first().map_or(0, |f| f.len());
        let mut centroids = Vec::with_capacity(classes);
        let mut radius = Vec::with_capacity(classes);
        for c in 0..classes {
            let of: Vec<&[f32]> = features
                .iter()
                .zip(labels)
                .filter(|(_, &l)| l == c)
                .map(|(f, _)| *f)
                .collect();
            if of.is_empty() {
                centroids.push(Vec::new());
                radius.push(0.0);
                continue;
            }
            let mut mean = vec![0.0f32; d];
            for f in &of {
                for (m, v) in mean.iter_mut().zip(unit(f)) {
                    *m += v;
                }
            }
            let centroid = unit(&mean);
            let r = of
                .iter()
                .map(|f| cosine_distance(f, &centroid))
                .fold(0.0f32, f32::max);
            centroids.push(centroid);
            radius.push(r);
        }
        Self { centroids, radius }
    }

    /// Whether a cell with these features, answered `class`, is like the labelled cells of
    /// that class.
    pub fn knows(&self, features: &[f32], class: usize, reach: f32) -> bool {
        match (self.centroids.get(class), self.radius.get(class)) {
            (Some(c), Some(&r)) if !c.is_empty() => cosine_distance(features, c) <= r * reach,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_near_its_types_labelled_cells_is_known_and_a_far_one_is_not() {
        let a = [1.0f32, 0.1, 0.0];
        let b = [1.0f32, -0.1, 0.0];
        let f = Familiar::fit(&[&a, &b], &[0, 0], 2);
        assert!(f.knows(&[1.0, 0.05, 0.0], 0, 1.0));
        assert!(!f.knows(&[0.0, 0.0, 1.0], 0, 1.0));
        // No cell of class 1 was labelled: nothing is known of it.
        assert!(!f.knows(&[1.0, 0.0, 0.0], 1, 1.0));
    }
}
