//! Scoring a label map against a hand-drawn mask: [`cellavision_iou`].

use super::labels::{is_white_cell, NUCLEUS};
use image::GrayImage;

/// Agreement with a hand-drawn cellavision100 mask (grey < 64 background, red cells included;
/// 64..=191 cytoplasm; >= 192 nucleus): (nucleus IoU, whole-cell IoU) in %. The whole cell is
/// nucleus ∪ cytoplasm ∪ vacuole, since vacuoles count as cytoplasm there.
pub fn cellavision_iou(labels: &GrayImage, truth: &GrayImage) -> (f64, f64) {
    let iou = |hit: &dyn Fn(u8, u8) -> (bool, bool)| {
        let (mut inter, mut union) = (0u64, 0u64);
        for (&p, &t) in labels.as_raw().iter().zip(truth.as_raw()) {
            let (a, b) = hit(p, t);
            inter += (a && b) as u64;
            union += (a || b) as u64;
        }
        if union == 0 {
            100.0
        } else {
            100.0 * inter as f64 / union as f64
        }
    };
    (
        iou(&|p, t| (p == NUCLEUS, t >= 192)),
        iou(&|p, t| (is_white_cell(p), t >= 64)),
    )
}
