//! Augmentation: random label-preserving changes of a training input, from the plain
//! symmetries of the square to imitations of another microscope.

use crate::rng::Rng;
use wbc_core::preprocess;

/// A random label-preserving change of a training input: a symmetry of the square (flips,
/// 90° turns), a shift of a few pixels and ±4% brightness/contrast. Hue is left alone:
/// colours are labels. The same draw moves a label map with its image.
pub struct Augmentation {
    /// For each output pixel, the source pixel (row-major index).
    source: Vec<usize>,
    /// Per-channel gain (equal for the attribute network: colours are labels there).
    gain: [f32; 3],
    bias: f32,
    /// Per-channel optical-density scale (1 = unchanged): the pixel is raised to this power.
    density: [f32; 3],
    /// Box-blur passes (3×3) after the colour change: 0 = sharp.
    blur: usize,
    /// Standard deviation of added Gaussian-like noise (0..1 scale).
    noise: f32,
    /// Seed of the noise.
    noise_seed: u64,
}

/// How strongly [`Augmentation::draw_shifted`] imitates another microscope.
struct MicroscopeShift {
    /// Zoom between 1/zoom and zoom.
    zoom: f32,
    /// Lamp gain per channel: centre ± spread.
    lamp: (f32, f32),
    /// Stain density between 1/density and density…
    density: f32,
    /// …and each channel ± this share on top (a hue change).
    hue: f32,
    /// Samples in ten that are blurred, and up to how many box passes.
    blur_in_10: usize,
    blur_passes: usize,
    /// Samples in ten with noise, and its σ: centre ± spread.
    noise_in_10: usize,
    noise: (f32, f32),
    /// Turn by any angle, not only by quarter turns (the corners show background).
    rotate: bool,
}

impl MicroscopeShift {
    const SEGMENTATION: Self = Self {
        zoom: 2.0,
        lamp: (0.9, 0.2),
        density: 1.6,
        hue: 0.25,
        blur_in_10: 4,
        blur_passes: 3,
        noise_in_10: 4,
        noise: (0.02, 0.02),
        rotate: true,
    };
    /// The front end's residual errors and more: its scale step is off by default, and
    /// the external sets showed cells 1.5–2× PBC's size and softer focus (upsampled
    /// 120 px images), so zoom 0.7–1.4× and blur in half the samples. Colour changes stay
    /// small: cytoplasm and granule colour are labels.
    const ATTRIBUTES: Self = Self {
        zoom: 1.4,
        lamp: (1.0, 0.08),
        density: 1.3,
        hue: 0.08,
        blur_in_10: 5,
        blur_passes: 3,
        noise_in_10: 3,
        noise: (0.02, 0.01),
        rotate: true,
    };
}

/// Marks an output pixel that falls outside the source image (zoomed out): it gets the
/// image's background colour and the label "other".
const OUTSIDE: usize = usize::MAX;

impl Augmentation {
    pub fn draw(size: usize, rng: &mut Rng) -> Self {
        let (turn, flip, shift, gain, bias) = Self::draw_common(size, rng);
        Self::build(size, turn, flip, shift, (1.0, 0.0), [gain; 3], bias, false)
    }

    /// For the segmentation network, which must also work on other microscopes and stains:
    /// on top of [`Augmentation::draw`], a zoom of 0.8–1.25× about the centre and ±10% per
    /// colour channel (a stain tint). With `stain_jitter`, also the stain's strength: by
    /// Beer–Lambert a pixel's transmitted light is exp(−optical density), so scaling the
    /// density by `k` raises the pixel to the power `k` (×0.67–1.5, each channel ±15% more,
    /// which also shifts the hue a little), and zoom widens to 0.7–1.43×. None of these
    /// changes which pixel is nucleus or cytoplasm.
    pub fn draw_for_segmentation(size: usize, stain_jitter: bool, rng: &mut Rng) -> Self {
        let (turn, flip, shift, gain, bias) = Self::draw_common(size, rng);
        let zoom_range: f32 = if stain_jitter { 1.43 } else { 1.25 };
        let zoom = zoom_range.powf(rng.symmetric());
        let tint = [(); 3].map(|_| gain * (1.0 + 0.1 * rng.symmetric()));
        let mut aug = Self::build(size, turn, flip, shift, (zoom, 0.0), tint, bias, false);
        if stain_jitter {
            let strength = 1.5f32.powf(rng.symmetric());
            aug.density = [(); 3].map(|_| strength * (1.0 + 0.15 * rng.symmetric()));
        }
        aug
    }

