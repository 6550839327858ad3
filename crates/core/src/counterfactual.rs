//! Counterfactual retrieval: "the same cell, but with purple granules". Among reference cells
//! whose predicted attributes have the requested values, rank those closest to the query in
//! its other attributes, with the encoder's features as a light tie-breaker. Shared by the CLI
//! (`wbc counterfactual`) and the browser.

use crate::cbm::attribute_offset;
use crate::metrics::argmax;
use crate::ATTRIBUTES;
use serde::{Deserialize, Serialize};

/// Weight of the feature (cosine) distance next to the attribute distance (which lies in
/// [0, 1]): small, so attributes decide and features separate near-ties.
pub const FEATURE_WEIGHT: f32 = 0.1;

/// Requested values: `Some(value index)` per attribute that must match.
pub type Requests = [Option<usize>; 11];

/// One cell of a reference set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Where the cell came from (as given to `wbc index`).
    pub path: String,
    /// A small image of the cell, relative to the index file, when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<String>,
    /// The 31 attribute-value probabilities.
    pub concepts: Vec<f32>,
    /// Pooled encoder features, L2-normalised.
    pub features: Vec<f32>,
    /// The direct classifier's cell type.
    pub cell_type: String,
    /// The concept-bottleneck model's cell type, when a CBM was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cbm_type: Option<String>,
}

/// A reference set built by `wbc index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceIndex {
    /// The model that produced the concepts and features (its card's name and commit).
    pub model: String,
    /// Where the cells come from and under which licence, shown beside them in the page.
    #[serde(default)]
    pub credit: Option<String>,
    pub entries: Vec<IndexEntry>,
}

/// Whether a cell's predicted attributes have every requested value.
pub fn satisfies(concepts: &[f32], requests: &Requests) -> bool {
    requests.iter().enumerate().all(|(k, r)| {
        r.is_none_or(|v| {
            let o = attribute_offset(k);
            argmax(&concepts[o..o + ATTRIBUTES[k].values.len()]) == v
        })
    })
}

/// Mean total-variation distance over the attributes not requested, in [0, 1].
pub fn attribute_distance(a: &[f32], b: &[f32], requests: &Requests) -> f32 {
    let (mut sum, mut n) = (0.0, 0);
    for (k, attr) in ATTRIBUTES.iter().enumerate() {
        if requests[k].is_some() {
            continue;
        }
        let o = attribute_offset(k);
        let tv: f32 = (o..o + attr.values.len())
            .map(|j| (a[j] - b[j]).abs())
            .sum::<f32>()
            / 2.0;
        sum += tv;
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f32
    }
}

/// 1 − cosine similarity (0 for identical directions); 0 when either vector is missing.
pub fn feature_distance(a: &[f32], b: &[f32]) -> f32 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    1.0 - dot / (na * nb)
}

/// The ranking score (lower is closer).
pub fn distance(query: (&[f32], &[f32]), candidate: (&[f32], &[f32]), requests: &Requests) -> f32 {
    attribute_distance(query.0, candidate.0, requests)
        + FEATURE_WEIGHT * feature_distance(query.1, candidate.1)
}

/// The `k` closest candidates `(concepts, features)` that satisfy the requests, as
/// `(candidate index, distance)`, closest first.
pub fn rank<'a>(
    query: (&[f32], &[f32]),
    candidates: impl IntoIterator<Item = (&'a [f32], &'a [f32])>,
    requests: &Requests,
    k: usize,
) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = candidates
        .into_iter()
        .enumerate()
        .filter(|(_, c)| satisfies(c.0, requests))
        .map(|(i, c)| (i, distance(query, c, requests)))
        .collect();
    scored.sort_by(|a, b| a.1.total_cmp(&b.1));
    scored.truncate(k);
    scored
}

/// L2-normalise (features are compared by direction).
pub fn normalised(features: &[f32]) -> Vec<f32> {
    let n = features.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        return features.to_vec();
    }
    features.iter().map(|x| x / n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A concept vector with the given value index per attribute, fully confident.
    fn cell(values: [usize; 11]) -> Vec<f32> {
        ATTRIBUTES
            .iter()
            .zip(values)
            .flat_map(|(a, v)| (0..a.values.len()).map(move |j| (j == v) as u8 as f32))
            .collect()
    }

    #[test]
    fn only_matching_cells_are_ranked_and_closest_come_first() {
        let query = cell([0; 11]);
        let same_but_granules = {
            let mut v = [0; 11];
            v[9] = 1; // granule_colour changed
            v
        };
        let also_size = {
            let mut v = same_but_granules;
            v[0] = 1;
            v
        };
        let c1 = cell(also_size);
        let c2 = cell(same_but_granules);
        let c3 = cell([0; 11]); // does not have the requested value
        let mut requests: Requests = [None; 11];
        requests[9] = Some(1);
        let cands = [
            (c1.as_slice(), &[][..]),
            (c2.as_slice(), &[][..]),
            (c3.as_slice(), &[][..]),
        ];
        let ranked = rank((&query, &[]), cands, &requests, 5);
        assert_eq!(
            ranked.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 0],
            "{ranked:?}"
        );
        assert_eq!(ranked[0].1, 0.0);
        // One of the 10 other attributes differs completely.
        assert!((ranked[1].1 - 0.1).abs() < 1e-6);
    }

    #[test]
    fn features_break_ties() {
        let q = cell([0; 11]);
        let requests: Requests = [None; 11];
        let near = [1.0, 0.0];
        let far = [0.0, 1.0];
        let ranked = rank(
            (&q, &[1.0, 0.1]),
            [(q.as_slice(), &far[..]), (q.as_slice(), &near[..])],
            &requests,
            2,
        );
        assert_eq!(ranked[0].0, 1);
        assert!(feature_distance(&near, &near).abs() < 1e-6);
    }
}
