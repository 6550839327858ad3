//! Drawing a label map: [`overlay`] blends it over the image, [`colorize`] paints it in the
//! [`PALETTE`] colours.

use super::labels::{NUM_LABELS, PALETTE};
use image::{GrayImage, RgbImage, RgbaImage};

/// Why an overlay could not be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SegmentationError {
    /// The label map and the image differ in size.
    #[error("the label map is {0}×{1} pixels but the image is {2}×{3}")]
    SizeMismatch(u32, u32, u32, u32),
}

/// Blend a label map over the image: each visible label's [`PALETTE`] colour is mixed in with
/// weight `opacity` (clamped to 0..=1); hidden labels leave the image unchanged. The result is
/// opaque RGBA.
pub fn overlay(
    img: &RgbImage,
    labels: &GrayImage,
    opacity: f32,
    visible: &[bool; NUM_LABELS],
) -> Result<RgbaImage, SegmentationError> {
    let (iw, ih) = img.dimensions();
    let (lw, lh) = labels.dimensions();
    if (iw, ih) != (lw, lh) {
        return Err(SegmentationError::SizeMismatch(lw, lh, iw, ih));
    }
    let a = if opacity.is_finite() {
        opacity.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mut out = RgbaImage::new(iw, ih);
    for ((o, p), l) in out.pixels_mut().zip(img.pixels()).zip(labels.pixels()) {
        let l = l.0[0] as usize;
        let mut c = [p.0[0], p.0[1], p.0[2], 255];
        if l < NUM_LABELS && visible[l] {
            for k in 0..3 {
                c[k] = (c[k] as f32 * (1.0 - a) + PALETTE[l][k] as f32 * a).round() as u8;
            }
        }
        o.0 = c;
    }
    Ok(out)
}

/// A label map drawn in the [`PALETTE`] colours (unknown ids are drawn white).
pub fn colorize(labels: &GrayImage) -> RgbImage {
    let (w, h) = labels.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, l) in out.pixels_mut().zip(labels.pixels()) {
        o.0 = PALETTE.get(l.0[0] as usize).copied().unwrap_or([255; 3]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segmentation::{CYTOPLASM, LABEL_NAMES, NUCLEUS, SHOW_CELL_LABELS};
    use image::{Luma, Rgb};

    #[test]
    fn overlay_blends_visible_labels_only() {
        let img = RgbImage::from_pixel(4, 2, Rgb([100, 100, 100]));
        let mut labels = GrayImage::new(4, 2);
        labels.put_pixel(0, 0, Luma([NUCLEUS]));
        labels.put_pixel(1, 0, Luma([CYTOPLASM]));
        labels.put_pixel(2, 0, Luma([200])); // not a label: left alone
        let mut visible = SHOW_CELL_LABELS;
        visible[CYTOPLASM as usize] = false;
        let out = overlay(&img, &labels, 0.5, &visible).unwrap_or_default();
        let n = PALETTE[NUCLEUS as usize];
        let expect = |v: u8| ((100.0 + v as f32) / 2.0).round() as u8;
        assert_eq!(
            out.get_pixel(0, 0).0,
            [expect(n[0]), expect(n[1]), expect(n[2]), 255]
        );
        assert_eq!(out.get_pixel(1, 0).0, [100, 100, 100, 255]);
        assert_eq!(out.get_pixel(2, 0).0, [100, 100, 100, 255]);
        assert_eq!(out.get_pixel(3, 1).0, [100, 100, 100, 255]);
        // Opacity is clamped; NaN means "no overlay".
        let full = overlay(&img, &labels, 7.0, &visible).unwrap_or_default();
        assert_eq!(full.get_pixel(0, 0).0[..3], n);
        let none = overlay(&img, &labels, f32::NAN, &visible).unwrap_or_default();
        assert_eq!(none.get_pixel(0, 0).0, [100, 100, 100, 255]);
        assert_eq!(
            overlay(&img, &GrayImage::new(3, 2), 0.5, &visible),
            Err(SegmentationError::SizeMismatch(3, 2, 4, 2))
        );
        assert_eq!(colorize(&labels).get_pixel(0, 0).0, n);
        assert_eq!(LABEL_NAMES.len(), PALETTE.len());
    }
}
