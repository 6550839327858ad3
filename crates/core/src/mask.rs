//! Binary-mask primitives shared by the labeller and the morphometry: Euclidean distance
//! transform, disc morphology, connected components, hole filling and Otsu thresholds.
//!
//! Masks are row-major `Vec<bool>` of `w * h` pixels. Morphology goes through the exact
//! Euclidean distance transform, so a disc of any radius costs the same two linear passes
//! (a naive disc kernel would cost `O(r²)` per pixel).

/// A large but finite "no seed yet" distance: finite so that the lower-envelope arithmetic
/// of the distance transform never produces NaN.
const FAR: f64 = 1e20;

/// Squared Euclidean distance from each pixel to the nearest `true` pixel (about `1e20` when
/// the mask is empty). Felzenszwalb–Huttenlocher separable transform.
pub(crate) fn edt_sq(mask: &[bool], w: usize, h: usize) -> Vec<f32> {
    let mut f: Vec<f64> = mask.iter().map(|&m| if m { 0.0 } else { FAR }).collect();
    let n = w.max(h);
    let mut line = vec![0f64; n];
    let mut out = vec![0f64; n];
    let mut v = vec![0usize; n];
    let mut z = vec![0f64; n + 1];
    for x in 0..w {
        for y in 0..h {
            line[y] = f[y * w + x];
        }
        dt_1d(&line[..h], &mut out[..h], &mut v, &mut z);
        for y in 0..h {
            f[y * w + x] = out[y];
        }
    }
    for y in 0..h {
        line[..w].copy_from_slice(&f[y * w..(y + 1) * w]);
        dt_1d(&line[..w], &mut out[..w], &mut v, &mut z);
        f[y * w..(y + 1) * w].copy_from_slice(&out[..w]);
    }
    f.into_iter().map(|d| d as f32).collect()
}

/// One-dimensional squared-distance transform of the sampled function `f` (lower envelope of
/// parabolas).
fn dt_1d(f: &[f64], d: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    if n == 0 {
        return;
    }
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        let qf = q as f64;
        // z[0] is -inf, so the pop loop always stops at k = 0.
        let mut s;
        loop {
            let p = v[k];
            let pf = p as f64;
            s = ((f[q] + qf * qf) - (f[p] + pf * pf)) / (2.0 * (qf - pf));
            if s > z[k] {
                break;
            }
            k -= 1;
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate() {
        let qf = q as f64;
        while z[k + 1] < qf {
            k += 1;
        }
        let p = v[k] as f64;
        *dq = (qf - p) * (qf - p) + f[v[k]];
    }
}

/// Dilation by a disc of radius `r` pixels.
pub(crate) fn dilate(mask: &[bool], w: usize, h: usize, r: f32) -> Vec<bool> {
    let r2 = r * r;
    edt_sq(mask, w, h).into_iter().map(|d| d <= r2).collect()
}

/// Erosion by a disc of radius `r` pixels. Pixels outside the image count as foreground, so
/// objects touching the border are not eaten from that side.
pub(crate) fn erode(mask: &[bool], w: usize, h: usize, r: f32) -> Vec<bool> {
    let inv: Vec<bool> = mask.iter().map(|&m| !m).collect();
    let r2 = r * r;
    edt_sq(&inv, w, h).into_iter().map(|d| d > r2).collect()
}

/// Opening (erosion then dilation): removes parts narrower than the disc.
pub(crate) fn open(mask: &[bool], w: usize, h: usize, r: f32) -> Vec<bool> {
    dilate(&erode(mask, w, h, r), w, h, r)
}

/// Closing (dilation then erosion): bridges gaps narrower than the disc.
pub(crate) fn close(mask: &[bool], w: usize, h: usize, r: f32) -> Vec<bool> {
    erode(&dilate(mask, w, h, r), w, h, r)
}

/// One connected component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Component {
    /// Number of pixels.
    pub area: usize,
    /// Centroid column.
    pub cx: f32,
    /// Centroid row.
    pub cy: f32,
    /// Whether a pixel lies on the image border.
    pub touches_border: bool,
    /// Bounding box `[x0, y0, x1, y1]`, inclusive.
    pub bbox: [usize; 4],
}

