//! [`tidy_cell`]: a label map from another source (the segmentation network) given the
//! labeller's shape of the central cell, and the geometry it needs (convex hull, solidity).

use super::labeller::{central_nucleus, star_regularise, LABELLER_LOBE_REACH, OTHER_NUCLEUS_AREA};
use super::labels::{is_white_cell, NUCLEUS, OTHER};
use crate::mask::{components, edt_sq};

/// How [`tidy_cell`] tells the central cell's nucleus pieces from other cells'. Chosen on val
/// by `wbc export-seg` (its tidy sweep, written into the segmentation card) for the network
/// it ships; the default is what that sweep chose for the v3 network.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TidyParams {
    /// How far (px at 360) a nucleus piece may lie from the central nucleus and still count
    /// as its lobe. The labeller uses 22 on its own dark mask; the network splits lobes more
    /// than that mask does (thin chromatin bridges come out as cytoplasm).
    pub lobe_reach: f32,
    /// How much more convex (solidity, area over convex-hull area) the cell must get without
    /// a far nucleus piece's share for that piece to be given to another cell.
    pub waist_gain: f32,
}

impl Default for TidyParams {
    fn default() -> Self {
        Self {
            lobe_reach: 40.0,
            waist_gain: 0.03,
        }
    }
}

/// [`tidy_cell_with`] the default [`TidyParams`].
pub fn tidy_cell(labels: &mut [u8], w: usize, h: usize) {
    tidy_cell_with(labels, w, h, TidyParams::default());
}

/// Give a label map from another source (the segmentation network) the labeller's shape of the
/// central cell. The central nucleus is chosen as the labeller chooses it ([`central_nucleus`],
/// with a wider lobe reach; a large piece that only the wider reach joins stays a lobe unless
/// the cell is clearly more convex without it); other large nuclei belong to other white
/// cells, and the white-cell pixels nearer to one of those than to the central nucleus go with
/// them (a touching second cell is "other", as in the labels). Of the rest, the pixels
/// connected to the central nucleus are kept and made star-shaped around it, which cuts narrow
/// spills into touching red cells. Removed pixels become [`OTHER`]. A map without nucleus is
/// left as it is.
pub fn tidy_cell_with(labels: &mut [u8], w: usize, h: usize, params: TidyParams) {
    assert_eq!(labels.len(), w * h);
    let white: Vec<bool> = labels.iter().map(|&l| is_white_cell(l)).collect();
    let nucleus: Vec<bool> = labels.iter().map(|&l| l == NUCLEUS).collect();
    let Some(mut central) = central_nucleus(&nucleus, w, h, params.lobe_reach) else {
        return;
    };
    // Another cell's nucleus: as large as the labeller's `other_nuclei`. Smaller stray
    // nucleus pixels (a dark granule, a fragment) do not claim cytoplasm.
    let s = w.min(h) as f32 / 360.0;
    let big = (OTHER_NUCLEUS_AREA * s * s).round() as usize;
    let (ids, comps) = components(&nucleus, w, h, true);
    let mut others: Vec<bool> = (0..w * h)
        .map(|i| ids[i] > 0 && !central[i] && comps[ids[i] as usize - 1].area > big)
        .collect();
    // A large piece that counts as a lobe only through the wide reach may be a touching cell's
    // nucleus instead: it is when the cell without that piece's share is clearly more convex
    // (one round cell) than with it (two cells meeting at a waist). Only a nucleus in several
    // pieces can have such a piece, and most are one piece, so the test is rarely run.
    let mut first = vec![usize::MAX; comps.len()];
    for (p, &i) in ids.iter().enumerate() {
        if i > 0 && first[i as usize - 1] == usize::MAX {
            first[i as usize - 1] = p;
        }
    }
    let pieces = first
        .iter()
        .filter(|&&p| p != usize::MAX && central[p])
        .count();
    let strict = if pieces > 1 {
        central_nucleus(&nucleus, w, h, LABELLER_LOBE_REACH)
    } else {
        None
    };
    if let Some(strict) = strict {
        let mut with = cell_share(&white, &central, &others, w, h);
        for (k, c) in comps.iter().enumerate() {
            let p = first[k];
            if p == usize::MAX || c.area <= big || !central[p] || strict[p] {
                continue;
            }
            let piece: Vec<bool> = ids.iter().map(|&i| i == k as u32 + 1).collect();
            let rest: Vec<bool> = (0..w * h).map(|i| central[i] && !piece[i]).collect();
            let mut others_too = others.clone();
            for (o, &q) in others_too.iter_mut().zip(&piece) {
                *o |= q;
            }
            let without = cell_share(&white, &rest, &others_too, w, h);
            if solidity(&without, w, h) - solidity(&with, w, h) > params.waist_gain {
                central = rest;
                others = others_too;
                with = without;
            }
        }
    }
    let keep = cell_share(&white, &central, &others, w, h);
    let shaped = star_regularise(&keep, &central, w, h);
    for (i, l) in labels.iter_mut().enumerate() {
        if white[i] && !shaped[i] {
            *l = OTHER;
        }
    }
}