    /// For a segmentation network that must work on any microscope, before or after the
    /// front end: zoom 0.5–2× (zoomed out, the frame is padded with the image's background),
    /// a lamp colour per channel (0.7–1.1: yellow, grey or blue backgrounds as well as PBC's
    /// pink), stain density ×0.6–1.6 with each channel ±25% (hue), and in some samples blur
    /// (1–3 box passes, 40%) and noise (σ up to 0.04, 40%). None of these changes which pixel
    /// is nucleus or cytoplasm.
    pub fn draw_for_any_microscope(size: usize, rng: &mut Rng) -> Self {
        Self::draw_shifted(size, &MicroscopeShift::SEGMENTATION, rng)
    }

    /// For the attribute network behind the front end (see `TrainArgs::any_microscope`).
    /// Colours are labels here (cytoplasm and granule colour), so the colour changes stay
    /// within what the front end leaves uncorrected.
    pub fn draw_for_attributes_any(size: usize, rng: &mut Rng) -> Self {
        Self::draw_shifted(size, &MicroscopeShift::ATTRIBUTES, rng)
    }

    fn draw_shifted(size: usize, m: &MicroscopeShift, rng: &mut Rng) -> Self {
        let (turn, flip, shift, _, bias) = Self::draw_common(size, rng);
        let zoom = m.zoom.powf(rng.symmetric());
        let lamp = [(); 3].map(|_| m.lamp.0 + m.lamp.1 * rng.symmetric());
        let angle = if m.rotate {
            std::f32::consts::FRAC_PI_4 * rng.symmetric()
        } else {
            0.0
        };
        let mut aug = Self::build(size, turn, flip, shift, (zoom, angle), lamp, bias, true);
        let strength = m.density.powf(rng.symmetric());
        aug.density = [(); 3].map(|_| strength * (1.0 + m.hue * rng.symmetric()));
        if rng.below(10) < m.blur_in_10 {
            aug.blur = 1 + rng.below(m.blur_passes);
        }
        if rng.below(10) < m.noise_in_10 {
            aug.noise = m.noise.0 + m.noise.1 * rng.symmetric();
        }
        aug.noise_seed = rng.next_u64();
        aug
    }

    fn draw_common(size: usize, rng: &mut Rng) -> (usize, bool, (isize, isize), f32, f32) {
        let turn = rng.below(4);
        let flip = rng.below(2) == 1;
        let max_shift = (size / 20) as isize;
        let shift = (
            rng.below(2 * max_shift as usize + 1) as isize - max_shift,
            rng.below(2 * max_shift as usize + 1) as isize - max_shift,
        );
        let gain = 1.0 + 0.04 * rng.symmetric();
        let bias = 0.04 * rng.symmetric();
        (turn, flip, shift, gain, bias)
    }

    fn build(
        size: usize,
        turn: usize,
        flip: bool,
        (dy, dx): (isize, isize),
        (zoom, angle): (f32, f32),
        gain: [f32; 3],
        bias: f32,
        pad: bool,
    ) -> Self {
        let n = size as isize;
        let centre = (n - 1) as f32 / 2.0;
        let (sin, cos) = angle.sin_cos();
        // Nearest source pixel of an output pixel under a zoom and a turn (by `angle`,
        // within ±45°: the quarter turns below do the rest) about the centre.
        let unzoom = |y: isize, x: isize| -> (isize, isize) {
            if zoom == 1.0 && angle == 0.0 {
                return (y, x);
            }
            let (v, u) = ((y as f32 - centre) / zoom, (x as f32 - centre) / zoom);
            (
                (centre + cos * v - sin * u).round() as isize,
                (centre + sin * v + cos * u).round() as isize,
            )
        };
        let mut source = Vec::with_capacity(size * size);
        for y in 0..n {
            for x in 0..n {
                let (y, x) = unzoom(y, x);
                let (mut a, mut b) = match turn {
                    0 => (y, x),
                    1 => (x, n - 1 - y),
                    2 => (n - 1 - y, n - 1 - x),
                    _ => (n - 1 - x, y),
                };
                if flip {
                    b = n - 1 - b;
                }
                a += dy;
                b += dx;
                // Zoomed out beyond the image: background when padding (as another
                // microscope's wider field would show), else the edge pixel.
                if pad && (a < 0 || b < 0 || a >= n || b >= n) {
                    source.push(OUTSIDE);
                    continue;
                }
                source.push((a.clamp(0, n - 1) * n + b.clamp(0, n - 1)) as usize);
            }
        }
        Self {
            source,
            gain,
            bias,
            density: [1.0; 3],
            blur: 0,
            noise: 0.0,
            noise_seed: 0,
        }
    }