/// Connected components of `mask` (8-connected when `eight`, else 4-connected). Returns the
/// per-pixel component id (`0` = not in the mask, `i + 1` = `components[i]`) and the stats.
pub(crate) fn components(
    mask: &[bool],
    w: usize,
    h: usize,
    eight: bool,
) -> (Vec<u32>, Vec<Component>) {
    let mut ids = vec![0u32; w * h];
    let mut comps = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !mask[start] || ids[start] != 0 {
            continue;
        }
        let id = comps.len() as u32 + 1;
        ids[start] = id;
        stack.push(start);
        let (mut area, mut sx, mut sy, mut border) = (0usize, 0f64, 0f64, false);
        let mut bbox = [usize::MAX, usize::MAX, 0, 0];
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            area += 1;
            sx += x as f64;
            sy += y as f64;
            border |= x == 0 || y == 0 || x + 1 == w || y + 1 == h;
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x),
                bbox[3].max(y),
            ];
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    if (dx == 0 && dy == 0) || (!eight && dx != 0 && dy != 0) {
                        continue;
                    }
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    if nx < 0 || ny < 0 || nx >= w as i64 || ny >= h as i64 {
                        continue;
                    }
                    let j = ny as usize * w + nx as usize;
                    if mask[j] && ids[j] == 0 {
                        ids[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        comps.push(Component {
            area,
            cx: (sx / area as f64) as f32,
            cy: (sy / area as f64) as f32,
            touches_border: border,
            bbox,
        });
    }
    (ids, comps)
}

/// Fill the holes of `mask` (background regions not connected to the image border) that
/// have at most `max_area` pixels.
pub(crate) fn fill_holes(mask: &[bool], w: usize, h: usize, max_area: usize) -> Vec<bool> {
    let inv: Vec<bool> = mask.iter().map(|&m| !m).collect();
    let (ids, comps) = components(&inv, w, h, false);
    mask.iter()
        .zip(&ids)
        .map(|(&m, &id)| {
            m || (id > 0 && {
                let c = &comps[id as usize - 1];
                !c.touches_border && c.area <= max_area
            })
        })
        .collect()
}

/// Keep only the components whose area is at least `min_area`.
pub(crate) fn remove_small(mask: &[bool], w: usize, h: usize, min_area: usize) -> Vec<bool> {
    let (ids, comps) = components(mask, w, h, true);
    ids.iter()
        .map(|&id| id > 0 && comps[id as usize - 1].area >= min_area)
        .collect()
}

/// Histogram of the finite `values` in `BINS` bins over their range: `(lowest value, bins per
/// unit, counts)`. `None` when there are no values or all are equal.
fn histogram<const BINS: usize>(
    values: impl Iterator<Item = f32> + Clone,
) -> Option<(f32, f32, [f64; BINS])> {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in values.clone().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    // Also catches no finite value at all (lo = +inf, hi = -inf).
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let scale = (BINS as f32 - 1.0) / (hi - lo);
    let mut hist = [0f64; BINS];
    for v in values.filter(|v| v.is_finite()) {
        hist[((v - lo) * scale) as usize] += 1.0;
    }
    Some((lo, scale, hist))
}

/// Otsu's threshold of `values` (256-bin histogram over their range): the value that best
/// separates them into two classes. `None` when there are no values or all are equal.
pub(crate) fn otsu(values: impl Iterator<Item = f32> + Clone) -> Option<f32> {
    let (lo, scale, hist) = histogram::<256>(values)?;
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &c)| i as f64 * c).sum();
    let (mut w0, mut sum0, mut best, mut best_bin) = (0f64, 0f64, -1f64, 0usize);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += i as f64 * c;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_bin = i;
        }
    }
    // Values strictly above the returned threshold form the upper class.
    Some(lo + (best_bin as f32 + 0.5) / scale)
}