/// The white-cell pixels that belong to the cell of `central`: nearer to it than to any of
/// `others` (other cells' nuclei), and connected to it.
fn cell_share(white: &[bool], central: &[bool], others: &[bool], w: usize, h: usize) -> Vec<bool> {
    let to_central = edt_sq(central, w, h);
    let to_others = if others.iter().any(|&o| o) {
        edt_sq(others, w, h)
    } else {
        vec![f32::INFINITY; w * h]
    };
    let cell: Vec<bool> = (0..w * h)
        .map(|i| white[i] && !others[i] && to_central[i] <= to_others[i])
        .collect();
    let (ids, comps) = components(&cell, w, h, true);
    let mut touches = vec![false; comps.len()];
    for i in 0..w * h {
        if central[i] && ids[i] > 0 {
            touches[ids[i] as usize - 1] = true;
        }
    }
    ids.iter()
        .map(|&id| id > 0 && touches[id as usize - 1])
        .collect()
}

/// Area of a pixel set over the area of its convex hull (1 for a filled square; about 0.8 for
/// two equal touching discs): how much a shape is one compact blob.
fn solidity(mask: &[bool], w: usize, h: usize) -> f32 {
    let mut corners = Vec::new();
    let mut area = 0usize;
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        area += row.iter().filter(|&&m| m).count();
        if let (Some(x0), Some(x1)) = (row.iter().position(|&m| m), row.iter().rposition(|&m| m)) {
            for (x, dy) in [
                (x0 as f32, 0.0),
                (x0 as f32, 1.0),
                (x1 as f32 + 1.0, 0.0),
                (x1 as f32 + 1.0, 1.0),
            ] {
                corners.push((x, y as f32 + dy));
            }
        }
    }
    let hull = hull_area(corners);
    if hull > 0.0 {
        area as f32 / hull
    } else {
        0.0
    }
}