    /// Normalised CHW input from HWC pixels.
    pub fn image(&self, hwc: &[u8]) -> Vec<f32> {
        let plane = self.source.len();
        let side = (plane as f64).sqrt() as usize;
        // Only a zoomed-out view needs the background colour.
        let fill = if self.source.contains(&OUTSIDE) {
            let img = image::RgbImage::from_raw(side as u32, side as u32, hwc.to_vec())
                .expect("square HWC pixels");
            wbc_core::front_end::measure_look(&img).background
        } else {
            [1.0; 3]
        };
        let mut out = vec![0.0; 3 * plane];
        for (dst, &src) in self.source.iter().enumerate() {
            for c in 0..3 {
                let mut v = if src == OUTSIDE {
                    fill[c]
                } else {
                    hwc[src * 3 + c] as f32 / 255.0
                };
                if self.density[c] != 1.0 {
                    v = v.max(1.0 / 255.0).powf(self.density[c]);
                }
                out[c * plane + dst] = v * self.gain[c] + self.bias;
            }
        }
        for _ in 0..self.blur {
            for c in 0..3 {
                box_blur(&mut out[c * plane..(c + 1) * plane], side);
            }
        }
        if self.noise > 0.0 {
            let mut rng = Rng::new(self.noise_seed);
            for v in out.iter_mut() {
                // Sum of three uniforms: close enough to Gaussian, σ = noise.
                let u = rng.symmetric() + rng.symmetric() + rng.symmetric();
                *v += u * self.noise;
            }
        }
        for c in 0..3 {
            for v in &mut out[c * plane..(c + 1) * plane] {
                *v = (*v - preprocess::MEAN[c]) / preprocess::STD[c];
            }
        }
        out
    }

    /// The label map moved the same way (no photometric change).
    pub fn labels<'a>(&'a self, labels: &'a [u8]) -> impl Iterator<Item = u8> + 'a {
        self.source
            .iter()
            .map(move |&src| if src == OUTSIDE { 0 } else { labels[src] })
    }
}

/// One 3×3 box-blur pass over a square plane (edges use the pixels that exist).
fn box_blur(plane: &mut [f32], side: usize) {
    let src = plane.to_vec();
    for y in 0..side {
        for x in 0..side {
            let (mut sum, mut n) = (0.0, 0.0);
            for yy in y.saturating_sub(1)..(y + 2).min(side) {
                for xx in x.saturating_sub(1)..(x + 2).min(side) {
                    sum += src[yy * side + xx];
                    n += 1.0;
                }
            }
            plane[y * side + x] = sum / n;
        }
    }
}

