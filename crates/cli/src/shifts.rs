//! Synthetic shifts of PBC images: another microscope's look, magnification or optics, made
//! from val cells. Choices meant to hold on other microscopes (the front end's default steps,
//! which segmentation network ships) are made on these, never on the external sets.

use crate::rng::Rng;
use anyhow::Result;
use image::{imageops, RgbImage};
use wbc_core::front_end::{self, Placement};

/// A synthetic shift of a PBC image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shift {
    /// Cells at 0.6× in a field of the same pixel size (padded with background).
    Smaller,
    /// Cells at 1.6×, cut to the original size (a tight crop).
    Larger,
    /// Another lamp and stain: per-channel background tint and density power.
    Recoloured,
    /// Out of focus: Gaussian blur, σ = 2 px.
    Blurred,
    /// JPEG at quality 20.
    Compressed,
}

/// Every shift, in the order records list them.
pub const SHIFTS: [Shift; 5] = [
    Shift::Smaller,
    Shift::Larger,
    Shift::Recoloured,
    Shift::Blurred,
    Shift::Compressed,
];

impl Shift {
    /// The shift's name in records ("smaller", "larger", …).
    pub fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }
}

/// The shifted image, with where the original's square lies in it when the shift moved
/// pixels (rescaled views): `Some(placement)` maps label maps of the shifted image back onto
/// the original ([`Placement::labels_to_image`]).
pub fn shift_placed(
    img: &RgbImage,
    s: Shift,
    rng: &mut Rng,
) -> Result<(RgbImage, Option<Placement>)> {
    let (w, h) = img.dimensions();
    Ok(match s {
        Shift::Smaller | Shift::Larger => {
            let k = if matches!(s, Shift::Smaller) {
                0.6
            } else {
                1.6
            };
            let fill = front_end::background_pixel(&front_end::measure_look(img));
            let (out, placement) = front_end::resample(img, 1.0 / k, w.min(h), fill);
            (out, Some(placement))
        }
        Shift::Recoloured => {
            let look = front_end::measure_look(img);
            let lamp = [(); 3].map(|_| 0.95 + 0.1 * rng.symmetric());
            let stain = [(); 3].map(|_| 1.5f32.powf(rng.symmetric()));
            let mut out = img.clone();
            for p in out.pixels_mut() {
                for c in 0..3 {
                    let bg = look.background[c];
                    let ratio = (p[c] as f32 / 255.0) / bg;
                    let ratio = if ratio >= 1.0 {
                        ratio
                    } else {
                        ratio.powf(stain[c])
                    };
                    p[c] = (bg * lamp[c] * ratio * 255.0).round().clamp(0.0, 255.0) as u8;
                }
            }
            (out, None)
        }
        Shift::Blurred => (imageops::blur(img, 2.0), None),
        Shift::Compressed => {
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 20).encode_image(img)?;
            (image::load_from_memory(&bytes)?.to_rgb8(), None)
        }
    })
}

/// The shifted image alone (see [`shift_placed`]).
pub fn shift(img: &RgbImage, s: Shift, rng: &mut Rng) -> Result<RgbImage> {
    Ok(shift_placed(img, s, rng)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb};

    /// A dark disc on a pale field: rescaled views keep the image size, and their placement
    /// maps a label map of the view back onto the disc of the original.
    #[test]
    fn rescaled_views_map_labels_back_onto_the_original() {
        let side = 120u32;
        let inside = |x: u32, y: u32| {
            let (dx, dy) = (x as f32 - 59.5, y as f32 - 59.5);
            dx * dx + dy * dy < 30.0 * 30.0
        };
        let img = RgbImage::from_fn(side, side, |x, y| {
            if inside(x, y) {
                Rgb([90, 60, 140])
            } else {
                Rgb([230, 215, 210])
            }
        });
        let mut rng = Rng::new(3);
        for s in SHIFTS {
            let (view, placement) = shift_placed(&img, s, &mut rng).unwrap();
            assert_eq!(view.dimensions(), (side, side), "{s:?}");
            let Some(placement) = placement else {
                assert!(!matches!(s, Shift::Smaller | Shift::Larger));
                continue;
            };
            // Label the view by its darkness, map back, compare with the disc.
            let labels = GrayImage::from_fn(side, side, |x, y| {
                Luma([(view.get_pixel(x, y)[0] < 160) as u8])
            });
            let back = placement.labels_to_image(&labels, side, side);
            let (mut agree, mut total) = (0, 0);
            for (x, y, l) in back.enumerate_pixels() {
                // The larger view cuts the field's rim: compare where it shows the image.
                let shown = s == Shift::Smaller || {
                    let [cx, cy, cw, ch] = placement.crop;
                    x >= cx && y >= cy && x < cx + cw && y < cy + ch
                };
                if shown {
                    total += 1;
                    agree += ((l[0] == 1) == inside(x, y)) as usize;
                }
            }
            assert!(agree as f64 > 0.97 * total as f64, "{s:?}: {agree}/{total}");
        }
    }
}