/// Area of the convex hull of points (Andrew's monotone chain, then the shoelace formula).
fn hull_area(mut pts: Vec<(f32, f32)>) -> f32 {
    pts.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    pts.dedup();
    if pts.len() < 3 {
        return 0.0;
    }
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    // Lower chain left to right, then upper chain right to left; each drops its last point,
    // which starts the other.
    let mut hull: Vec<(f32, f32)> = Vec::with_capacity(2 * pts.len());
    for chain in [pts.clone(), pts.iter().rev().copied().collect()] {
        let start = hull.len();
        for p in chain {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    let n = hull.len();
    (0..n)
        .map(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f32>()
        .abs()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segmentation::CYTOPLASM;
    use image::{GrayImage, Luma};

    #[test]
    fn tidy_cell_keeps_the_central_cell_and_cuts_spills() {
        let side = 120u32;
        let mut map = GrayImage::new(side, side);
        for (x, y, p) in map.enumerate_pixels_mut() {
            let (dx, dy) = (x as f32 - 60.0, y as f32 - 60.0);
            let r = (dx * dx + dy * dy).sqrt();
            // Central cell: nucleus r < 12, cytoplasm r < 25, and a thin spill to the right.
            if r < 12.0 {
                *p = Luma([NUCLEUS]);
            } else if r < 25.0 || (x > 60 && x < 100 && (58..62).contains(&y)) {
                *p = Luma([CYTOPLASM]);
            }
            // A second white cell in the corner, not touching the first.
            let r2 = ((x as f32 - 10.0).powi(2) + (y as f32 - 10.0).powi(2)).sqrt();
            if r2 < 6.0 {
                *p = Luma([NUCLEUS]);
            }
        }
        let mut tidy = map.clone();
        tidy_cell(&mut tidy, 120, 120);
        assert_eq!(tidy.get_pixel(60, 60)[0], NUCLEUS);
        assert_eq!(tidy.get_pixel(60, 80)[0], CYTOPLASM);
        assert_eq!(tidy.get_pixel(95, 60)[0], OTHER, "the spill is cut");
        assert_eq!(
            tidy.get_pixel(10, 10)[0],
            OTHER,
            "the second cell is not the cell"
        );
        // Without a nucleus nothing changes.
        let mut empty = GrayImage::from_pixel(20, 20, Luma([CYTOPLASM]));
        tidy_cell(&mut empty, 20, 20);
        assert!(empty.pixels().all(|p| p[0] == CYTOPLASM));
    }

    /// A second white cell touching the central one (their cytoplasm merges) is "other", as the
    /// labeller leaves it; the central cell's two lobes both stay nucleus.
    #[test]
    fn tidy_cell_gives_a_touching_second_cell_away() {
        let side = 360u32;
        let mut map = GrayImage::new(side, side);
        for (x, y, p) in map.enumerate_pixels_mut() {
            let d = |cx: f32, cy: f32| ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
            // Central cell: lobes of r 18 at x = 160 and 200 (4 px apart), cytoplasm r < 60.
            // Second cell: nucleus r < 30 at x = 300, cytoplasm r < 55; the two overlap.
            if d(160.0, 180.0) < 18.0 || d(200.0, 180.0) < 18.0 || d(300.0, 180.0) < 30.0 {
                *p = Luma([NUCLEUS]);
            } else if d(180.0, 180.0) < 60.0 || d(300.0, 180.0) < 55.0 {
                *p = Luma([CYTOPLASM]);
            }
        }
        let mut tidy = map.clone();
        tidy_cell(tidy.as_mut(), 360, 360);
        assert_eq!(tidy.get_pixel(160, 180)[0], NUCLEUS);
        assert_eq!(tidy.get_pixel(200, 180)[0], NUCLEUS, "a lobe stays nucleus");
        assert_eq!(tidy.get_pixel(130, 180)[0], CYTOPLASM);
        assert_eq!(tidy.get_pixel(180, 220)[0], CYTOPLASM);
        assert_eq!(tidy.get_pixel(300, 180)[0], OTHER, "the other nucleus");
        assert_eq!(tidy.get_pixel(340, 180)[0], OTHER, "the other cytoplasm");
        assert_eq!(tidy.get_pixel(300, 140)[0], OTHER, "the other cytoplasm");
    }

    /// A touching cell whose nucleus lies within the wide lobe reach is still given away (the
    /// two cells meet at a waist), while two far-apart lobes of one round cell stay nucleus.
    #[test]
    fn tidy_cell_tells_a_far_lobe_from_a_neighbour() {
        let draw = |shape: &dyn Fn(f32, f32) -> u8| {
            let mut map = GrayImage::new(360, 360);
            for (x, y, p) in map.enumerate_pixels_mut() {
                *p = Luma([shape(x as f32, y as f32)]);
            }
            map
        };
        let d = |x: f32, y: f32, cx: f32| ((x - cx).powi(2) + (y - 180.0).powi(2)).sqrt();
        // Neighbour: nuclei r 25 at x = 180 and 265 (35 px apart), cytoplasm r 55 and 50.
        let mut two = draw(&|x, y| {
            if d(x, y, 180.0) < 25.0 || d(x, y, 265.0) < 25.0 {
                NUCLEUS
            } else if d(x, y, 180.0) < 55.0 || d(x, y, 265.0) < 50.0 {
                CYTOPLASM
            } else {
                OTHER
            }
        });
        tidy_cell(two.as_mut(), 360, 360);
        assert_eq!(two.get_pixel(180, 180)[0], NUCLEUS);
        assert_eq!(two.get_pixel(140, 180)[0], CYTOPLASM);
        assert_eq!(two.get_pixel(265, 180)[0], OTHER, "the neighbour's nucleus");
        assert_eq!(
            two.get_pixel(300, 180)[0],
            OTHER,
            "the neighbour's cytoplasm"
        );
        // One round cell (r 75) with lobes r 24 at x = 140 and 220 (32 px apart).
        let mut one = draw(&|x, y| {
            if d(x, y, 140.0) < 24.0 || d(x, y, 220.0) < 24.0 {
                NUCLEUS
            } else if d(x, y, 180.0) < 75.0 {
                CYTOPLASM
            } else {
                OTHER
            }
        });
        let before = one.clone();
        tidy_cell(one.as_mut(), 360, 360);
        assert_eq!(one.get_pixel(140, 180)[0], NUCLEUS);
        assert_eq!(one.get_pixel(220, 180)[0], NUCLEUS, "a far lobe stays");
        assert_eq!(one.get_pixel(245, 180)[0], CYTOPLASM);
        let changed = one
            .pixels()
            .zip(before.pixels())
            .filter(|(a, b)| a != b)
            .count();
        assert!(changed < 200, "{changed} pixels of one round cell changed");
    }

    #[test]
    fn solidity_of_one_blob_and_of_two() {
        let (w, h) = (100, 60);
        let square: Vec<bool> = (0..w * h)
            .map(|i| (10..50).contains(&(i % w)) && (10..50).contains(&(i / w)))
            .collect();
        assert!((solidity(&square, w, h) - 1.0).abs() < 1e-4);
        let discs: Vec<bool> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let r = |cx: f32| ((x - cx).powi(2) + (y - 30.0).powi(2)).sqrt();
                r(30.0) < 20.0 || r(68.0) < 20.0
            })
            .collect();
        let s = solidity(&discs, w, h);
        assert!((0.7..0.9).contains(&s), "two touching discs: {s}");
        assert_eq!(solidity(&vec![false; w * h], w, h), 0.0);
    }
}