/// Two-threshold Otsu (three classes) of `values`: the pair `(t1, t2)`, `t1 < t2`, that
/// maximises the between-class variance. `None` when there are no values or all are equal.
pub(crate) fn otsu3(values: impl Iterator<Item = f32> + Clone) -> Option<(f32, f32)> {
    const BINS: usize = 128;
    let (lo, scale, hist) = histogram::<BINS>(values)?;
    // Prefix sums of counts and of first moments.
    let mut pc = [0f64; BINS + 1];
    let mut pm = [0f64; BINS + 1];
    for i in 0..BINS {
        pc[i + 1] = pc[i] + hist[i];
        pm[i + 1] = pm[i] + i as f64 * hist[i];
    }
    // Between-class variance up to a constant: sum over classes of (moment² / count).
    let term = |a: usize, b: usize| {
        let c = pc[b] - pc[a];
        if c > 0.0 {
            (pm[b] - pm[a]).powi(2) / c
        } else {
            0.0
        }
    };
    let (mut best, mut bt) = (-1f64, (1usize, 2usize));
    for t1 in 1..BINS - 1 {
        for t2 in t1 + 1..BINS {
            let v = term(0, t1) + term(t1, t2) + term(t2, BINS);
            if v > best {
                best = v;
                bt = (t1, t2);
            }
        }
    }
    // Class k holds bins [t_{k-1}, t_k); a value above the returned threshold is in the upper
    // class.
    Some((lo + bt.0 as f32 / scale, lo + bt.1 as f32 / scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(w: usize, h: usize, cx: f32, cy: f32, r: f32) -> Vec<bool> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                (x - cx).powi(2) + (y - cy).powi(2) <= r * r
            })
            .collect()
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (23, 17);
        let mask: Vec<bool> = (0..w * h).map(|i| (i * 7919) % 37 == 0).collect();
        let d = edt_sq(&mask, w, h);
        for i in 0..w * h {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let brute = (0..w * h)
                .filter(|&j| mask[j])
                .map(|j| ((j % w) as f32 - x).powi(2) + ((j / w) as f32 - y).powi(2))
                .fold(f32::INFINITY, f32::min);
            assert_eq!(d[i], brute, "pixel {i}");
        }
    }

    #[test]
    fn disc_morphology_and_components() {
        let (w, h) = (60, 40);
        let a = disc(w, h, 15.0, 20.0, 8.0);
        let b = disc(w, h, 40.0, 20.0, 8.0);
        let both: Vec<bool> = a.iter().zip(&b).map(|(&x, &y)| x || y).collect();
        let (_, comps) = components(&both, w, h, true);
        assert_eq!(comps.len(), 2);
        // Dilating by 5 merges the discs (gap 9 px), eroding removes a disc of radius 8.
        let (_, merged) = components(&dilate(&both, w, h, 5.0), w, h, true);
        assert_eq!(merged.len(), 1);
        assert!(erode(&both, w, h, 8.5).iter().all(|&m| !m));
        // Opening by a small disc keeps discs nearly intact.
        let opened = open(&both, w, h, 2.0);
        let kept = opened.iter().filter(|&&m| m).count() as f32;
        let orig = both.iter().filter(|&&m| m).count() as f32;
        assert!(kept / orig > 0.9);
    }

    #[test]
    fn holes_are_filled_up_to_size() {
        let (w, h) = (40, 40);
        let ring: Vec<bool> = disc(w, h, 20.0, 20.0, 12.0)
            .iter()
            .zip(disc(w, h, 20.0, 20.0, 5.0))
            .map(|(&o, i)| o && !i)
            .collect();
        let filled = fill_holes(&ring, w, h, 1000);
        assert!(filled[20 * w + 20]);
        let not_filled = fill_holes(&ring, w, h, 10);
        assert!(!not_filled[20 * w + 20]);
    }

    #[test]
    fn otsu_splits_two_modes() {
        let vals: Vec<f32> = (0..100)
            .map(|i| if i < 60 { 10.0 } else { 200.0 })
            .collect();
        let t = otsu(vals.iter().copied()).unwrap_or(0.0);
        assert!(t > 10.0 && t < 200.0);
        assert_eq!(otsu([3.0f32, 3.0].into_iter()), None);
    }

    #[test]
    fn otsu3_splits_three_modes() {
        let vals: Vec<f32> = (0..300)
            .map(|i| match i % 3 {
                0 => 5.0,
                1 => 60.0,
                _ => 150.0,
            })
            .collect();
        let (t1, t2) = otsu3(vals.iter().copied()).unwrap_or((0.0, 0.0));
        assert!(t1 > 5.0 && t1 < 60.0, "{t1}");
        assert!(t2 > 60.0 && t2 < 150.0, "{t2}");
    }
}