/// One augmented training input (see [`Augmentation`]).
pub fn augment(hwc: &[u8], size: usize, rng: &mut Rng) -> Vec<f32> {
    Augmentation::draw(size, rng).image(hwc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zooming 2× about the centre: the output's corner shows the pixel a quarter of the way
    /// in, its centre stays the centre, and the label map follows the image.
    #[test]
    fn zoom_is_about_the_centre_and_moves_labels_too() {
        let size = 41;
        let aug = Augmentation::build(size, 0, false, (0, 0), (2.0, 0.0), [1.0; 3], 0.0, false);
        assert_eq!(aug.source[0], 10 * size + 10);
        assert_eq!(aug.source[20 * size + 20], 20 * size + 20);
        let labels: Vec<u8> = (0..size * size).map(|i| (i % 251) as u8).collect();
        let moved: Vec<u8> = aug.labels(&labels).collect();
        assert_eq!(moved[0], labels[10 * size + 10]);
        // Zooming out clamps to the border instead of reading outside the image…
        let out = Augmentation::build(size, 1, true, (2, -2), (0.8, 0.0), [1.0; 3], 0.0, false);
        assert!(out.source.iter().all(|&s| s < size * size));
        // …or, padding, shows background labelled "other" there.
        let padded = Augmentation::build(size, 0, false, (0, 0), (0.5, 0.0), [1.0; 3], 0.0, true);
        assert_eq!(padded.source[0], OUTSIDE);
        assert_eq!(padded.source[20 * size + 20], 20 * size + 20);
        // A turn by 45° about the centre: the centre stays, the corners show background.
        let turned = Augmentation::build(size, 0, false, (0, 0), (1.0, 0.785), [1.0; 3], 0.0, true);
        assert_eq!(turned.source[20 * size + 20], 20 * size + 20);
        assert_eq!(turned.source[0], OUTSIDE);
        assert_ne!(turned.source[size], size);
        let moved: Vec<u8> = padded.labels(&vec![2u8; size * size]).collect();
        assert_eq!((moved[0], moved[20 * size + 20]), (0, 2));
        let hwc: Vec<u8> = (0..size * size)
            .flat_map(|i| {
                if i % 7 == 0 {
                    [90, 50, 120]
                } else {
                    [235, 215, 205]
                }
            })
            .collect();
        let img = padded.image(&hwc);
        let back = img[0] * preprocess::STD[0] + preprocess::MEAN[0];
        assert!(
            (back - 235.0 / 255.0).abs() < 0.01,
            "padding is the background, not {back}"
        );
    }

    /// The any-microscope draws stay within their stated ranges.
    #[test]
    fn any_microscope_draws_stay_in_their_ranges() {
        let mut rng = Rng::new(5);
        let (mut padded, mut blurred) = (false, false);
        for _ in 0..50 {
            let a = Augmentation::draw_for_any_microscope(32, &mut rng);
            assert!(
                a.gain.iter().all(|g| (0.7..=1.1).contains(g)),
                "{:?}",
                a.gain
            );
            assert!(a.blur <= 3 && a.noise <= 0.04 + 1e-6);
            padded |= a.source.contains(&OUTSIDE);
            blurred |= a.blur > 0;
            let b = Augmentation::draw_for_attributes_any(32, &mut rng);
            assert!(
                b.gain.iter().all(|g| (0.92..=1.08).contains(g)),
                "{:?}",
                b.gain
            );
            assert!(b.blur <= 3);
        }
        assert!(padded && blurred);
    }

    /// Segmentation draws tint the channels separately, within ±15%.
    #[test]
    fn segmentation_draws_tint_a_little() {
        let mut rng = Rng::new(3);
        let mut tinted = false;
        for _ in 0..20 {
            let aug = Augmentation::draw_for_segmentation(16, false, &mut rng);
            assert!(aug.gain.iter().all(|g| (0.85..=1.15).contains(g)));
            assert_eq!(aug.density, [1.0; 3]);
            tinted |= aug.gain[0] != aug.gain[1];
        }
        assert!(tinted);
    }

    /// Stain jitter scales optical density: white stays white, a stained pixel gets paler
    /// when the density shrinks and darker when it grows, and the scales stay in range.
    #[test]
    fn stain_jitter_scales_optical_density() {
        let mut rng = Rng::new(11);
        let (mut paler, mut darker) = (false, false);
        for _ in 0..40 {
            let aug = Augmentation::draw_for_segmentation(4, true, &mut rng);
            assert!(aug.density.iter().all(|k| (0.56..=1.73).contains(k)));
            paler |= aug.density.iter().all(|&k| k < 1.0);
            darker |= aug.density.iter().all(|&k| k > 1.0);
        }
        assert!(paler && darker);
        let mut aug = Augmentation::build(1, 0, false, (0, 0), (1.0, 0.0), [1.0; 3], 0.0, false);
        let value = |aug: &Augmentation, px: [u8; 3]| {
            let out = aug.image(&px);
            (0..3)
                .map(|c| out[c] * preprocess::STD[c] + preprocess::MEAN[c])
                .collect::<Vec<f32>>()
        };
        aug.density = [0.5; 3];
        assert!(value(&aug, [255; 3]).iter().all(|v| (v - 1.0).abs() < 1e-5));
        let stained = value(&aug, [64, 32, 128]);
        assert!((stained[0] - (64.0f32 / 255.0).sqrt()).abs() < 1e-5);
        assert!(stained
            .iter()
            .zip([64.0, 32.0, 128.0])
            .all(|(v, o)| *v > o / 255.0));
    }

    /// The attribute network's draw keeps colours: one gain for all three channels.
    #[test]
    fn attribute_draws_do_not_tint() {
        let mut rng = Rng::new(5);
        for _ in 0..10 {
            let aug = Augmentation::draw(16, &mut rng);
            assert_eq!(aug.gain[0], aug.gain[1]);
            assert_eq!(aug.gain[1], aug.gain[2]);
        }
    }
}
